"""Reader for ``sensor.jsonl``, the verifier-owned stream of ``inspectorate sensor``.

The chain is verified here: a break means someone other than the sensor edited its
file, which the verifier treats as tampering, not as a parse error.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from inspectorate.errors import InputError
from inspectorate.trace._canonical import ChainBreak, verify_chain
from inspectorate.trace.streams.steps import read_chain_file, scan_chain

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
    # workload scope (capture._scope); null in sensors older than these fields
    "tree_cpu_s",  # sum over the tree's /proc readings (cpu_s is the cgroup's when it has one)
    "net_attributable",  # 1: net_* are the workload's own namespace; 0: host-wide, never decide
    "host_net_rx_b",
    "host_net_tx_b",
    "cg_mem_b",
    "cg_anon_b",
    "io_r_b",
    "io_w_b",
    "gpu_mem_b",  # the workload's PIDs on the GPUs (NVML running compute processes)
    "host_gpu_util",
    # sensor/2 (null in older sensors): the cgroup's page faults (cumulative, exited
    # processes included) and page cache, the tree's anonymous resident memory
    "cg_pgfault",
    "cg_pgmajfault",
    "cg_file_b",
    "anon_rss_b",
    # the tree's working set (capture._workset): bytes touched in [ws_t0, t]; null
    # except on the samples that close a probe interval
    "ws_b",
    "ws_t0",
    # ... and of it, the data mappings' touched bytes, and the estimate of those left
    # unchanged with its standard deviation, and how much the data grew (capture._stillset)
    "ws_data_b",
    "ws_still_b",
    "ws_still_sd_b",
    "ws_grew_b",
    # ... and the estimate of the data bytes an optimizer's small steps moved in place
    "ws_nudged_b",
    "ws_nudged_sd_b",
    # seconds some task of the cgroup waited runnable for a CPU (cumulative, v2 PSI
    # ``cpu.pressure`` some; null without PSI or a v2 group): demand a busy host left unmet
    "cg_cpu_wait_s",
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


@dataclass
class SensorTail:
    """What a streaming pass over ``sensor.jsonl`` keeps of the file itself: the chain's
    breaks, whether the last line was torn, how many samples there were and the time of
    the last one, and the start record (the challenge nonce lives there)."""

    path: Path
    samples: int = 0
    last_t: float | None = None
    breaks: list[ChainBreak] = field(default_factory=list)
    torn: bool = False
    start: dict[str, Any] = field(default_factory=dict)

    @property
    def intact(self) -> bool:
        return not self.breaks


Row = dict[str, float | None]


def scan_sensor(path: Path | str, consume: Callable[[Row, dict[str, Any]], None]) -> SensorTail:
    """One pass over ``sensor.jsonl`` in bounded memory: every sample goes to
    ``consume(row, record)`` in file order (``row`` as in ``read_sensor``'s frame, plus
    ``mem_b``), the chain is checked record by record, and only the tail is kept.

    Same file semantics as ``read_sensor``: a torn last line is dropped and reported, a
    bad line anywhere else is InputError with its line number, a malformed sample too."""
    path = Path(path)
    tail = SensorTail(path)

    def each(_index: int, record: dict[str, Any]) -> None:
        kind = record.get("kind")
        if kind == "start" and not tail.start:
            tail.start = record
        elif kind == "sample":
            tail.samples += 1
            try:
                row = _row(record)
            except (KeyError, TypeError, ValueError) as exc:
                raise InputError(f"malformed sensor sample ({exc})", path, tail.samples) from None
            row["mem_b"] = row["pss_b"] if row["pss_b"] is not None else row["rss_b"]
            tail.last_t = row["t"]
            consume(row, record)

    chain = scan_chain(path, each)
    tail.breaks, tail.torn = chain.breaks, chain.torn
    return tail


def _empty() -> pl.DataFrame:
    return pl.DataFrame(schema={c: pl.Float64 for c in SENSOR_COLUMNS})


def _row(r: dict[str, Any]) -> dict[str, float | None]:
    """One sample. Traffic and GPU columns hold the workload's own counters only: the
    namespace's interfaces when the sensor saw the workload alone in its own network
    namespace (``net_scope == "netns"``), else null (host-wide ``net`` goes to
    ``host_net_*``, shown, never deciding); likewise GPU utilisation of its PIDs."""
    host_net = r.get("net") or {}
    gpus = r.get("gpu") or []
    power = [g.get("power_mw") for g in gpus if g.get("power_mw") is not None]
    util = [g.get("util") for g in gpus if g.get("util") is not None]
    row: dict[str, float | None] = {c: _num(r.get(c)) for c in SENSOR_COLUMNS[:12]}
    row["t"] = float(r["t"])
    row["tree_cpu_s"] = row["cpu_s"]
    cg = r.get("cg") or {}
    if cg.get("cpu_s") is not None:  # the cgroup's CPU: exact, exited processes included
        row["cpu_s"] = float(cg["cpu_s"])
    row["cg_mem_b"], row["cg_anon_b"] = _num(cg.get("mem_b")), _num(cg.get("anon_b"))
    row["io_r_b"], row["io_w_b"] = _num(cg.get("io_r_b")), _num(cg.get("io_w_b"))
    row["cg_cpu_wait_s"] = _num(cg.get("cpu_wait_s"))
    own = r.get("wl_net") if r.get("net_scope") == "netns" else None
    row["net_attributable"] = 1.0 if own is not None else 0.0
    row["net_rx_b"] = float(sum(v[0] for v in own.values())) if own is not None else None
    row["net_tx_b"] = float(sum(v[1] for v in own.values())) if own is not None else None
    row["host_net_rx_b"] = float(sum(v[0] for v in host_net.values()))
    row["host_net_tx_b"] = float(sum(v[1] for v in host_net.values()))
    row["gpu_power_w"] = sum(power) / 1000.0 if power else None  # whole device: shown only
    row["host_gpu_util"] = sum(util) / len(util) if util else None
    procs = r.get("gpu_procs")
    sm = [g["sm_util"] for g in procs or [] if g.get("sm_util") is not None]
    mem = [g["mem_b"] for g in procs or [] if g.get("mem_b") is not None]
    row["gpu_util"] = sum(sm) / len(sm) if sm else None
    row["gpu_mem_b"] = float(sum(mem)) if mem else None
    row["write_b"] = _num(r.get("write_b"))
    row["cg_pgfault"], row["cg_pgmajfault"] = _num(cg.get("pgfault")), _num(cg.get("pgmajfault"))
    row["cg_file_b"], row["anon_rss_b"] = _num(cg.get("file_b")), _num(r.get("anon_rss_b"))
    row["ws_b"], row["ws_t0"] = _num(r.get("ws_b")), _num(r.get("ws_t0"))
    for col in ("ws_data_b", "ws_still_b", "ws_still_sd_b", "ws_grew_b", "ws_nudged_b", "ws_nudged_sd_b"):
        row[col] = _num(r.get(col))
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
