"""Glue between Polars frames and the compiled canonicaliser (``_ccanon``).

``spell`` writes every row of a frame as JSON text in a given key order and separators,
exactly as ``json.dumps`` would; ``match`` says which rows of a frame equal their raw
JSONL line byte for byte. Both run in C when the extension is built and fall back to
``json`` per row otherwise (``INSPECTORATE_PURE_PYTHON=1`` forces the fallback).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import mmap
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa

from inspectorate.trace._schema import INT_FIELDS, LIST_FIELDS, NUMBER_FIELDS, STRING_FIELDS

try:
    if os.environ.get("INSPECTORATE_PURE_PYTHON"):
        raise ImportError("pure Python requested")
    _ext: Any = importlib.import_module("inspectorate.trace._ccanon")
except ImportError:  # no compiler at install time: the json path below is exact, only slower
    _ext = None

# Floats whose repr exercises every layout (fixed, exponent, signs, subnormals, ties).
_HARD_FLOATS = (
    0.0,
    -0.0,
    1.0,
    0.1,
    1 / 3,
    1e16,
    1e15,
    9007199254740993.0,
    1e-4,
    1e-5,
    1.5e-5,
    1e-7,
    5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    3.2567729011266216e16,
    1e22,
    123456789012345678.0,
    0.000123,
    12345.678,
    2.5,
    -1e-300,
)


def _setup() -> None:
    """Hash with the OpenSSL hashlib already loaded when it answers like hashlib, and
    take Polars' float text only if it carries repr's digits (checked on hard values)."""
    global _FLOAT_TEXT
    if _ext is None:
        return
    import _hashlib

    path = getattr(_hashlib, "__file__", None)
    if _ext.use_libcrypto(path):
        probe = [b"", b"abc", bytes(range(256)) * 3]
        if _ext.digests(
            b"".join(probe), np.cumsum([0] + [len(p) for p in probe]).astype(np.int64), 3, hashlib.sha256
        ) != b"".join(hashlib.sha256(p).digest() for p in probe):
            _ext.use_libcrypto(None)
    _FLOAT_TEXT = True
    frame = pl.DataFrame({"flops": list(_HARD_FLOATS)}, schema={"flops": pl.Float64})
    data, offsets, _ = spell(frame, ["flops"])
    want = [json.dumps({"flops": v}, separators=CANONICAL_SEPS).encode() for v in _HARD_FLOATS]
    _FLOAT_TEXT = [data[offsets[i] : offsets[i + 1]] for i in range(len(want))] == want


_FLOAT_TEXT = False
_SPLIT_MIN = 20_000  # rows per thread below which a second thread costs more than it saves
CANONICAL_SEPS = (",", ":")
DUMPS_SEPS = (", ", ": ")  # json.dumps' defaults, the reference's JSONL writer


def compiled() -> bool:
    """True when the C canonicaliser is in use."""
    return _ext is not None


def _kind(name: str) -> int:
    if name in STRING_FIELDS:
        return 0
    if name in INT_FIELDS:
        return 1
    if name in NUMBER_FIELDS:
        return 2
    if name in LIST_FIELDS:
        return 3
    raise ValueError(f"no column kind for {name!r}")


def _arrow(series: pl.Series) -> pa.Array:
    array = series.rechunk().to_arrow(compat_level=pl.CompatLevel.oldest())
    return array.combine_chunks() if isinstance(array, pa.ChunkedArray) else array


def _column(series: pl.Series) -> tuple:
    """The column tuple ``_ccanon`` reads (see its header for the layout)."""
    kind, key = _kind(series.name), json.dumps(series.name).encode()
    if series.dtype == pl.Categorical:
        array = _arrow(series)
        values = array.dictionary
        if array.indices.type == pa.uint32() and values.type == pa.large_string() and values.offset == 0:
            vbufs = values.buffers()
            return (
                4,
                key,
                array.buffers()[0],
                array.offset,
                array.buffers()[1],
                vbufs[0],
                vbufs[1],
                vbufs[2],
                0,
            )
        series = series.cast(pl.Utf8)
    array = _arrow(series)
    bufs: list[Any] = list(array.buffers())
    if kind == 3:
        child = array.values
        cbufs = child.buffers()
        return (kind, key, bufs[0], array.offset, bufs[1], cbufs[0], cbufs[1], cbufs[2], child.offset)
    if (
        kind == 2 and _FLOAT_TEXT
    ):  # Polars spells floats with Ryu (shortest digits, in parallel); C re-lays them out
        text = _arrow(series.cast(pl.Utf8))
        tbufs = text.buffers()
        return (kind, key, bufs[0], array.offset, bufs[1], tbufs[0], tbufs[1], tbufs[2], text.offset)
    return (kind, key, bufs[0], array.offset, bufs[1], bufs[2] if kind == 0 else None, None, None, 0)


def _columns(frame: pl.DataFrame, order: Sequence[str]) -> list[tuple]:
    return [_column(frame[name]) for name in order]


def _dumps_rows(frame: pl.DataFrame, order: Sequence[str], seps: tuple[str, str]) -> list[bytes | None]:
    """The fallback: json per row (None where a value is null or not finite)."""
    out: list[bytes | None] = []
    for row in frame.select(
        [pl.col(n).cast(pl.Utf8) if frame[n].dtype == pl.Categorical else n for n in order]
    ).iter_rows():
        record = dict(zip(order, row))
        if any(v is None for v in row) or any(
            item is None for n in LIST_FIELDS if n in record for item in record[n]
        ):
            out.append(None)
            continue
        flops = [record[n] for n in NUMBER_FIELDS if n in record]
        if any(not np.isfinite(v) for v in flops):
            out.append(None)
            continue
        out.append(json.dumps(record, separators=seps).encode())
    return out


def spell(
    frame: pl.DataFrame, order: Sequence[str], seps: tuple[str, str] = CANONICAL_SEPS
) -> tuple[bytes, np.ndarray, np.ndarray]:
    """(data, int64 offsets, bad mask): row i is ``data[offsets[i]:offsets[i+1]]``; rows
    flagged bad (a null or non-finite value) are empty and must be spelled by the caller."""
    if _ext is not None:
        data, offsets, bad = _ext.spell(_columns(frame, order), frame.height, *seps)
        return data, np.frombuffer(offsets, dtype=np.int64), np.frombuffer(bad, dtype=np.bool_)
    lines = _dumps_rows(frame, order, seps)
    sizes = np.array([len(line or b"") for line in lines], dtype=np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    bad = np.array([line is None for line in lines], dtype=np.bool_)
    return b"".join(line or b"" for line in lines), offsets, bad


def canonical_digests(frame: pl.DataFrame, order: Sequence[str]) -> tuple[bytes, np.ndarray]:
    """(32-byte SHA-256 digests of each row's canonical spelling, bad mask); rows flagged
    bad get zero digests and must be hashed by the caller. Needs the extension."""
    assert _ext is not None
    cols = _columns(frame, order)
    if frame.height < 2 * _SPLIT_MIN or (os.cpu_count() or 1) < 2:
        out, bad = _ext.spell_digests(cols, 0, frame.height, hashlib.sha256)
        return out, np.frombuffer(bad, dtype=np.bool_)
    # the C loop runs without the GIL (when OpenSSL is in hand): two threads, two halves
    half = frame.height // 2
    with ThreadPoolExecutor(max_workers=2) as pool:
        parts = list(
            pool.map(
                lambda r: _ext.spell_digests(cols, r[0], r[1], hashlib.sha256),
                [(0, half), (half, frame.height)],
            )
        )
    return b"".join(p[0] for p in parts), np.frombuffer(b"".join(p[1] for p in parts), dtype=np.bool_)


def match(
    frame: pl.DataFrame,
    order: Sequence[str],
    seps: tuple[str, str],
    raw: bytes | mmap.mmap,
    starts: np.ndarray,
    ends: np.ndarray,
) -> np.ndarray:
    """Bool mask: row i, spelled in ``order`` with ``seps``, equals ``raw[starts[i]:ends[i]]``."""
    starts = np.ascontiguousarray(starts, dtype=np.int64)
    ends = np.ascontiguousarray(ends, dtype=np.int64)
    if _ext is not None:
        mask = _ext.match(_columns(frame, order), frame.height, *seps, starts, ends, raw)
        return np.frombuffer(mask, dtype=np.bool_)
    lines = _dumps_rows(frame, order, seps)
    return np.array(
        [line is not None and line == raw[starts[i] : ends[i]] for i, line in enumerate(lines)],
        dtype=np.bool_,
    )


def digests(data: bytes, offsets: np.ndarray) -> bytes:
    """SHA-256 digest of every slice, concatenated (32 bytes each)."""
    offsets = np.ascontiguousarray(offsets, dtype=np.int64)
    rows = len(offsets) - 1
    if _ext is not None:
        return _ext.digests(data, offsets, rows, hashlib.sha256)
    view, bounds, sha = memoryview(data), offsets.tolist(), hashlib.sha256
    return b"".join(sha(view[bounds[i] : bounds[i + 1]]).digest() for i in range(rows))


def mismatches(digest_bytes: bytes, prev: pl.Series, first: str) -> list[int]:
    """Rows whose ``prev`` hex differs from the previous row's digest (``first`` for row 0)."""
    rows = prev.len()
    if _ext is not None and prev.null_count() == 0:
        array = _arrow(prev.cast(pl.Utf8) if prev.dtype == pl.Categorical else prev)
        _, offsets, data = array.buffers()
        offs = np.frombuffer(offsets, dtype=np.int64)[array.offset : array.offset + rows + 1]
        return _ext.mismatches(digest_bytes, np.ascontiguousarray(offs), data, rows, first)
    expected = [first] + [digest_bytes[32 * i : 32 * i + 32].hex() for i in range(rows - 1)]
    return [i for i, (e, f) in enumerate(zip(expected, prev.to_list())) if e != f]


_setup()
