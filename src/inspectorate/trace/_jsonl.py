"""Column-wise JSONL reading: Polars parses the schema fields of every line at once, and
each row is then proven equal to its line.

The proof: the row's typed values, spelled as ``json.dumps`` spells them (in the line's
key order with the default separators, as the reference writes, or sorted and compact,
as our writers do), equal the raw line byte for byte. A row that passes carries exactly
what ``json.loads`` would have read (no extra field, no duplicate key, no coerced type,
the int/float spelling of ``flops`` intact), so its canonical bytes follow from the
columns. Every other line (extra fields, escapes json would spell differently, other
layouts) is read with ``json`` as before. Whenever anything is wrong with the input this
path gives up (returns None) and the line-by-line reader runs instead, so errors and
their line numbers are the ones that reader gives.
"""

from __future__ import annotations

import gzip
import importlib
import io
import json
import mmap
import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from hashlib import sha256
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import polars as pl
import pyarrow as pa

from inspectorate.trace import _ccols
from inspectorate.trace._canonical import canonical_json
from inspectorate.trace._frame import CATEGORICAL, FRAME_SCHEMA, epoch_seconds, typed_frame, with_derived
from inspectorate.trace._schema import (
    FIELD_SET,
    FIELDS,
    INT_FIELDS,
    LIST_FIELDS,
    NUMBER_FIELDS,
    STRING_FIELDS,
    RecordError,
    validate_record,
)
from inspectorate.trace._trace import Trace

_SCHEMA = {name: FRAME_SCHEMA[name] for name in FIELDS}
_ARROW_SCHEMA = pa.schema(
    [(n, pa.string()) for n in STRING_FIELDS]
    + [(n, pa.int64()) for n in INT_FIELDS]
    + [(n, pa.float64()) for n in NUMBER_FIELDS]
    + [(n, pa.list_(pa.string())) for n in LIST_FIELDS]
)
_BOM = b"\xef\xbb\xbf"
Raw = bytes | mmap.mmap  # a file's bytes, read or mapped
_KIND = {**dict.fromkeys(STRING_FIELDS, 0), **dict.fromkeys(INT_FIELDS, 1), **dict.fromkeys(NUMBER_FIELDS, 2)}
_KIND |= dict.fromkeys(LIST_FIELDS, 3) | dict.fromkeys(CATEGORICAL, 4)  # 4: dictionary-encoded
_TIMES = ("window_start", "window_end")
_KIND |= dict.fromkeys(_TIMES, 5)  # 5: a string, and its epoch seconds where the seed spells it

try:  # the strict one-pass scanner (C, built at install); without it Arrow parses
    if os.environ.get("INSPECTORATE_PURE_PYTHON"):
        raise ImportError("pure Python requested")
    _scanner: Any = importlib.import_module("inspectorate.trace._cjsonl")
    if getattr(_scanner, "ABI", 0) != 3:  # a build older than this file: Arrow parses instead
        raise ImportError("stale _cjsonl build (python setup.py build_ext --inplace)")
except ImportError:
    _scanner = None


def _reject_constant(name: str) -> Any:
    raise ValueError(name)


def _bytes(path: Path) -> Raw | None:
    """The file's bytes as the text reader sees them (BOM dropped, \r\n as \n); None
    when only that reader can judge them (unreadable, stray carriage returns). A plain
    file that needs no rewrite is mapped, not copied (see _mapped)."""
    if not path.name.endswith(".gz") and _scanner is not None:  # the scanner guards the mapping
        mapped = _mapped(path)
        if mapped is not None:
            return mapped
    try:
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)
    except (OSError, EOFError, ValueError):
        return None
    raw = raw.removeprefix(_BOM)
    if b"\r" in raw:  # universal newlines: only \r\n is taken here
        if raw.count(b"\r") != raw.count(b"\r\n"):
            return None
        raw = raw.replace(b"\r\n", b"\n")
    return raw


def _mapped(path: Path) -> mmap.mmap | None:
    """The file mapped read-only when its bytes are the text as is (no BOM, no \r): the
    page cache is read in place, with no copy into fresh memory (a third of the read's
    CPU on 210 MB). None when it cannot be mapped (empty, not a regular file) or needs a
    rewrite; the caller reads it instead. Evidence is not expected to change while it is
    checked: a file truncated under the mapping raises SIGBUS, which read_jsonl_columns
    turns into one line naming the file and exit code 2 (_guarded)."""
    try:
        with open(path, "rb") as handle:
            mapped = mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ)
    except (OSError, ValueError):
        return None
    if mapped[: len(_BOM)] == _BOM or mapped.find(b"\r") >= 0:
        mapped.close()
        return None
    return mapped


def _bounds(raw: Raw) -> tuple[np.ndarray, np.ndarray] | None:
    """[start, end) of every non-empty line; None when a line is not an object (or is
    whitespace the text reader would skip): the text reader's call, with line numbers."""
    data = np.frombuffer(raw, dtype=np.uint8)
    newlines = np.flatnonzero(data == 10)
    starts = np.concatenate([[0], newlines + 1])
    ends = np.concatenate([newlines, [len(raw)]])
    keep = ends > starts
    starts, ends = starts[keep], ends[keep]
    if starts.size == 0 or not (data[starts] == ord("{")).all():
        return None
    return starts, ends


def _key_order(line: bytes) -> list[str] | None:
    try:
        first = json.loads(line)
    except ValueError:
        return None
    return list(first) if isinstance(first, dict) and set(first) == FIELD_SET else None


def _exact_rows(frame: pl.DataFrame, raw: Raw, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Mask of rows whose spelling equals their line (json.dumps layout or canonical)."""
    exact = np.zeros(len(starts), dtype=np.bool_)
    layouts = [(sorted(FIELDS), _ccols.CANONICAL_SEPS)]
    order = _key_order(raw[starts[0] : ends[0]])
    if order is not None:
        layouts.insert(0, (order, _ccols.DUMPS_SEPS))
    for keys, seps in layouts:
        exact |= _ccols.match(frame, keys, seps, raw, starts, ends)
        if exact.all():
            break
    return exact


def _layout(keys: list[str], seps: tuple[str, str]) -> tuple[bytes, bytes, list[tuple[bytes, int]]]:
    return (
        seps[0].encode(),
        seps[1].encode(),
        [(json.dumps(k).encode(), FIELDS.index(k)) for k in keys],
    )


def _arrow_column(kind: int, rows: int, bufs: Any) -> pa.Array:
    if kind == 4:  # int32 indices into the distinct values: Polars takes it as Categorical
        indices, offsets, values = (pa.py_buffer(b) for b in bufs)
        dictionary = pa.Array.from_buffers(pa.large_string(), len(bufs[1]) // 8 - 1, [None, offsets, values])
        return pa.DictionaryArray.from_arrays(
            pa.Array.from_buffers(pa.int32(), rows, [None, indices]), dictionary
        )
    if kind in (0, 5):
        return pa.Array.from_buffers(
            pa.large_string(), rows, [None, pa.py_buffer(bufs[0]), pa.py_buffer(bufs[1])]
        )
    if kind in (1, 2):
        return pa.Array.from_buffers(
            pa.int64() if kind == 1 else pa.float64(), rows, [None, pa.py_buffer(bufs)]
        )
    offsets, child_offsets, data = (pa.py_buffer(b) for b in bufs)
    items = len(bufs[1]) // 8 - 1
    child = pa.Array.from_buffers(pa.large_string(), items, [None, child_offsets, data])
    return pa.Array.from_buffers(pa.large_list(pa.large_string()), rows, [None, offsets], children=[child])


class Scanned(NamedTuple):
    frame: pl.DataFrame
    starts: np.ndarray
    ends: np.ndarray
    exact: np.ndarray
    digests: bytes | None
    times: dict[str, np.ndarray]  # epoch seconds of each timestamp column; NaN: not the seed's spelling


def _scan(raw: Raw) -> Scanned | None:
    """(frame, starts, ends, exact, ...) by the compiled scanner: one pass over the bytes that
    takes a line's values only where the line is their json.dumps spelling (in the first
    line's key order with the default separators, or canonical); ``exact`` is False for
    the other lines (their row is a placeholder the caller replaces). The last item: the
    SHA-256 of every exact row's canonical spelling (zeros for the others), spelled by
    the scanner from the line's own tokens, when the compiled hasher is there. Then the
    epoch seconds of window_start and window_end where they are in the seed's spelling
    (a real date; NaN elsewhere), computed in the scan as parse_time would. A large
    file is split at a line boundary and its parts scanned on threads (the scanner lets
    go of the GIL). None without the scanner or without lines."""
    if _scanner is None:
        return None
    newline = raw.find(b"\n")
    first = raw[:newline] if newline >= 0 else raw[:]
    layouts = [_layout(sorted(FIELDS), _ccols.CANONICAL_SEPS)]
    order = _key_order(first.strip()) if first.strip() else None
    if order is not None:
        layouts.insert(0, _layout(order, _ccols.DUMPS_SEPS))
    kinds = bytes(_KIND[name] for name in FIELDS)
    canonical = len(layouts) - 1 if _ccols.compiled() else -1
    if canonical >= 0:
        _hash_in_scanner()
    ranges = _ranges(raw)
    if len(ranges) == 1:
        parts = [_scanner.scan(raw, layouts, kinds, canonical)]
    else:
        with ThreadPoolExecutor(max_workers=len(ranges)) as pool:
            parts = list(pool.map(lambda r: _scanner.scan(raw, layouts, kinds, canonical, *r), ranges))
    ok = b"".join(part[2] for part in parts)
    rows = len(ok)
    if rows == 0:
        return None
    table = pa.table(
        {
            name: pa.chunked_array([_arrow_column(_KIND[name], len(part[2]), part[3][j]) for part in parts])
            for j, name in enumerate(FIELDS)
        }
    )
    # one chunk for the rules (a group-by over two chunks costs 2-3x); rechunked once
    # converted, so string data is not copied again, and after the identity columns are
    # Categorical (as with_derived makes them): their chunks join as indices, not text
    frame = pl.DataFrame(pl.from_arrow(table, rechunk=False)).select(
        [pl.col(n).cast(pl.Categorical if n in CATEGORICAL else t) for n, t in _SCHEMA.items()]
    )
    if len(parts) > 1:
        frame = frame.rechunk()
    starts = np.concatenate([np.frombuffer(part[0], dtype=np.int64) for part in parts])
    ends = np.concatenate([np.frombuffer(part[1], dtype=np.int64) for part in parts])
    digests = None
    if canonical >= 0:  # digests from the scanner, or its canonical text hashed here
        digests = b"".join(
            part[4] if part[5] is None else _digests(part[4], np.frombuffer(part[5], dtype=np.int64))
            for part in parts
        )
    times = {
        name: np.concatenate(
            [np.frombuffer(part[3][FIELDS.index(name)][2], dtype=np.float64) for part in parts]
        )
        for name in _TIMES
    }
    return Scanned(frame, starts, ends, np.frombuffer(ok, dtype=np.bool_), digests, times)


_SPLIT_BYTES = 8 << 20  # below this a second thread costs more than it saves
_HASHING: list[bool] = []


def _ranges(raw: Raw) -> list[tuple[int, int]]:
    """[lo, hi) byte ranges that start at a line's start: two for a large file (two cores)."""
    if len(raw) < _SPLIT_BYTES or (os.cpu_count() or 1) < 2:
        return [(0, len(raw))]
    cut = raw.find(b"\n", len(raw) // 2)
    return [(0, len(raw))] if cut < 0 else [(0, cut + 1), (cut + 1, len(raw))]


def _hash_in_scanner() -> None:
    """Let the scanner hash with the OpenSSL hashlib loaded, once, if a probe row it
    hashes matches hashlib over json's canonical spelling of the same record."""
    if _HASHING:
        return
    import _hashlib

    probe = {0: "x", 1: 1, 2: 0.1, 3: ["a", "b"], 4: "y", 5: "2026-04-24T09:00:00Z"}
    record = {n: probe[_KIND[n]] for n in FIELDS}
    ok = False
    if _scanner.use_libcrypto(getattr(_hashlib, "__file__", None)):
        line = json.dumps(record).encode()
        layouts = [_layout(list(record), _ccols.DUMPS_SEPS), _layout(sorted(FIELDS), _ccols.CANONICAL_SEPS)]
        got = _scanner.scan(line, layouts, bytes(_KIND[n] for n in FIELDS), 1)
        ok = got[5] is None and got[4] == sha256(canonical_json(record).encode()).digest()
        if not ok:
            _scanner.use_libcrypto(None)
    _HASHING.append(ok)


def _digests(data: bytes, offsets: np.ndarray) -> bytes:
    """SHA-256 of every slice; two threads (the C loop lets go of the GIL with OpenSSL)."""
    rows = len(offsets) - 1
    if rows < 50_000 or (os.cpu_count() or 1) < 2:
        return _ccols.digests(data, offsets)
    half = rows // 2
    with ThreadPoolExecutor(max_workers=2) as pool:
        parts = list(pool.map(lambda o: _ccols.digests(data, o), [offsets[: half + 1], offsets[half:]]))
    return b"".join(parts)


def _parse(raw: Raw, rows: int) -> pl.DataFrame | None:
    """The schema fields of every line, parsed by Arrow's multithreaded JSON reader."""
    import pyarrow.json as pj  # only without the compiled scanner

    try:
        table = pj.read_json(
            io.BytesIO(raw),
            read_options=pj.ReadOptions(block_size=16 << 20),
            parse_options=pj.ParseOptions(explicit_schema=_ARROW_SCHEMA, unexpected_field_behavior="ignore"),
        )
        frame = pl.DataFrame(pl.from_arrow(table)).select([pl.col(n).cast(t) for n, t in _SCHEMA.items()])
    except Exception:  # any Arrow/Polars parse failure: the text reader names the line
        return None
    return frame if frame.height == rows else None


def _slow_records(raw: Raw, starts: np.ndarray, ends: np.ndarray) -> list[dict] | None:
    out = []
    for lo, hi in zip(starts.tolist(), ends.tolist()):
        try:
            record = json.loads(raw[lo:hi].decode("utf-8"), parse_constant=_reject_constant)
            validate_record(record)
        except (ValueError, RecordError):  # UnicodeDecodeError is a ValueError
            return None
        out.append(record)
    return out


def _times(frame: pl.DataFrame, name: str, scanned: dict[str, np.ndarray]) -> pl.Series | None:
    """Epoch seconds parsed exactly as the line reader parses them (None if any fails):
    the scanner's when it read every value in the seed's spelling, else parsed here."""
    if name in scanned and not np.isnan(scanned[name]).any():
        return pl.Series(name, scanned[name])
    parsed = epoch_seconds(frame[name])
    return None if parsed.null_count() else parsed


def _valid(frame: pl.DataFrame) -> bool:
    """What validate_record checks beyond types, by columns (types hold for exact rows)."""
    negative = pl.any_horizontal([pl.col(n) < 0 for n in (*INT_FIELDS, "flops")])
    return not frame.select(negative.any()).item()


def read_jsonl_columns(path: Path) -> Trace | None:
    """The trace, or None when the line-by-line reader must decide (any bad input)."""
    raw = _bytes(path)
    if raw is None:
        return None
    if not isinstance(raw, mmap.mmap):
        return _read(path, raw)
    with _guarded(path, raw):
        return _read(path, raw)


@contextmanager
def _guarded(path: Path, mapped: mmap.mmap) -> Iterator[None]:
    """While ``mapped`` is read, a SIGBUS (the file shrank under the mapping: a read past
    its new end) ends the process with one line naming the file and exit code 2, as bad
    input does, instead of killing it without a word. The signal cannot be raised as an
    exception: the faulting read would run again, so the handler (C) writes and exits."""
    where = os.fsdecode(os.fspath(path))
    _scanner.guard(
        f"error: {where}: the file shrank while it was read (evidence must not change while it is checked)".encode(
            errors="replace"
        )
    )
    try:
        yield
    finally:
        try:
            mapped.close()  # no read of it after this: the guard can go
        except BufferError:  # a view of it is still alive somewhere: leave it to the collector
            pass
        _scanner.unguard()


def _read(path: Path, raw: Raw) -> Trace | None:
    scanned, digests = _scan(raw), None
    times: dict[str, np.ndarray] = {}
    if scanned is not None:
        frame, starts, ends, exact, digests, times = scanned
    else:
        found = _bounds(raw)
        if found is None:
            return None
        starts, ends = found
        parsed = _parse(raw, len(starts))
        if parsed is None:
            return None
        frame, exact = parsed, _exact_rows(parsed, raw, starts, ends)
    slow = np.flatnonzero(~exact)
    frame = frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias("_extra"))
    if slow.size:
        times = {}  # json read some rows: their times are parsed with the rest, as before
        records = _slow_records(raw, starts[slow], ends[slow])
        if records is None:
            return None
        if digests is not None:  # json read these lines: hash what it read, as the line reader does
            fixed_digests = bytearray(digests)
            for index, record in zip(slow.tolist(), records):
                fixed_digests[32 * index : 32 * index + 32] = sha256(canonical_json(record).encode()).digest()
            digests = bytes(fixed_digests)
        fixed = typed_frame(records).with_columns(pl.Series("_i", slow, dtype=pl.Int64))
        fast = np.ones(frame.height, dtype=np.bool_)
        fast[slow] = False
        kept = frame.with_row_index("_i").with_columns(pl.col("_i").cast(pl.Int64)).filter(pl.Series(fast))
        fixed = fixed.select([pl.col(n).cast(t) for n, t in kept.schema.items()])  # Categorical as kept's
        frame = pl.concat([kept, fixed]).sort("_i").drop("_i")
    if not _valid(frame):
        return None
    starts_s, ends_s = _times(frame, "window_start", times), _times(frame, "window_end", times)
    if starts_s is None or ends_s is None or (ends_s < starts_s).any():
        return None
    trace = Trace(with_derived(frame, starts_s, ends_s), None, str(path))
    if digests is not None:
        trace.know_digests(digests)
    return trace
