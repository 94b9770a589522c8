"""Per-phase features from the verifier-owned sensor stream (``sensor.jsonl``).

Everything here is measured by the sensor process from ``/proc``: the workload tree's
CPU-seconds, its memory above the run's baseline, the processes that were busy, its
page-fault rate, and the bytes every NIC (loopback included) sent. No prover stream is
read, so a finding built only on these can pass a claim.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import polars as pl

from inspectorate.trace.streams import SensorLog, per_process_cpu, read_sensor

NOT_ATTRIBUTABLE = "unverifiable: traffic not attributable"  # host-wide counters only
BUSY_CORES = 0.1  # a process using a tenth of a core or more over a phase counts as busy
MODEL_HOLDER_SHARE = 0.8  # a process within 80% of the largest one's peak memory may hold a model copy


@dataclass
class SensorRun:
    """The run's sensor log and its memory baseline (lowest tree memory while labelled)."""

    log: SensorLog
    baseline_b: float | None

    @property
    def frame(self) -> pl.DataFrame:
        return self.log.frame


def load_sensor(run_path: Path, span: tuple[float, float] | None) -> SensorRun | None:
    """``sensor.jsonl`` of a flat run dir (None when absent)."""
    path = run_path / "sensor.jsonl"
    if not path.is_file():
        return None
    log = read_sensor(path)
    frame = log.frame
    if span is not None and frame.height:
        frame = frame.filter((pl.col("t") >= span[0]) & (pl.col("t") <= span[1]))
    base = frame["mem_b"].min() if frame.height else None
    return SensorRun(log, float(base) if base is not None else None)  # type: ignore[arg-type]


def issued_nonce(run_path: Path) -> str | None:
    """The challenge the sensor issued when the run began (its start record), if any."""
    path = run_path / "sensor.jsonl"
    if not path.is_file():
        return None
    with path.open(encoding="utf-8") as f:
        try:
            first = json.loads(f.readline())
        except ValueError:
            return None  # a malformed sensor file is reported by its reader
    nonce = first.get("nonce") if isinstance(first, dict) and first.get("kind") == "start" else None
    return str(nonce) if nonce else None


def window(sensor: SensorRun, t0: float, t1: float, bracket: bool = False) -> dict[str, Any]:
    """Sensor features of [t0, t1]; empty when fewer than two samples fall inside.
    ``bracket`` widens the window to the last sample at or before ``t0`` and the first
    at or after ``t1`` (short stretches between phases may hold no sample of their own)."""
    if bracket:
        t = sensor.frame["t"]
        before, after = t.filter(t <= t0), t.filter(t >= t1)
        t0 = float(before.max()) if before.len() else t0  # type: ignore[arg-type]
        t1 = float(after.min()) if after.len() else t1  # type: ignore[arg-type]
    f = sensor.frame.filter((pl.col("t") >= t0) & (pl.col("t") <= t1))
    if f.height < 2:
        return {}
    dt = float(f["t"][-1] - f["t"][0])
    if dt <= 0:
        return {}
    span = max(t1 - t0, dt)

    def delta(col: str) -> float:
        return float(f[col][-1] - f[col][0])

    mem = f["mem_b"].drop_nulls()
    busy = {pid: cpu / dt for pid, cpu in per_process_cpu(sensor.log, t0, t1).items()}
    out: dict[str, Any] = {
        "samples": f.height,
        "seconds": dt,
        "cpu_s": delta("cpu_s") * span / dt,  # scaled to the whole window
        "cores": delta("cpu_s") / dt,
        "host_cores": delta("host_cpu_s") / dt,
        "host_net_tx_b": delta("host_net_tx_b") * span / dt,  # host-wide: shown, never decides
        "minflt_per_s": delta("minflt") / dt,
        "ctx_per_s": (delta("ctx_vol") + delta("ctx_invol")) / dt,
        "busy_procs": sum(1 for v in busy.values() if v >= BUSY_CORES),
        "mem_procs": model_holders(sensor.log, t0, t1),
        "threads_max": float(f["threads"].max() or 0),  # type: ignore[arg-type]
        "gpu_power_w": _mean(f, "gpu_power_w"),
        "gpu_util": _mean(f, "gpu_util"),  # the workload's PIDs only (NVML process samples)
        "host_gpu_util": _mean(f, "host_gpu_util"),
        "gpu_mem_b": _max(f, "gpu_mem_b"),
        "cg_mem_max_b": _max(f, "cg_mem_b"),
        "io_w_b": _delta_or_none(f, "io_w_b"),
        "write_b": _delta_or_none(f, "write_b"),
        # sensor/2 allocator and page-fault signals (None from older sensors): shown, no
        # property decides on them yet (docs/verify.md "Allocator and page-fault fields")
        "cg_pgfault": _delta_or_none(f, "cg_pgfault"),
        "cg_anon_max_b": _max(f, "cg_anon_b"),
        "anon_rss_max_b": _max(f, "anon_rss_b"),
    }
    out.update(_traffic(f, span, dt))
    if mem.len() and sensor.baseline_b is not None:
        out["mem_p90_b"] = float(mem.quantile(0.9) or 0.0)
        out["footprint_b"] = max(out["mem_p90_b"] - sensor.baseline_b, 0.0)
        out["baseline_b"] = sensor.baseline_b
    return out


def model_holders(log: SensorLog, t0: float, t1: float) -> int:
    """How many processes of the tree peaked within ``MODEL_HOLDER_SHARE`` of the largest
    one's memory in [t0, t1]: the ranks that may each hold a whole model copy.

    Memory, not CPU: on a loaded host a rank can get under a tenth of a core, and a
    process that spins costs nothing while it would divide a footprint bound. A decoy
    must hold nearly as much memory as the largest process to count, so dividing the
    tree's footprint by this count under-states the largest holder by 20% at most."""
    peak: dict[int, int] = {}
    for r in log.records:
        if t0 <= r["t"] <= t1:
            for pid, _cpu, rss, *_ in r.get("per_proc", []):
                peak[pid] = max(peak.get(pid, 0), int(rss or 0))
    top = max(peak.values(), default=0)
    return sum(1 for v in peak.values() if v >= MODEL_HOLDER_SHARE * top) if top > 0 else 0


def _traffic(f: pl.DataFrame, span: float, dt: float) -> dict[str, Any]:
    """The workload's own traffic (its namespace's interfaces), only when every sample of
    the window was attributable; otherwise a reason and no number to decide on."""
    own = f["net_tx_b"]
    if f["net_attributable"].min() == 1.0 and own.null_count() == 0:
        return {"net_tx_b": float(own[-1] - own[0]) * span / dt, "net_scope": "netns"}
    return {"traffic": NOT_ATTRIBUTABLE}


def _max(frame: pl.DataFrame, col: str) -> float | None:
    value = frame[col].drop_nulls().max()
    return None if value is None else float(value)  # type: ignore[arg-type]


def _delta_or_none(frame: pl.DataFrame, col: str) -> float | None:
    """Growth of a cumulative counter over the window; None when the sensor lacks it."""
    values = frame[col].drop_nulls()
    return float(values[-1] - values[0]) if values.len() >= 2 else None


def _mean(frame: pl.DataFrame, col: str) -> float | None:
    value = frame[col].drop_nulls().mean()
    return None if value is None else float(value)  # type: ignore[arg-type]
