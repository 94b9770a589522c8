"""Reader for ``sensor.jsonl``, the verifier-owned stream of ``inspectorate sensor``.

The chain is verified here: a break means someone other than the sensor edited its
file, which the verifier treats as tampering, not as a parse error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from inspectorate.errors import InputError
from inspectorate.trace._canonical import ChainBreak, verify_chain
from inspectorate.trace.streams.steps import read_chain_file

SENSOR_COLUMNS = (
    "t",
    "procs",
    "threads",
    "cpu_s",
    "rss_b",
    "pss_b",
    "minflt",
    "majflt",
    "ctx_vol",
    "ctx_invol",
    "host_cpu_s",
    "host_ncpu",
    "net_rx_b",
    "net_tx_b",
    "gpu_power_w",
    "gpu_util",
    "write_b",  # absent from sensors older than this field: null
)


@dataclass
class SensorLog:
    """Samples as a frame (one row per tick, ``mem_b`` = PSS where readable, else RSS),
    the raw records (per-process readings live there) and the chain's state."""

    path: Path
    frame: pl.DataFrame
    records: list[dict[str, Any]]
    breaks: list[ChainBreak] = field(default_factory=list)
    torn: bool = False
    start: dict[str, Any] = field(default_factory=dict)

    @property
    def intact(self) -> bool:
        return not self.breaks


def read_sensor(path: Path | str) -> SensorLog:
    """Parse and chain-check ``sensor.jsonl``; InputError on malformed samples."""
    path = Path(path)
    records, torn = read_chain_file(path)
    samples = [r for r in records if r.get("kind") == "sample"]
    rows = []
    for i, r in enumerate(samples):
        try:
            rows.append(_row(r))
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"malformed sensor sample ({exc})", path, i + 1) from None
    frame = pl.DataFrame(rows, schema={c: pl.Float64 for c in SENSOR_COLUMNS}) if rows else _empty()
    frame = frame.with_columns(pl.coalesce("pss_b", "rss_b").alias("mem_b")).sort("t")
    start = next((r for r in records if r.get("kind") == "start"), {})
    return SensorLog(path, frame, samples, verify_chain(records), torn, start)


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema={c: pl.Float64 for c in SENSOR_COLUMNS})


def _row(r: dict[str, Any]) -> dict[str, float | None]:
    net = r.get("net") or {}
    gpus = r.get("gpu") or []
    power = [g.get("power_mw") for g in gpus if g.get("power_mw") is not None]
    util = [g.get("util") for g in gpus if g.get("util") is not None]
    row: dict[str, float | None] = {c: _num(r.get(c)) for c in SENSOR_COLUMNS[:12]}
    row["t"] = float(r["t"])
    row["net_rx_b"] = float(sum(v[0] for v in net.values()))
    row["net_tx_b"] = float(sum(v[1] for v in net.values()))
    row["gpu_power_w"] = sum(power) / 1000.0 if power else None
    row["gpu_util"] = sum(util) / len(util) if util else None
    row["write_b"] = _num(r.get("write_b"))
    return row


def _num(value: Any) -> float | None:
    return None if value is None else float(value)


def per_process_cpu(log: SensorLog, t0: float, t1: float) -> dict[int, float]:
    """CPU-seconds each process spent in [t0, t1] (first and last sample inside it)."""
    first: dict[int, float] = {}
    last: dict[int, float] = {}
    for r in log.records:
        if t0 <= r["t"] <= t1:
            for pid, cpu, *_ in r.get("per_proc", []):
                first.setdefault(pid, cpu)
                last[pid] = cpu
    return {pid: last[pid] - first[pid] for pid in last}
