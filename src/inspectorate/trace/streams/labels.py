"""``workload_labels.jsonl``: phase start/end events with the claimed (and, for scoring only, true) label."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from inspectorate.errors import InputError
from inspectorate.trace.streams._text import _objects, parse_wallclock

LABEL_SCHEMA = {"event": pl.Utf8, "phase": pl.Utf8, "claimed": pl.Utf8, "truth": pl.Utf8, "t": pl.Float64}


_LABEL_KEYS = {
    "event": ("event", "type", "kind"),
    "claimed": ("claimed", "claimed_label", "label"),
    "truth": ("truth", "true_label", "truth_label"),
}
_EVENTS = {
    "start": "start",
    "phase_start": "start",
    "begin": "start",
    "end": "end",
    "phase_end": "end",
    "stop": "end",
}


def _first(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((obj[k] for k in keys if k in obj), None)


def read_labels(path: Path | str) -> pl.DataFrame:
    """``workload_labels.jsonl``: event (start|end), phase, claimed, truth, t.

    ``t`` may be epoch seconds or an ISO time; ``type``/``kind`` are read as ``event``
    and ``claimed_label``/``true_label`` as ``claimed``/``truth``.
    """
    path = Path(path)
    rows = []
    for number, obj in _objects(path):
        event = _EVENTS.get(str(_first(obj, _LABEL_KEYS["event"])).lower())
        if event is None or "phase" not in obj:
            raise InputError("a label needs 'event' (start|end) and 'phase'", path, number)
        raw_t = _first(obj, ("t", "time", "timestamp"))
        t = float(raw_t) if isinstance(raw_t, (int, float)) else parse_wallclock(str(raw_t or ""))
        if t is None:
            raise InputError(f"label has no usable time: {raw_t!r}", path, number)
        rows.append(
            {
                "event": event,
                "phase": str(obj["phase"]),
                "claimed": _first(obj, _LABEL_KEYS["claimed"]),
                "truth": _first(obj, _LABEL_KEYS["truth"]),
                "t": t,
            }
        )
    return (
        pl.DataFrame(rows, schema=LABEL_SCHEMA, orient="row") if rows else pl.DataFrame(schema=LABEL_SCHEMA)
    )
