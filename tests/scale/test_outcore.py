"""The out-of-core engine gives the in-memory engine's verdicts, violations (evidence
included) and matched counts, on a single Parquet file and on the partitioned layout,
for every scenario and for generated traces an adversary edited (hypothesis)."""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inspectorate.commitment import check, load_commitment
from inspectorate.commitment._registry import MAX_IDS
from inspectorate.errors import InputError
from inspectorate.scale import write_partitioned
from inspectorate.scale._outcore import check_out_of_core, wants_out_of_core
from inspectorate.trace import SCENARIOS, GenSpec, Trace, generate_trace, read_trace, write_trace

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from check_throughput import all_rules_commitment


def _facts(verdict):
    violations = [(v.rule_id, v.message, v.record_ids, v.count, v.evidence) for v in verdict.violations]
    return verdict.verdict, violations, verdict.matched, verdict.head_checked, verdict.rules_evaluated


def _commitment(spec: GenSpec):
    body = all_rules_commitment(spec.chips, spec.hours)
    body["deterministic_rules"] += [
        {"kind": "aggregate_flop_cap", "op_type": "training", "threshold": 1e18, "id": "tight_job_cap"},
        {
            "kind": "aggregate_flop_cap",
            "op_type": "*",
            "scope": "per_operator",
            "threshold": 1e18,
            "id": "op_cap",
        },
        {"kind": "aggregate_flop_cap", "op_type": "*", "scope": "global", "threshold": 1e19, "id": "all_cap"},
        {"kind": "require_head", "id": "head"},
    ]
    return load_commitment(body)


def _both(trace: Trace, commitment, folder: Path, part_rows: int, spill_rows: int, groups: int = 3):
    """(in-memory, out-of-core) facts for the trace as one Parquet file and as a layout."""
    path = write_trace(trace, folder / "t.parquet")
    layout = folder / "layout"
    write_partitioned(path, layout, window_seconds=600, chip_groups=groups)
    out = []
    for source in (path, layout):
        local = check(read_trace(source), commitment)
        outcore, meta = check_out_of_core(source, commitment, part_rows=part_rows, spill_rows=spill_rows)
        out.append((_facts(local), _facts(outcore)))
        assert len(meta) == len(trace)
    return out


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenarios_match_in_memory(tmp_path, scenario):
    spec = GenSpec(chips=6, hours=0.5, scenario=scenario, seed=3)
    for local, outcore in _both(generate_trace(spec), _commitment(spec), tmp_path, 170, 250):
        assert outcore == local
        if scenario not in ("training",):
            assert local[0] == 0


def _edit(records: list[dict], edits: list[tuple[str, int]]) -> list[dict]:
    """An adversary's edits (none re-chained: the chain must see them too)."""
    records = [dict(r) for r in records]
    n = len(records)
    for what, at in edits:
        i = at % n
        if what == "flops":
            records[i]["flops"] = float(records[i]["flops"]) * 3 + 1
        elif what == "dup_id":
            records[i]["record_id"] = records[(i + 7) % n]["record_id"]
        elif what == "phantom_ref":
            records[i]["upstream_refs"] = [*records[i]["upstream_refs"], "no-such-record"]
        elif what == "forward_ref":
            records[i]["upstream_refs"] = [records[(i + 1) % n]["record_id"]]
        elif what == "job":
            records[i]["job_id"] = f"job-fragment-{at}"
        elif what == "idle":
            records[i]["op_type"] = "idle"
        elif what == "drop":
            records.pop(i)
            n -= 1
    return records


EDITS = st.lists(
    st.tuples(
        st.sampled_from(["flops", "dup_id", "phantom_ref", "forward_ref", "job", "idle", "drop"]),
        st.integers(0, 10_000),
    ),
    max_size=4,
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    scenario=st.sampled_from(SCENARIOS),
    chips=st.integers(2, 7),
    seed=st.integers(0, 50),
    edits=EDITS,
    part_rows=st.integers(20, 400),
    spill_rows=st.integers(30, 500),
    groups=st.integers(1, 5),
)
def test_generated_and_edited_traces_match_in_memory(
    scenario, chips, seed, edits, part_rows, spill_rows, groups
):
    spec = GenSpec(chips=chips, hours=0.4, scenario=scenario, seed=seed)
    records = _edit(generate_trace(spec).records, edits)
    folder = Path(tempfile.mkdtemp())
    try:
        pairs = _both(Trace.from_records(records), _commitment(spec), folder, part_rows, spill_rows, groups)
    finally:
        shutil.rmtree(folder)
    for local, outcore in pairs:
        assert outcore == local


def test_many_flagged_records_are_judged_exactly(tmp_path):
    """A part's violation names MAX_IDS records but counts more: the whole part is
    handed to the reduce, and the count and ids still equal the in-memory run's."""
    spec = GenSpec(chips=40, hours=MAX_IDS / 40 / 60 * 2, scenario="idle_work", seed=1)
    trace = generate_trace(spec)
    commitment = load_commitment(
        {"id": "t", "deterministic_rules": [{"kind": "max_flop_per_token", "ceiling": 1.0}]}
    )
    path = write_trace(trace, tmp_path / "t.parquet")
    local = check(read_trace(path), commitment)
    assert any(v.count and v.count > len(v.record_ids) for v in local.violations)
    assert _facts(check_out_of_core(path, commitment, part_rows=700, spill_rows=900)[0]) == _facts(local)


def test_a_layout_with_a_seq_gap_falls_back_exactly(tmp_path):
    """A layout whose seqs are not 0..N-1 (a record deleted with the manifest redone):
    rows would differ from the reader's, so the in-memory engine judges it."""
    import polars as pl

    spec = GenSpec(chips=3, hours=0.3, scenario="training")
    path = write_trace(generate_trace(spec), tmp_path / "t.parquet")
    layout = tmp_path / "layout"
    write_partitioned(path, layout, window_seconds=600, chip_groups=2)
    victim = sorted(layout.glob("window=*/group=*.parquet"))[0]
    frame = pl.read_parquet(victim)
    frame.filter(pl.col("seq") != frame["seq"].min()).write_parquet(victim)
    commitment = _commitment(spec)
    local = check(read_trace(layout), commitment)
    assert local.verdict == 0  # the chain sees the hole
    assert _facts(check_out_of_core(layout, commitment, part_rows=50, spill_rows=60)[0]) == _facts(local)


def test_the_same_plan_runs_on_dask_workers(tmp_path):
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    spec = GenSpec(chips=5, hours=0.4, scenario="fragmented_jobs", seed=2)
    path = write_trace(generate_trace(spec), tmp_path / "t.parquet")
    layout = tmp_path / "layout"
    write_partitioned(path, layout, window_seconds=600, chip_groups=4)
    commitment = _commitment(spec)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            for source in (path, layout):
                local = check(read_trace(source), commitment)
                on_dask, _ = check_out_of_core(source, commitment, client=client, part_rows=40, spill_rows=50)
                assert _facts(on_dask) == _facts(local)


def test_bad_sources_are_one_line_errors(tmp_path):
    spec = GenSpec(chips=2, hours=0.1)
    jsonl = write_trace(generate_trace(spec), tmp_path / "t.jsonl")
    with pytest.raises(InputError, match="Parquet file or a partitioned layout"):
        check_out_of_core(jsonl, _commitment(spec))
    assert not wants_out_of_core(jsonl)
    assert not wants_out_of_core(tmp_path / "missing.parquet")


@pytest.mark.parametrize("engine", ["local", "dask"])
def test_cli_checks_a_large_parquet_file_out_of_core(tmp_path, monkeypatch, engine):
    """`check --out-of-core` goes out of core; its JSON document is the in-memory one,
    byte for byte (trace identity included)."""
    from typer.testing import CliRunner

    from inspectorate.cli import app
    from inspectorate.scale import _outcore
    from inspectorate.trace import write_generated

    path = tmp_path / "t.parquet"
    write_generated(GenSpec(chips=3, hours=0.2, scenario="over_cap"), path)
    cap = tmp_path / "c.yml"
    cap.write_text(
        "id: c\ndeterministic_rules:\n  - {kind: aggregate_flop_cap, op_type: training, threshold: 1.0}\n"
        "  - {kind: dataset_provenance}\n  - {kind: require_head}\n"
    )
    args = ["check", str(path), "-c", str(cap), "-f", "json", "--engine", engine]
    in_memory = CliRunner().invoke(app, args)
    calls = []
    original = _outcore.check_out_of_core
    monkeypatch.setattr(_outcore, "check_out_of_core", lambda *a, **k: calls.append(1) or original(*a, **k))
    out_of_core = CliRunner().invoke(app, [*args, "--out-of-core"])
    assert calls
    assert in_memory.exit_code == out_of_core.exit_code == 1
    assert out_of_core.stdout == in_memory.stdout


def test_cli_checks_a_layout_out_of_core(tmp_path):
    from typer.testing import CliRunner

    from inspectorate.cli import app
    from inspectorate.report._archive import check_document

    spec = GenSpec(chips=3, hours=0.3, scenario="forbidden_tag")
    path = write_trace(generate_trace(spec), tmp_path / "t.parquet")
    layout = tmp_path / "layout"
    write_partitioned(path, layout, window_seconds=600, chip_groups=2)
    cap = tmp_path / "c.yml"
    cap.write_text(
        "id: c\ndeterministic_rules:\n  - {kind: forbidden_data_source_tags, tags: ['corpus:cbrn-*']}\n"
    )
    result = CliRunner().invoke(app, ["check", str(layout), "-c", str(cap), "-f", "json", "--out-of-core"])
    trace = read_trace(layout)
    local = check(trace, load_commitment(cap))
    assert result.exit_code == 1
    assert result.stdout.strip() == check_document(local.to_dict(), trace, layout, cap).strip()


@pytest.mark.parametrize("at", [49, 50, 51])
def test_a_chain_break_at_a_part_seam_is_found(tmp_path, at):
    """Parts of 50 rows: an edit at the seam (the last record of a part, the first of the
    next) breaks the chain where the in-memory reader sees it, in both sources."""
    spec = GenSpec(chips=4, hours=0.5, scenario="training")
    records = generate_trace(spec).records
    records[at] = dict(records[at], flops=records[at]["flops"] * 2)  # not re-chained
    commitment = load_commitment({"id": "t", "deterministic_rules": []})
    for local, outcore in _both(Trace.from_records(records), commitment, tmp_path, 50, 60):
        assert local[0] == 0
        assert outcore == local
