"""Telemetry series for the report's plots, drawn from a run directory and downsampled.

Each panel is one signal a verifier reads (CPU cores, memory footprint, NIC bytes/s, GPU
power and utilisation), taken from the most trustworthy stream that has it: the
verifier-owned sensor (``sensor.jsonl``) first, then the host samplers (``cpu.csv``,
``netdev.log``, ``nvsmi.csv``). The panel names the stream it came from, so the page can
mark the panels a deciding finding rests on (a finding's ``basis`` names streams).

Downsampling is min/max decimation: the run's span is cut into ``buckets`` equal time
bins and each series keeps, per bin, its lowest and its highest sample at their own
times. A 15-phase, multi-hour run at 10 Hz then plots at most ``2 * buckets`` points per
series, and a one-second spike (the thing a reader looks for in a lying phase) survives,
where averaging would flatten it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import polars as pl

from inspectorate.trace import RunDir

BUCKETS = 400
GIB = 2.0**30


@dataclass(frozen=True)
class Panel:
    """One plotted signal: long-format rows ``t`` (s since run start), ``value``, ``series``."""

    key: str
    title: str
    unit: str
    stream: str
    frame: pl.DataFrame
    raw_points: int

    def rows(self) -> list[dict[str, Any]]:
        return self.frame.select("t", "value", "series", "segment").to_dicts()


def panels(run: RunDir, origin: float, sensor: pl.DataFrame | None, buckets: int = BUCKETS) -> list[Panel]:
    """Every signal this run has, downsampled; absent streams simply give no panel."""
    found = [
        _cpu_cores(run, sensor),
        _memory(run, sensor),
        _nic(run, sensor),
        _nvsmi(run, "power_draw_w", "gpu_power", "GPU power", "W"),
        _nvsmi(run, "utilization_gpu", "gpu_util", "GPU utilisation", "%"),
        _nvsmi(run, "memory_used_mib", "gpu_memory", "GPU memory", "MiB"),
    ]
    if run.nvsmi is None and sensor is not None:
        found.append(_sensor_col(sensor, "gpu_power_w", "gpu_power", "GPU power", "W"))
        found.append(_sensor_col(sensor, "gpu_util", "gpu_util", "GPU utilisation", "%"))
    out = []
    for key, title, unit, stream, frame in (f for f in found if f is not None):
        frame = frame.drop_nulls(["t", "value"]).filter(pl.col("value").is_finite())
        if frame.height:
            shifted = frame.with_columns(pl.col("t") - origin)
            out.append(Panel(key, title, unit, stream, segments(decimate(shifted, buckets)), frame.height))
    return out


def segments(frame: pl.DataFrame, gap_factor: float = 5.0) -> pl.DataFrame:
    """Number the runs of samples without a gap (a step over ``gap_factor`` times the
    series' median step, e.g. between the per-phase files of a capture), so the plot
    draws no line through time nobody sampled."""
    step = pl.col("t").diff().over("series")
    gap = (step > gap_factor * step.median().over("series")).fill_null(False)
    return frame.sort("series", "t").with_columns(
        (pl.col("series") + ":" + gap.cast(pl.Int64).cum_sum().over("series").cast(pl.Utf8)).alias("segment")
    )


def decimate(frame: pl.DataFrame, buckets: int = BUCKETS) -> pl.DataFrame:
    """Per series and time bin, the min and the max sample (see the module docstring)."""
    if frame.height <= 2 * buckets:
        return frame.sort("series", "t")
    lo, hi = frame.select(pl.col("t").min()).item(), frame.select(pl.col("t").max()).item()
    width = max((hi - lo) / buckets, 1e-9)
    binned = frame.with_columns(((pl.col("t") - lo) / width).floor().cast(pl.Int64).alias("_bin"))
    keep = binned.group_by("series", "_bin").agg(
        pl.col("t").get(pl.col("value").arg_min()).alias("t_min"),
        pl.col("value").min().alias("v_min"),
        pl.col("t").get(pl.col("value").arg_max()).alias("t_max"),
        pl.col("value").max().alias("v_max"),
    )
    low = keep.select("series", pl.col("t_min").alias("t"), pl.col("v_min").alias("value"))
    high = keep.select("series", pl.col("t_max").alias("t"), pl.col("v_max").alias("value"))
    return pl.concat([low, high]).unique(maintain_order=False).sort("series", "t")


Found = tuple[str, str, str, str, pl.DataFrame] | None


def _rate(frame: pl.DataFrame, column: str, by: str = "series") -> pl.DataFrame:
    """Per-second rate of a cumulative counter (resets and clock steps dropped)."""
    out = frame.sort(by, "t").with_columns(
        (pl.col(column).diff().over(by) / pl.col("t").diff().over(by)).alias("value")
    )
    return out.filter(pl.col("value") >= 0).select("t", "value", by)


def _cpu_cores(run: RunDir, sensor: pl.DataFrame | None) -> Found:
    if sensor is not None and "cpu_s" in sensor.columns:
        frame = _rate(sensor.with_columns(pl.lit("workload").alias("series")), "cpu_s")
        return "cpu_cores", "CPU cores (workload)", "cores", "sensor", frame
    if run.cpu is not None and "cpu_percent" in run.cpu.columns:
        ncpu = _ncpu(run)
        frame = run.cpu.select(
            "t", (pl.col("cpu_percent") * ncpu / 100.0).alias("value"), pl.lit("host").alias("series")
        )
        return "cpu_cores", "CPU cores (host)", "cores", "cpu", frame
    return None


def _ncpu(run: RunDir) -> float:
    prov = run.provenance or {}
    return float(prov.get("cpu_count_logical") or prov.get("cpu_count") or 1)


def _memory(run: RunDir, sensor: pl.DataFrame | None) -> Found:
    if sensor is not None and "mem_b" in sensor.columns:
        frame = sensor.select("t", (pl.col("mem_b") / GIB).alias("value"), pl.lit("workload").alias("series"))
        return "memory", "Memory footprint (workload)", "GiB", "sensor", frame
    if run.cpu is not None and "proc_rss_mb" in run.cpu.columns:
        frame = run.cpu.select(
            "t", (pl.col("proc_rss_mb") / 1024.0).alias("value"), pl.lit("process RSS").alias("series")
        )
        return "memory", "Memory footprint (process RSS)", "GiB", "cpu", frame
    return None


def _nic(run: RunDir, sensor: pl.DataFrame | None) -> Found:
    if sensor is not None and {"net_rx_b", "net_tx_b"} <= set(sensor.columns):
        both = sensor.select(
            "t",
            (pl.col("net_rx_b") + pl.col("net_tx_b")).alias("bytes"),
            pl.lit("workload").alias("series"),
        )
        return "nic", "NIC bytes/s (rx+tx)", "B/s", "sensor", _rate(both, "bytes")
    if run.netdev is None:
        return None
    host = pl.col("host") if "host" in run.netdev.columns else pl.lit("host")
    real = run.netdev.filter(pl.col("iface") != "lo").with_columns(host.alias("series"))
    per_snapshot = real.group_by("series", "t").agg(
        (pl.col("rx_bytes") + pl.col("tx_bytes")).sum().alias("bytes")
    )
    return "nic", "NIC bytes/s (rx+tx, all interfaces but lo)", "B/s", "netdev", _rate(per_snapshot, "bytes")


def _nvsmi(run: RunDir, column: str, key: str, title: str, unit: str) -> Found:
    frame = run.nvsmi
    if frame is None or column not in frame.columns:
        return None
    host = pl.col("host").cast(pl.Utf8) + "/" if "host" in frame.columns else pl.lit("")
    series = (host + pl.lit("gpu") + pl.col("index").cast(pl.Utf8)).alias("series")
    return key, title, unit, "nvsmi", frame.select("t", pl.col(column).alias("value"), series)


def _sensor_col(sensor: pl.DataFrame, column: str, key: str, title: str, unit: str) -> Found:
    if column not in sensor.columns or sensor[column].null_count() == sensor.height:
        return None
    return (
        key,
        title,
        unit,
        "sensor",
        sensor.select("t", pl.col(column).alias("value"), pl.lit("workload").alias("series")),
    )
