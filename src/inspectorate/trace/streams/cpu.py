"""``cpu.csv`` written by the CPU sampler (psutil)."""

from __future__ import annotations

from pathlib import Path

import polars as pl

from inspectorate.errors import InputError
from inspectorate.trace.streams._text import read_tool_csv


def read_cpu(path: Path | str) -> pl.DataFrame:
    """``cpu.csv`` from CpuSampler: t plus every other column as Float64."""
    table = read_tool_csv(Path(path))
    if "timestamp" not in table.header:
        raise InputError("cpu.csv header has no 'timestamp' column", table.path, table.header_line)
    return pl.DataFrame(
        [table.times("timestamp") if h == "timestamp" else table.floats(h) for h in table.header]
    )
