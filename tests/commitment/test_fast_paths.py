"""The rule set's fast paths (issue 22) against the general ones they stand in for:
packed group keys against multi-column group-bys, timestamp_monotonic's sorted-array
path against its window expressions, and the DAG rule's link check and hash pass
against the plain-Python oracle, each path forced in turn."""

from __future__ import annotations

import random

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_dag_props import NAMES, SPEC, _records, observed, oracle

import inspectorate.commitment.rules._common as common
import inspectorate.commitment.rules.integrity as integrity
import inspectorate.commitment.rules.provenance as provenance
from builders import chained
from inspectorate.commitment._check import run_rule


def _frame(seed: int, rows: int, nulls: bool) -> pl.DataFrame:
    rng = random.Random(seed)

    def column(prefix: str, k: int) -> list[str | None]:
        return [None if nulls and rng.random() < 0.1 else f"{prefix}{rng.randrange(k)}" for _ in range(rows)]

    return pl.DataFrame(
        {
            "a": column("a", 3),
            "b": column("b", 7),
            "c": column("c", 2),
            "x": [rng.random() for _ in range(rows)],
        }
    ).with_columns(pl.col("a", "b", "c").cast(pl.Categorical))


def _groups(frame: pl.DataFrame, key: pl.Series) -> set[frozenset[int]]:
    indexed = frame.with_row_index("i").with_columns(key.alias("_k"))
    return {frozenset(g) for g in indexed.group_by("_k").agg("i")["i"].to_list()}


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("by", [["a"], ["a", "b"], ["b", "c", "a"]])
def test_packed_keys_group_exactly_like_the_columns(seed, by):
    frame = _frame(seed, 400, nulls=seed % 2 == 1)
    expected = {frozenset(g) for g in frame.with_row_index("i").group_by(by).agg("i")["i"].to_list()}
    packed, dense = common.packed_key(frame, by), common._dense_key(frame, by)
    assert packed is not None and dense is not None
    assert _groups(frame, packed) == expected
    assert _groups(frame, dense) == expected


def test_packed_key_declines_what_it_cannot_pack():
    frame = _frame(0, 10, nulls=False)
    assert common.packed_key(frame, ["a", "x"]) is None  # not categorical: the plain group-by
    assert common.packed_key(frame.head(0), ["a", "b"]) is None


@pytest.mark.parametrize("seed", range(3))
def test_sliced_agg_over_packed_keys_equals_the_plain_group_by(monkeypatch, seed):
    frame = _frame(seed, 300, nulls=True)
    aggs = [pl.col("x").sum().alias("s"), pl.len().alias("n")]
    plain = frame.group_by(["a", "b"]).agg(aggs).sort(["a", "b", "s"])
    monkeypatch.setattr(common, "SLICE_ROWS", 37)
    sliced = common.sliced_agg(frame, ["a", "b"], aggs, [pl.col("s").sum(), pl.col("n").sum()])
    assert sliced.columns == plain.columns and sliced.schema == plain.schema
    assert sliced.sort(["a", "b", "s"])["n"].to_list() == plain["n"].to_list()
    assert sliced.sort(["a", "b", "s"])["s"].to_list() == pytest.approx(plain["s"].to_list())


def _windows(seed: int, shuffled: bool, long_windows: bool) -> pl.DataFrame:
    """Windows of 5 chips, some overlapping, in time order per chip unless shuffled."""
    rng = random.Random(seed)
    rows = []
    for chip in range(5):
        t = 0.0
        for _ in range(30):
            t += rng.choice([60.0, 60.0, 30.0, 90.0])
            length = rng.choice([60.0, 60.0, 200.0]) if long_windows else 60.0
            rows.append((f"chip{chip}", t, t + length))
    if shuffled:
        rng.shuffle(rows)
    else:
        rows.sort(key=lambda r: r[1])
    return (
        pl.DataFrame(
            {
                "record_id": [f"r{i}" for i in range(len(rows))],
                "chip_id": [r[0] for r in rows],
                "ws": [r[1] for r in rows],
                "we": [r[2] for r in rows],
            }
        )
        .with_columns(pl.col("chip_id").cast(pl.Categorical))
        .with_row_index("row")
    )


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("shuffled,long_windows", [(False, False), (False, True), (True, False)])
def test_timestamp_fast_path_flags_what_the_window_expressions_flag(seed, shuffled, long_windows):
    frame = _windows(seed, shuffled, long_windows).select("record_id", "chip_id", "ws", "we", "row")
    general = integrity._overlaps(frame, 0.0)["record_id"].to_list()
    fast = integrity._overlaps_in_order(frame, 0.0)
    if not shuffled and not long_windows:
        assert fast is not None  # time order, equal lengths: the usual log takes the fast path
        assert general  # not vacuous: 30 s steps overlap 60 s windows
    if shuffled:
        assert fast is None  # out of order: the general path sorts
    if fast is not None:
        assert frame.filter(pl.Series(fast))["record_id"].to_list() == general
    assert [v.record_ids for v in integrity.timestamp_monotonic(_Trace(frame))] == (
        [tuple(general)] if general else []
    )


class _Trace:
    """The one attribute timestamp_monotonic reads."""

    def __init__(self, frame: pl.DataFrame):
        self.frame = frame


def test_timestamp_fast_path_declines_falling_ends():
    frame = (
        pl.DataFrame(
            {
                "record_id": ["a", "b", "c"],
                "chip_id": ["x"] * 3,
                "ws": [0.0, 10.0, 20.0],
                "we": [100.0, 15.0, 30.0],
            }
        )
        .with_columns(pl.col("chip_id").cast(pl.Categorical))
        .with_row_index("row")
    )
    frame = frame.select("record_id", "chip_id", "ws", "we", "row")
    assert integrity._overlaps_in_order(frame, 0.0) is None  # the latest end is not the last one
    assert integrity._overlaps(frame, 0.0)["record_id"].to_list() == ["b", "c"]


# graphs whose records mostly cite the record just before them (the link check's case),
# with duplicates, phantoms, self and forward refs mixed in
linked_graphs = st.lists(
    st.tuples(
        st.sampled_from(NAMES), st.booleans(), st.lists(st.sampled_from(NAMES + ["ghost"]), max_size=2)
    ),
    min_size=2,
    max_size=40,
)


@settings(max_examples=60, deadline=None)
@given(linked_graphs, st.sampled_from([0, 10**9]))
def test_dag_link_check_and_both_resolvers_match_the_oracle(graph, few):
    records = _records(
        [(rid, ([graph[i - 1][0]] if cite and i else []) + refs) for i, (rid, cite, refs) in enumerate(graph)]
    )
    before, provenance._FEW = provenance._FEW, few  # 0: hash pass always; 10^9: sorted hashes
    try:
        assert observed(run_rule(SPEC, chained(records))) == oracle(records)
    finally:
        provenance._FEW = before


@settings(max_examples=80, deadline=None)
@given(st.lists(st.sampled_from(["r0", "r1", "r2", "r10", "r3", ""]), max_size=30), st.booleans())
def test_duplicate_ids_sorted_or_not_match_a_count(values, ordered):
    ids = sorted(values) if ordered else values
    expected = [(rid, row) for row, rid in enumerate(ids) if ids.count(rid) > 1]
    found = provenance._duplicates(pl.Series("record_id", ids, dtype=pl.Utf8))
    assert found.schema == {"record_id": pl.Utf8, "row": pl.UInt32}
    assert list(found.iter_rows()) == expected


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("by,value", [(["a"], "c"), (["a", "b"], "c"), (["b"], "a")])
def test_one_value_each_says_what_the_group_by_says(seed, by, value):
    frame = _frame(seed, 12 + 40 * (seed % 3), nulls=seed % 2 == 1)
    if seed >= 4:  # one value per group by construction, so both answers occur
        frame = frame.with_columns(pl.col(by[0]).alias(value))
    counts = frame.group_by(by).agg(pl.col(value).n_unique().alias("n"))
    assert common.one_value_each(frame, by, value) == bool((counts["n"] == 1).all())


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("by", [["k", "a"], ["a", "k", "b"], ["k"], ["n", "a"]])
def test_packed_keys_skip_constant_columns_but_not_a_null(seed, by):
    frame = _frame(seed, 60, nulls=False).with_columns(
        pl.lit("same").cast(pl.Categorical).alias("k"),  # one value: splits nothing
        pl.when(pl.col("x") < 0.2).then(None).otherwise(pl.lit("v")).cast(pl.Categorical).alias("n"),
    )
    expected = {frozenset(g) for g in frame.with_row_index("i").group_by(by).agg("i")["i"].to_list()}
    key = common.packed_key(frame, by)
    assert key is not None and key.len() == frame.height
    assert _groups(frame, key) == expected
    counts = frame.group_by(by).agg(pl.col("c").n_unique().alias("u"))
    assert common.one_value_each(frame, by, "c") == bool((counts["u"] == 1).all())
    assert common.one_value_each(frame, by, "k")  # a constant value: one per group
