"""Per-phase features from the prover's window records (``windows.jsonl``), streamed.

A day of one host is ~12k window records at the generator's cadence and a real
trainer writes one per chip per window: held whole (every record as a dict, plus the
typed frame) they were the part of ``verify`` that still grew with the run after the
sensor and step records were streamed. The streaming pass reads the file once, line by
line, with the reader's own checks (one-line errors naming the line: ``iter_jsonl``,
``validate_record``), checks the hash chain as it goes, and adds each record to the
phases whose range holds its midpoint. A phase keeps running sums and counts, plus each
record's id and its two numbers (``flops`` and tokens, summed at the end as the frame
sums them, so the figures are the frame's to the bit): ~100 bytes a record against a
dict and a frame row. Nothing depends on the records' order, so no fallback is needed.

``INSPECTORATE_WINDOWS_LOADER=frame`` reads the records whole (``RunDir.windows``) and
slices the frame, the path this one must agree with (tests/verify/test_window_stream.py).
"""

from __future__ import annotations

import bisect
import os
from array import array
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from inspectorate.errors import InputError
from inspectorate.trace import RunDir
from inspectorate.trace._canonical import GENESIS, PREV_FIELD, record_hash
from inspectorate.trace._io import iter_jsonl, read_head_sidecar
from inspectorate.trace._schema import RecordError, parse_time, validate_record

Window = tuple[float, float]  # a phase's range [t0, t1] (its end, or the last sample seen)


@dataclass
class WindowView:
    """The window records' view of a run: each phase's features ({} without records),
    and every chain break with the start time of its record (``ws``)."""

    phases: list[dict[str, Any]]
    breaks: list[dict[str, Any]] = field(default_factory=list)  # index, record_id, ws
    present: bool = False
    records: int = 0


def window_view(run: RunDir, windows: list[Window]) -> WindowView:
    """Features of every phase range from the run's window records: streamed, or read
    whole with ``INSPECTORATE_WINDOWS_LOADER=frame``."""
    if run.window_file is None:
        return WindowView([{} for _ in windows])
    if os.environ.get("INSPECTORATE_WINDOWS_LOADER", "stream") == "frame":
        return whole_windows(run, windows)
    return stream_windows(run.window_file, windows)


# ------------------------------------------------------------------------ the frame path


def whole_windows(run: RunDir, windows: list[Window]) -> WindowView:
    """The same view from ``RunDir.windows`` (every record in memory)."""
    trace = run.windows
    if trace is None:
        return WindowView([{} for _ in windows])
    frame = trace.frame
    view = WindowView([_frame_features(frame, w) for w in windows], present=True, records=frame.height)
    ws = frame["ws"] if "ws" in frame.columns else None
    for b in trace.chain_breaks():
        if ws is not None and b.index < len(ws):  # the head's break lies past the last record
            view.breaks.append({"index": b.index, "record_id": b.record_id, "ws": float(ws[b.index])})
    return view


def _frame_features(frame: pl.DataFrame, window: Window) -> dict[str, Any]:
    """Window records whose midpoint lies in the range: claimed flops, tokens, op types, chips."""
    if "ws" not in frame.columns or frame.height == 0:
        return {}
    mid = (pl.col("ws") + pl.col("we")) / 2
    inside = frame.filter((mid >= window[0]) & (mid <= window[1]))
    if inside.height == 0:
        return {"records": 0}
    return {
        "records": inside.height,
        "record_ids": inside["record_id"].to_list(),
        "flops": float(inside["flops"].fill_null(0.0).sum()),
        "tokens": float(inside["tokens_processed"].fill_null(0).sum()),
        "op_types": sorted({str(v) for v in inside["op_type"].cast(pl.Utf8).to_list() if v is not None}),
        "chips": sorted({str(v) for v in inside["chip_id"].cast(pl.Utf8).to_list() if v is not None}),
        "span_s": float(inside["we"].max() - inside["ws"].min()),  # type: ignore[operator,arg-type]
        "batch_size": _frame_mode(inside, "batch_size"),
        "sequence_length": _frame_mode(inside, "sequence_length"),
    }


def _frame_mode(frame: pl.DataFrame, col: str) -> int | None:
    if col not in frame.columns or frame[col].drop_nulls().len() == 0:
        return None
    return int(frame[col].drop_nulls().mode().sort()[-1])


# ------------------------------------------------------------------------ the streaming path


@dataclass
class _Acc:
    """Running state of one phase's window records."""

    ids: list[str] = field(default_factory=list)
    flops: array = field(default_factory=lambda: array("d"))
    tokens: int = 0
    op_types: set[str] = field(default_factory=set)
    chips: set[str] = field(default_factory=set)
    ws_min: float = float("inf")
    we_max: float = float("-inf")
    modes: dict[str, Counter[int]] = field(
        default_factory=lambda: {"batch_size": Counter(), "sequence_length": Counter()}
    )

    def add(self, record: dict[str, Any], ws: float, we: float) -> None:
        self.ids.append(str(record["record_id"]))
        flops = record.get("flops")
        self.flops.append(0.0 if flops is None else float(flops))
        self.tokens += int(record.get("tokens_processed") or 0)
        for name, into in (("op_type", self.op_types), ("chip_id", self.chips)):
            if record.get(name) is not None:
                into.add(str(record[name]))
        self.ws_min, self.we_max = min(self.ws_min, ws), max(self.we_max, we)
        for col, counts in self.modes.items():
            if isinstance(record.get(col), int):
                counts[record[col]] += 1

    def features(self) -> dict[str, Any]:
        """What ``_frame_features`` gives for the same records."""
        if not self.ids:
            return {"records": 0}
        return {
            "records": len(self.ids),
            "record_ids": self.ids,
            # summed as the frame sums its column: the same figure to the last bit
            "flops": float(pl.Series(self.flops, dtype=pl.Float64).sum()),
            "tokens": float(self.tokens),
            "op_types": sorted(self.op_types),
            "chips": sorted(self.chips),
            "span_s": float(self.we_max - self.ws_min),
            "batch_size": _mode(self.modes["batch_size"]),
            "sequence_length": _mode(self.modes["sequence_length"]),
        }


def _mode(counts: Counter[int]) -> int | None:
    """The most frequent value, the largest of a tie (as ``mode().sort()[-1]``)."""
    if not counts:
        return None
    top = max(counts.values())
    return max(v for v, n in counts.items() if n == top)


class _Phases:
    """Which ranges hold a time: by start, with the running latest end to stop early."""

    def __init__(self, windows: list[Window]):
        self.order = sorted(range(len(windows)), key=lambda i: windows[i][0])
        self.starts = [windows[i][0] for i in self.order]
        self.windows = windows
        self.reach: list[float] = []  # latest end among the ranges up to each one (by start)
        for i in self.order:
            self.reach.append(max(self.reach[-1], windows[i][1]) if self.reach else windows[i][1])

    def holding(self, t: float) -> list[int]:
        out = []
        k = bisect.bisect_right(self.starts, t) - 1
        while k >= 0 and self.reach[k] >= t:
            i = self.order[k]
            if self.windows[i][1] >= t:
                out.append(i)
            k -= 1
        return out


def stream_windows(path: Path, windows: list[Window]) -> WindowView:
    """One pass over ``windows.jsonl`` (see the module docstring). Bad lines and
    records raise the reader's one-line InputError; the head sidecar is read so a bad
    one fails here as it does on load (its break lies past the last record: no phase's)."""
    read_head_sidecar(path)
    accs = [_Acc() for _ in windows]
    where = _Phases(windows)
    view = WindowView([])
    prev_hash, index = GENESIS, -1
    for index, (number, record) in enumerate(iter_jsonl(path)):
        try:
            validate_record(record)
            ws, we = parse_time(record["window_start"]), parse_time(record["window_end"])
        except RecordError as exc:
            raise InputError(str(exc), path, number) from None
        if record.get(PREV_FIELD) != prev_hash:
            view.breaks.append({"index": index, "record_id": record.get("record_id"), "ws": ws})
        prev_hash = record_hash(record)
        for i in where.holding((ws + we) / 2):
            accs[i].add(record, ws, we)
    if index < 0:
        raise InputError("empty trace (no records)", path)
    view.phases = [a.features() for a in accs]
    view.present, view.records = True, index + 1
    return view
