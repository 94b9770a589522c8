"""upstream_refs_dag_validity against a plain-Python oracle on random provenance graphs:
duplicate ids, phantom refs, self and forward refs, in memory and read lean from Parquet."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from builders import base, chained
from inspectorate.commitment import RuleSpec
from inspectorate.commitment._check import run_rule
from inspectorate.trace import read_trace, write_trace

SPEC = RuleSpec("dag", "upstream_refs_dag_validity", {})
NAMES = [f"id{i}" for i in range(14)]  # few names for many records: duplicates happen


def oracle(records: list[dict]) -> dict[str, tuple[int, list[str]]]:
    """message stem -> (count, flagged ids in file order), as the rule defines them."""
    seen: dict[str, int] = {}
    for row, record in enumerate(records):
        seen.setdefault(record["record_id"], row)
    counts = {rid: sum(r["record_id"] == rid for r in records) for rid in seen}
    out: dict[str, tuple[int, list[str]]] = {}
    dupes = [r["record_id"] for r in records if counts[r["record_id"]] > 1]
    if dupes:
        out["share record_ids"] = (len(dupes), dupes)
    phantom, forward = [], []
    for row, record in enumerate(records):
        for ref in record["upstream_refs"]:
            target = seen.get(ref)
            if target is None:
                phantom.append(row)
            elif target >= row:
                forward.append(row)
    for stem, found in (("not in the trace", phantom), ("to a later record", forward)):
        if found:
            out[stem] = (len(found), [records[r]["record_id"] for r in dict.fromkeys(found)])
    return out


def observed(violations) -> dict[str, tuple[int, list[str]]]:
    out = {}
    for v in violations:
        stem = next(
            s for s in ("share record_ids", "not in the trace", "to a later record") if s in v.message
        )
        out[stem] = (int(v.message.split()[0]), list(v.record_ids))
    return out


graphs = st.lists(
    st.tuples(st.sampled_from(NAMES), st.lists(st.sampled_from(NAMES + ["ghost"]), max_size=3)),
    min_size=2,
    max_size=40,
)


def _records(graph) -> list[dict]:
    template = base()[0]
    return [dict(template, record_id=rid, upstream_refs=refs) for rid, refs in graph]


@settings(max_examples=150, deadline=None)
@given(graphs)
def test_dag_rule_matches_the_oracle(graph):
    records = _records(graph)
    assert observed(run_rule(SPEC, chained(records))) == oracle(records)


@settings(max_examples=25, deadline=None)
@given(graphs)
def test_dag_rule_reads_lean_parquet_the_same(tmp_path_factory, graph):
    import inspectorate.trace._io as io

    records = _records(graph)
    path = write_trace(chained(records), tmp_path_factory.mktemp("dag") / "t.parquet")
    before, io.LEAN_ABOVE = io.LEAN_ABOVE, 1
    try:
        lean = read_trace(path)
    finally:
        io.LEAN_ABOVE = before
    assert lean.lean
    assert observed(run_rule(SPEC, lean)) == oracle(records)
