"""Mergeable partials (``commitment/_partial.py``, ``scale/_partials.py``): a rule's
merged state clears it only when the rule, run on the whole trace in memory, yields
nothing; suspect groups are judged on their records; the engine says which path each
keyed or global rule took, and a rule without a partial still takes the bucket path."""

from __future__ import annotations

import random
import sys
from pathlib import Path

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspectorate.commitment import RULES, check, load_commitment, rule, violation
from inspectorate.commitment._check import rule_plan, run_rule
from inspectorate.commitment._partial import ALL, PARTIALS, partial_for
from inspectorate.commitment._registry import load_plugins
from inspectorate.scale._outcore import check_out_of_core
from inspectorate.trace import SCENARIOS, GenSpec, Trace, generate_trace, read_trace, write_trace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_outcore import _commitment, _edit, _facts

# edits that move a rule to the edge of what its partial clears
MORE_EDITS = [
    "flops",
    "job",
    "idle",
    "drop",
    "no_refs",
    "commit",
    "operator",
    "model",
    "dataset",
    "config",
    "chip",
]


def _edit_more(records: list[dict], edits: list[tuple[str, int]]) -> list[dict]:
    records = _edit(records, [e for e in edits if e[0] in ("flops", "job", "idle", "drop")])
    n = len(records)
    for what, at in edits:
        i = at % n
        field = {
            "commit": "code_commit",
            "operator": "operator",
            "model": "model_hash_prefix",
            "dataset": "dataset_fingerprint",
            "config": "config_hash",
            "chip": "chip_id",
        }.get(what)
        if what == "no_refs":
            records[i]["upstream_refs"] = []
        elif field is not None:
            records[i][field] = f"{records[i][field]}-x{at % 3}"
    return records


load_plugins()


def _states(trace: Trace, spec, cuts: list[int]):
    partial = partial_for(spec.kind)
    params = RULES[spec.kind].configured(spec.params)
    bounds = [0, *sorted(set(cuts)), trace.frame.height]
    parts = [trace.frame.slice(lo, hi - lo) for lo, hi in zip(bounds, bounds[1:]) if hi > lo]
    return partial.settle([partial.state(Trace(p, None, "<part>"), params) for p in parts], params)


@settings(max_examples=15, deadline=None)
@given(
    scenario=st.sampled_from(SCENARIOS),
    seed=st.integers(0, 40),
    edits=st.lists(st.tuples(st.sampled_from(MORE_EDITS), st.integers(0, 10_000)), max_size=3),
    cuts=st.lists(st.integers(0, 400), max_size=5),
)
def test_a_cleared_rule_yields_nothing_and_suspects_cover_its_violations(scenario, seed, edits, cuts):
    """The partial's promise, rule by rule, on any cut into parts: cleared (None) means
    the in-memory rule yields nothing; suspect groups contain every record it flags."""
    spec = GenSpec(chips=4, hours=0.4, scenario=scenario, seed=seed)
    trace = Trace.from_records(_edit_more(generate_trace(spec).records, edits))
    for rule_spec in rule_plan(_commitment(spec)):
        if partial_for(rule_spec.kind) is None:
            continue
        found = _states(trace, rule_spec, cuts)
        violations = run_rule(rule_spec, trace)
        if found is None:
            assert violations == [], rule_spec.id
        elif found is not ALL:
            key = RULES[rule_spec.kind].partition_for(rule_spec.params).key
            inside = trace.frame.filter(pl.col(key).cast(pl.Utf8).is_in(found[key].cast(pl.Utf8).implode()))
            assert run_rule(rule_spec, Trace(inside, None, "<suspects>")) == violations, rule_spec.id


def test_an_honest_trace_clears_every_partial_without_gathering_rows(tmp_path):
    """On the honest trace every keyed and global rule with a partial is cleared by its
    state alone (no second pass), and the verdict is the in-memory one."""
    spec = GenSpec(chips=5, hours=0.5, scenario="training", seed=4)
    path = write_trace(generate_trace(spec), tmp_path / "t.parquet")
    commitment = load_commitment(
        {
            **_commitment(spec).to_dict(),
            "deterministic_rules": [
                r.to_dict()
                for r in _commitment(spec).rules
                if r.id not in ("tight_job_cap", "op_cap", "all_cap")
            ],
        }
    )
    local = check(read_trace(path), commitment)
    verdict, meta = check_out_of_core(path, commitment, part_rows=97, spill_rows=150)
    assert _facts(verdict) == _facts(local) and verdict.verdict == 1
    merged = {s.id for s in commitment.rules if s.kind in PARTIALS}
    assert merged and all(meta.paths[r] == "partial: cleared" for r in merged), meta.paths
    assert not (Path(tmp_path) / "suspect").exists()


def test_suspect_groups_are_judged_on_their_records(tmp_path):
    """A cap that one job crosses: the partial names that job; the rule runs on its
    records and its violation is the in-memory one."""
    spec = GenSpec(chips=4, hours=0.4, scenario="fragmented_jobs", seed=2)
    path = write_trace(generate_trace(spec), tmp_path / "t.parquet")
    commitment = load_commitment(
        {
            "id": "t",
            "deterministic_rules": [
                {"kind": "aggregate_flop_cap", "op_type": "*", "threshold": 1e18},
                {"kind": "training_base_models", "allowed": []},
            ],
        }
    )
    local = check(read_trace(path), commitment)
    verdict, meta = check_out_of_core(path, commitment, part_rows=50, spill_rows=80)
    assert _facts(verdict) == _facts(local) and verdict.verdict == 0
    assert (
        meta.paths["aggregate_flop_cap"].startswith("partial: ")
        and "group(s)" in meta.paths["aggregate_flop_cap"]
    )


@pytest.fixture()
def plugin_without_partial():
    @rule("test_plugin_job_count", partition="keyed:job_id")
    def job_count(trace, limit: int = 10):
        """Test only: a job with more than ``limit`` records (no partial declared)."""
        for job, n in (
            trace.frame.group_by("job_id").len().filter(pl.col("len") > limit).sort("job_id").iter_rows()
        ):
            # names no record: the bucket path must still carry the job to the reduce
            yield violation(f"job {job!r} has {n} records", [], job=job)

    yield "test_plugin_job_count"
    RULES._entries.pop("test_plugin_job_count")


def test_a_rule_without_a_partial_takes_the_bucket_path_and_says_so(tmp_path, plugin_without_partial):
    spec = GenSpec(chips=3, hours=0.3, scenario="training", seed=1)
    path = write_trace(generate_trace(spec), tmp_path / "t.parquet")
    commitment = load_commitment(
        {
            "id": "t",
            "deterministic_rules": [
                {"kind": plugin_without_partial, "limit": random.Random(1).randint(5, 20)},
                {"kind": "code_commit_per_job_stable"},
            ],
        }
    )
    local = check(read_trace(path), commitment)
    verdict, meta = check_out_of_core(path, commitment, part_rows=30, spill_rows=40)
    assert _facts(verdict) == _facts(local) and verdict.verdict == 0
    assert meta.paths[plugin_without_partial] == "buckets by job_id (no partial)"
    assert meta.paths["code_commit_per_job_stable"] == "partial: cleared"
    # the implicit per-chip sequence check keeps its (bounded) chip buckets
    assert meta.paths["timestamp_monotonic"] == "buckets by chip_id (no partial)"


def test_every_global_kind_of_the_bench_commitment_has_a_partial():
    """Only these stay unbounded when their partial cannot clear them (the report names them)."""
    spec = GenSpec(chips=2, hours=0.1)
    kinds = {
        s.kind for s in rule_plan(_commitment(spec)) if RULES[s.kind].partition_for(s.params).how == "global"
    }
    assert kinds and kinds <= set(PARTIALS.names())


def test_all_survives_pickling_to_a_worker_process():
    import pickle

    assert pickle.loads(pickle.dumps({3: ALL}))[3] is ALL


def _same(a, b, key: str | None) -> bool:
    if a is None or a is ALL or b is None or b is ALL:
        return a is b
    return set(a[key].cast(pl.Utf8).to_list()) == set(b[key].cast(pl.Utf8).to_list())


@settings(max_examples=10, deadline=None)
@given(
    scenario=st.sampled_from(SCENARIOS),
    edits=st.lists(st.tuples(st.sampled_from(MORE_EDITS), st.integers(0, 10_000)), max_size=3),
    cuts=st.lists(st.integers(0, 400), min_size=2, max_size=8),
    every=st.integers(1, 3),
    order=st.randoms(use_true_random=False),
)
def test_states_folded_as_parts_arrive_settle_as_all_at_once(scenario, edits, cuts, every, order):
    """The driver folds the parts' states every few parts, in whatever order the
    workers finish (``Folded``): the suspects equal those of one merge over all."""
    from inspectorate.scale._partials import Folded

    spec = GenSpec(chips=4, hours=0.4, scenario=scenario, seed=3)
    trace = Trace.from_records(_edit_more(generate_trace(spec).records, edits))
    bounds = [0, *sorted(set(cuts)), trace.frame.height]
    parts = [
        Trace(trace.frame.slice(lo, hi - lo), None, "<p>") for lo, hi in zip(bounds, bounds[1:]) if hi > lo
    ]
    specs = [s for s in rule_plan(_commitment(spec)) if partial_for(s.kind) is not None]

    class _Plan:  # what Folded reads of the engine's plan
        merged = tuple(True for _ in specs)

    _Plan.specs = tuple(specs)  # type: ignore[attr-defined]
    states = []
    for p in parts:
        states.append(
            {i: partial_for(s.kind).state(p, RULES[s.kind].configured(s.params)) for i, s in enumerate(specs)}
        )
    folded = Folded(_Plan(), every=every)
    for i in order.sample(range(len(states)), len(states)):
        folded.add(states[i])
    got = folded.settle()
    for i, s in enumerate(specs):
        params = RULES[s.kind].configured(s.params)
        whole = partial_for(s.kind).settle([st_[i] for st_ in states], params)
        key = RULES[s.kind].partition_for(s.params).key
        assert _same(got.get(i), whole, key), s.id


def test_the_engine_folds_states_across_many_parts(tmp_path, monkeypatch):
    """Folding every 2 parts over 20+ parts: the out-of-core verdict is the in-memory one
    (an over-cap job still named), and each part's cost is reported."""
    import inspectorate.scale._partials as partials

    monkeypatch.setattr(partials, "FOLD_EVERY", 2)
    spec = GenSpec(chips=4, hours=0.4, scenario="fragmented_jobs", seed=2)
    path = write_trace(generate_trace(spec), tmp_path / "t.parquet")
    commitment = load_commitment(
        {
            "id": "t",
            "deterministic_rules": [
                {"kind": "aggregate_flop_cap", "op_type": "*", "threshold": 1e18},
                {"kind": "job_fragmentation"},
                {"kind": "code_commit_per_job_stable"},
            ],
        }
    )
    local = check(read_trace(path), commitment)
    verdict, meta = check_out_of_core(path, commitment, part_rows=4, spill_rows=40)
    assert meta.parts >= 20
    assert _facts(verdict) == _facts(local) and verdict.verdict == 0
    assert len(meta.part_costs) == meta.parts and sum(c.rows for c in meta.part_costs) == len(meta)
