"""What each stream of a run directory shows during one phase, as a small JSON summary
for an LLM inspector (the inspect_ai task's run-directory tracks).

Raw readings only, no verdict of ours (the model is the verifier under test), each stream
tagged with who writes it, so a model can weigh the verifier-owned sensor above the
prover's own step and window records. The labels' ``truth`` field is never read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import polars as pl

from inspectorate.errors import InputError
from inspectorate.trace import Phase, RunDir, load_run

GIB = 2.0**30


def phase_digest(run_path: Path, phase_name: str) -> dict[str, Any]:
    run = load_run(run_path)
    phase = next((p for p in run.phases() if p.name == phase_name), None)
    if phase is None:
        raise InputError(f"no phase named {phase_name!r} in the labels", run_path)
    t1 = phase.t1 if phase.t1 is not None else phase.t0
    streams: dict[str, Any] = {}
    for name, summary in (
        ("sensor", _sensor(run, phase)),
        ("cpu", _cpu(run, phase)),
        ("netdev", _netdev(run, phase)),
        ("nvsmi", _nvsmi(run, phase)),
        ("steps", _rows(run, "steps", phase)),
        ("collectives", _rows(run, "collectives", phase)),
        ("windows", _windows(run, phase)),
    ):
        if summary:
            streams[name] = summary
    return {
        "phase": phase.name,
        "seconds": round(t1 - phase.t0, 3),
        "streams": streams,
        "missing_streams": run.missing_streams,
    }


def _stats(values: pl.Series) -> dict[str, float] | None:
    values = (
        values.drop_nulls().filter(values.drop_nulls().is_finite())
        if values.dtype.is_float()
        else values.drop_nulls()
    )
    if values.is_empty():
        return None
    return {
        "mean": _round(values.mean()),
        "p95": _round(values.quantile(0.95)),
        "max": _round(values.max()),
        "n": values.len(),
    }


def _round(value: Any) -> float:
    return float(f"{float(value):.4g}")


def _within(frame: pl.DataFrame, phase: Phase) -> pl.DataFrame:
    return frame.filter(phase.contains(pl.col("t")).fill_null(False))


def _rate(frame: pl.DataFrame, column: str) -> pl.Series:
    out = frame.sort("t").select(pl.col(column).diff() / pl.col("t").diff()).to_series()
    return out.filter(out >= 0)


def _sensor(run: RunDir, phase: Phase) -> dict[str, Any] | None:
    path = Path(run.path) / "sensor.jsonl"
    if not path.is_file():
        return None
    from inspectorate.trace.streams import read_sensor

    frame = _within(read_sensor(path).frame, phase)
    if frame.height < 2:
        return None
    out: dict[str, Any] = {"owner": "verifier (sensor outside the workload)"}
    out["cpu_cores"] = _stats(_rate(frame, "cpu_s"))
    out["memory_gib"] = _stats(frame["mem_b"] / GIB)
    net = frame.with_columns((pl.col("net_rx_b") + pl.col("net_tx_b")).alias("net"))
    out["nic_bytes_per_s"] = _stats(_rate(net, "net"))
    for col in ("gpu_power_w", "gpu_util"):
        if col in frame.columns:
            out[col] = _stats(frame[col])
    return {k: v for k, v in out.items() if v is not None}


def _cpu(run: RunDir, phase: Phase) -> dict[str, Any] | None:
    frame = run.slice("cpu", phase)
    if frame is None or frame.is_empty():
        return None
    out: dict[str, Any] = {"owner": "host sampler (host-wide)"}
    out |= {c: _stats(frame[c]) for c in ("cpu_percent", "proc_rss_mb", "mem_used_mb") if c in frame.columns}
    return out


def _netdev(run: RunDir, phase: Phase) -> dict[str, Any] | None:
    frame = run.slice("netdev", phase)
    if frame is None or frame.is_empty():
        return None
    per = (
        frame.filter(pl.col("iface") != "lo")
        .group_by("t")
        .agg((pl.col("rx_bytes") + pl.col("tx_bytes")).sum())
    )
    return {"owner": "host (/proc/net/dev)", "bytes_per_s": _stats(_rate(per, "rx_bytes"))}


def _nvsmi(run: RunDir, phase: Phase) -> dict[str, Any] | None:
    frame = run.slice("nvsmi", phase)
    if frame is None or frame.is_empty():
        return None
    cols = ("utilization_gpu", "power_draw_w", "memory_used_mib", "clocks_sm_mhz")
    out: dict[str, Any] = {"owner": "host (nvidia-smi)"}
    return out | {c: _stats(frame[c]) for c in cols if c in frame.columns}


def _rows(run: RunDir, stream: str, phase: Phase) -> dict[str, Any] | None:
    frame = run.slice(stream, phase)
    if frame is None or frame.is_empty():
        return None
    numeric = [c for c, t in frame.schema.items() if t.is_numeric() and c not in ("t", "rank", "step")][:8]
    return {"owner": "prover (the workload's own log)", "records": frame.height} | {
        c: _stats(frame[c]) for c in numeric
    }


def _windows(run: RunDir, phase: Phase) -> dict[str, Any] | None:
    if run.windows is None:
        return None
    frame = run.windows.frame
    t1 = phase.t1 if phase.t1 is not None else float("inf")
    inside = frame.filter((pl.col("ws") <= t1) & (pl.col("we") >= phase.t0))
    if inside.is_empty():
        return None
    return {
        "owner": "prover (window records)",
        "records": inside.height,
        "op_types": sorted(inside["op_type"].drop_nulls().unique().to_list()),
        "flops": _round(inside["flops"].sum()),
        "tokens": _round(inside["tokens_processed"].sum()),
    }
