"""NCCL INFO logs (``NCCL_DEBUG=INFO NCCL_DEBUG_SUBSYS=INIT,COLL``), plain or gzip."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from inspectorate.errors import InputError
from inspectorate.trace.streams._text import _lines, parse_wallclock

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
