"""DCGM profiling fields (``dcgmi dmon`` text or CSV): fields 1001-1012."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polars as pl

from inspectorate.errors import InputError
from inspectorate.trace.streams._text import _lines, _number, _time, read_tool_csv

# field id -> (canonical column, DCGM_FI_PROF_ name, dcgmi dmon short name)
DCGM_FIELDS: dict[int, tuple[str, str, str]] = {
    1001: ("gr_engine_active", "GR_ENGINE_ACTIVE", "GRACT"),
    1002: ("sm_active", "SM_ACTIVE", "SMACT"),
    1003: ("sm_occupancy", "SM_OCCUPANCY", "SMOCC"),
    1004: ("tensor_active", "PIPE_TENSOR_ACTIVE", "TENSO"),
    1005: ("dram_active", "DRAM_ACTIVE", "DRAMA"),
    1006: ("fp64_active", "PIPE_FP64_ACTIVE", "FP64A"),
    1007: ("fp32_active", "PIPE_FP32_ACTIVE", "FP32A"),
    1008: ("fp16_active", "PIPE_FP16_ACTIVE", "FP16A"),
    1009: ("pcie_tx_bytes", "PCIE_TX_BYTES", "PCITX"),
    1010: ("pcie_rx_bytes", "PCIE_RX_BYTES", "PCIRX"),
    1011: ("nvlink_tx_bytes", "NVLINK_TX_BYTES", "NVLTX"),
    1012: ("nvlink_rx_bytes", "NVLINK_RX_BYTES", "NVLRX"),
}
DCGM_COLUMNS = tuple(DCGM_FIELDS[f][0] for f in (1001, 1002, 1003, 1004, 1005, 1009, 1010, 1011, 1012))
_DCGM_ALIASES = {"tensor_active": "tensor_active", "1004": "tensor_active"}
for _fid, (_col, _long, _short) in DCGM_FIELDS.items():
    for _alias in (str(_fid), _col, _long.lower(), f"dcgm_fi_prof_{_long.lower()}", _short.lower()):
        _DCGM_ALIASES[_alias] = _col
_DCGM_TIME = ("timestamp", "time", "t", "ts", "epoch")
_DCGM_ENTITY = ("gpu", "entity", "entity_id", "gpu_id", "index", "entityid")


def _dcgm_column(name: str) -> str:
    key = name.strip().lower()
    return _DCGM_ALIASES.get(
        key, _DCGM_ALIASES.get(key.removeprefix("dcgm_fi_prof_"), re.sub(r"\W+", "_", key))
    )


def read_dcgm(path: Path | str, *, tz_offset_s: float = 0.0) -> pl.DataFrame:
    """DCGM profiling samples: columns t (null when the source has none), gpu, seq (row
    order), the nine fields 1001-1005 and 1009-1012 (null when not collected) and any
    other field present. Accepts ``dcgmi dmon -e ...`` text and CSV (see docs/capture.md).
    """
    path = Path(path)
    first = next((text for _, text in _lines(path) if text.strip()), "")
    if first.lstrip().startswith("#") and "entity" in first.lower():
        return _read_dmon(path, tz_offset_s)
    return _read_dcgm_csv(path, tz_offset_s)


_DMON_ROW = re.compile(r"^(?P<pre>.*?)\bGPU\s+(?P<gpu>\d+)\s+(?P<vals>\S.*)$")


def _read_dmon(path: Path, tz_offset_s: float) -> pl.DataFrame:
    """``dcgmi dmon`` text: ``#Entity GRACT ...`` header, ``ID`` unit line, ``GPU 0 v ...`` rows.

    A row may carry a leading timestamp (e.g. added by ``ts`` or a wrapper script).
    """
    fields: list[str] = []
    cols: dict[str, list[Any]] = {"t": [], "gpu": [], "seq": []}
    for number, text in _lines(path):
        stripped = text.strip()
        if not stripped or stripped.upper() == "ID" or stripped.startswith("ID "):
            continue
        if stripped.startswith("#"):
            fields = [_dcgm_column(f) for f in stripped.lstrip("#").split()[1:]]
            continue
        match = _DMON_ROW.match(stripped)
        if match is None or not fields:
            raise InputError("expected a 'GPU <id> <values>' row after a '#Entity' header", path, number)
        values = match["vals"].split()
        if len(values) != len(fields):
            raise InputError(f"expected {len(fields)} values, found {len(values)}", path, number)
        cols["t"].append(_time(match["pre"], path, number, tz_offset_s) if match["pre"].strip() else None)
        cols["gpu"].append(int(match["gpu"]))
        cols["seq"].append(len(cols["seq"]))
        for name, value in zip(fields, values):
            cols.setdefault(name, [None] * (len(cols["seq"]) - 1)).append(_number(value, path, number, name))
        _pad(cols, len(cols["seq"]))
    return _dcgm_frame(pl.DataFrame(cols, schema=dict.fromkeys(cols, pl.Float64), strict=False))


def _pad(cols: dict[str, list[Any]], length: int) -> None:
    """Fields missing from this row (a header changed mid-file) are null."""
    for values in cols.values():
        if len(values) < length:
            values.append(None)


def _dcgm_frame(frame: pl.DataFrame) -> pl.DataFrame:
    """Every canonical field present (null when not collected); t Float64, gpu and seq Int64."""
    missing = [pl.lit(None, dtype=pl.Float64).alias(n) for n in DCGM_COLUMNS if n not in frame.columns]
    typed = [pl.col(n).cast(pl.Int64 if n in ("gpu", "seq") else pl.Float64) for n in frame.columns]
    return frame.with_columns(*missing).with_columns(typed)


def _read_dcgm_csv(path: Path, tz_offset_s: float) -> pl.DataFrame:
    """CSV with a time column (timestamp/time/t/ts), optional gpu column, one column per field."""
    table = read_tool_csv(path)
    time_col = next((h for h in table.header if h in _DCGM_TIME), None)
    if time_col is None:
        raise InputError(
            f"DCGM CSV needs a time column (one of {', '.join(_DCGM_TIME)})", path, table.header_line
        )
    gpu_col = next((h for h in table.header if h in _DCGM_ENTITY), None)
    height = table.cells.height
    if gpu_col is None:
        gpu = pl.repeat(0, height, dtype=pl.Int64, eager=True)
    else:  # "GPU 0" or "0"
        table.cells = table.cells.with_columns(pl.col(gpu_col).str.replace(r"(?i)^\s*gpu\s*", ""))
        gpu = table.floats(gpu_col).cast(pl.Int64)
    columns = [
        table.times(time_col, tz_offset_s),
        gpu.alias("gpu"),
        pl.Series("seq", range(height), pl.Int64),
    ]
    columns += [table.floats(h, _dcgm_column(h)) for h in table.header if h not in (time_col, gpu_col)]
    return _dcgm_frame(pl.DataFrame(columns))
