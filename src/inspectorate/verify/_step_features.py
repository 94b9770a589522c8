"""Per-phase features from the prover's step records (``steps.jsonl``, ``steps_rank<k>.jsonl``).

A day of a real trainer is 10^5-10^6 step records a host; held whole (a dict per
record plus a frame row) they were the one part of ``verify`` that grew with the run.
The streaming pass reads every step file once, in time order and side by side: each
record goes to the phases whose labelled range holds its ``t`` (the same slice as
``RunDir.slice``), a phase is summarised as soon as every file has passed its end and
its records are dropped, and the chain is checked record by record. Memory follows the
largest phase, not the run.

The features are those of the whole-frame path on the same records, computed by the
same function (``summarise``) on a frame of the phase's records only. What depends on
columns other phases bring (a gradient group no record of this phase names still counts
as a zero-gradient group of it, as a null column of the whole frame did) is settled at
the end of the pass (``finalise``). ``INSPECTORATE_STEPS_LOADER=frame``, or a step file
whose times go back (never written so by the recorder), reads the files whole instead.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from inspectorate.errors import InputError, Unordered
from inspectorate.trace import RunDir
from inspectorate.trace.streams import ChainTail, flatten_record, iter_chain

GRAD_PREFIX = "grad_norms_per_group."
Window = tuple[float, float]  # a phase's labelled range; inf for a phase with no end event


@dataclass
class StepView:
    """The step records' view of a run: each phase's summary ({} without step records),
    chain breaks with the time of their record, torn tails ``(file, complete records,
    time of the last record)``, and the latest time any record carries."""

    phases: list[dict[str, Any]]
    breaks: list[dict[str, Any]] = field(default_factory=list)
    torn: list[tuple[str, int, float | None]] = field(default_factory=list)
    last_t: float | None = None
    present: bool = False  # at least one complete record in some file
    peak_rows: int | None = None  # most records held at once by the streaming pass


def step_view(run: RunDir, windows: list[Window]) -> StepView:
    """Features of every window from the run's step files: streamed, or read whole with
    ``INSPECTORATE_STEPS_LOADER=frame`` or when a file's times go back."""
    if not run.step_files:
        return StepView([{} for _ in windows])
    if os.environ.get("INSPECTORATE_STEPS_LOADER", "stream") != "frame":
        try:
            return stream_steps(run.step_files, windows)
        except Unordered:
            pass  # the recorder writes in time order; anything else is sliced on the frame
    return whole_steps(run, windows)


# ------------------------------------------------------------------------ the two paths


def whole_steps(run: RunDir, windows: list[Window]) -> StepView:
    """The same view from every step file loaded whole (``RunDir.steps``)."""
    frame, logs = run.steps, run.step_logs
    view = StepView([{} for _ in windows], present=frame is not None)
    if frame is not None:
        columns = set(frame.columns)
        view.phases = [finalise(summarise(_slice(frame, w)), columns) for w in windows]
        times = [float(t) for t in frame["t"].to_list() if _is_time(t)] if "t" in frame.columns else []
        view.last_t = max(times) if times else None
    for name, log in logs.items():
        for b in log.breaks:
            rec = log.records[b.index] if b.index < len(log.records) else None
            view.breaks.append(_break(name, b.index, b.record_id, rec))
        if log.torn:
            last = [r["t"] for r in log.records if _is_time(r.get("t"))]
            view.torn.append((Path(name).name, len(log.records), float(last[-1]) if last else None))
    return view


def stream_steps(files: dict[str, Path], windows: list[Window]) -> StepView:
    """One time-ordered pass over every step file at once (see the module docstring).
    ``Unordered`` when a record's time is before an earlier one of its file."""
    held = [0]  # records in open windows (one record in two windows counts twice)
    cursors = [_Cursor(name, path, windows, held) for name, path in files.items()]
    rows: list[dict[str, list[dict[str, Any]]] | None] = [{} for _ in windows]
    partial: list[dict[str, Any]] = [{} for _ in windows]
    peak = 0
    for i in sorted(range(len(windows)), key=lambda i: windows[i][1]):
        for cursor in cursors:
            cursor.pull(windows[i][1], rows)
        peak = max(peak, held[0])  # what is held only grows until a close
        mine = rows[i]
        assert mine is not None
        held[0] -= sum(len(v) for v in mine.values())
        rows[i] = None  # closed: a record that comes for it later is out of order
        frames = [_table(c, mine[c.name]) for c in cursors if mine.get(c.name)]
        partial[i] = summarise(pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame())
    for cursor in cursors:
        cursor.pull(math.inf, rows)
    columns = set().union(*(c.columns for c in cursors))
    view = StepView([], present=any(c.tail.records for c in cursors), peak_rows=peak)
    view.phases = [finalise(p, columns) if view.present else {} for p in partial]
    times = [c.last_max for c in cursors if c.last_max is not None]
    view.last_t = max(times) if times else None
    for c in cursors:
        view.breaks.extend(c.breaks)
        if c.tail.torn:
            view.torn.append((Path(c.name).name, c.tail.records, c.last_t))
    return view


class _Cursor:
    """One step file read forward on demand: records up to a time go to the open
    windows holding them; the file's columns, breaks and latest times are kept."""

    def __init__(self, name: str, path: Path, windows: list[Window], held: list[int]):
        self.name, self.windows, self.held = name, windows, held
        self.tail = ChainTail(path)
        self.records: Iterator[tuple[int, dict[str, Any]]] = iter_chain(self.tail)
        self.ahead: tuple[int, dict[str, Any]] | None = None  # read, not yet placed
        self.by_start = sorted(range(len(windows)), key=lambda i: windows[i][0])
        self.next = 0  # next window (by start) not yet reached
        self.active: list[int] = []  # windows reached and not yet passed, for this file
        self.prev_t = -math.inf
        self.columns: set[str] = set()
        self.breaks: list[dict[str, Any]] = []
        self.last_t: float | None = None  # the last record's time (torn tails stop there)
        self.last_max: float | None = None

    def pull(self, upto: float, rows: list[dict[str, list[dict[str, Any]]] | None]) -> None:
        """Place every record with a time up to ``upto`` (and those without a time)."""
        while True:
            item = self.ahead if self.ahead is not None else next(self.records, None)
            self.ahead = None
            if item is None:
                return
            index, record = item
            t = _time(record)
            if t is not None and t > upto:
                self.ahead = item
                return
            self._place(index, record, rows)

    def _place(
        self, index: int, record: dict[str, Any], rows: list[dict[str, list[dict[str, Any]]] | None]
    ) -> None:
        flat = flatten_record(record)
        self.columns.update(flat)
        if self.tail.breaks and self.tail.breaks[-1].index == index:
            self.breaks.append(_break(self.name, index, self.tail.breaks[-1].record_id, record))
        t = _time(record)
        if t is None:
            return  # no time: in no phase (the frame's slice leaves it out too)
        if t < self.prev_t:
            raise Unordered
        self.prev_t = t
        self.last_t = t
        self.last_max = t if self.last_max is None else max(self.last_max, t)
        while self.next < len(self.by_start) and self.windows[self.by_start[self.next]][0] <= t:
            self.active.append(self.by_start[self.next])
            self.next += 1
        self.active = [i for i in self.active if self.windows[i][1] >= t]
        for i in self.active:
            bucket = rows[i]
            if bucket is None:
                raise Unordered  # cannot happen with ordered times; never drop a record silently
            bucket.setdefault(self.name, []).append(flat)
            self.held[0] += 1


def _table(cursor: _Cursor, rows: list[dict[str, Any]]) -> pl.DataFrame:
    try:
        return pl.DataFrame(rows, infer_schema_length=None)
    except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        raise InputError(f"step records do not form a table ({exc})", cursor.tail.path) from None


def _is_time(t: Any) -> bool:
    return isinstance(t, (int, float))


def _time(record: dict[str, Any]) -> float | None:
    t = record.get("t")
    return float(t) if isinstance(t, (int, float)) else None


def _slice(frame: pl.DataFrame, window: Window) -> pl.DataFrame:
    """Rows whose ``t`` lies in ``window`` (by time only, as the streaming pass places them)."""
    if "t" not in frame.columns:
        return frame.clear()
    t = pl.col("t")
    return frame.filter(((t >= window[0]) & (t <= window[1])).fill_null(False))


def _break(name: str, index: int, record_id: str | None, record: Any) -> dict[str, Any]:
    t = record.get("t") if isinstance(record, dict) else None
    return {"file": Path(name).name, "index": index, "record_id": record_id, "t": t if _is_time(t) else None}


# ------------------------------------------------------------------------ the summary


def summarise(frame: pl.DataFrame) -> dict[str, Any]:
    """Step-record summary of one phase's records: kinds, time shares, lr, loss,
    per-group grads, tokens. Parts that depend on columns only other phases have are
    left in ``_open`` for ``finalise``."""
    if frame.height and "kind" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias("kind"))
    kinds = dict(frame.group_by("kind").len().iter_rows()) if frame.height else {}
    train = frame.filter(pl.col("kind") == "train_step") if frame.height else frame
    infer = frame.filter(pl.col("kind") == "infer_token") if frame.height else frame
    evals = frame.filter(pl.col("kind") == "eval_step") if frame.height else frame
    t_train = _sum(train, "step_time_s")
    t_infer = _sum(infer, "latency_ms") / 1000.0 + _sum(evals, "step_time_s")
    out: dict[str, Any] = {
        "kinds": {str(k): int(v) for k, v in kinds.items()},
        "ranks": int(frame["rank"].n_unique()) if frame.height and "rank" in frame.columns else 0,
        "train_steps": train.height,
        "infer_tokens": infer.height,
        "eval_steps": evals.height,
        "train_time_share": t_train / (t_train + t_infer) if t_train + t_infer > 0 else None,
        "train_tokens": _sum(train, "tokens"),
        "infer_token_count": _infer_tokens(infer),
        "eval_tokens": _sum(evals, "tokens"),
    }
    later: dict[str, Any] = {"rows": frame.height, "rank": "rank" in frame.columns}
    if train.height:
        out.update(_train_summary(train, later))
    fp = frame.filter(pl.col("kind") == "fingerprint") if frame.height else frame
    later["fingerprints"] = fp.height
    if fp.height and "num_params" in fp.columns:
        out["fingerprint_num_params"] = int(fp["num_params"].drop_nulls().max() or 0)  # type: ignore[arg-type]
    if fp.height and "model_hash_prefix" in fp.columns:
        later["hashes"] = fp.sort("t")["model_hash_prefix"].drop_nulls().to_list()
    out["_open"] = later
    return out


def finalise(summary: dict[str, Any], columns: set[str]) -> dict[str, Any]:
    """A phase's summary given every column of the run's step records (``columns``):
    a column absent from the phase's records is a null column of it."""
    out = dict(summary)
    later = out.pop("_open")
    if later["rows"] and not later["rank"] and "rank" in columns:
        out["ranks"] = 1  # one rank value: null
    if "grad_max" in later:
        groups = sorted(c.split(".", 1)[1] for c in columns if c.startswith(GRAD_PREFIX))
        out["zero_grad_groups"] = [g for g in groups if later["grad_max"].get(g, 0.0) == 0.0]
        out["grad_groups"] = len(groups)
    if later["fingerprints"] and "num_params" in columns:
        out.setdefault("fingerprint_num_params", 0)
        out["fingerprint_hashes"] = later.get("hashes", [])
    return out


def _infer_tokens(infer: pl.DataFrame) -> float | None:
    """Tokens the inference steps processed: their ``tokens`` field (batch + prefill);
    None (unknown, not guessed) for records from recorders that predate the field."""
    if infer.height == 0:
        return 0.0
    if "tokens" in infer.columns and infer["tokens"].null_count() < infer.height:
        return _sum(infer, "tokens")
    return None


def _train_summary(train: pl.DataFrame, later: dict[str, Any]) -> dict[str, Any]:
    groups = [c for c in train.columns if c.startswith(GRAD_PREFIX)]
    later["grad_max"] = {
        c.split(".", 1)[1]: float(train[c].fill_null(0.0).abs().max() or 0.0)  # type: ignore[arg-type]
        for c in groups
    }
    frozen: set[str] = set()
    if "frozen_groups" in train.columns:
        for text in train["frozen_groups"].drop_nulls().unique().to_list():
            frozen.update(json.loads(text) if isinstance(text, str) and text.startswith("[") else [])
    lr = (
        train["lr"].drop_nulls().cast(pl.Float64)
        if "lr" in train.columns
        else pl.Series([], dtype=pl.Float64)
    )
    loss = train.sort("t")["loss"].drop_nulls().cast(pl.Float64) if "loss" in train.columns else None
    return {
        "lr_steps": lr.len(),
        "lr_median": float(lr.median()) if lr.len() else None,  # type: ignore[arg-type]
        "lr_max": float(lr.max()) if lr.len() else None,  # type: ignore[arg-type]
        "lr_rel_range": float((lr.max() - lr.min()) / lr.max()) if lr.len() and lr.max() else None,  # type: ignore[operator,arg-type]
        "loss_first": float(loss[0]) if loss is not None and loss.len() else None,
        "loss_median": float(loss.median()) if loss is not None and loss.len() else None,  # type: ignore[arg-type]
        "zero_grad_groups": [],  # settled by ``finalise``
        "frozen_groups": sorted(frozen),
        "grad_groups": 0,
        "step_time_s": float(train["step_time_s"].median()) if "step_time_s" in train.columns else None,  # type: ignore[arg-type]
    }


def _sum(frame: pl.DataFrame, col: str) -> float:
    if frame.height == 0 or col not in frame.columns:
        return 0.0
    return float(frame[col].cast(pl.Float64, strict=False).fill_null(0.0).sum())
