"""Rule kinds about the evidence itself: chain, time, completeness."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import polars as pl

from inspectorate.commitment._registry import Violation, rule, violation
from inspectorate.trace import Trace, format_time, parse_time


@rule("hash_chain_intact", implicit=True)
def hash_chain_intact(trace: Trace) -> Iterator[Violation]:
    """Every record's prev_record_hash is the SHA-256 of the previous record's canonical
    JSON (64 zeros for the first); with a published head, the last record's hash must
    equal it. A break flags the record before it: the one most likely edited,
    removed or inserted."""
    breaks = trace.chain_breaks()
    if breaks:
        suspects = list(dict.fromkeys(b.suspect_record_id or b.record_id or "" for b in breaks))
        first = breaks[0]
        yield violation(
            f"hash chain broken at {len(breaks)} place(s); first at record index {first.index} "
            f"({first.reason})",
            [s for s in suspects if s],
            breaks=[
                {"index": b.index, "record_id": b.record_id, "expected": b.expected, "found": b.found}
                for b in breaks[:20]
            ],
            head_checked=trace.head is not None,
        )


@rule("timestamp_monotonic", implicit=True)
def timestamp_monotonic(trace: Trace, tolerance_seconds: float = 0.0) -> Iterator[Violation]:
    """Time on each chip moves forward: taken in time order, a chip's windows never
    overlap (each starts no earlier than the previous one ended, within
    ``tolerance_seconds``), so no compute is counted twice. File order is not required:
    real logs (BLOOM's chronicles) list windows out of order. Each window's end not
    preceding its start is a schema check done on read."""
    frame = trace.frame.select("record_id", "chip_id", "ws", "we", "row")
    in_order = frame.select(
        (pl.col("ws") >= pl.col("ws").shift(1).over("chip_id")).fill_null(True).all()
    ).item()
    # Logs are usually written in time order per chip; sort only when they are not.
    ordered = frame if in_order else frame.sort(["chip_id", "ws", "row"])
    prev_end = pl.col("we").shift(1).over("chip_id")
    bad = ordered.filter(pl.col("ws") < prev_end - tolerance_seconds)
    if bad.height:
        yield violation(
            f"{bad.height} window(s) overlap the previous window on the same chip",
            bad["record_id"].to_list(),
            chips=sorted(set(bad["chip_id"].to_list()))[:20],
            tolerance_seconds=tolerance_seconds,
        )


@rule("window_completeness")
def window_completeness(
    trace: Trace,
    expected_window_start: str,
    expected_window_end: str,
    expected_chips: list[str],
    window_seconds: float = 60.0,
) -> Iterator[Violation]:
    """The prover declared its chip inventory and audit range ahead of time: every
    (chip, slot) of ``window_seconds`` between the expected start and end must be
    covered by some record of that chip (any op_type, idle included). Missing slots
    are truncation or dropped windows. Windows may be irregular: coverage, not exact
    alignment, is what counts."""
    start, end = parse_time(expected_window_start), parse_time(expected_window_end)
    slots = max(int(math.ceil((end - start) / window_seconds - 1e-9)), 0)
    dtype = trace.frame.schema["chip_id"]
    chips = pl.DataFrame(
        {"chip_id": expected_chips, "_c": range(len(expected_chips))},
        schema={"chip_id": pl.Utf8, "_c": pl.Int64},
    ).with_columns(pl.col("chip_id").cast(dtype))
    frame = trace.frame.select("chip_id", "ws", "we").join(chips, on="chip_id")
    covered = _cover(
        frame["_c"].to_numpy(),
        frame["ws"].to_numpy(),
        frame["we"].to_numpy(),
        len(expected_chips),
        slots,
        start,
        window_seconds,
    )
    for c in np.flatnonzero((~covered).any(axis=1)):
        chip, missing = expected_chips[c], np.flatnonzero(~covered[c])
        first = start + missing[0] * window_seconds
        rows = trace.frame.filter((pl.col("chip_id") == chip) & (pl.col("we") <= first + 1e-9))
        before = rows.sort("ws")["record_id"].tail(1).to_list()
        yield violation(
            f"chip {chip!r} has no record for {missing.size} of {slots} slots "
            f"(first missing slot starts {format_time(first)})",
            before,
            chip_id=chip,
            missing_slots=int(missing.size),
            slots=slots,
            first_missing=format_time(first),
            window_seconds=window_seconds,
        )


def _cover(
    chip: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    chips: int,
    slots: int,
    origin: float,
    width: float,
) -> np.ndarray:
    """(chips × slots) booleans: slot intersects some [start, end) window of that chip
    (a zero-length window marks its own slot). One difference array for all chips."""
    first = np.floor((starts - origin) / width + 1e-9).astype(np.int64)
    last = np.maximum(np.ceil((ends - origin) / width - 1e-9).astype(np.int64) - 1, first)
    first, last = np.clip(first, 0, slots), np.clip(last, -1, slots - 1)
    keep = first <= last
    marks = np.zeros((chips, slots + 1), dtype=np.int64)
    np.add.at(marks, (chip[keep], first[keep]), 1)
    np.add.at(marks, (chip[keep], last[keep] + 1), -1)
    return np.cumsum(marks[:, :-1], axis=1) > 0
