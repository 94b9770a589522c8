"""Chain verification over a frame without rebuilding Python dicts.

The canonical JSON of a record is assembled column-wise by Polars (sorted keys, no
whitespace), then hashed row by row with hashlib. Rows the vectorised spelling cannot
reproduce exactly (extra fields, strings needing JSON escapes, floats below 1e-4 where
Polars and Python spell exponents differently) fall back to ``json`` per row. Property
tests pin this module to ``canonical_json``.
"""

from __future__ import annotations

import hashlib
from typing import Any

import polars as pl

from inspectorate.trace._canonical import GENESIS, ChainBreak, canonical_json
from inspectorate.trace._frame import records_from_frame
from inspectorate.trace._schema import FIELDS, INT_FIELDS, LIST_FIELDS, STRING_FIELDS

_SORTED = sorted(FIELDS)
_NEEDS_ESCAPE = r'[\x00-\x1f"\\]|[^\x00-\x7f]'


def _value(name: str) -> pl.Expr:
    col = pl.col(name)
    if name in STRING_FIELDS:
        return pl.concat_str([pl.lit('"'), col.cast(pl.Utf8), pl.lit('"')])
    if name in INT_FIELDS or name == "flops":
        return col.cast(pl.Utf8)
    joined = pl.concat_str([pl.lit('["'), col.list.join('","'), pl.lit('"]')])
    return pl.when(col.list.len() == 0).then(pl.lit("[]")).otherwise(joined)


def _canonical_expr() -> pl.Expr:
    pieces: list[pl.Expr] = []
    for index, name in enumerate(_SORTED):
        pieces.append(pl.lit(("{" if index == 0 else ",") + f'"{name}":'))
        pieces.append(_value(name))
    pieces.append(pl.lit("}"))
    return pl.concat_str(pieces)


def _exact_mask() -> pl.Expr:
    """Rows whose vectorised spelling equals Python's json spelling."""
    ok = pl.col("_extra").is_null()
    ok = ok & ((pl.col("flops") == 0) | (pl.col("flops").abs() >= 1e-4))
    for name in STRING_FIELDS:
        ok = ok & ~pl.col(name).cast(pl.Utf8).str.contains(_NEEDS_ESCAPE)
    for name in LIST_FIELDS:
        ok = ok & ~pl.col(name).list.join("").str.contains(_NEEDS_ESCAPE).fill_null(False)
    return ok


def canonical_lines(frame: pl.DataFrame) -> list[str]:
    """Canonical JSON text of every row, in order."""
    built = frame.select(_canonical_expr().alias("line"), _exact_mask().alias("exact"))
    lines: list[Any] = built["line"].to_list()
    slow = built["exact"].not_().arg_true().to_list()
    if slow:
        rebuilt = records_from_frame(frame[slow])
        for index, record in zip(slow, rebuilt):
            lines[index] = canonical_json(record)
    return lines


def frame_hashes(frame: pl.DataFrame, chunk: int = 200_000) -> list[str]:
    """Hex hash of every row; canonical text is built a chunk at a time (bounded memory)."""
    sha = hashlib.sha256
    out: list[str] = []
    for lo in range(0, frame.height, chunk):
        out.extend(sha(line.encode()).hexdigest() for line in canonical_lines(frame.slice(lo, chunk)))
    return out


def frame_chain_breaks(frame: pl.DataFrame, head: str | None = None) -> list[ChainBreak]:
    """Same result as ``iter_chain_breaks`` over the rebuilt records."""
    if frame.height == 0:
        return []
    hashes = frame_hashes(frame)
    expected = pl.Series([GENESIS] + hashes[:-1])
    found = frame["prev_record_hash"]
    ids = frame["record_id"]
    breaks = []
    for index in (expected != found).arg_true().to_list():
        suspect = max(index - 1, 0)
        breaks.append(ChainBreak(index, ids[index], suspect, ids[suspect] if index else None,
                                 expected[index], found[index]))
    if head is not None and head != hashes[-1]:
        last = frame.height - 1
        breaks.append(ChainBreak(frame.height, None, last, ids[last], head, hashes[-1]))
    return breaks
