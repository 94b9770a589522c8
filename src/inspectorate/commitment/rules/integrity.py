"""Rule kinds about the evidence itself: chain, time, completeness."""

from __future__ import annotations

import math
from typing import Iterator

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
        yield violation(f"hash chain broken at {len(breaks)} place(s); first at record index {first.index} "
                        f"({first.reason})", [s for s in suspects if s],
                        breaks=[{"index": b.index, "record_id": b.record_id, "expected": b.expected, "found": b.found}
                                for b in breaks[:20]], head_checked=trace.head is not None)


@rule("timestamp_monotonic", implicit=True)
def timestamp_monotonic(trace: Trace, tolerance_seconds: float = 0.0) -> Iterator[Violation]:
    """Time on each chip moves forward: taken in time order, a chip's windows never
    overlap (each starts no earlier than the previous one ended, within
    ``tolerance_seconds``), so no compute is counted twice. File order is not required:
    real logs (BLOOM's chronicles) list windows out of order. Each window's end not
    preceding its start is a schema check done on read."""
    ordered = trace.frame.select("record_id", "chip_id", "ws", "we", "row").sort(["chip_id", "ws", "row"])
    prev_end = pl.col("we").shift(1).over("chip_id")
    bad = ordered.filter(pl.col("ws") < prev_end - tolerance_seconds)
    if bad.height:
        yield violation(f"{bad.height} window(s) overlap the previous window on the same chip",
                        bad["record_id"].to_list(), chips=sorted(set(bad["chip_id"].to_list()))[:20],
                        tolerance_seconds=tolerance_seconds)


@rule("window_completeness")
def window_completeness(trace: Trace, expected_window_start: str, expected_window_end: str,
                        expected_chips: list[str], window_seconds: float = 60.0) -> Iterator[Violation]:
    """The prover declared its chip inventory and audit range ahead of time: every
    (chip, slot) of ``window_seconds`` between the expected start and end must be
    covered by some record of that chip (any op_type, idle included). Missing slots
    are truncation or dropped windows. Windows may be irregular: coverage, not exact
    alignment, is what counts."""
    start, end = parse_time(expected_window_start), parse_time(expected_window_end)
    slots = max(int(math.ceil((end - start) / window_seconds - 1e-9)), 0)
    frame = trace.frame.filter(pl.col("chip_id").is_in(expected_chips))
    per_chip = frame.partition_by("chip_id", as_dict=True)
    for chip in expected_chips:
        rows = per_chip.get((chip,))
        covered = np.zeros(slots, dtype=bool)
        if rows is not None:
            _cover(covered, rows["ws"].to_numpy(), rows["we"].to_numpy(), start, window_seconds)
        missing = np.flatnonzero(~covered)
        if missing.size:
            first = start + missing[0] * window_seconds
            before = [] if rows is None else rows.filter(pl.col("we") <= first + 1e-9).sort("ws")["record_id"].tail(1).to_list()
            yield violation(f"chip {chip!r} has no record for {missing.size} of {slots} slots "
                            f"(first missing slot starts {format_time(first)})", before,
                            chip_id=chip, missing_slots=int(missing.size), slots=slots,
                            first_missing=format_time(first), window_seconds=window_seconds)


def _cover(covered: np.ndarray, starts: np.ndarray, ends: np.ndarray, origin: float, width: float) -> None:
    """Mark slots that intersect any [start, end) window (a point window marks its slot)."""
    first = np.floor((starts - origin) / width + 1e-9).astype(np.int64)
    last = np.ceil((ends - origin) / width - 1e-9).astype(np.int64) - 1
    last = np.maximum(last, first)
    n = covered.size
    first, last = np.clip(first, 0, n), np.clip(last, -1, n - 1)
    marks = np.zeros(n + 1, dtype=np.int64)
    keep = first <= last
    np.add.at(marks, first[keep], 1)
    np.add.at(marks, last[keep] + 1, -1)
    covered |= np.cumsum(marks[:-1]) > 0
