"""``/proc/net/dev`` snapshots separated by ``--- <epoch> ---`` lines, and their rates."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import polars as pl

from inspectorate.errors import InputError
from inspectorate.trace.streams._text import _frame, _lines, _time

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
