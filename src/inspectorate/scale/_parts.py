"""Partitions of an on-disk trace, each read by the worker that judges it.

A ``Part`` names what one worker reads on its own: some row groups of a single Parquet
file, or some files of the partitioned layout. ``load_part`` gives the rows as the frame
rules read (typed, validated, ``ws``/``we`` derived), with ``row`` the record's position
in the original single-chain order: the row group's offset in a file, ``seq`` in the
layout. Nothing else about the trace is held.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

from inspectorate.errors import InputError
from inspectorate.trace._frame import FRAME_SCHEMA
from inspectorate.trace._io import _checked, _collect, _open_parquet, _scan_typed, stored_columns

PART_ROWS = 1_000_000  # records a worker reads at once (about 0.3 GB of frame)
# Columns only the chain reads (or the exact rebuild): rules never do, so the frame the
# rules see, and every spill file, leaves them out.
CHAIN_ONLY = ("prev_record_hash", "_extra", "window_start", "window_end")


@dataclass(frozen=True)
class Part:
    """One unit of work: ``files`` (paths) and, for a single file (``groups`` not None),
    the row range ``offset`` .. ``offset + rows``; ``groups`` None: whole layout files."""

    index: int
    files: tuple[str, ...]
    groups: tuple[int, ...] | None = None
    offset: int = 0
    rows: int = 0


@dataclass(frozen=True)
class Source:
    """An on-disk trace cut into parts: ``records`` in all, ``ordered`` when the parts
    are contiguous row ranges in order (a single file), ``head`` its published head."""

    path: str
    parts: tuple[Part, ...]
    records: int
    ordered: bool
    head: str | None = None
    head_records: int | None = None


def parquet_source(path: Path, part_rows: int = PART_ROWS) -> Source:
    """A single Parquet file as row ranges of ``part_rows`` records (a worker reads the
    row groups its range overlaps)."""
    records = _open_parquet(path).metadata.num_rows
    parts = tuple(
        Part(i, (str(path),), (), lo, min(part_rows, records - lo))
        for i, lo in enumerate(range(0, records, max(part_rows, 1)))
    )
    return Source(str(path), parts, records, ordered=True)


def layout_source(root: Path, part_rows: int = PART_ROWS) -> Source:
    """The partitioned layout's files (footers read for their row counts), gathered into
    parts of about ``part_rows`` records, in window order."""
    from inspectorate.scale._layout import read_manifest

    manifest = read_manifest(root)
    names = [f for w in sorted(manifest["windows"], key=int) for f in manifest["windows"][w]["files"]]
    if not names:
        raise InputError("partitioned trace lists no files", root)
    parts: list[Part] = []
    run: list[str] = []
    rows = total = 0
    for i, name in enumerate(names):
        path = root / name
        try:
            count = pq.ParquetFile(path).metadata.num_rows
        except (OSError, ValueError) as exc:
            raise InputError(f"unreadable partition file ({exc})", path) from None
        run.append(str(path))
        rows += count
        if rows >= part_rows or i == len(names) - 1:
            parts.append(Part(len(parts), tuple(run), None, 0, rows))
            total += rows
            run, rows = [], 0
    return Source(str(root), tuple(parts), total, ordered=False)


def load_part(part: Part) -> pl.DataFrame:
    """The part's records as the rules' frame, every schema column (the chain's too),
    ``row`` = position in the original order."""
    if part.groups is not None:
        path = Path(part.files[0])
        names = stored_columns(_open_parquet(path))
        lazy = _scan_typed(path, names).slice(part.offset, part.rows)
        if "_extra" not in names:
            lazy = lazy.with_columns(pl.lit(None, dtype=pl.Utf8).alias("_extra"))
        frame = _checked(_collect(lazy, path).select(list(FRAME_SCHEMA)), path, part.offset)
        return frame.with_columns((pl.col("row") + part.offset).cast(frame["row"].dtype))
    frames = [_layout_file(Path(f)) for f in part.files]
    raw = pl.concat(frames).sort("seq")
    frame = _checked(raw.drop("seq").select(list(FRAME_SCHEMA)), Path(part.files[0]))
    return frame.with_columns(raw["seq"].cast(frame["row"].dtype).alias("row"))


def _layout_file(path: Path) -> pl.DataFrame:
    try:
        raw = pl.read_parquet(path)
    except (OSError, pl.exceptions.PolarsError) as exc:
        raise InputError(f"unreadable partition file ({exc})", path) from None
    if "seq" not in raw.columns:
        raise InputError("partition file has no seq column", path)
    if "_extra" not in raw.columns:
        raw = raw.with_columns(pl.lit(None, dtype=pl.Utf8).alias("_extra"))
    try:
        return raw.select(
            pl.col("seq").cast(pl.Int64), *[pl.col(n).cast(t, strict=True) for n, t in FRAME_SCHEMA.items()]
        )
    except pl.exceptions.PolarsError as exc:
        raise InputError(f"wrong column type ({str(exc).splitlines()[0]})", path) from None


def rule_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """What rules read of a part (the chain-only columns dropped)."""
    return frame.drop([c for c in CHAIN_ONLY if c in frame.columns])


def write_spill(frame: pl.DataFrame, spill: str, name: str, part: int) -> None:
    """``frame`` as the spill file of ``part`` in the folder ``name`` (nothing if empty)."""
    if frame.height == 0:
        return
    folder = Path(spill) / name
    folder.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(folder / f"p-{part}.parquet", compression="lz4", statistics=False)


def read_spill(spill: str, name: str) -> pl.DataFrame | None:
    """Every part's spill file in the folder ``name``, in row order (None: none written)."""
    files = sorted((Path(spill) / name).glob("p-*.parquet"))
    return pl.concat([pl.read_parquet(f) for f in files]).sort("row") if files else None
