"""When the sensor takes its next sample: at ``hz`` (10) while anything a property reads
is moving, at ``min_hz`` (0.8) once the workload has been steady for ``STEADY_TICKS``
samples, and back to ``hz`` on the first sample that shows a change.

Why: each tick costs the sensor a fixed ~0.1-0.25 ms of CPU (a wake-up, ~10 kernel
files, one chained line), so at a fixed 10 Hz it is 1-2.5 ms/s whatever the workload
does: more than 2% of a workload using a tenth of a core. A light workload is mostly a
steady one, and a steady one is where slow ticks lose nothing:

* every counter that measures work is cumulative (the cgroup's CPU to the nanosecond,
  page faults, bytes written and sent, exited processes included), so the CPU burnt
  between two slow ticks is in the second one: a burst hidden between ticks is counted,
  and the rate change it makes brings the sensor back to ``hz``;
* memory is a gauge, but its peak is kernel-held: ``cg.mem_peak_b`` (the cgroup's peak
  since the previous sample, ``_scope``) and ``hwm_b`` (the processes' VmHWM) keep an
  allocation made and freed between two ticks, and such an excursion is a change too;
* slow ticks are drawn at random in [0.7, 1] of the slow period, so a workload that
  watches the sensor cannot time its bursts to fall between them.

What a slow stretch does change: fewer samples per second (a window's ``samples``) and,
in a window that mixes a steady stretch with a moving one, the moving stretch's share of
the samples (a quantile over samples, not over time, leans towards it). Steadiness is
judged on the gauges themselves, so the values a slow stretch stands for are those of
its own samples to within the tolerances below.
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass, field
from typing import Any

MIB = 1 << 20
STEADY_TICKS = 5  # steady samples in a row at ``hz`` before the slow rate (0.5 s)
MEM_TOL_B = 4 * MIB  # memory moved by more than this ...
MEM_TOL_SHARE = 0.02  # ... and this share of the larger value: a change
CPU_WINDOW_S = 1.0  # CPU rates compared over the last second and the one before
CPU_TOL_CORES = 0.1  # CPU rate moved by more than this many cores ...
CPU_TOL_SHARE = 0.5  # ... plus this share of the larger rate: a change
GPU_UTIL_TOL = 10.0  # percentage points of the workload's SM utilisation
JITTER = (0.7, 1.0)  # a slow tick falls at a random point of this span of its period


def _mem_tol(a: float, b: float) -> float:
    return max(MEM_TOL_B, MEM_TOL_SHARE * max(a, b))


@dataclass
class Gauges:
    """What a sample says about the workload that cadence decisions compare."""

    t: float
    cpu_s: float
    pids: frozenset[int]
    threads: int
    mem: dict[str, float]  # gauge name -> bytes
    peaks: dict[str, float]  # kernel-held peak name -> bytes
    gpu_util: float | None

    @classmethod
    def of(cls, record: dict[str, Any]) -> Gauges:
        cg = record.get("cg") or {}
        mem = {k: float(record[k]) for k in ("rss_b", "anon_rss_b", "pss_b") if record.get(k) is not None}
        if cg.get("mem_b") is not None:
            mem["cg"] = float(cg["mem_b"])
        peaks = {}
        if cg.get("mem_peak_b") is not None:
            peaks["cg"] = float(cg["mem_peak_b"])
        if record.get("hwm_b") is not None:
            peaks["hwm"] = float(record["hwm_b"])
        gpu = [g for g in record.get("gpu_procs") or [] if g.get("mem_b") is not None]
        if gpu:
            mem["gpu"] = float(sum(g["mem_b"] for g in gpu))
        util = [g["sm_util"] for g in record.get("gpu_procs") or [] if g.get("sm_util") is not None]
        return cls(
            t=float(record["t"]),
            cpu_s=float(cg["cpu_s"]) if cg.get("cpu_s") is not None else float(record.get("cpu_s") or 0.0),
            pids=frozenset(int(p[0]) for p in record.get("per_proc", [])),
            threads=int(record.get("threads") or 0),
            mem=mem,
            peaks=peaks,
            gpu_util=max(util) if util else None,
        )


def changed(a: Gauges, b: Gauges) -> str | None:
    """Why sample ``b``'s gauges differ from sample ``a``'s (None: steady). CPU is judged
    apart, over whole seconds (``Cadence._cpu_moved``)."""
    if a.pids != b.pids:
        return "procs"
    if a.threads != b.threads:
        return "threads"
    for name, vb in b.mem.items():
        va = a.mem.get(name)
        if va is None or abs(vb - va) > _mem_tol(va, vb):
            return f"mem:{name}"
    if "cg" in b.peaks and b.peaks["cg"] > max(a.mem.get("cg", 0.0), b.mem.get("cg", 0.0)) + _mem_tol(
        b.peaks["cg"], 0.0
    ):
        return "peak:cg"  # the group went higher between the two samples than at either
    if "hwm" in b.peaks and b.peaks["hwm"] > a.peaks.get("hwm", 0.0) + MEM_TOL_B:
        return "peak:hwm"  # a process set a new peak RSS
    if (a.gpu_util is None) != (b.gpu_util is None) or (
        a.gpu_util is not None and b.gpu_util is not None and abs(a.gpu_util - b.gpu_util) > GPU_UTIL_TOL
    ):
        return "gpu"
    return None


@dataclass
class Cadence:
    """The sampling period, sample by sample (``next_wait`` after each one)."""

    hz: float
    min_hz: float
    rng: random.Random = field(default_factory=lambda: random.Random(random.SystemRandom().random()))
    period: float = 0.0
    steady: int = 0
    last: Gauges | None = None
    history: deque[tuple[float, float]] = field(default_factory=deque)  # (t, cpu_s), ~2 windows
    reason: str | None = "start"  # what the last sample changed (None: steady)

    def __post_init__(self) -> None:
        if self.min_hz > self.hz:
            raise ValueError("min_hz must not exceed hz")
        self.fast = 1.0 / self.hz
        self.slow = 1.0 / self.min_hz
        self.period = self.fast

    @property
    def adaptive(self) -> bool:
        return self.slow > self.fast

    def observe(self, record: dict[str, Any]) -> float:
        """Take one sample into account; the seconds to wait before the next."""
        g = Gauges.of(record)
        prev, self.last = self.last, g
        if prev is None:
            return self.fast
        self.reason = changed(prev, g) or self._cpu_moved(g)
        if self.reason is not None:
            self.period, self.steady = self.fast, 0
        else:
            # two rates, not a ramp: a ramp spends ~10 samples per change climbing back,
            # which at a change every few seconds is most of a light workload's samples
            self.steady += 1
            if self.steady >= STEADY_TICKS:
                self.period = self.slow
        if self.period <= self.fast:
            return self.fast
        return self.period * self.rng.uniform(*JITTER)

    def _cpu_moved(self, g: Gauges) -> str | None:
        """The CPU rate over the last second against the second before. Whole seconds,
        not ticks: a light loop's short bursts make 0.1 s rates swing by a core while
        its per-second rate is flat; a phase that starts or stops working moves it."""
        hist = self.history
        hist.append((g.t, g.cpu_s))
        while len(hist) > 2 and hist[1][0] <= g.t - 2 * CPU_WINDOW_S:
            hist.popleft()
        t0, c0 = hist[0]
        mid = next(((t, c) for t, c in reversed(hist) if t <= g.t - CPU_WINDOW_S), None)
        if mid is None or mid[0] - t0 < 0.5 * CPU_WINDOW_S:
            return None  # under two windows of history yet
        before = (mid[1] - c0) / (mid[0] - t0)
        now = (g.cpu_s - mid[1]) / (g.t - mid[0])
        if abs(now - before) > CPU_TOL_CORES + CPU_TOL_SHARE * max(now, before):
            return "cpu"
        return None
