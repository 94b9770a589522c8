"""The workload's working set: how much of its resident memory it touched lately.

Resident memory says what a process holds, not what it uses. An honest evaluation in
the middle of a training run keeps its optimizer's state resident (the optimizer object
lives on), and a server that trained earlier in the same process keeps what the
allocator freed; both hold what training holds, and the footprint alone reads them as
training. A training step cannot leave that state alone: it reads and writes the
weights, the gradients and every optimizer moment (16 B/param for AdamW) each step.

The kernel keeps an accessed bit in every page-table entry, set by the hardware on any
read or write. Writing ``1`` to ``/proc/PID/clear_refs`` clears those bits; the
``Referenced`` lines of ``/proc/PID/smaps`` later count the resident pages
touched since. The probe reads that count for each process of the tree, then clears the
bits again: each reading is the tree's working set over the interval since the last
clear (``ws_t0`` to the sample's ``t``). The prover cannot lower it without not touching
the memory: the bits are set by the MMU, not by anything the workload writes.

A probe at a phase edge (and under capture, every probe) also opens the still estimate
(``capture._stillset``: which of the touched memory stayed unchanged) and the next probe
closes it; both read the
per-mapping ``smaps``: 70-150 ms of CPU for a 25M-parameter torch tree of three
processes (1.7 GB summed RSS). Other probes read ``smaps_rollup``: ~9 ms, and ~7 ms to clear a 700 MB
torch process (both walk its page tables; the cost follows the resident size). The
probe therefore spaces itself so that it costs at most ``COST_SHARE`` of a core (and
runs no more often than every ``MIN_INTERVAL_S``), and only while the tree is busy
(``BUSY_CORES``): an idle or light phase is judged on its CPU, and pays nothing. Phase
edges are probed when capture asks (``force``: ``capture._sensor_control``), within a
budget of their own (``FORCED_SHARE``), so one interval can cover exactly one phase.
Clearing the bits costs
the workload a TLB flush per probe, and makes its pages look cold to the kernel's page
reclaim until touched again (under memory pressure they may be reclaimed sooner).
"""

from __future__ import annotations

import time
from typing import Any

from inspectorate.capture._stillset import ProcMemory, StillSampler, read_smaps

MIN_INTERVAL_S = 2.0  # no two probes closer than this
COST_SHARE = 0.003  # the probe's CPU over wall time: 3 ms a second at most
BUSY_CORES = 0.3  # below this (since the last clear) the tree is not probed: <= 1% of its CPU
# Probes at phase edges are asked for, not spaced: a workload that opens a phase per
# request would buy a probe per request. They draw on a budget of FORCED_SHARE of a core
# since the first probe plus FORCED_BURST_S; past it the edge gets its sample without a
# probe (the interval then spans the edge and speaks for no phase).
# 1% and 2 s since the still estimate (capture._stillset) made a probe of a 25M torch
# tree cost ~130 ms: at 0.5% and 0.5 s, a run of 6 s phases ran out by its fourth phase,
# and a phase without its own interval is left to the footprint (an honest eval after
# training, with its optimizer alive, read as training).
FORCED_SHARE = 0.01
FORCED_BURST_S = 2.0
# One phase's end and the next one's start come a fraction of a second apart: a forced
# probe within REUSE_S of a forced one is not taken, and the interval the first opened
# serves the next phase (verify reads intervals that start up to this long before a
# phase: the gap can only add touches and writes to it, never hide them).
REUSE_S = 1.0


class WorkingSetProbe:
    """Working-set readings for a process tree, spaced by their own cost."""

    def __init__(self) -> None:
        self.t_clear: float | None = None  # wall time of the last clear
        self.cpu_clear = 0.0  # the tree's CPU-seconds then
        self.next_t = 0.0
        self.error: str | None = None  # set once: the kernel or rights do not allow it
        self.t_first: float | None = None
        self.spent = 0.0  # CPU-seconds all probes have cost
        self.last_cost = 0.0
        self.forced_last = False  # whether the last probe was a phase edge's
        self.still_every = False  # estimate the still set on every interval (capture sets it)
        self.still = StillSampler()  # which touched memory stayed unchanged (_stillset)

    def maybe_probe(self, pids: list[int], t: float, cpu_s: float, force: bool = False) -> dict[str, Any]:
        """Fields to add to the sample taken at ``t`` (``cpu_s``: the tree's cumulative
        CPU): ``ws_b``, ``ws_rss_b``, ``ws_t0`` after a probe; ``{}`` otherwise.
        ``force`` (a phase edge, ``capture._sensor_control``): probe now, busy or not."""
        if self.error is not None or not pids or (t < self.next_t and not force):
            return {}
        if force and (not self._affordable(t) or (self.forced_last and t - (self.t_clear or 0.0) < REUSE_S)):
            return {}  # past the budget, or an edge just probed: the interval it opened serves
        if self.t_clear is None:  # the first interval starts here
            return self._start(pids, t, cpu_s, force)
        busy = (cpu_s - self.cpu_clear) / max(t - self.t_clear, 1e-9)
        if busy < BUSY_CORES and not force:  # keep the interval open; a later busy probe closes it
            self.next_t = t + MIN_INTERVAL_S
            return {}
        cost0 = time.thread_time()
        # The still estimate (per-mapping smaps, pages drawn and compared) costs ~5x
        # the plain probe. Under capture (``still_every``) every interval carries it:
        # a workload can watch its own Referenced drop and learn when probes come, so
        # an estimate on some intervals only would let it train in the others; the
        # probe spaces itself by its cost either way. Elsewhere (the testbed's sensor)
        # only intervals a phase edge opens do, and other probes stay the cheap one.
        still = force or self.still_every
        full = still or self.still.is_open
        mems = _read_all(pids) if full else {}
        totals = [(m.referenced, m.rss) for m in mems.values()] if full else _rollups(pids)
        out: dict[str, Any] = {
            "ws_b": sum(r for r, _ in totals),
            "ws_rss_b": sum(rss for _, rss in totals),
            "ws_t0": round(self.t_clear, 4),
        }
        if self.still.is_open:
            out.update(self.still.close(mems) or {})
        if still:
            self.still.open(mems)  # reads the pages before the clear: a read sets no bit then
        else:
            self.still.drop()
        for pid in pids:
            clear_referenced(pid)
        cost = time.thread_time() - cost0
        self.spent, self.last_cost, self.forced_last = self.spent + cost, cost, force
        out["ws_cost_ms"] = round(cost * 1000, 1)  # what this probe cost the sensor
        self.t_clear, self.cpu_clear = t, cpu_s
        self.next_t = t + max(MIN_INTERVAL_S, cost / COST_SHARE)
        return out

    def _affordable(self, t: float) -> bool:
        """Whether a forced probe fits the budget (``FORCED_SHARE``, ``FORCED_BURST_S``)."""
        since = t - self.t_first if self.t_first is not None else 0.0
        return self.spent + self.last_cost <= FORCED_SHARE * since + FORCED_BURST_S

    def _start(self, pids: list[int], t: float, cpu_s: float, force: bool) -> dict[str, Any]:
        if force or self.still_every:
            self.still.open(_read_all(pids))
        try:
            for pid in pids:
                clear_referenced(pid, strict=True)
        except OSError as exc:
            self.error = f"working set not readable: {exc.strerror or exc}"
            return {"ws_error": self.error}
        self.t_clear, self.cpu_clear, self.t_first = t, cpu_s, t
        self.next_t = t + MIN_INTERVAL_S
        return {}


def _rollups(pids: list[int]) -> list[tuple[int, int]]:
    """(Referenced, Rss) of each live process, from the cheaper ``smaps_rollup``."""
    return [got for got in map(read_referenced, pids) if got is not None]


def read_referenced(pid: int) -> tuple[int, int] | None:
    """(Referenced, Rss) bytes of one process from ``smaps_rollup``; None if gone."""
    try:
        with open(f"/proc/{pid}/smaps_rollup", "rb") as fh:
            text = fh.read()
    except OSError:
        return None
    found: dict[bytes, int] = {}
    for line in text.splitlines():
        key, _, value = line.partition(b":")
        if key in (b"Referenced", b"Rss"):
            found[key] = int(value.split()[0]) * 1024
    if b"Referenced" not in found:
        return None
    return found[b"Referenced"], found.get(b"Rss", 0)


def _read_all(pids: list[int]) -> dict[int, ProcMemory]:
    """Each live process's ``smaps`` (Rss and Referenced, per mapping)."""
    out = {}
    for pid in pids:
        mem = read_smaps(pid)
        if mem is not None:  # None: gone since listed
            out[pid] = mem
    return out


def clear_referenced(pid: int, strict: bool = False) -> None:
    """Clear the accessed bits of every page of ``pid`` (``clear_refs``: 1)."""
    try:
        with open(f"/proc/{pid}/clear_refs", "w") as fh:
            fh.write("1")
    except ProcessLookupError:
        return
    except FileNotFoundError:
        if strict and _alive(pid):
            raise
    except OSError:
        if strict:
            raise


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb"):
            return True
    except OSError:
        return False
