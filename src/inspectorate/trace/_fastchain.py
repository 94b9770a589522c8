"""Chain verification over a frame without rebuilding Python dicts.

With the compiled canonicaliser (``_ccanon``, built at install) the canonical JSON of
every row is spelled in C from the Arrow buffers and hashed with hashlib from C; rows
with fields outside the schema (``_extra``) are spelled by ``json``. Without it, the
canonical text is assembled column-wise by Polars and hashed row by row from the Arrow
buffer; rows the vectorised spelling cannot reproduce exactly (extra fields, strings
needing JSON escapes, floats below 1e-4 where Polars and Python spell exponents
differently) fall back to ``json``. Property tests pin both paths to ``canonical_json``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl

from inspectorate.trace import _ccols
from inspectorate.trace._canonical import GENESIS, ChainBreak, canonical_json
from inspectorate.trace._frame import records_from_frame
from inspectorate.trace._schema import FIELDS, INT_FIELDS, LIST_FIELDS, STRING_FIELDS

_SORTED = sorted(FIELDS)
_ESCAPED_ASCII = r"[\x00-\x1f\x7f\\]"  # what json.dumps(ensure_ascii=True) escapes below 0x80 (DEL too)
CHUNK = 200_000


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
    """Rows whose vectorised ``_line`` equals Python's json spelling.

    Checked on the assembled line in two passes rather than one per column: no byte that
    json would escape (control, backslash, non-ASCII), and exactly the quotes the
    structure needs (a quote inside a value would have been escaped)."""
    line = pl.col("_line")
    quotes = 2 * (len(_SORTED) + len(STRING_FIELDS)) + sum(2 * pl.col(n).list.len() for n in LIST_FIELDS)
    ok = pl.col("_extra").is_null() & ((pl.col("flops") == 0) | (pl.col("flops").abs() >= 1e-4))
    ascii_only = line.str.len_bytes() == line.str.len_chars()
    return (
        ok
        & ascii_only
        & ~line.str.contains(_ESCAPED_ASCII)
        & (line.str.count_matches('"', literal=True) == quotes)
    )


def _built(frame: pl.DataFrame, parts: int = 4) -> tuple[pl.Series, list[int]]:
    """Canonical lines of ``frame`` (as bytes) and the rows that need the json path.

    One string expression runs on one core, so the frame is cut into ``parts`` lazy
    queries that Polars collects in parallel."""
    if frame.height == 0:
        return pl.Series("_line", [], dtype=pl.Binary), []
    size = -(-frame.height // parts)
    queries = [
        frame.slice(lo, size)
        .lazy()
        .with_columns(_canonical_expr().alias("_line"))
        .select(pl.col("_line").cast(pl.Binary), _exact_mask().alias("_exact"))
        for lo in range(0, frame.height, size)
    ]
    built = pl.concat(pl.collect_all(queries))
    return built["_line"], built["_exact"].not_().arg_true().to_list()


def _compiled_digests(frame: pl.DataFrame) -> bytes:
    """SHA-256 digests (32 bytes per row) of every row's canonical bytes, spelled in C;
    rows the C spelling cannot carry (``_extra``, nulls) are spelled by json."""
    out, bad = _ccols.canonical_digests(frame, _SORTED)
    slow = np.flatnonzero(bad | frame["_extra"].is_not_null().to_numpy())
    if slow.size == 0:
        return out
    fixed = bytearray(out)
    for index, record in zip(slow.tolist(), records_from_frame(frame[slow.tolist()])):
        fixed[32 * index : 32 * index + 32] = hashlib.sha256(canonical_json(record).encode()).digest()
    return bytes(fixed)


def canonical_lines(frame: pl.DataFrame) -> list[str]:
    """Canonical JSON text of every row, in order."""
    if _ccols.compiled() and frame.height:
        data, offsets, bad = _ccols.spell(frame, _SORTED)
        bounds = offsets.tolist()
        out = [data[bounds[i] : bounds[i + 1]].decode() for i in range(frame.height)]
        slow = np.flatnonzero(bad | frame["_extra"].is_not_null().to_numpy()).tolist()
        for index, record in zip(slow, records_from_frame(frame[slow]) if slow else []):
            out[index] = canonical_json(record)
        return out
    lines, slow = _built(frame)
    out = [b.decode() for b in lines.to_list()]
    for index, record in zip(slow, records_from_frame(frame[slow]) if slow else []):
        out[index] = canonical_json(record)
    return out


def _hash_built(frame: pl.DataFrame, lines: pl.Series, slow: list[int]) -> list[str]:
    """Hex hash of every row of one chunk, hashing slices of the Arrow data buffer."""
    fixed = (
        {i: canonical_json(r).encode() for i, r in zip(slow, records_from_frame(frame[slow]))} if slow else {}
    )
    array = lines.to_arrow()
    if hasattr(array, "combine_chunks"):
        array = array.combine_chunks()
    _, offsets_buf, data_buf = array.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[
        array.offset : array.offset + len(array) + 1
    ].tolist()
    data = memoryview(data_buf)
    sha = hashlib.sha256
    out = [sha(data[offsets[i] : offsets[i + 1]]).hexdigest() for i in range(len(array))]
    for index, payload in fixed.items():
        out[index] = sha(payload).hexdigest()
    return out


def _chunk_hashes(chunks: Iterator[pl.DataFrame]) -> Iterator[tuple[pl.DataFrame, list[str]]]:
    """(chunk, its row hashes) in order. Polars builds the next chunk's text on a second
    thread (it releases the GIL) while this one hashes the current chunk."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        current = next(chunks, None)
        pending = pool.submit(_built, current) if current is not None else None
        while current is not None and pending is not None:
            lines, slow = pending.result()
            following = next(chunks, None)
            pending = pool.submit(_built, following) if following is not None else None
            yield current, _hash_built(current, lines, slow)
            current = following


def _slices(frame: pl.DataFrame, chunk: int) -> Iterator[pl.DataFrame]:
    return (frame.slice(lo, chunk) for lo in range(0, frame.height, chunk))


def frame_hashes(frame: pl.DataFrame, chunk: int = CHUNK) -> list[str]:
    """Hex hash of every row, a chunk at a time (bounded memory)."""
    if _ccols.compiled():
        out: list[str] = []
        for part in _slices(frame, chunk):
            text = _compiled_digests(part).hex()
            out += [text[i : i + 64] for i in range(0, len(text), 64)]
        return out
    return [h for _, hashes in _chunk_hashes(_slices(frame, chunk)) for h in hashes]


def _compiled_chain_breaks(
    chunks: Iterator[pl.DataFrame], head: str | None, genesis: str, known: bytes | None = None
) -> tuple[list[ChainBreak], str]:
    """The compiled path of ``chunk_chain_breaks``; also returns the last hash. ``known``:
    every row's digest, already computed (the JSONL scanner's, from the lines)."""
    breaks: list[ChainBreak] = []
    prev_hash, prev_id, offset = genesis, None, 0
    for part in chunks:
        if part.height == 0:
            continue
        digest = known[32 * offset : 32 * (offset + part.height)] if known else _compiled_digests(part)
        found, ids = part["prev_record_hash"], part["record_id"]
        for index in _ccols.mismatches(digest, found, prev_hash):
            expected = digest[32 * (index - 1) : 32 * index].hex() if index else prev_hash
            suspect_id = ids[index - 1] if index else prev_id
            breaks.append(
                ChainBreak(
                    offset + index,
                    ids[index],
                    max(offset + index - 1, 0),
                    suspect_id,
                    expected,
                    str(found[index]),
                )
            )
        prev_hash, prev_id, offset = digest[-32:].hex(), ids[-1], offset + part.height
    if head is not None and head != prev_hash:
        breaks.append(ChainBreak(offset, None, max(offset - 1, 0), prev_id, head, prev_hash))
    return breaks, prev_hash


def chunk_chain_breaks(
    chunks: Iterator[pl.DataFrame], head: str | None = None, genesis: str = GENESIS
) -> list[ChainBreak]:
    """Chain breaks over frames given in file order (same result as ``iter_chain_breaks``)."""
    if _ccols.compiled():
        return _compiled_chain_breaks(chunks, head, genesis)[0]
    breaks: list[ChainBreak] = []
    prev_hash, prev_id, offset = genesis, None, 0
    for part, hashes in _chunk_hashes(chunks):
        expected = pl.Series([prev_hash] + hashes[:-1])
        found, ids = part["prev_record_hash"], part["record_id"]
        for index in (expected != found).fill_null(True).arg_true().to_list():
            suspect_id = ids[index - 1] if index else prev_id
            breaks.append(
                ChainBreak(
                    offset + index,
                    ids[index],
                    max(offset + index - 1, 0),
                    suspect_id,
                    expected[index],
                    str(found[index]),
                )
            )
        prev_hash, prev_id, offset = hashes[-1], ids[-1], offset + part.height
    if head is not None and head != prev_hash:
        breaks.append(ChainBreak(offset, None, max(offset - 1, 0), prev_id, head, prev_hash))
    return breaks


def verify_row_groups(path: str, groups: list[int]) -> tuple[str, str, int, list[list]]:
    """Chain-check some row groups of a Parquet file on their own.

    Returns the first record's prev_record_hash, the last record's hash, the row count
    and the internal breaks as [index, record_id, suspect_id, expected, found]."""
    import pyarrow.parquet as pq

    from inspectorate.trace._frame import FRAME_SCHEMA
    from inspectorate.trace._io import _typed, stored_columns

    handle = pq.ParquetFile(path)
    frame = _typed(
        handle.read_row_groups(groups, columns=stored_columns(handle)), Path(path), list(FRAME_SCHEMA)
    )
    first_prev = str(frame["prev_record_hash"][0])
    breaks = chunk_chain_breaks(_slices(frame, CHUNK), None, genesis=first_prev)
    last = frame_hashes(frame.tail(1))[0]
    return (
        first_prev,
        last,
        frame.height,
        [[b.index, b.record_id, b.suspect_record_id, b.expected, b.found] for b in breaks],
    )


def _run_workers(path: str, batches: list[list[int]], workers: int) -> list[tuple]:
    """Run ``_chainworker`` over the batches, ``workers`` processes at a time."""
    import json
    import subprocess
    import sys

    results: list[tuple] = []
    for lo in range(0, len(batches), workers):
        procs = [
            subprocess.Popen(
                [sys.executable, "-m", "inspectorate.trace._chainworker", path, ",".join(map(str, batch))],
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            for batch in batches[lo : lo + workers]
        ]
        for proc in procs:
            out, err = proc.communicate()
            if proc.returncode:
                raise RuntimeError(err.strip().splitlines()[-1] if err.strip() else "chain worker failed")
            data = json.loads(out)
            results.append((data["first_prev"], data["last"], data["rows"], data["breaks"]))
    return results


def parquet_chain_breaks(path, head: str | None = None, workers: int | None = None) -> list[ChainBreak]:
    """Chain breaks of a Parquet trace: contiguous runs of row groups are verified in
    parallel worker processes, then stitched (each run's first prev_record_hash must be
    the previous run's last hash). Same result as the sequential check."""
    import os

    import pyarrow.parquet as pq

    count = pq.ParquetFile(path).num_row_groups
    workers = max(min(workers or os.cpu_count() or 1, count), 1)
    batches = [list(range(i * count // workers, (i + 1) * count // workers)) for i in range(workers)]
    try:
        results = _run_workers(str(path), batches, workers)
    except (OSError, RuntimeError, ValueError):  # no room for workers: do it here, in order
        results = [verify_row_groups(str(path), batch) for batch in batches]
    breaks: list[ChainBreak] = []
    prev_hash, prev_id, offset = GENESIS, None, 0
    for first_prev, last, rows, internal in results:
        if first_prev != prev_hash:
            breaks.append(ChainBreak(offset, None, max(offset - 1, 0), prev_id, prev_hash, first_prev))
        breaks += [
            ChainBreak(offset + i, rid, offset + i - 1, sid, exp, found)
            for i, rid, sid, exp, found in internal
        ]
        prev_hash, prev_id, offset = last, None, offset + rows
    if head is not None and head != prev_hash:
        breaks.append(ChainBreak(offset, None, max(offset - 1, 0), None, head, prev_hash))
    return breaks


def frame_chain_breaks(
    frame: pl.DataFrame, head: str | None = None, known: bytes | None = None
) -> list[ChainBreak]:
    """Chain breaks of an in-memory frame (``known``: its rows' digests, when computed)."""
    if not frame.height:
        return []
    if known is not None and _ccols.compiled():
        return _compiled_chain_breaks(_slices(frame, CHUNK), head, GENESIS, known)[0]
    return chunk_chain_breaks(_slices(frame, CHUNK), head)
