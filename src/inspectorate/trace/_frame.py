"""Columnar view of window records and the exact record <-> column round trip.

Rules work on a Polars frame: one row per record, the schema fields as typed columns,
``ws``/``we`` (window start/end as epoch seconds, derived, never trusted from storage)
and ``row`` (position in file order). ``_extra`` holds the canonical JSON of whatever
the typed columns cannot carry exactly: fields outside the schema, and schema fields
whose JSON spelling differs from the column type (an integer ``flops``). Rebuilding a
record from its row and ``_extra`` gives back a dict whose canonical JSON is identical
to the original, so the chain survives any JSONL <-> Parquet conversion.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import polars as pl

from inspectorate.trace._canonical import canonical_json
from inspectorate.trace._schema import (
    FIELD_SET,
    FIELDS,
    INT_FIELDS,
    LIST_FIELDS,
    STRING_FIELDS,
    RecordError,
    parse_time,
)

CATEGORICAL = (
    "chip_id",
    "job_id",
    "operator",
    "cluster_region",
    "op_type",
    "model_hash_prefix",
    "dataset_fingerprint",
    "code_commit",
    "config_hash",
)

FRAME_SCHEMA: dict[str, pl.DataType | type[pl.DataType]] = {
    **{name: pl.Utf8 for name in STRING_FIELDS},
    **{name: pl.Int64 for name in INT_FIELDS},
    "flops": pl.Float64,
    **{name: pl.List(pl.Utf8) for name in LIST_FIELDS},
    "_extra": pl.Utf8,
}


def extra_of(record: Mapping[str, Any]) -> str | None:
    """Canonical JSON of what the typed columns cannot hold exactly, or None."""
    extra = {k: v for k, v in record.items() if k not in FIELD_SET}
    if not isinstance(record.get("flops"), float):
        extra["flops"] = record.get("flops")
    return canonical_json(extra) if extra else None


def typed_frame(records: list[dict[str, Any]]) -> pl.DataFrame:
    """The stored columns (schema fields + ``_extra``) of validated records, no derived ones."""
    columns: dict[str, list[Any]] = {name: [r[name] for r in records] for name in FIELDS}
    columns["flops"] = [float(v) for v in columns["flops"]]
    columns["_extra"] = [extra_of(r) for r in records]
    return pl.DataFrame(columns, schema=FRAME_SCHEMA)


def frame_from_records(
    records: list[dict[str, Any]], times: Iterable[tuple[float, float]] | None = None
) -> pl.DataFrame:
    """Build the typed frame from validated records (``times`` = parsed (start, end))."""
    frame = typed_frame(records)
    if times is None:
        return with_derived(frame)
    starts, ends = zip(*times) if records else ((), ())
    return with_derived(frame, pl.Series(starts, dtype=pl.Float64), pl.Series(ends, dtype=pl.Float64))


def with_derived(
    frame: pl.DataFrame, starts: pl.Series | None = None, ends: pl.Series | None = None
) -> pl.DataFrame:
    """Add ``ws``/``we`` epoch seconds (parsed from the timestamp strings unless given)
    and ``row``; low-cardinality identity columns become Categorical (3x faster
    group-bys, less memory)."""
    starts = epoch_seconds(frame["window_start"]) if starts is None else starts
    ends = epoch_seconds(frame["window_end"]) if ends is None else ends
    return frame.with_columns(
        pl.lit(starts).alias("ws"),
        pl.lit(ends).alias("we"),
        *[pl.col(name).cast(pl.Categorical) for name in CATEGORICAL],
    ).with_row_index("row")


# The seed's spelling with every field in range. Polars parses it with a fixed format
# (3x faster than format inference) to the instant datetime.fromisoformat gives; every
# other spelling goes through parse_time itself, so all readers agree with the line reader.
SEED_TIME = r"^\d{4}-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])T([01]\d|2[0-3]):[0-5]\d:[0-5]\dZ$"


def fast_epoch(col: pl.Expr) -> pl.Expr:
    """Epoch seconds of values in the seed's spelling; null for any other value."""
    parsed = col.str.to_datetime(format="%Y-%m-%dT%H:%M:%SZ", time_unit="us", time_zone="UTC", strict=False)
    return pl.when(col.str.contains(SEED_TIME)).then(parsed.dt.epoch("us").cast(pl.Float64) / 1e6)


def epoch_seconds(values: pl.Series) -> pl.Series:
    """``parse_time`` of every value (null where it rejects one), fast for the seed's spelling."""
    out = values.to_frame("v").select(fast_epoch(pl.col("v")).alias("t"))["t"]
    slow = out.is_null() & values.is_not_null()
    if not slow.any():
        return out
    distinct = values.filter(slow).unique()
    table = pl.DataFrame(
        {"v": distinct, "p": pl.Series([_parse_or_none(v) for v in distinct], dtype=pl.Float64)}
    )
    looked_up = values.to_frame("v").join(table, on="v", how="left", maintain_order="left")["p"]
    return out.fill_null(looked_up)


def _parse_or_none(value: str) -> float | None:
    try:
        return parse_time(value)
    except RecordError:
        return None


def records_from_frame(frame: pl.DataFrame) -> list[dict[str, Any]]:
    """Rebuild the original dicts (schema fields + ``_extra``) from a frame."""
    out = []
    names = list(FIELDS)
    for row in frame.select(names + ["_extra"]).iter_rows():
        record = dict(zip(names, row[:-1]))
        if row[-1] is not None:
            record.update(_extra_fields(row[-1], record))
        out.append(record)
    return out


def _extra_fields(text: str, record: dict[str, Any]) -> dict[str, Any]:
    """``_extra`` parsed and vetted. It may add fields and give flops its JSON integer
    spelling, nothing else: a file whose ``_extra`` re-stated a schema field (or another
    flops) would have the chain hash one record while the rules read another."""
    from inspectorate.errors import InputError

    where = f"record {record['record_id']!r}: _extra"
    try:
        extra = json.loads(text, parse_constant=_no_constant)
    except ValueError:
        raise InputError(f"{where} is not JSON") from None
    if not isinstance(extra, dict):
        raise InputError(f"{where} is not a JSON object")
    shadowed = sorted(k for k in extra if k in FIELD_SET and k != "flops")
    if shadowed:
        raise InputError(f"{where} repeats schema field(s) {shadowed}")
    if "flops" in extra:
        value = extra["flops"]
        if isinstance(value, bool) or not isinstance(value, int) or float(value) != record["flops"]:
            raise InputError(f"{where} gives flops {value!r}, the flops column {record['flops']!r}")
    return extra


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")
