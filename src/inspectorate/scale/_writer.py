"""Streaming writer of the partitioned layout (format: ``_layout``'s docstring).

Records arrive in single-chain order, a chunk at a time. Each chunk is hashed, sorted by
(chip, time, seq), chained per chip onto the chip's last link so far, and appended to
one Parquet writer per open (window, group) file. A window closes (its files closed, its
Merkle root computed from the chips' heads, the heads dropped) once the source has moved
``OPEN_WINDOWS - 1`` windows past it. Memory: one chunk, the last (time, link) of every
chip, and the heads of the open windows, whatever the trace's length.

Streaming equals the definition (chip chains in time-then-seq order) as long as every
chip's records arrive in non-decreasing ``window_start`` and no record lands in a window
already closed. Real traces have out-of-order records, so either case is detected and
the write still completes, the offending records kept in extra part files of their
window; then every window is *re-finalised* in time order (its files read back, sorted,
re-chained from each chip's carried hash, rewritten): memory one window, cost a second
pass. The row order inside a file is not part of the format (the verifier sorts).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from inspectorate.errors import InputError
from inspectorate.trace import Trace
from inspectorate.trace._canonical import GENESIS
from inspectorate.trace._fastchain import frame_hashes
from inspectorate.trace._frame import FRAME_SCHEMA, epoch_seconds

LAYOUT = "inspectorate.partitioned/2"  # /1 hashed heads without chip_prev: see _layout
MANIFEST = "manifest.json"
STORED = [*FRAME_SCHEMA, "seq", "chip_prev"]
CHUNK = 250_000
OPEN_WINDOWS = 2  # the window being written and the one before it (tolerates small disorder)
JSONL_IN_MEMORY = 256 << 20  # bytes; larger JSONL is read a chunk of lines at a time


def merkle_root(leaves: list[bytes]) -> str:
    """Hex Merkle root of leaf digests (an odd node pairs with itself; empty: GENESIS)."""
    if not leaves:
        return GENESIS
    level = leaves
    while len(level) > 1:
        if len(level) % 2:
            level = level + [level[-1]]
        level = [hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0].hex()


def leaf(chip: str, head: str) -> bytes:
    return hashlib.sha256(chip.encode() + b"\0" + head.encode()).digest()


def chip_group(chip: str, groups: int) -> int:
    return int.from_bytes(hashlib.sha256(chip.encode()).digest()[:8], "big") % groups


def window_root(heads: pl.DataFrame) -> str:
    """Merkle root of one window's (chip_id, head) rows."""
    part = heads.sort("chip_id")
    return merkle_root([leaf(c, h) for c, h in zip(part["chip_id"], part["head"])])


# chip_id -> (window_start of its last record so far, its link)
ChipState = dict[str, tuple[float, str]]


def chain_chips(frame: pl.DataFrame, state: ChipState) -> tuple[pl.DataFrame, bool]:
    """Sort by (chip, ws, seq), set ``chip_prev`` (the link of the chip's previous record,
    carried in ``state`` across calls, which is updated) and ``link`` = SHA-256 of
    ``chip_prev + h``. Returns the frame and whether a chip went back in time across calls."""
    out = frame.sort(["chip_id", "ws", "seq"])
    prevs, links = [], []
    back = False
    sha = hashlib.sha256
    current, last_ws, prev = None, 0.0, GENESIS
    # a fold per chip: each link depends on the one before, so this loop is sequential
    for chip, h, ws in zip(out["chip_id"].to_list(), out["h"].to_list(), out["ws"].to_list()):
        if chip != current:
            if current is not None:
                state[current] = (last_ws, prev)
            current = chip
            if chip in state:
                last_ws, prev = state[chip]
                back |= ws < last_ws
            else:
                prev = GENESIS
        prevs.append(prev)
        prev = sha((prev + h).encode()).hexdigest()
        links.append(prev)
        last_ws = ws
    if current is not None:
        state[current] = (last_ws, prev)
    chained = out.with_columns(pl.Series("chip_prev", prevs, pl.Utf8), pl.Series("link", links, pl.Utf8))
    return chained, back


def window_heads(chained: pl.DataFrame) -> pl.DataFrame:
    """(win, chip_id, head): each chip's last link per window in a chained frame."""
    return chained.group_by(["win", "chip_id"]).agg(pl.col("link").last().alias("head"))


class _Groups:
    """chip_id -> chip group, computed once per chip."""

    def __init__(self, groups: int):
        self.groups = groups
        self.known: dict[str, int] = {}

    def column(self, chips: pl.Series) -> pl.Series:
        for chip in chips.unique().to_list():
            if chip not in self.known:
                self.known[chip] = chip_group(chip, self.groups)
        return chips.replace_strict(self.known, return_dtype=pl.Int64)


def annotate(frame: pl.DataFrame, offset: int, window_seconds: int, groups: _Groups) -> pl.DataFrame:
    """Stored columns (strings as Utf8), plus ws, seq, h, win and grp."""
    if "_extra" not in frame.columns:
        frame = frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias("_extra"))
    try:
        frame = frame.select([pl.col(n).cast(t) for n, t in FRAME_SCHEMA.items()])
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"wrong column type ({str(exc).splitlines()[0]})") from None
    nulls = frame.select(pl.all().exclude("_extra").null_count()).row(0, named=True)
    for name, count in nulls.items():
        if count:
            first = frame[name].is_null().arg_max() or 0
            raise InputError(f"record {offset + first}: field {name!r} is null")
    frame = frame.with_columns(epoch_seconds(frame["window_start"]).alias("ws"))
    bad = frame["ws"].is_null().arg_max()
    if bad is not None and frame["ws"][bad] is None:
        raise InputError(f"record {offset + bad}: not an ISO 8601 timestamp: {frame['window_start'][bad]!r}")
    return frame.with_columns(
        (pl.int_range(pl.len(), dtype=pl.Int64) + offset).alias("seq"),
        pl.Series("h", frame_hashes(frame), dtype=pl.Utf8),
        (pl.col("ws") // window_seconds).cast(pl.Int64).alias("win"),
        groups.column(frame["chip_id"]).alias("grp"),
    )


class PartitionedWriter:
    """Write chunks in single-chain order; ``close()`` returns the manifest."""

    def __init__(self, root: str | Path, window_seconds: int = 3600, chip_groups: int = 16):
        if window_seconds <= 0 or chip_groups <= 0:
            raise InputError("window seconds and chip groups must be positive")
        self.root = Path(root)
        if self.root.exists() and (not self.root.is_dir() or any(self.root.iterdir())):
            raise InputError("output exists and is not an empty directory; choose a new one", self.root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.window_seconds, self.chip_groups = window_seconds, chip_groups
        self.groups = _Groups(chip_groups)
        self.state: ChipState = {}
        self.heads = pl.DataFrame(schema={"win": pl.Int64, "chip_id": pl.Utf8, "head": pl.Utf8})
        self.writers: dict[int, dict[int, pq.ParquetWriter]] = {}
        self.counts: dict[int, int] = {}
        self.windows: dict[int, dict[str, Any]] = {}
        self.floor: int | None = None  # windows below it are closed
        self.frontier: int | None = None
        self.records = 0
        self.last_hash: str | None = None
        self.disordered = False
        self.late_parts = 0

    def add(self, chunk: pl.DataFrame) -> None:
        if chunk.height == 0:
            return
        frame = annotate(chunk, self.records, self.window_seconds, self.groups)
        self.records += frame.height
        self.last_hash = frame["h"][-1]
        chained, back = chain_chips(frame, self.state)
        self.disordered |= back
        self.heads = _merge_heads(self.heads, window_heads(chained))
        for (win, grp), part in chained.group_by(["win", "grp"]):
            self._write(int(win), int(grp), part.select(STORED))
        top = int(frame["win"].max())  # type: ignore[arg-type]
        self.frontier = top if self.frontier is None else max(self.frontier, top)
        for win in sorted(w for w in self.writers if w <= self.frontier - OPEN_WINDOWS):
            self._close_window(win)
        floor = self.frontier - OPEN_WINDOWS + 1
        self.floor = floor if self.floor is None else max(self.floor, floor)

    def _write(self, win: int, grp: int, part: pl.DataFrame) -> None:
        table = part.to_arrow()
        self.counts[win] = self.counts.get(win, 0) + part.height
        if self.floor is not None and win < self.floor:  # its window is closed: a late record
            self.disordered = True
            self.late_parts += 1
            path = self.root / f"window={win}" / f"late-{self.late_parts}.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(table, path, compression="zstd")
            return
        open_ = self.writers.setdefault(win, {})
        if grp not in open_:
            path = self.root / _file(win, grp)
            path.parent.mkdir(parents=True, exist_ok=True)
            open_[grp] = pq.ParquetWriter(path, table.schema, compression="zstd")
        open_[grp].write_table(table)

    def _close_window(self, win: int) -> None:
        groups = self.writers.pop(win)
        for writer in groups.values():
            writer.close()
        mine = self.heads.filter(pl.col("win") == win)
        self.heads = self.heads.filter(pl.col("win") != win)
        files = sorted(_file(win, g) for g in groups)
        self.windows[win] = {"root": window_root(mine), "records": 0, "files": files}

    def close(self) -> dict[str, Any]:
        if self.last_hash is None:
            raise InputError("empty trace (no records)")
        for win in sorted(self.writers):
            self._close_window(win)
        if self.disordered:
            self._refinalise()
        for win, count in self.counts.items():
            self.windows[win]["records"] = count
        ordered = sorted(self.windows)
        manifest = {
            "layout": LAYOUT,
            "window_seconds": self.window_seconds,
            "chip_groups": self.chip_groups,
            "records": self.records,
            "windows": {str(w): self.windows[w] for w in ordered},
            "root": merkle_root([bytes.fromhex(self.windows[w]["root"]) for w in ordered]),
            "single_chain_head": self.last_hash,
        }
        (self.root / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        return manifest

    def abort(self) -> None:
        """Close the open files after a failure (the directory has no manifest: not a layout)."""
        for groups in self.writers.values():
            for writer in groups.values():
                writer.close()
        self.writers.clear()

    def _refinalise(self) -> None:
        """Out-of-order source: rebuild every window in time order, one at a time."""
        state: ChipState = {}
        for win in sorted(self.counts):
            folder = self.root / f"window={win}"
            parts = sorted(folder.glob("*.parquet"))
            frame = pl.concat([pl.read_parquet(p) for p in parts]).drop("chip_prev")
            frame = frame.with_columns(
                epoch_seconds(frame["window_start"]).alias("ws"),
                pl.Series("h", frame_hashes(frame), dtype=pl.Utf8),
                self.groups.column(frame["chip_id"]).alias("grp"),
            )
            chained, _ = chain_chips(frame, state)
            for path in parts:
                path.unlink()
            files = []
            for (grp,), part in chained.group_by(["grp"]):
                files.append(_file(win, int(grp)))
                pq.write_table(part.select(STORED).to_arrow(), self.root / files[-1], compression="zstd")
            heads = chained.group_by("chip_id").agg(pl.col("link").last().alias("head"))
            self.windows[win] = {"root": window_root(heads), "records": 0, "files": sorted(files)}


def _file(win: int, grp: int) -> str:
    return f"window={win}/group={grp}.parquet"


def _merge_heads(heads: pl.DataFrame, new: pl.DataFrame) -> pl.DataFrame:
    """Later heads replace earlier ones of the same (window, chip)."""
    return pl.concat([heads.join(new, on=["win", "chip_id"], how="anti"), new.select(heads.columns)])


def source_chunks(
    source: Trace | str | Path | Iterable[pl.DataFrame], rows: int = CHUNK
) -> Iterator[pl.DataFrame]:
    """Frames in single-chain order from a trace, a trace path, or an iterable of frames,
    without holding more than ``rows`` records of a large file."""
    if isinstance(source, Trace):
        if source.lean:  # a large Parquet trace: its backing file streams
            yield from source_chunks(source.backing, rows)  # type: ignore[arg-type]
        else:
            frame = source.full_frame()
            yield from (frame.slice(lo, rows) for lo in range(0, frame.height, rows))
    elif isinstance(source, (str, Path)):
        yield from _path_chunks(Path(source), rows)
    else:
        yield from source


def _path_chunks(path: Path, rows: int) -> Iterator[pl.DataFrame]:
    from inspectorate.trace import read_trace
    from inspectorate.trace._io import _checked, iter_parquet_chunks

    if path.suffix == ".parquet" and path.is_file():
        offset = 0
        for part in iter_parquet_chunks(path, rows):
            yield _checked(part, path, offset)
            offset += part.height
    elif path.is_file() and path.stat().st_size > JSONL_IN_MEMORY:
        yield from _jsonl_chunks(path, rows)
    else:
        yield from source_chunks(read_trace(path), rows)


def _jsonl_chunks(path: Path, rows: int) -> Iterator[pl.DataFrame]:
    """A large JSONL trace a chunk of lines at a time, each record validated as read."""
    from inspectorate.trace._frame import typed_frame
    from inspectorate.trace._io import iter_jsonl
    from inspectorate.trace._schema import RecordError, validate_record

    batch: list[dict[str, Any]] = []
    for number, record in iter_jsonl(path):
        try:
            validate_record(record)
        except RecordError as exc:
            raise InputError(str(exc), path, number) from None
        batch.append(record)
        if len(batch) == rows:
            yield typed_frame(batch)
            batch = []
    if batch:
        yield typed_frame(batch)


def write_partitioned(
    trace: Trace | str | Path | Iterable[pl.DataFrame],
    root: str | Path,
    window_seconds: int = 3600,
    chip_groups: int = 16,
) -> dict[str, Any]:
    """Write ``trace`` (a Trace, a trace path, or frames in single-chain order) in the
    partitioned layout, streaming; returns the manifest."""
    writer = PartitionedWriter(root, window_seconds, chip_groups)
    try:
        for chunk in source_chunks(trace):
            writer.add(chunk)
    except BaseException:
        writer.abort()
        raise
    return writer.close()


def generate_partitioned(
    spec: Any, root: str | Path, window_seconds: int = 3600, chip_groups: int = 16
) -> dict:
    """A generated trace (``GenSpec``) straight into the layout, never whole in memory."""
    from inspectorate.trace import iter_generated

    # 100k-row chunks: the generator's Python strings dominate peak memory, not the layout
    return write_partitioned(iter_generated(spec, chunk=100_000), root, window_seconds, chip_groups)
