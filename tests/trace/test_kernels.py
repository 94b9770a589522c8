"""The compiled per-chip passes (trace/_kernels.py, issue 22) against the general paths
they stand in for: timestamp_monotonic's sort of chip codes and window_slots_to_end's
group-by, on windows in time order per chip and shuffled, with overlaps and gaps."""

from __future__ import annotations

import random

import numpy as np
import polars as pl
import pytest

import inspectorate.commitment.rules.integrity as integrity
import inspectorate.trace._kernels as kernels
from inspectorate.trace import format_time

pytestmark = pytest.mark.skipif(not kernels.compiled(), reason="_ckernels not built")


def _windows(seed: int, shuffled: bool, long_windows: bool, chips: int = 6) -> pl.DataFrame:
    """Windows of some chips with jitter, gaps, 30 s steps (overlaps) and long windows."""
    rng = random.Random(seed)
    rows = []
    for chip in range(chips):
        t = 1_777_021_200.0 + rng.choice([0.0, 60.0, 600.0])
        for _ in range(rng.randrange(5, 40)):
            t += rng.choice([60.0, 60.0, 30.0, 90.0, 240.0])
            length = rng.choice([60.0, 60.0, 200.0]) if long_windows else 60.0
            rows.append((f"chip{chip}", t + rng.choice([0.0, 0.5]), t + length))
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
        .select("record_id", "row", "chip_id", "ws", "we")
    )


class _Trace:
    """The one attribute the two rules read."""

    def __init__(self, frame: pl.DataFrame):
        self.frame = frame


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("shuffled,long_windows", [(False, False), (False, True), (True, False)])
@pytest.mark.parametrize("tolerance", [0.0, 0.5])
def test_chip_overlaps_equals_the_sorted_arrays(seed, shuffled, long_windows, tolerance):
    frame = _windows(seed, shuffled, long_windows)
    compiled, general = (
        kernels.chip_overlaps(frame, tolerance),
        integrity._overlaps_in_order(frame, tolerance),
    )
    assert (compiled is None) == (general is None)
    if compiled is not None:
        assert np.array_equal(compiled, general)
    if not shuffled and not long_windows:
        assert compiled is not None and compiled.any()  # not vacuous: 30 s steps overlap


def test_chip_overlaps_declines_nulls_and_plain_strings():
    frame = _windows(0, False, False)
    assert kernels.chip_overlaps(frame.with_columns(pl.col("chip_id").cast(pl.Utf8)), 0.0) is None
    nulled = frame.with_columns(pl.when(pl.col("row") == 3).then(None).otherwise(pl.col("ws")).alias("ws"))
    assert kernels.chip_overlaps(nulled, 0.0) is None


def _slots_general(frame: pl.DataFrame, width: float, end: float) -> pl.DataFrame:
    slot = ((pl.col("ws") / width) + 1e-9).floor().cast(pl.Int64)
    return (
        frame.filter(pl.col("ws") < end - 1e-6)
        .with_columns(slot.alias("slot"))
        .group_by("chip_id")
        .agg(pl.col("slot").min().alias("first"), pl.col("slot").n_unique().alias("have"))
        .sort("chip_id")
    )


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("shuffled", [False, True])
@pytest.mark.parametrize("width", [60.0, 45.0])
def test_chip_slots_equals_the_group_by(seed, shuffled, width):
    frame = _windows(seed, shuffled, long_windows=False)
    end = float(frame["ws"].quantile(0.8))  # some records start after the end
    compiled = kernels.chip_slots(frame, width, end)
    if shuffled:
        assert compiled is None
        return
    assert compiled is not None
    general = _slots_general(frame, width, end)
    assert compiled.sort("chip_id").select("chip_id", "first", pl.col("have").cast(pl.UInt32)).equals(general)


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("shuffled", [False, True])
def test_window_rules_say_the_same_with_and_without_the_kernels(monkeypatch, seed, shuffled):
    frame = _windows(seed, shuffled, long_windows=seed % 2 == 1)
    end = format_time(float(frame["ws"].quantile(0.9)))

    def verdicts() -> list:
        return [
            *integrity.timestamp_monotonic(_Trace(frame)),
            *integrity.window_slots_to_end(_Trace(frame), audit_window_end=end),
        ]

    fast = verdicts()
    monkeypatch.setattr(kernels, "_ext", None)
    slow = verdicts()
    assert fast == slow
    assert any("overlap" in v.message for v in fast) or shuffled
    assert any(v.evidence.get("missing_slots") for v in fast)  # gaps: not vacuous
