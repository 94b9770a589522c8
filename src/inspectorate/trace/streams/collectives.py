"""``collectives.jsonl``: one record per all-reduce, written by the DDP comm hook."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from inspectorate.errors import InputError
from inspectorate.trace.streams._text import _objects

COLLECTIVE_SCHEMA = {
    "t": pl.Float64,
    "rank": pl.Int64,
    "world_size": pl.Int64,
    "op": pl.Utf8,
    "bytes": pl.Int64,
    "duration_s": pl.Float64,
    "dtype": pl.Utf8,
    "phase": pl.Utf8,
}


def read_collectives(path: Path | str) -> pl.DataFrame:
    """``collectives.jsonl`` (CollectiveLog): one row per all-reduce."""
    path = Path(path)
    rows = []
    for number, obj in _objects(path):
        missing = [k for k in ("t", "rank", "op", "bytes") if k not in obj]
        if missing:
            raise InputError(f"collective record lacks {', '.join(missing)}", path, number)
        rows.append({k: obj.get(k) for k in COLLECTIVE_SCHEMA})
    return (
        pl.DataFrame(rows, schema=COLLECTIVE_SCHEMA, orient="row")
        if rows
        else pl.DataFrame(schema=COLLECTIVE_SCHEMA)
    )
