"""The Dask engine gives the local engine's verdicts and violations on generated traces,
every violation scenario included (a 2-worker LocalCluster in this process)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

pytest.importorskip("distributed")

from distributed import Client, LocalCluster

from inspectorate.commitment import check, load_commitment
from inspectorate.commitment._registry import MAX_IDS
from inspectorate.scale import check_distributed
from inspectorate.trace import SCENARIOS, GenSpec, generate_trace

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from check_throughput import all_rules_commitment


@pytest.fixture(scope="module")
def client():
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as c:
            yield c


def _facts(verdict):
    return verdict.verdict, [(v.rule_id, v.message, v.record_ids, v.count) for v in verdict.violations]


def _commitment(spec: GenSpec, **overrides):
    body = all_rules_commitment(spec.chips, spec.hours)
    body["deterministic_rules"] += [
        {"kind": "aggregate_flop_cap", "op_type": "training", "threshold": 1e18, "id": "tight_job_cap"},
        {
            "kind": "aggregate_flop_cap",
            "op_type": "*",
            "scope": "per_operator",
            "threshold": 1e18,
            "id": "tight_operator_cap",
        },
    ]
    return load_commitment(body)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_dask_verdicts_equal_local(client, scenario):
    spec = GenSpec(chips=6, hours=0.5, scenario=scenario, seed=3)
    trace = generate_trace(spec)
    commitment = _commitment(spec)
    local = check(trace, commitment)
    distributed = check_distributed(trace, commitment, client=client, partitions=3)
    assert _facts(distributed) == _facts(local)
    assert distributed.rules_evaluated == local.rules_evaluated
    if scenario != "training":
        assert local.verdict == 0  # each injected scenario (and the caps) is caught


def test_many_flagged_records_fall_back_to_a_global_run(client):
    """More flagged records than a violation names: the reduce cannot see them all."""
    spec = GenSpec(chips=40, hours=MAX_IDS / 40 / 60 * 2, scenario="idle_work", seed=1)
    trace = generate_trace(spec)
    commitment = load_commitment(
        {"id": "t", "deterministic_rules": [{"kind": "max_flop_per_token", "ceiling": 1.0}]}
    )
    local = check(trace, commitment)
    assert any(v.count and v.count > len(v.record_ids) for v in local.violations)
    assert _facts(check_distributed(trace, commitment, client=client, partitions=4)) == _facts(local)


def test_a_break_at_a_partition_seam_is_found(client):
    spec = GenSpec(chips=4, hours=0.5, scenario="training")
    records = generate_trace(spec).records
    seam = len(records) // 2  # partitions=2: the edited record ends the first range
    records[seam - 1] = dict(records[seam - 1], flops=records[seam - 1]["flops"] * 2)  # not re-chained
    from inspectorate.trace import Trace

    trace = Trace.from_records(records)
    commitment = load_commitment({"id": "t", "deterministic_rules": []})
    local = check(trace, commitment)
    assert [b.index for b in trace.chain_breaks()] == [seam]
    assert _facts(check_distributed(trace, commitment, client=client, partitions=2)) == _facts(local)


def test_cli_engine_dask(tmp_path):
    from typer.testing import CliRunner

    from inspectorate.cli import app
    from inspectorate.trace import write_generated

    path = write_generated(GenSpec(chips=3, hours=0.2, scenario="over_cap"), tmp_path / "t.parquet")
    cap = tmp_path / "c.yml"
    cap.write_text(
        "id: c\ndeterministic_rules:\n  - {kind: aggregate_flop_cap, op_type: training, threshold: 1.0}\n"
    )
    local = CliRunner().invoke(app, ["check", str(path), "-c", str(cap), "-f", "json"])
    dask = CliRunner().invoke(app, ["check", str(path), "-c", str(cap), "-f", "json", "--engine", "dask"])
    assert local.exit_code == dask.exit_code == 1
    assert local.stdout == dask.stdout


def test_a_wrong_published_head_is_found(client):
    spec = GenSpec(chips=4, hours=0.3, scenario="training")
    trace = generate_trace(spec)
    trace.head = "f" * 64
    commitment = load_commitment({"id": "t", "deterministic_rules": []})
    local = check(trace, commitment)
    assert local.verdict == 0
    assert _facts(check_distributed(trace, commitment, client=client, partitions=3)) == _facts(local)


@pytest.mark.parametrize("scenario", ["tampered", "forbidden_tag", "fragmented_jobs"])
def test_lean_parquet_traces_match_local(client, tmp_path, monkeypatch, scenario):
    """Above LEAN_ABOVE the frame keeps rule columns only: chain tasks read row groups
    from the file, global rules stream from it; verdicts still equal the local engine's."""
    import pyarrow.parquet as pq

    from inspectorate.trace import _io, read_trace, write_generated

    spec = GenSpec(chips=6, hours=0.5, scenario=scenario, seed=2)
    path = tmp_path / "t.parquet"
    write_generated(spec, path)
    table = pq.read_table(path)
    pq.write_table(table, path, row_group_size=40)  # several row groups to split
    monkeypatch.setattr(_io, "LEAN_ABOVE", 10)
    trace = read_trace(path)
    assert trace.lean
    commitment = _commitment(spec)
    local = check(trace, commitment)
    assert local.verdict == 0
    assert _facts(check_distributed(trace, commitment, client=client, partitions=3)) == _facts(local)


def test_semantic_fallbacks_run_on_dask_too(client):
    """A commitment with semantic rules: both engines run the same plan (fallbacks included)."""
    from inspectorate.attacks import violate
    from inspectorate.data import seed_path
    from inspectorate.trace import Trace, read_trace

    commitment = load_commitment(seed_path("no_frontier_training.yml"))
    clean = read_trace(seed_path("legit_finetune"))
    for trace in (clean, Trace.from_records(violate(clean.records, commitment))):
        local = check(trace, commitment)
        distributed = check_distributed(trace, commitment, client=client, partitions=3)
        assert _facts(distributed) == _facts(local)
        assert distributed.rules_evaluated == local.rules_evaluated
        assert distributed.semantic_rules_judged == local.semantic_rules_judged
        assert "no-splitting" in dict(local.semantic_rules_judged)


def _dag_trace():
    from inspectorate.trace import rechain

    records = generate_trace(GenSpec(chips=5, hours=0.4, scenario="training", seed=4)).records
    records[7]["upstream_refs"] = ["rec_9999999999", records[2]["record_id"]]  # phantom, then fine
    records[9]["upstream_refs"] = [records[30]["record_id"]]  # forward
    records[11]["upstream_refs"] = [records[11]["record_id"], "ghost"]  # self, phantom
    records[40]["record_id"] = records[3]["record_id"]  # duplicate id
    records[50]["upstream_refs"] = [records[3]["record_id"]]  # resolves to the first copy
    return rechain(records)


@pytest.mark.parametrize("lean", [False, True])
def test_dag_join_equals_the_local_rule(client, tmp_path, monkeypatch, lean):
    import inspectorate.trace._io as io
    from inspectorate.trace import Trace, read_trace, write_trace

    records = _dag_trace()
    commitment = load_commitment({"id": "t", "deterministic_rules": [{"kind": "upstream_refs_dag_validity"}]})
    if lean:
        write_trace(records, tmp_path / "d.parquet")
        monkeypatch.setattr(io, "LEAN_ABOVE", 10)
        trace = read_trace(tmp_path / "d.parquet")
        assert trace.lean
    else:
        trace = Trace.from_records(records)
    local = check(trace, commitment)
    for parts in (1, 3, 4, 64):  # 64 buckets for ~120 ids: some get none
        assert _facts(check_distributed(trace, commitment, client=client, partitions=parts)) == _facts(local)
    messages = " ".join(v.message for v in local.violations)
    assert (
        "2 records share record_ids" in messages and "3 reference(s) to records not in the trace" in messages
    )
    assert "2 reference(s) point to the record itself or to a later record" in messages
