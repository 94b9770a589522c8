"""``nvidia-smi --query-gpu ... --format=csv`` output (1 Hz GPU dashboard counters)."""

from __future__ import annotations

import re
from pathlib import Path

import polars as pl

from inspectorate.errors import InputError
from inspectorate.trace.streams._text import read_tool_csv

NVSMI_ALIASES = {
    "timestamp": "t",
    "index": "index",
    "name": "name",
    "uuid": "uuid",
    "utilization.gpu": "utilization_gpu",
    "utilization.memory": "utilization_memory",
    "memory.used": "memory_used_mib",
    "memory.total": "memory_total_mib",
    "power.draw": "power_draw_w",
    "power.draw.instant": "power_draw_w",
    "clocks.sm": "clocks_sm_mhz",
    "clocks.current.sm": "clocks_sm_mhz",
    "clocks.mem": "clocks_mem_mhz",
    "clocks.memory": "clocks_mem_mhz",
    "clocks.current.memory": "clocks_mem_mhz",
    "clocks.current.mem": "clocks_mem_mhz",
    "temperature.gpu": "temperature_gpu_c",
}
NVSMI_NUMERIC = (
    "utilization_gpu",
    "utilization_memory",
    "memory_used_mib",
    "memory_total_mib",
    "power_draw_w",
    "clocks_sm_mhz",
    "clocks_mem_mhz",
    "temperature_gpu_c",
)


def read_nvsmi(path: Path | str, *, tz_offset_s: float = 0.0) -> pl.DataFrame:
    """``nvidia-smi --query-gpu=... --format=csv[,nounits][,noheader]`` output, one row per GPU
    per poll: columns t, index, name, the numeric counters (null for ``[N/A]``), and any
    other queried column as a string. A header is required (it names the columns).
    """
    table = read_tool_csv(Path(path))
    names = [NVSMI_ALIASES.get(h, re.sub(r"\W+", "_", h)) for h in table.header]
    if "t" not in names:
        raise InputError("nvsmi header has no 'timestamp' column", table.path, table.header_line)
    source = dict(zip(names, table.header))  # canonical name -> header cell (last alias wins)
    height = table.cells.height
    columns = [table.times(source["t"], tz_offset_s)]
    index = (
        table.floats(source["index"], "index") if "index" in source else pl.repeat(0.0, height, eager=True)
    )
    columns.append(index.cast(pl.Int64).alias("index"))
    name = (
        table.cells[source["name"]].str.strip_chars()
        if "name" in source
        else pl.repeat(None, height, eager=True)
    )
    columns.append(name.cast(pl.Utf8).replace("", None).alias("name"))
    for counter in NVSMI_NUMERIC:
        if counter in source:
            columns.append(table.floats(source[counter], counter))
        else:
            columns.append(pl.repeat(None, height, dtype=pl.Float64, eager=True).alias(counter))
    for other, header in source.items():
        if other not in ("t", "index", "name", *NVSMI_NUMERIC):
            columns.append(table.cells[header].str.strip_chars().alias(other))
    return pl.DataFrame(columns)
