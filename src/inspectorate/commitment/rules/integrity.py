"""Rule kinds about the evidence itself: chain, time, completeness."""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np
import polars as pl

from inspectorate.commitment._partial import ALL, Suspects, mergeable
from inspectorate.commitment._registry import Violation, rule, violation
from inspectorate.commitment.rules import _common
from inspectorate.commitment.rules._common import by_value
from inspectorate.errors import InputError
from inspectorate.trace import Trace, format_time, parse_time
from inspectorate.trace._kernels import chip_overlaps, chip_slots


@rule("hash_chain_intact", implicit=True, partition="chain")
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


@rule("timestamp_monotonic", implicit=True, partition="keyed:chip_id")
def timestamp_monotonic(trace: Trace, tolerance_seconds: float = 0.0) -> Iterator[Violation]:
    """Time on each chip moves forward: taken in time order, a chip's windows never
    overlap (each starts no earlier than every earlier one ended, within
    ``tolerance_seconds``), so no compute is counted twice. File order is not required:
    real logs (BLOOM's chronicles) list windows out of order. Each window's end not
    preceding its start is a schema check done on read."""
    frame = trace.frame.select("record_id", "chip_id", "ws", "we", "row")
    # the usual log, in one compiled pass (else the numpy sort below, else the windows)
    overlapping = chip_overlaps(frame, tolerance_seconds)
    if overlapping is None:
        overlapping = _overlaps_in_order(frame, tolerance_seconds)
    if overlapping is not None:  # the usual log: each chip's windows in order, ends rising
        # filtering 10^7 rows of five columns costs more than the pass: only when flagged
        bad = frame.filter(pl.Series(overlapping)) if overlapping.any() else frame.head(0)
    else:
        bad = _overlaps(frame, tolerance_seconds)
    if bad.height:
        yield violation(
            f"{bad.height} window(s) overlap an earlier window on the same chip",
            bad["record_id"].to_list(),
            chips=sorted(set(bad["chip_id"].to_list()))[:20],
            tolerance_seconds=tolerance_seconds,
        )


def _overlaps(frame: pl.DataFrame, tolerance_seconds: float) -> pl.DataFrame:
    """The overlapping windows, in the general case (any order, any window lengths)."""
    in_order = frame.select(
        (pl.col("ws") >= pl.col("ws").shift(1).over("chip_id")).fill_null(True).all()
    ).item()
    # Logs are usually written in time order per chip; sort only when they are not.
    ordered = frame if in_order else frame.sort(["chip_id", "ws", "row"])
    # the latest end so far, not just the previous window's: a long window can overlap
    # several later ones, and each of them counts compute twice
    prev_end = pl.col("we").cum_max().shift(1).over("chip_id")
    return ordered.filter(pl.col("ws") < prev_end - tolerance_seconds)


def _overlaps_in_order(frame: pl.DataFrame, tolerance_seconds: float) -> np.ndarray | None:
    """Per record (file order), whether it overlaps an earlier window of its chip; None
    unless every chip's starts and ends both rise in file order (then the file order is
    the time order, the latest end so far is the previous window's end, and
    ``_overlaps`` would give these records in this order). Arrays, not ``over``
    windows: one stable sort of the chip codes (a radix sort) replaces two group-bys."""
    if frame.height < 2 or frame.select(pl.any_horizontal(pl.all().null_count() > 0)).item():
        return None
    codes = frame["chip_id"].to_physical().to_numpy()
    order = np.argsort(codes, kind="stable")
    chip, ws, we = codes[order], frame["ws"].to_numpy()[order], frame["we"].to_numpy()[order]
    same = chip[1:] == chip[:-1]
    rising = (ws[1:] >= ws[:-1]) & (we[1:] >= we[:-1])
    if not (rising | ~same).all():
        return None
    out = np.zeros(frame.height, dtype=bool)
    out[order[1:]] = same & (ws[1:] < we[:-1] - tolerance_seconds)
    return out


@rule("window_completeness", partition="global")
def window_completeness(
    trace: Trace,
    expected_window_start: str,
    expected_window_end: str,
    expected_chips: list[str],
    window_seconds: float = 60.0,
) -> Iterator[Violation]:
    """The prover declared its chip inventory and audit range ahead of time: every
    (chip, slot) of ``window_seconds`` between the expected start and end must hold the
    start of a record of that chip (any op_type, idle included), and no record may lie
    outside the declared range or on an undeclared chip. A slot without a record of
    its own is truncation or a dropped window, also when a neighbour's window is
    stretched over it. Windows may jitter within their slot: one record per slot, not
    exact alignment, is what counts."""
    start, end = parse_time(expected_window_start), parse_time(expected_window_end)
    if end <= start:
        raise InputError(
            f"window_completeness: expected_window_end {expected_window_end} is not after "
            f"expected_window_start {expected_window_start}"
        )
    expected_chips = list(dict.fromkeys(expected_chips))  # a chip listed twice is one chip
    slots = max(int(math.ceil((end - start) / window_seconds - 1e-9)), 0)
    yield from _outside(trace, start, end, expected_chips)
    inside = pl.col("_c").is_not_null() & (pl.col("ws") >= start) & (pl.col("ws") < end)
    marked = trace.frame.select(_chip_index(trace, expected_chips), "ws")
    starts = np.zeros((len(expected_chips), slots), dtype=bool)
    size = _common.SLICE_ROWS  # slices: the slot arithmetic stays small
    for lo in range(0, marked.height, size):
        part = marked.slice(lo, size).filter(inside)
        starts |= _starts(
            part["_c"].to_numpy(), part["ws"].to_numpy(), len(expected_chips), slots, start, window_seconds
        )
    for c in np.flatnonzero((~starts).any(axis=1)):
        chip, missing = expected_chips[c], np.flatnonzero(~starts[c])
        first = start + missing[0] * window_seconds
        rows = trace.frame.filter((pl.col("chip_id") == chip) & (pl.col("ws") < first))
        before = rows.sort(["ws", "row"])["record_id"].tail(1).to_list()
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


def _chip_index(trace: Trace, expected_chips: list[str]) -> pl.Expr:
    """``_c``: each record's chip's index in the inventory (null: undeclared)."""
    index = pl.col("v").replace_strict(expected_chips, range(len(expected_chips)), default=None)
    return by_value(trace, "chip_id", index, pl.Int64()).alias("_c")


def _outside(trace: Trace, start: float, end: float, expected_chips: list[str]) -> Iterator[Violation]:
    """Records the declaration does not cover: undeclared chips, or windows that begin
    before the declared start or end after the declared end (work outside the audit)."""
    undeclared = pl.col("_c").is_null()
    early, late = pl.col("ws") < start - 1e-6, pl.col("we") > end + 1e-6
    bad = (
        trace.frame.lazy()
        .select("record_id", "row", "chip_id", "ws", "we", _chip_index(trace, expected_chips))
        .filter(undeclared | early | late)
        .collect()
        .sort("row")
    )
    if bad.height == 0:
        return
    chips = sorted(set(bad.filter(undeclared)["chip_id"].cast(pl.Utf8).to_list()))
    yield violation(
        f"{bad.height} record(s) lie outside the declared window or chip inventory "
        f"({bad.filter(undeclared).height} on undeclared chips {chips[:5]}, "
        f"{bad.filter(~undeclared & early).height} before {format_time(start)}, "
        f"{bad.filter(~undeclared & ~early & late).height} after {format_time(end)})",
        bad["record_id"].to_list(),
        undeclared_chips=chips[:20],
        expected_window_start=format_time(start),
        expected_window_end=format_time(end),
    )


def _starts(
    chip: np.ndarray, starts: np.ndarray, chips: int, slots: int, origin: float, width: float
) -> np.ndarray:
    """(chips × slots) booleans: some record of that chip starts inside the slot."""
    slot = np.clip(np.floor((starts - origin) / width + 1e-9).astype(np.int64), 0, max(slots - 1, 0))
    marks = np.zeros((chips, slots), dtype=bool)
    if slots:
        marks[chip, slot] = True
    return marks


@rule("require_head", partition="driver", selects=lambda p: None)
def require_head(trace: Trace) -> Iterator[Violation]:
    """The log's end is pinned: a published chain head (``--head``, or the
    ``<trace>.head.json`` sidecar a writer leaves) must come with the trace, and
    hash_chain_intact then checks that the last record submitted hashes to it. Without
    a head the chain proves only that the submitted records were not edited: a prover
    can submit a prefix of its log, every record intact, and the records it left off
    (the tail, where a cap is crossed) are unprotected. Closes prefix submission; see
    also window_slots_to_end, which needs no head but a declared end."""
    if trace.head is None:
        last = trace.frame.select("record_id").tail(1)["record_id"].to_list()
        yield violation(
            f"no published head: the {len(trace)} records submitted may be a prefix of the log "
            "(the tail after the last record is unprotected)",
            last,
            records=len(trace),
        )


@rule("window_slots_to_end", partition="keyed:chip_id")
def window_slots_to_end(
    trace: Trace, audit_window_end: str, window_seconds: float = 60.0
) -> Iterator[Violation]:
    """The prover declared where its audit window ends: every chip in the trace has a
    record starting in every slot of ``window_seconds`` from its first record's slot up
    to ``audit_window_end`` (idle windows included: a chip that stops working still
    reports idle), and no record starts at or after that end. Slots are the multiples of
    ``window_seconds`` since the epoch (minute boundaries for 60 s); windows may jitter
    within their slot. A prefix of the log stops short of the end on every chip and a
    dropped window leaves a hole, however well the chain was re-written. Unlike
    window_completeness it needs no chip inventory or start: each chip's own first
    record opens its slots (a chip missing altogether is window_completeness's to find)."""
    end = parse_time(audit_window_end)
    frame = trace.frame.select("record_id", "row", "chip_id", "ws")
    late = frame.filter(pl.col("ws") >= end - 1e-6).sort(["ws", "row"])
    if late.height:
        yield violation(
            f"{late.height} record(s) start at or after the declared audit window end {format_time(end)}",
            late["record_id"].to_list(),
            audit_window_end=format_time(end),
        )
    slot = ((pl.col("ws") / window_seconds) + 1e-9).floor().cast(pl.Int64)
    last_slot = int(math.ceil(end / window_seconds - 1e-9)) - 1
    # slots rising per chip in file order (the usual log): first and distinct slots in
    # one compiled pass; else a group-by with a distinct count per chip
    per_chip = chip_slots(frame, window_seconds, end)
    if per_chip is None:
        per_chip = (
            frame.filter(pl.col("ws") < end - 1e-6)
            .with_columns(slot.alias("slot"))
            .group_by("chip_id")
            .agg(pl.col("slot").min().alias("first"), pl.col("slot").n_unique().alias("have"))
        )
    per_chip = (
        per_chip.with_columns((last_slot - pl.col("first") + 1).alias("want"))
        .filter(pl.col("have") < pl.col("want"))
        .sort("chip_id")
    )
    for chip, first, have, want in per_chip.select("chip_id", "first", "have", "want").iter_rows():
        slots = np.unique(
            np.floor(frame.filter(pl.col("chip_id") == chip)["ws"].to_numpy() / window_seconds + 1e-9).astype(
                np.int64
            )
        )
        expected = np.arange(first, last_slot + 1)
        gap = int(expected[~np.isin(expected, slots)][0])
        before = frame.filter((pl.col("chip_id") == chip) & (pl.col("ws") < gap * window_seconds))
        yield violation(
            f"chip {chip!r} has no record for {want - have} of {want} slots up to the declared end "
            f"{format_time(end)} (first missing slot starts {format_time(gap * window_seconds)})",
            before.sort(["ws", "row"])["record_id"].tail(1).to_list(),
            chip_id=chip,
            missing_slots=int(want - have),
            slots=int(want),
            first_missing=format_time(gap * window_seconds),
            audit_window_end=format_time(end),
        )


# ---------------------------------------------------------------- mergeable partials
# window_completeness: per chip (its index ``_c`` in the inventory), the covered slots
# as runs [lo, hi]; ``_c`` -1 carries the count of records outside the declaration.
# An honest chip's runs merge into one, so the state is O(chips + gaps), not a bitmap.


def _runs(covered: pl.DataFrame) -> pl.DataFrame:
    """(``_c``, ``lo``, ``hi``) runs coalesced: overlapping or adjacent runs join."""
    ordered = covered.sort(["_c", "lo"])
    reach = pl.col("hi").cum_max().shift(1).over("_c")
    fresh = (reach.is_null() | (pl.col("lo") > reach + 1)).cum_sum().over("_c").alias("_run")
    return (
        ordered.with_columns(fresh)
        .group_by("_c", "_run")
        .agg(pl.col("lo").min(), pl.col("hi").max())
        .drop("_run")
    )


def _slot_geometry(start: str, end: str, window_seconds: float) -> tuple[float, float, int]:
    lo, hi = parse_time(start), parse_time(end)
    return lo, hi, max(int(math.ceil((hi - lo) / window_seconds - 1e-9)), 0)


def _completeness_suspects(
    merged: pl.DataFrame,
    expected_window_start: str,
    expected_window_end: str,
    expected_chips: list[str],
    window_seconds: float = 60.0,
) -> Suspects:
    """Clear only when nothing lies outside and every chip covers every slot."""
    start, end, slots = _slot_geometry(expected_window_start, expected_window_end, window_seconds)
    if end <= start or int(merged.filter(pl.col("_c") == -1)["lo"].sum()):
        return ALL  # the rule itself raises, or names the records outside
    chips = len(dict.fromkeys(expected_chips))
    if slots == 0:
        return None
    runs = merged.filter(pl.col("_c") >= 0)
    whole = runs.filter((pl.col("lo") == 0) & (pl.col("hi") == slots - 1))
    return None if runs.height == chips and whole.height == chips else ALL


@mergeable(
    "window_completeness",
    merge=lambda frame, **_: pl.concat(
        [frame.filter(pl.col("_c") == -1), _runs(frame.filter(pl.col("_c") >= 0))]
    ),
    suspects=_completeness_suspects,
)
def window_completeness_partial(
    trace: Trace,
    expected_window_start: str,
    expected_window_end: str,
    expected_chips: list[str],
    window_seconds: float = 60.0,
) -> pl.DataFrame:
    """Covered slots per inventory chip as runs, and the count of records outside."""
    start, end, slots = _slot_geometry(expected_window_start, expected_window_end, window_seconds)
    schema: dict[str, pl.DataType] = {"_c": pl.Int64(), "lo": pl.Int64(), "hi": pl.Int64()}
    if end <= start:
        return pl.DataFrame({"_c": [-1], "lo": [1], "hi": [0]}, schema=schema)
    chips = list(dict.fromkeys(expected_chips))
    outside = sum(v.count or 0 for v in _outside(trace, start, end, chips))
    marked = trace.frame.select(_chip_index(trace, chips), "ws")
    inside = marked.filter(pl.col("_c").is_not_null() & (pl.col("ws") >= start) & (pl.col("ws") < end))
    # the rule's own slot arithmetic (``_starts``), in numpy, so both give the same slot
    ws = inside["ws"].to_numpy()
    slot = np.clip(np.floor((ws - start) / window_seconds + 1e-9).astype(np.int64), 0, max(slots - 1, 0))
    covered = pl.DataFrame({"_c": inside["_c"].cast(pl.Int64), "lo": slot, "hi": slot}).unique()
    count = pl.DataFrame({"_c": [-1], "lo": [outside], "hi": [0]}, schema=schema)
    return pl.concat([count, _runs(covered).select(pl.all().cast(pl.Int64))]) if slots else count
