"""Parsers for telemetry streams: nvidia-smi, DCGM, NCCL INFO logs, /proc/net/dev, CPU,
collectives, phase labels and step records.

Why hand-rolled line parsers instead of ``pl.read_csv``: the inputs are tool output
with units, ``[N/A]`` cells, repeated headers and free text interleaved, and a
malformed line must be reported by number (``InputError(reason, path, line)``).
Each parser returns a Polars DataFrame with typed columns; times are float epoch
seconds in ``t``. Wall-clock strings without a zone are read as UTC (our samplers
write UTC); ``tz_offset_s`` shifts them when a capture used local time.
Accepted formats are listed in docs/capture.md.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import polars as pl

from inspectorate.errors import InputError
from inspectorate.trace._canonical import ChainBreak, canonical_json, verify_chain
from inspectorate.trace._io import iter_jsonl

NA = frozenset({"", "n/a", "[n/a]", "na", "[not supported]", "not supported", "[unknown error]", "-"})
_UNIT = re.compile(r"\s*(%|mib|mb|gib|w|mhz|c|kb/s|b/s)$", re.IGNORECASE)
_HEADER_UNIT = re.compile(r"\s*\[[^\]]*\]\s*$")


def _open_text(path: Path) -> io.TextIOBase:
    """Text handle on a plain or gzip file; unreadable input is an InputError."""
    try:
        if path.name.endswith(".gz"):
            return gzip.open(path, "rt", encoding="utf-8", errors="replace")
        return open(path, encoding="utf-8", errors="replace")
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path) from None


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without newline); a broken gzip is an InputError."""
    with _open_text(Path(path)) as handle:
        try:
            for number, line in enumerate(handle, 1):
                yield number, line.rstrip("\r\n")
        except (OSError, EOFError) as exc:
            raise InputError(f"cannot read ({exc})", path) from None


def parse_wallclock(text: str, tz_offset_s: float = 0.0) -> float | None:
    """Epoch seconds from an epoch number or a date-time string; None if neither.

    Accepts ``1745912420.99``, ``2026/04/29 07:20:20.991`` (nvidia-smi),
    ``2026-04-29 07:20:20``, ``2026-04-29T07:20:20.123456Z`` and explicit offsets.
    """
    text = text.strip().strip("[]").strip()
    if re.fullmatch(r"\d{9,11}(\.\d+)?", text):
        return float(text)
    norm = text.replace("/", "-", 2).replace("Z", "+00:00")
    frac = re.search(r"\.(\d+)", norm)
    if frac and len(frac.group(1)) != 6:  # fromisoformat wants 3 or 6 digits on 3.11
        norm = norm.replace(frac.group(0), "." + (frac.group(1) + "000000")[:6], 1)
    try:
        moment = datetime.fromisoformat(norm)
    except ValueError:
        return None
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC).timestamp() - tz_offset_s
    return moment.timestamp()


def _number(cell: str, path: Path, line: int, column: str) -> float | None:
    """A numeric cell with optional unit; N/A-like cells are null."""
    text = cell.strip()
    if text.lower() in NA:
        return None
    try:
        return float(_UNIT.sub("", text))
    except ValueError:
        raise InputError(f"column {column!r}: not a number: {cell.strip()!r}", path, line) from None


def _time(cell: str, path: Path, line: int, tz_offset_s: float) -> float:
    t = parse_wallclock(cell, tz_offset_s)
    if t is None:
        raise InputError(f"not a timestamp: {cell.strip()!r}", path, line)
    return t


def _csv_rows(path: Path) -> tuple[list[str], int, Iterator[tuple[int, list[str]]]]:
    """Header (units stripped, lower-cased), its line number, and the data rows."""
    lines = ((n, text) for n, text in _lines(path) if text.strip() and not text.lstrip().startswith("#"))
    try:
        header_line, header_text = next(lines)
    except StopIteration:
        raise InputError("empty file: no header", path) from None
    header = [_HEADER_UNIT.sub("", h.strip()).lower() for h in next(csv.reader([header_text]))]

    def rows() -> Iterator[tuple[int, list[str]]]:
        for number, text in lines:
            cells = next(csv.reader([text], skipinitialspace=True))
            if [c.strip().lower() for c in cells] == header:
                continue  # a header repeated by a restarted logger
            if len(cells) != len(header):
                raise InputError(f"expected {len(header)} columns, found {len(cells)}", path, number)
            yield number, cells

    return header, header_line, rows()


def _frame(columns: dict[str, list[Any]], schema: dict[str, Any]) -> pl.DataFrame:
    return pl.DataFrame(columns, schema=schema, strict=False)


# --------------------------------------------------------------------------- nvidia-smi

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
    path = Path(path)
    header, header_line, rows = _csv_rows(path)
    names = [NVSMI_ALIASES.get(h, re.sub(r"\W+", "_", h)) for h in header]
    if "t" not in names:
        raise InputError("nvsmi header has no 'timestamp' column", path, header_line)
    cols: dict[str, list[Any]] = {
        n: [] for n in dict.fromkeys(["t", "index", "name", *NVSMI_NUMERIC, *names])
    }
    for number, cells in rows:
        row = dict(zip(names, cells))
        cols["t"].append(_time(row["t"], path, number, tz_offset_s))
        index = _number(row.get("index", "0"), path, number, "index")
        cols["index"].append(None if index is None else int(index))
        cols["name"].append(row.get("name", "").strip() or None)
        for name in cols:
            if name in NVSMI_NUMERIC:
                cols[name].append(_number(row[name], path, number, name) if name in row else None)
            elif name not in ("t", "index", "name"):
                cols[name].append(row[name].strip())
    schema = {n: pl.Float64 if n in NVSMI_NUMERIC or n == "t" else pl.Utf8 for n in cols} | {
        "index": pl.Int64
    }
    return _frame(cols, schema)


# --------------------------------------------------------------------------- DCGM

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
    return _dcgm_frame(cols)


def _pad(cols: dict[str, list[Any]], length: int) -> None:
    """Fields missing from this row (a header changed mid-file) are null."""
    for values in cols.values():
        if len(values) < length:
            values.append(None)


def _dcgm_frame(cols: dict[str, list[Any]]) -> pl.DataFrame:
    n = len(cols["seq"])
    for name in DCGM_COLUMNS:
        cols.setdefault(name, [None] * n)
    schema = {name: pl.Float64 for name in cols} | {"gpu": pl.Int64, "seq": pl.Int64}
    return _frame(cols, schema)


def _read_dcgm_csv(path: Path, tz_offset_s: float) -> pl.DataFrame:
    """CSV with a time column (timestamp/time/t/ts), optional gpu column, one column per field."""
    header, header_line, rows = _csv_rows(path)
    time_col = next((i for i, h in enumerate(header) if h in _DCGM_TIME), None)
    if time_col is None:
        raise InputError(f"DCGM CSV needs a time column (one of {', '.join(_DCGM_TIME)})", path, header_line)
    gpu_col = next((i for i, h in enumerate(header) if h in _DCGM_ENTITY), None)
    fields = {i: _dcgm_column(h) for i, h in enumerate(header) if i not in (time_col, gpu_col)}
    cols: dict[str, list[Any]] = {"t": [], "gpu": [], "seq": [], **{f: [] for f in fields.values()}}
    for number, cells in rows:
        cols["t"].append(_time(cells[time_col], path, number, tz_offset_s))
        gpu = (
            0.0
            if gpu_col is None
            else _number(re.sub(r"(?i)^gpu\s*", "", cells[gpu_col]), path, number, "gpu")
        )
        cols["gpu"].append(None if gpu is None else int(gpu))
        cols["seq"].append(len(cols["seq"]))
        for i, name in fields.items():
            cols[name].append(_number(cells[i], path, number, header[i]))
    return _dcgm_frame(cols)


# --------------------------------------------------------------------------- NCCL

# ncclDataType_t id -> (name, bytes per element), from nccl.h
NCCL_DATATYPES: dict[int, tuple[str, int]] = {
    0: ("int8", 1),
    1: ("uint8", 1),
    2: ("int32", 4),
    3: ("uint32", 4),
    4: ("int64", 8),
    5: ("uint64", 8),
    6: ("float16", 2),
    7: ("float32", 4),
    8: ("float64", 8),
    9: ("bfloat16", 2),
    10: ("float8e4m3", 1),
    11: ("float8e5m2", 1),
}
NCCL_REDOPS = {0: "sum", 1: "prod", 2: "max", 3: "min", 4: "avg"}
_NCCL_LINE = re.compile(
    r"^(?:\[(?P<ts>[^\]]+)\]\s*|(?P<ts2>\d{9,11}\.\d+)\s+)?"
    r"(?P<host>[^\s:\[]+):(?P<pid>\d+):(?P<tid>\d+)\s+\[(?P<dev>\d+)\]\s+NCCL INFO\s+(?P<msg>.*)$"
)
_NCCL_COLL_HINT = re.compile(r"^\w+: opCount ")
_NCCL_COLL = re.compile(
    r"^(?P<op>\w+): opCount (?P<opcount>[0-9a-fA-F]+) sendbuff (?P<send>\S+) recvbuff (?P<recv>\S+) "
    r"count (?P<count>\d+) datatype (?P<dt>\d+) op (?P<redop>\d+) root (?P<root>-?\d+) "
    r"comm (?P<comm>0x[0-9a-fA-F]+)(?: \[nranks=(?P<nranks>\d+)\])?(?: stream (?P<stream>\S+))?"
)
_INIT_FIELDS = {
    k: re.compile(rf"\b{k} (\S+)")
    for k in ("comm", "rank", "nranks", "cudaDev", "nvmlDev", "busId", "commId")
}

NCCL_COLL_SCHEMA = {
    "seq": pl.Int64,
    "line": pl.Int64,
    "t": pl.Float64,
    "host": pl.Utf8,
    "pid": pl.Int64,
    "tid": pl.Int64,
    "dev": pl.Int64,
    "rank": pl.Int64,
    "op": pl.Utf8,
    "opcount": pl.Int64,
    "count": pl.Int64,
    "datatype": pl.Int64,
    "dtype": pl.Utf8,
    "bytes": pl.Int64,
    "redop": pl.Utf8,
    "root": pl.Int64,
    "nranks": pl.Int64,
    "comm": pl.Utf8,
}
NCCL_INIT_SCHEMA = {
    "line": pl.Int64,
    "t": pl.Float64,
    "host": pl.Utf8,
    "pid": pl.Int64,
    "comm": pl.Utf8,
    "rank": pl.Int64,
    "nranks": pl.Int64,
    "cuda_dev": pl.Int64,
    "bus_id": pl.Utf8,
    "comm_id": pl.Utf8,
}


@dataclass
class NcclLog:
    """A parsed NCCL INFO log: one row per collective call, one per communicator init.

    ``bytes`` = count × datatype size: the per-rank buffer NCCL was handed (for
    AllGather the send count). ``rank`` comes from the matching init line (same host,
    pid and comm), null when the log has none. ``other_lines`` counts lines that were
    not NCCL INFO lines (program output interleaved in the log).
    """

    collectives: pl.DataFrame
    inits: pl.DataFrame
    other_lines: int = 0


def read_nccl_log(path: Path | str, *, tz_offset_s: float = 0.0) -> NcclLog:
    """NCCL_DEBUG=INFO log (plain or .gz). Lines carry times only when NCCL was asked to
    print them (NCCL_DEBUG_TIMESTAMP_FORMAT) or a wrapper prefixed ``[epoch]``; else t is null.
    """
    path = Path(path)
    colls: list[dict[str, Any]] = []
    inits: list[dict[str, Any]] = []
    other = 0
    for number, text in _lines(path):
        match = _NCCL_LINE.match(text.strip())
        if match is None:
            other += bool(text.strip())
            continue
        stamp = match["ts"] or match["ts2"]
        base = {
            "line": number,
            "t": None if not stamp else parse_wallclock(stamp, tz_offset_s),
            "host": match["host"],
            "pid": int(match["pid"]),
        }
        msg = match["msg"]
        if _NCCL_COLL_HINT.match(msg):
            colls.append(_nccl_coll(msg, base, int(match["tid"]), int(match["dev"]), path, number))
        elif "Init COMPLETE" in msg:
            inits.append(_nccl_init(msg, base, path, number))
    init_frame = (
        pl.DataFrame(inits, schema=NCCL_INIT_SCHEMA, orient="row")
        if inits
        else pl.DataFrame(schema=NCCL_INIT_SCHEMA)
    )
    ranks = {(i["host"], i["pid"], i["comm"]): (i["rank"], i["nranks"]) for i in inits}
    for seq, row in enumerate(colls):
        rank, nranks = ranks.get((row["host"], row["pid"], row["comm"]), (None, None))
        row.update(seq=seq, rank=rank, nranks=row["nranks"] if row["nranks"] is not None else nranks)
    coll_frame = (
        pl.DataFrame(colls, schema=NCCL_COLL_SCHEMA, orient="row")
        if colls
        else pl.DataFrame(schema=NCCL_COLL_SCHEMA)
    )
    return NcclLog(coll_frame, init_frame, other)


def _nccl_coll(msg: str, base: dict[str, Any], tid: int, dev: int, path: Path, line: int) -> dict[str, Any]:
    match = _NCCL_COLL.match(msg)
    if match is None:
        raise InputError(
            "malformed NCCL collective line (expected opCount/sendbuff/recvbuff/count/datatype/op/root/comm)",
            path,
            line,
        )
    datatype = int(match["dt"])
    name, size = NCCL_DATATYPES.get(datatype, (None, None))
    count = int(match["count"])
    return {
        **base,
        "tid": tid,
        "dev": dev,
        "op": match["op"],
        "opcount": int(match["opcount"], 16),
        "count": count,
        "datatype": datatype,
        "dtype": name,
        "bytes": None if size is None else count * size,
        "redop": NCCL_REDOPS.get(int(match["redop"]), match["redop"]),
        "root": int(match["root"]),
        "nranks": None if match["nranks"] is None else int(match["nranks"]),
        "comm": match["comm"],
    }


def _nccl_init(msg: str, base: dict[str, Any], path: Path, line: int) -> dict[str, Any]:
    found = {k: (m[1] if (m := rx.search(msg)) else None) for k, rx in _INIT_FIELDS.items()}
    if found["comm"] is None or found["rank"] is None or found["nranks"] is None:
        raise InputError("malformed NCCL 'Init COMPLETE' line (needs comm, rank, nranks)", path, line)
    try:
        return {
            **base,
            "comm": found["comm"],
            "rank": int(found["rank"]),
            "nranks": int(found["nranks"]),
            "cuda_dev": None if found["cudaDev"] is None else int(found["cudaDev"]),
            "bus_id": found["busId"],
            "comm_id": found["commId"],
        }
    except ValueError:
        raise InputError(
            "malformed NCCL 'Init COMPLETE' line (rank/nranks not integers)", path, line
        ) from None


# --------------------------------------------------------------------------- /proc/net/dev

NETDEV_FIELDS = (
    "rx_bytes",
    "rx_packets",
    "rx_errs",
    "rx_drop",
    "rx_fifo",
    "rx_frame",
    "rx_compressed",
    "rx_multicast",
    "tx_bytes",
    "tx_packets",
    "tx_errs",
    "tx_drop",
    "tx_fifo",
    "tx_colls",
    "tx_carrier",
    "tx_compressed",
)
_NETDEV_SEP = re.compile(r"^---\s*(?P<ts>.+?)\s*---$")


def read_netdev(path: Path | str, *, tz_offset_s: float = 0.0) -> pl.DataFrame:
    """``--- <epoch> ---`` + /proc/net/dev snapshots -> one row per (snapshot, interface)."""
    path = Path(path)
    cols: dict[str, list[Any]] = {"t": [], "snapshot": [], "iface": [], **{f: [] for f in NETDEV_FIELDS}}
    t: float | None = None
    snapshot = -1
    for number, text in _lines(path):
        stripped = text.strip()
        sep = _NETDEV_SEP.match(stripped)
        if sep:
            t, snapshot = _time(sep["ts"], path, number, tz_offset_s), snapshot + 1
        elif not stripped or "|" in stripped:
            continue  # blank or one of the two /proc/net/dev header lines
        elif t is None:
            raise InputError("interface line before the first '--- <epoch> ---' separator", path, number)
        else:
            _netdev_row(cols, stripped, t, snapshot, path, number)
    schema = {"t": pl.Float64, "snapshot": pl.Int64, "iface": pl.Utf8} | {f: pl.Int64 for f in NETDEV_FIELDS}
    return _frame(cols, schema)


def _netdev_row(
    cols: dict[str, list[Any]], text: str, t: float, snapshot: int, path: Path, line: int
) -> None:
    iface, sep, rest = text.partition(":")
    values = rest.split()
    if not sep or len(values) != len(NETDEV_FIELDS) or not all(v.isdigit() for v in values):
        raise InputError(f"expected '<iface>: {len(NETDEV_FIELDS)} counters'", path, line)
    cols["t"].append(t)
    cols["snapshot"].append(snapshot)
    cols["iface"].append(iface.strip())
    for name, value in zip(NETDEV_FIELDS, values):
        cols[name].append(int(value))


def netdev_rates(frame: pl.DataFrame) -> pl.DataFrame:
    """Per interface and interval: t0, t1, dt, rx/tx bytes and packets per second.

    A counter that goes down (interface reset, 32-bit wrap) gives a null rate rather than
    a negative one.
    """
    counters = ("rx_bytes", "tx_bytes", "rx_packets", "tx_packets")
    diffs = [pl.col(c).diff().over("iface").alias(f"d_{c}") for c in counters]
    out = (
        frame.sort("iface", "t")
        .with_columns(pl.col("t").shift(1).over("iface").alias("t0"), *diffs)
        .with_columns((pl.col("t") - pl.col("t0")).alias("dt"))
        .rename({"t": "t1"})
        .filter(pl.col("t0").is_not_null() & (pl.col("dt") > 0))
    )
    rates = [
        pl.when(pl.col(f"d_{c}") >= 0)
        .then(pl.col(f"d_{c}") / pl.col("dt"))
        .otherwise(None)
        .alias(f"{c}_per_s")
        for c in counters
    ]
    return out.select("iface", "t0", "t1", "dt", *rates)


# --------------------------------------------------------------------------- CPU


def read_cpu(path: Path | str) -> pl.DataFrame:
    """``cpu.csv`` from CpuSampler: t plus every other column as Float64."""
    path = Path(path)
    header, header_line, rows = _csv_rows(path)
    if "timestamp" not in header:
        raise InputError("cpu.csv header has no 'timestamp' column", path, header_line)
    names = ["t" if h == "timestamp" else h for h in header]
    cols: dict[str, list[Any]] = {n: [] for n in names}
    for number, cells in rows:
        for name, cell in zip(names, cells):
            value = _time(cell, path, number, 0.0) if name == "t" else _number(cell, path, number, name)
            cols[name].append(value)
    return _frame(cols, {n: pl.Float64 for n in names})


# --------------------------------------------------------------------------- JSONL streams

COLLECTIVE_SCHEMA = {
    "t": pl.Float64,
    "rank": pl.Int64,
    "world_size": pl.Int64,
    "op": pl.Utf8,
    "bytes": pl.Int64,
    "duration_s": pl.Float64,
    "dtype": pl.Utf8,
    "phase": pl.Utf8,
}
LABEL_SCHEMA = {"event": pl.Utf8, "phase": pl.Utf8, "claimed": pl.Utf8, "truth": pl.Utf8, "t": pl.Float64}


def _objects(path: Path) -> Iterator[tuple[int, dict[str, Any]]]:
    if not path.exists():
        raise InputError("no such file", path)
    for number, obj in iter_jsonl(path):
        if not isinstance(obj, dict):
            raise InputError("each line must be a JSON object", path, number)
        yield number, obj


def read_collectives(path: Path | str) -> pl.DataFrame:
    """``collectives.jsonl`` (CollectiveLog): one row per all-reduce."""
    path = Path(path)
    rows = []
    for number, obj in _objects(path):
        missing = [k for k in ("t", "rank", "op", "bytes") if k not in obj]
        if missing:
            raise InputError(f"collective record lacks {', '.join(missing)}", path, number)
        rows.append({k: obj.get(k) for k in COLLECTIVE_SCHEMA})
    return (
        pl.DataFrame(rows, schema=COLLECTIVE_SCHEMA, orient="row")
        if rows
        else pl.DataFrame(schema=COLLECTIVE_SCHEMA)
    )


_LABEL_KEYS = {
    "event": ("event", "type", "kind"),
    "claimed": ("claimed", "claimed_label", "label"),
    "truth": ("truth", "true_label", "truth_label"),
}
_EVENTS = {
    "start": "start",
    "phase_start": "start",
    "begin": "start",
    "end": "end",
    "phase_end": "end",
    "stop": "end",
}


def _first(obj: dict[str, Any], keys: tuple[str, ...]) -> Any:
    return next((obj[k] for k in keys if k in obj), None)


def read_labels(path: Path | str) -> pl.DataFrame:
    """``workload_labels.jsonl``: event (start|end), phase, claimed, truth, t.

    ``t`` may be epoch seconds or an ISO time; ``type``/``kind`` are read as ``event``
    and ``claimed_label``/``true_label`` as ``claimed``/``truth``.
    """
    path = Path(path)
    rows = []
    for number, obj in _objects(path):
        event = _EVENTS.get(str(_first(obj, _LABEL_KEYS["event"])).lower())
        if event is None or "phase" not in obj:
            raise InputError("a label needs 'event' (start|end) and 'phase'", path, number)
        raw_t = _first(obj, ("t", "time", "timestamp"))
        t = float(raw_t) if isinstance(raw_t, (int, float)) else parse_wallclock(str(raw_t or ""))
        if t is None:
            raise InputError(f"label has no usable time: {raw_t!r}", path, number)
        rows.append(
            {
                "event": event,
                "phase": str(obj["phase"]),
                "claimed": _first(obj, _LABEL_KEYS["claimed"]),
                "truth": _first(obj, _LABEL_KEYS["truth"]),
                "t": t,
            }
        )
    return (
        pl.DataFrame(rows, schema=LABEL_SCHEMA, orient="row") if rows else pl.DataFrame(schema=LABEL_SCHEMA)
    )


@dataclass
class StepLog:
    """Step records of one file: a flat frame, the raw records, and the chain's state.

    ``torn``: the file ended in a partial line (the writer was killed mid-record); the
    records before it are intact and the chain is checked over them.
    """

    path: Path
    frame: pl.DataFrame
    records: list[dict[str, Any]]
    breaks: list[ChainBreak] = field(default_factory=list)
    torn: bool = False

    @property
    def intact(self) -> bool:
        return not self.breaks


def _flatten(record: dict[str, Any]) -> dict[str, Any]:
    """One level of nesting becomes ``outer.inner`` columns; lists become canonical JSON text."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            for inner, v in value.items():
                flat[f"{key}.{inner}"] = canonical_json(v) if isinstance(v, (dict, list)) else v
        elif isinstance(value, list):
            flat[key] = canonical_json(value)
        else:
            flat[key] = value
    return flat


def _json_object(raw: bytes, path: Path, line: int) -> dict[str, Any]:
    try:
        obj = json.loads(raw, parse_constant=_no_constants)
    except ValueError as exc:
        raise InputError(f"not valid JSON ({str(exc).splitlines()[0][:120]})", path, line) from None
    if not isinstance(obj, dict):
        raise InputError("each line must be a JSON object", path, line)
    return obj


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def is_complete_line(raw: bytes) -> bool:
    """A last line lacking its newline is whole only if it parses as a JSON object:
    a write torn before the newline has lost the closing brace."""
    try:
        return isinstance(json.loads(raw, parse_constant=_no_constants), dict)
    except ValueError:
        return False


def read_chain_file(path: Path | str) -> tuple[list[dict[str, Any]], bool]:
    """Complete records of a JSONL chain file, and whether a torn (partial) last line
    was dropped: what a process killed mid-write leaves. A bad line anywhere else is
    corruption, not a crash artefact: InputError with its line number.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path) from None
    lines = data.split(b"\n")
    tail = lines.pop()  # after the last newline: empty when the file ends cleanly
    torn = bool(tail.strip()) and not is_complete_line(tail)
    if tail.strip() and not torn:
        lines.append(tail)
    return [_json_object(raw, path, n) for n, raw in enumerate(lines, 1) if raw.strip()], torn


def read_steps(path: Path | str) -> StepLog:
    """Step records (``steps.jsonl``) with their hash chain verified; breaks are reported,
    not raised, because a broken chain is evidence for the verifier, not a parse error.
    """
    path = Path(path)
    records, torn = read_chain_file(path)
    try:
        frame = (
            pl.DataFrame([_flatten(r) for r in records], infer_schema_length=None)
            if records
            else pl.DataFrame()
        )
    except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        raise InputError(f"step records do not form a table ({exc})", path) from None
    return StepLog(path, frame, records, verify_chain(records), torn)
