"""``Trace``: a sequence of window records, columnar for rules, exact for the chain."""

from __future__ import annotations

from typing import Any, Iterable, Iterator

import polars as pl

from inspectorate.errors import InputError
from inspectorate.trace._canonical import ChainBreak, iter_chain_breaks
from inspectorate.trace._frame import frame_from_records, records_from_frame
from inspectorate.trace._schema import RecordError, parse_time, validate_record


class Trace:
    """Window records in file order.

    ``frame`` is the typed Polars view rules read; ``records`` the exact dicts the chain
    hashes (kept when read from JSON, rebuilt from the frame for Parquet). ``head`` is
    the published hash of the last record when one is known (sidecar or caller).
    """

    def __init__(self, frame: pl.DataFrame, records: list[dict[str, Any]] | None = None,
                 source: str = "<memory>", head: str | None = None):
        self.frame = frame
        self._records = records
        self.source = source
        self.head = head

    @classmethod
    def from_records(cls, records: Iterable[dict[str, Any]], source: str = "<memory>",
                     head: str | None = None) -> "Trace":
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

    @property
    def records(self) -> list[dict[str, Any]]:
        if self._records is None:
            self._records = records_from_frame(self.frame)
        return self._records

    def __len__(self) -> int:
        return self.frame.height

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.records)

    def chain_breaks(self) -> list[ChainBreak]:
        """Every break in the hash chain (with the head, when known)."""
        if self._records is None:
            from inspectorate.trace._fastchain import frame_chain_breaks

            return frame_chain_breaks(self.frame, self.head)
        return list(iter_chain_breaks(self._records, self.head))

    def where(self, **equals: Any) -> pl.DataFrame:
        """Rows whose columns equal the given values (lists mean 'any of')."""
        frame = self.frame
        for name, value in equals.items():
            values = value if isinstance(value, (list, tuple, set)) else [value]
            frame = frame.filter(pl.col(name).is_in(list(values)))
        return frame

    def __repr__(self) -> str:
        return f"Trace({self.source!r}, {len(self)} records)"
