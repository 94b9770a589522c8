"""Per-phase features from the verifier-owned sensor stream (``sensor.jsonl``).

Everything here is measured by the sensor process from ``/proc``: the workload tree's
CPU-seconds, its memory above the run's baseline, the processes that were busy, its
page-fault rate, and the bytes every NIC (loopback included) sent. No prover stream is
read, so a finding built only on these can pass a claim.
"""

from __future__ import annotations

import json
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from inspectorate.errors import Unordered
from inspectorate.trace.streams import SensorLog, per_process_cpu, read_sensor
from inspectorate.trace.streams.sensor import Row, SensorTail, scan_sensor
from inspectorate.verify._memfloor import capped_baseline, memory_floor, runtime_pids, runtime_processes

NOT_ATTRIBUTABLE = "unverifiable: traffic not attributable"  # host-wide counters only
BUSY_CORES = 0.1  # a process using a tenth of a core or more over a phase counts as busy
MODEL_HOLDER_SHARE = 0.8  # a process within 80% of the largest one's peak memory may hold a model copy


@dataclass
class SensorRun:
    """The run's sensor log and its memory baseline (lowest tree memory while labelled)."""

    log: SensorLog
    baseline_b: float | None
    lowest_b: float | None = None  # the lowest reading itself, before the runtime cap

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
    lowest = float(base) if base is not None else None  # type: ignore[arg-type]
    t0, t1 = span if span is not None else (float("-inf"), float("inf"))
    return SensorRun(log, capped_baseline(lowest, _runtime_count(log.records, t0, t1)), lowest)


def _runtime_count(records: Any, t0: float, t1: float) -> int:
    floor = memory_floor()
    return runtime_processes(records, t0, t1, floor) if floor is not None else 0


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
    phase = (t0, t1)  # working-set intervals must lie inside the window itself
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
        "cpu_wait_share": _share(_delta_or_none(f, "cg_cpu_wait_s"), dt),
        "cg_anon_max_b": _max(f, "cg_anon_b"),
        "anon_rss_max_b": _max(f, "anon_rss_b"),
    }
    out.update(_traffic(f, span, dt))
    inside = f.filter((pl.col("ws_t0") >= phase[0] - WS_LEAD_S) & (pl.col("t") <= phase[1])).drop_nulls(
        "ws_b"
    )
    cols = [inside[c] if c in inside.columns else [None] * inside.height for c in _WS_COLS]
    timed = f.select("t", "mem_b").drop_nulls("mem_b")
    out.update(
        _working_set(list(zip(*cols, strict=True)), phase[0], timed["t"].to_list(), timed["mem_b"].to_list())
    )
    if mem.len() and sensor.baseline_b is not None:
        out["mem_p90_b"] = mem_quantile(timed["t"].to_list(), timed["mem_b"].to_list())
        out["footprint_b"] = max(out["mem_p90_b"] - sensor.baseline_b, 0.0)
        out["baseline_b"] = sensor.baseline_b
        if sensor.lowest_b is not None:
            out["footprint_labelled_b"] = max(out["mem_p90_b"] - sensor.lowest_b, 0.0)
    return out


# One probe interval's columns (sensor stream): its start, end, bytes touched, and of the
# data mappings' touched bytes, the estimate of those left unchanged, its sd, and how
# much the data mappings grew (features add an eighth: the share of it held, ``_held``).
# An interval may start up to WS_LEAD_S before the phase: the capture's edge probe at the
# previous phase's end opens it (capture._workset.REUSE_S); the gap can only add touches.
WS_LEAD_S = 1.0
# Since the nudged estimate (an optimizer's small steps, capture._stillset), two more.
_WS_COLS = (
    *("ws_t0", "t", "ws_b", "ws_data_b", "ws_still_b", "ws_still_sd_b", "ws_grew_b"),
    *("ws_nudged_b", "ws_nudged_sd_b"),
)
_STILL_COLS = 7
Interval = tuple[Any, ...]  # _WS_COLS in order; the first three never None


def _working_set(
    readings: list[Interval], start: float, mem_t: list[float], mem: list[float]
) -> dict[str, Any]:
    """Over the probe intervals that lie inside the window (``capture._workset``: bytes
    the tree touched between two probes): the largest working set, how many intervals
    and the seconds they cover, and the intervals themselves where the sensor estimated
    their still bytes (``ws_intervals``: rows of ``_WS_COLS``; ``capture._stillset``);
    nothing when none did (an older sensor, a light phase)."""
    if not readings:
        return {}
    out: dict[str, Any] = {
        "ws_max_b": max(r[2] for r in readings),
        "ws_probes": len(readings),
        "ws_covered_s": sum(r[1] - max(r[0], start) for r in readings),
    }
    still = [[float(x) for x in r[:_STILL_COLS]] for r in readings if None not in r[:_STILL_COLS]]
    for row in still:  # and the share of the interval its growth was held (_held)
        row.append(_held(mem_t, mem, row[0], row[1], row[6]))
    if still:
        out["ws_intervals"] = still
    # [t0, t1, nudged_b, nudged_sd_b]: intervals whose pages were also read as an
    # optimizer's small steps (sensors since that field)
    nudged = [[float(r[i]) for i in (0, 1, _STILL_COLS, _STILL_COLS + 1)] for r in readings if None not in r]
    if nudged:
        out["ws_nudged"] = nudged
    return out


def _held(mem_t: list[float], mem: list[float], t0: float, t1: float, grew: float) -> float:
    """Share of the tree's memory readings in [t0, t1] at least half of ``grew`` above the
    first: a model loaded early in an interval holds its growth for most of it; memory
    allocated just before the interval's end, to make it look like a load, does not."""
    inside = [m for t, m in zip(mem_t, mem, strict=True) if t0 <= t <= t1]
    if grew <= 0 or len(inside) < 3:
        return 0.0
    return sum(1 for m in inside if m >= inside[0] + 0.5 * grew) / len(inside)


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


def _share(wait_s: float | None, dt: float) -> float | None:
    """Share of the window some task of the workload waited runnable for a CPU (PSI
    ``some``: at most 1 whatever the number of tasks); None from sensors without it."""
    return None if wait_s is None else min(max(wait_s / dt, 0.0), 1.0)


def _mean(frame: pl.DataFrame, col: str) -> float | None:
    value = frame[col].drop_nulls().mean()
    return None if value is None else float(value)  # type: ignore[arg-type]


# ------------------------------------------------------------------------ streaming
#
# A day of 10 Hz samples is 864k records a host: the frame path above holds them all
# (and every raw record, per-process readings included). The streaming path reads the
# file once, in time order, feeding per-window accumulators that hold only what their
# features need (first/last rows, running sums and maxima, per-process first/last CPU,
# and the window's memory readings for the exact p90), and frees each window when time
# passes its end: memory follows the longest window, not the run.


@dataclass
class _Acc:
    """Running state of one window [t0, t1] (``bracket``: widened to the samples
    bracketing it, fixed while streaming)."""

    t0: float
    t1: float
    bracket: bool
    state: str = "pending"  # pending -> open -> closed
    t1_fixed: bool = False
    n: int = 0
    first: Row | None = None
    last: Row | None = None
    threads_max: float | None = None
    sums: dict[str, list[float]] = field(default_factory=dict)  # col -> [sum, count]
    maxima: dict[str, float] = field(default_factory=dict)
    firsts: dict[str, float] = field(default_factory=dict)  # first / last non-null of counters
    lasts: dict[str, float] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    attributable: bool = True
    mem: array = field(default_factory=lambda: array("d"))
    mem_t: array = field(default_factory=lambda: array("d"))  # each memory reading's time
    pid_first: dict[int, float] = field(default_factory=dict)
    pid_last: dict[int, float] = field(default_factory=dict)
    pid_peak: dict[int, int] = field(default_factory=dict)  # for ``model_holders``
    ws: list[Interval] = field(default_factory=list)  # probe intervals inside (_WS_COLS)
    phase: tuple[float, float] = (0.0, 0.0)  # (t0, t1) as given (a bracket moves both)

    def __post_init__(self) -> None:
        self.phase = (self.t0, self.t1)

    def add(self, row: Row, record: dict[str, Any]) -> None:
        self.n += 1
        ws, ws_t0 = row.get("ws_b"), row.get("ws_t0")
        t = row["t"]
        if ws is not None and ws_t0 is not None and t is not None:
            if ws_t0 >= self.phase[0] - WS_LEAD_S and t <= self.phase[1]:
                self.ws.append(tuple(row.get(c) for c in _WS_COLS))
        if self.first is None:
            self.first = row
        self.last = row
        th = row["threads"]
        if th is not None and (self.threads_max is None or th > self.threads_max):
            self.threads_max = th
        for col in ("gpu_power_w", "gpu_util", "host_gpu_util"):
            v = row[col]
            if v is not None:
                acc = self.sums.setdefault(col, [0.0, 0])
                acc[0] += v
                acc[1] += 1
        for col in ("gpu_mem_b", "cg_mem_b", "cg_anon_b", "anon_rss_b"):
            v = row[col]
            if v is not None and (col not in self.maxima or v > self.maxima[col]):
                self.maxima[col] = v
        for col in ("io_w_b", "write_b", "cg_pgfault", "cg_cpu_wait_s"):
            v = row.get(col)
            if v is not None:
                self.firsts.setdefault(col, v)
                self.lasts[col] = v
                self.counts[col] = self.counts.get(col, 0) + 1
        if row["net_attributable"] != 1.0 or row["net_tx_b"] is None:
            self.attributable = False
        if row["mem_b"] is not None:
            self.mem.append(row["mem_b"])
            self.mem_t.append(float(row["t"]))  # type: ignore[arg-type]
        for pid, cpu, rss, *_ in record.get("per_proc", []):
            self.pid_first.setdefault(pid, cpu)
            self.pid_last[pid] = cpu
            self.pid_peak[pid] = max(self.pid_peak.get(pid, 0), int(rss or 0))

    def features(self) -> dict[str, Any]:
        """The same features as ``window`` over the same samples, less the footprint."""
        f, g = self.first, self.last
        if self.n < 2 or f is None or g is None:
            return {}
        dt = float(g["t"] - f["t"])  # type: ignore[operator]
        if dt <= 0:
            return {}
        span = max(self.t1 - self.t0, dt)

        def delta(col: str) -> float:
            return float(g[col] - f[col])  # type: ignore[operator]

        busy = {pid: (self.pid_last[pid] - self.pid_first[pid]) / dt for pid in self.pid_last}
        out: dict[str, Any] = {
            "samples": self.n,
            "seconds": dt,
            "cpu_s": delta("cpu_s") * span / dt,
            "cores": delta("cpu_s") / dt,
            "host_cores": delta("host_cpu_s") / dt,
            "host_net_tx_b": delta("host_net_tx_b") * span / dt,
            "minflt_per_s": delta("minflt") / dt,
            "ctx_per_s": (delta("ctx_vol") + delta("ctx_invol")) / dt,
            "busy_procs": sum(1 for v in busy.values() if v >= BUSY_CORES),
            "mem_procs": self._holders(),
            "threads_max": float(self.threads_max or 0),
            "gpu_power_w": self._mean("gpu_power_w"),
            "gpu_util": self._mean("gpu_util"),
            "host_gpu_util": self._mean("host_gpu_util"),
            "gpu_mem_b": self.maxima.get("gpu_mem_b"),
            "cg_mem_max_b": self.maxima.get("cg_mem_b"),
            "io_w_b": self._delta_or_none("io_w_b"),
            "write_b": self._delta_or_none("write_b"),
            "cg_pgfault": self._delta_or_none("cg_pgfault"),
            "cpu_wait_share": _share(self._delta_or_none("cg_cpu_wait_s"), dt),
            "cg_anon_max_b": self.maxima.get("cg_anon_b"),
            "anon_rss_max_b": self.maxima.get("anon_rss_b"),
        }
        out.update(_working_set(self.ws, self.phase[0], list(self.mem_t), list(self.mem)))
        if self.attributable:
            out.update({"net_tx_b": delta("net_tx_b") * span / dt, "net_scope": "netns"})
        else:
            out["traffic"] = NOT_ATTRIBUTABLE
        return out

    def _holders(self) -> int:
        """``model_holders`` over the window's samples."""
        top = max(self.pid_peak.values(), default=0)
        return sum(1 for v in self.pid_peak.values() if v >= MODEL_HOLDER_SHARE * top) if top > 0 else 0

    def _mean(self, col: str) -> float | None:
        acc = self.sums.get(col)
        return acc[0] / acc[1] if acc else None

    def _delta_or_none(self, col: str) -> float | None:
        if self.counts.get(col, 0) < 2:
            return None
        return float(self.lasts[col] - self.firsts[col])


@dataclass
class SensorPass:
    """What one streaming pass yields: each window's features, the file's tail (chain
    breaks, torn line, sample count), and the lowest memory reading in each span."""

    windows: list[dict[str, Any]]  # features without the memory footprint (see ``features``)
    p90: list[float | None]  # each window's 90th percentile of tree memory
    tail: SensorTail
    baselines: list[float | None]
    lowest: list[float | None] = field(default_factory=list)  # each span's lowest reading, uncapped

    def features(self, index: int, span: int) -> dict[str, Any]:
        """Window ``index``'s features with its footprint above span ``span``'s baseline."""
        out = dict(self.windows[index])
        p90, base = self.p90[index], self.baselines[span]
        if out and p90 is not None and base is not None:
            out["mem_p90_b"] = p90
            out["footprint_b"] = max(p90 - base, 0.0)
            out["baseline_b"] = base
            low = self.lowest[span] if span < len(self.lowest) else None
            if low is not None:
                out["footprint_labelled_b"] = max(p90 - low, 0.0)
        return out


class _Streamer:
    """Feeds time-ordered samples to the windows they fall in (see ``stream_windows``)."""

    def __init__(self, windows: list[tuple[float, float, bool]], spans: list[tuple[float, float] | None]):
        self.accs: list[_Acc | None] = [_Acc(t0, t1, b) for t0, t1, b in windows]
        self.order = sorted(range(len(windows)), key=lambda i: windows[i][0])
        self.next = 0  # next pending window in ``order``
        self.deferred: list[int] = []  # brackets whose t0 is the latest sample's time
        self.open: list[int] = []
        self.spans = spans
        self.mins: list[float | None] = [None] * len(spans)
        self.floor = memory_floor()
        self.runtime: list[set[int]] = [set() for _ in spans]  # pids holding an interpreter's memory
        self.group: list[tuple[Row, dict[str, Any]]] = []  # samples at the latest time
        self.group_t: float | None = None
        self.results: list[tuple[dict[str, Any], float | None]] = [({}, None)] * len(windows)

    def __call__(self, row: Row, record: dict[str, Any]) -> None:
        t = float(row["t"])  # type: ignore[arg-type]
        if self.group_t is not None and t < self.group_t:
            raise Unordered
        self._baselines(t, row["mem_b"])
        self._runtime(t, record)
        for i in self.deferred:
            self._open(i)
        self.deferred = []
        while self.next < len(self.order) and self._acc(self.order[self.next]).t0 <= t:
            i = self.order[self.next]
            self.next += 1
            if self._acc(i).bracket and self._acc(i).t0 == t:
                self.deferred.append(i)  # this sample is its start: open at the next one
            else:
                self._open(i)
        still = []
        for i in self.open:
            acc = self._acc(i)
            if self._take(acc, t):
                acc.add(row, record)
                still.append(i)
            else:
                self._close(i)
        self.open = still
        if t != self.group_t:
            self.group, self.group_t = [], t
        self.group.append((row, {"per_proc": record.get("per_proc", [])}))

    def _acc(self, i: int) -> _Acc:
        acc = self.accs[i]
        assert acc is not None
        return acc

    def _open(self, i: int) -> None:
        acc = self._acc(i)
        if acc.bracket and self.group_t is not None and self.group_t <= acc.t0:
            acc.t0 = self.group_t  # the last sample at or before t0
            for row, rec in self.group:
                acc.add(row, rec)
        self.open.append(i)

    def _close(self, i: int) -> None:
        """Features now, memory freed; the baseline (known at the end) is applied later."""
        acc = self._acc(i)
        p90 = mem_quantile(acc.mem_t, acc.mem) if len(acc.mem) else None
        self.results[i] = (acc.features(), p90)
        self.accs[i] = None

    @staticmethod
    def _take(acc: _Acc, t: float) -> bool:
        if not acc.bracket:
            return t <= acc.t1
        if acc.t1_fixed:
            return t == acc.t1
        if t >= acc.t1:
            acc.t1, acc.t1_fixed = t, True  # the first sample at or after t1
        return True

    def _baselines(self, t: float, mem: float | None) -> None:
        if mem is None:
            return
        for i, span in enumerate(self.spans):
            if span is None or span[0] <= t <= span[1]:
                low = self.mins[i]
                self.mins[i] = mem if low is None or mem < low else low

    def _runtime(self, t: float, record: dict[str, Any]) -> None:
        if self.floor is None:
            return
        pids: list[int] | None = None
        for i, span in enumerate(self.spans):
            if span is None or span[0] <= t <= span[1]:
                pids = runtime_pids(record, self.floor) if pids is None else pids
                self.runtime[i].update(pids)

    def baselines(self) -> list[float | None]:
        """Each span's lowest reading, capped by the runtime floor (``verify/_memfloor.py``)."""
        return [capped_baseline(low, len(pids)) for low, pids in zip(self.mins, self.runtime, strict=True)]

    def finish(self) -> None:
        """End of file: a bracket never opened takes the last samples at or before t0."""
        pending = self.deferred + self.order[self.next :]
        self.next = len(self.order)
        for i in pending:
            acc = self._acc(i)
            if acc.bracket and self.group_t is not None and self.group_t <= acc.t1:
                self._open(i)
        for i in self.order:
            if self.accs[i] is not None:
                self._close(i)
        self.open = []


def stream_windows(
    path: Path, windows: list[tuple[float, float, bool]], spans: list[tuple[float, float] | None]
) -> SensorPass:
    """Features of each ``(t0, t1, bracket)`` window of ``sensor.jsonl`` (as ``window``
    computes them on the frame) and the lowest memory reading in each span (None: all),
    in one time-ordered pass. ``Unordered`` when the samples go back in time."""
    streamer = _Streamer(windows, spans)
    tail = scan_sensor(path, streamer)
    streamer.finish()
    feats = [f for f, _ in streamer.results]
    return SensorPass(
        feats, [p for _, p in streamer.results], tail, streamer.baselines(), list(streamer.mins)
    )


@dataclass
class SensorView:
    """The sensor's features of every phase (``collect``) and gap (``gaps``) of a run,
    its chain breaks, and its torn tail: ``(file, samples, time of the last sample)``."""

    phases: list[dict[str, Any]]
    gaps: list[dict[str, Any]]
    breaks: int
    torn: tuple[str, int, float | None] | None


def sensor_pass_view(
    path: Path,
    wins: list[tuple[float, float]],
    holes: list[tuple[float, float]],
    span: tuple[float, float] | None,
    gap_span: tuple[float, float] | None,
    mode: str,
) -> SensorView:
    """Features of the phase windows ``wins`` and the gap brackets ``holes``, by the
    streaming pass (``mode`` other than ``frame``) or the frame; ``span`` and
    ``gap_span`` are where each memory baseline is read."""
    if mode != "frame":
        try:
            sp = stream_windows(
                path, [(a, b, False) for a, b in wins] + [(a, b, True) for a, b in holes], [span, gap_span]
            )
        except Unordered:
            pass  # the sensor writes in time order; anything else is sliced on the frame
        else:
            n, tail = len(wins), sp.tail
            return SensorView(
                [sp.features(i, 0) for i in range(n)],
                [sp.features(n + i, 1) for i in range(len(holes))],
                len(tail.breaks),
                (path.name, tail.samples, tail.last_t) if tail.torn else None,
            )
    sensor = load_sensor(path.parent, span)
    assert sensor is not None
    gap_sensor = load_sensor(path.parent, gap_span) if gap_span != span else sensor
    assert gap_sensor is not None
    log = sensor.log
    times = [r["t"] for r in log.records if isinstance(r.get("t"), (int, float))]
    return SensorView(
        [window(sensor, a, b) for a, b in wins],
        [window(gap_sensor, a, b, bracket=True) for a, b in holes],
        len(log.breaks),
        (path.name, len(log.records), float(times[-1]) if times else None) if log.torn else None,
    )


def mem_quantile(ts: Any, mem: Any, q: float = 0.9) -> float:
    """The ``q`` quantile of memory readings over the time they stand for. The adaptive
    sensor samples at 10 Hz while anything moves and ~0.8 Hz when steady, so counting
    samples would weigh a short busy stretch (a phase's start) up to 12x its time. Where
    the gaps are even (a fixed-rate sensor) this is the plain sample quantile, as before;
    else each reading weighs half the gaps on either side of it."""
    values = [float(v) for v in mem]
    times = [float(t) for t in ts]
    plain = float(pl.Series(values, dtype=pl.Float64).quantile(q) or 0.0)
    if len(values) < 3 or len(times) != len(values):
        return plain
    gaps = [b - a for a, b in zip(times, times[1:])]
    if min(gaps) <= 0 or max(gaps) <= 2 * min(gaps):
        return plain
    weights = [gaps[0] / 2, *((a + b) / 2 for a, b in zip(gaps, gaps[1:])), gaps[-1] / 2]
    total, acc = sum(weights), 0.0
    for value, weight in sorted(zip(values, weights)):
        acc += weight
        if acc >= q * total:
            return value
    return max(values)
