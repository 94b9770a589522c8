"""``Trace``: a sequence of window records, columnar for rules, exact for the chain."""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import polars as pl

from inspectorate.errors import InputError
from inspectorate.trace._canonical import PREV_FIELD, ChainBreak, iter_chain_breaks
from inspectorate.trace._frame import frame_from_records, records_from_frame
from inspectorate.trace._schema import RecordError, parse_time, validate_record

# Above this many records, and with at least PARALLEL_MIN_CORES cores, a Parquet-backed
# chain is verified by worker processes. Starting them costs about a second, and on two
# cores they gain nothing: the sequential path already keeps both busy (measured,
# docs/benchmarks.md).
PARALLEL_ABOVE = 500_000
PARALLEL_MIN_CORES = 4


class Trace:
    """Window records in file order.

    ``frame`` is the typed Polars view rules read; ``records`` the exact dicts the chain
    hashes (kept when read from JSON, rebuilt from the frame for Parquet). ``head`` is
    the published hash of the last record when one is known (sidecar or caller).
    """

    def __init__(
        self,
        frame: pl.DataFrame,
        records: list[dict[str, Any]] | None = None,
        source: str = "<memory>",
        head: str | None = None,
        backing: Path | None = None,
    ):
        self.frame = frame
        self._records = records
        self.source = source
        self.head = head
        # How many records the published head covers, when its sidecar says (a file
        # shorter than that was truncated: the reason the head break then gives).
        self.head_records: int | None = None
        # A Parquet file the frame was read from. Large traces keep only the columns rules
        # read in memory; the chain and the exact records are streamed from here.
        self.backing = backing
        # The SHA-256 of every record's canonical bytes when the reader spelled them from
        # the file's own lines (JSONL), valid only for the frame they were computed with.
        self._digests: tuple[pl.DataFrame, bytes] | None = None

    def know_digests(self, digests: bytes) -> None:
        """Record the 32-byte canonical digest of every row of the current ``frame``, so
        the chain compares them instead of spelling the rows again. A frame replaced
        later is hashed afresh."""
        if len(digests) != 32 * self.frame.height:
            raise ValueError("one 32-byte digest per row")
        self._digests = (self.frame, digests)

    @classmethod
    def from_records(
        cls, records: Iterable[dict[str, Any]], source: str = "<memory>", head: str | None = None
    ) -> Trace:
        """Validate ``records`` (raising InputError with the record's position) and wrap them."""
        records = list(records)
        times = []
        for index, record in enumerate(records):
            try:
                validate_record(record)
            except RecordError as exc:
                raise InputError(f"record {index}: {exc}", source) from None
            times.append((parse_time(record["window_start"]), parse_time(record["window_end"])))
        return cls(frame_from_records(records, times), records, source, head)

    def _backing_path(self) -> Path:
        if self.backing is None:  # a lean frame is only ever built from a Parquet file
            raise RuntimeError("lean trace without a backing file")
        return self.backing

    @property
    def lean(self) -> bool:
        """True when the frame lacks the columns only the chain needs (read from ``backing``)."""
        return PREV_FIELD not in self.frame.columns

    def full_frame(self) -> pl.DataFrame:
        """The frame with every schema column (re-read from ``backing`` when lean)."""
        if not self.lean:
            return self.frame
        from inspectorate.trace._io import read_parquet_frame

        return read_parquet_frame(self._backing_path())

    @property
    def records(self) -> list[dict[str, Any]]:
        if self._records is None:
            self._records = records_from_frame(self.full_frame())
        return self._records

    def last_record(self) -> dict[str, Any]:
        if self._records is not None:
            return self._records[-1]
        if self.lean:
            from inspectorate.trace._io import read_parquet_frame

            return records_from_frame(read_parquet_frame(self._backing_path(), last_only=True))[0]
        return records_from_frame(self.frame.tail(1))[0]

    def __len__(self) -> int:
        return self.frame.height

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def chain_breaks(self) -> list[ChainBreak]:
        """Every break in the hash chain (with the head, when known). When the head's
        sidecar counts a different number of records than the file holds, the head
        break says so ("truncated: N records, the published head covers M")."""
        breaks = self._chain_breaks()
        covers, count = self.head_records, len(self)
        if self.head is None or covers is None or covers == count:
            return breaks
        at_head = [b for b in breaks if b.index == count]
        rest = [b for b in breaks if b.index != count]
        if at_head:
            head_break = replace(at_head[0], covers=covers)
        else:  # the head matches yet the count disagrees: the sidecar itself is inconsistent
            last = self.last_record() if count else {}
            head_break = ChainBreak(
                count, None, max(count - 1, 0), last.get("record_id"), self.head, self.head, covers
            )
        return [*rest, head_break]

    def _chain_breaks(self) -> list[ChainBreak]:
        if self._records is not None:
            return list(iter_chain_breaks(self._records, self.head))
        from inspectorate.trace._fastchain import chunk_chain_breaks, frame_chain_breaks

        if (
            self.backing is not None
            and len(self) > PARALLEL_ABOVE
            and (os.cpu_count() or 1) >= PARALLEL_MIN_CORES
        ):
            from inspectorate.trace._fastchain import parquet_chain_breaks

            return parquet_chain_breaks(self.backing, self.head)
        if self.lean:
            import pyarrow as pa

            from inspectorate.trace._io import iter_parquet_chunks

            breaks = chunk_chain_breaks(iter_parquet_chunks(self._backing_path()), self.head)
            # Arrow's allocator keeps the chunks' freed pages; hand them back, or the
            # streamed chain leaves ~0.8 GB resident at 10^7 records for the rules after it.
            pa.default_memory_pool().release_unused()
            return breaks
        known = self._digests[1] if self._digests is not None and self._digests[0] is self.frame else None
        return frame_chain_breaks(self.frame, self.head, known)

    def where(self, **equals: Any) -> pl.DataFrame:
        """Rows whose columns equal the given values (lists mean 'any of')."""
        frame = self.frame
        for name, value in equals.items():
            values = value if isinstance(value, (list, tuple, set)) else [value]
            frame = frame.filter(pl.col(name).is_in(list(values)))
        return frame

    def __repr__(self) -> str:
        return f"Trace({self.source!r}, {len(self)} records)"


def row_group_batches(path: str, parts: int) -> list[tuple[list[int], int]]:
    """The file's row groups in at most ``parts`` contiguous runs: (groups, first row)."""
    import pyarrow.parquet as pq

    meta = pq.ParquetFile(path).metadata
    sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
    count = len(sizes)
    parts = max(min(parts, count), 1)
    runs = [list(range(i * count // parts, (i + 1) * count // parts)) for i in range(parts)]
    return [(run, sum(sizes[: run[0]])) for run in runs if run]
