"""The working-set probe: the MMU's accessed bits say what a process touched, not what
it holds."""

from __future__ import annotations

import time

import pytest

from inspectorate.capture import _workset
from inspectorate.capture._stillset import ProcMemory, read_smaps
from inspectorate.capture._workset import WorkingSetProbe, clear_referenced

MB = 1 << 20

# holds two 160 MB arrays; on each line of stdin touches the one it names for ~0.6 s
CHILD = r"""
import sys, time
import numpy as np
held = {"a": np.ones(160 << 17), "b": np.ones(160 << 17)}
print("ready", flush=True)
for line in sys.stdin:
    end = time.monotonic() + 0.6
    while time.monotonic() < end:
        held[line.strip()] += 1.0
    print("done", flush=True)
"""


@pytest.fixture
def child(stdin_child):  # type: ignore[no-untyped-def]
    return stdin_child(CHILD)


def _touch(proc, which: str) -> None:  # type: ignore[no-untyped-def]
    proc.stdin.write(which + "\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "done"


def _referenced_after(proc, which: str | None) -> tuple[int, int]:  # type: ignore[no-untyped-def]
    clear_referenced(proc.pid, strict=True)
    if which:
        _touch(proc, which)
    got = read_smaps(proc.pid)
    assert got is not None
    return got.referenced, got.rss


def test_untouched_memory_is_resident_but_not_in_the_working_set(child) -> None:  # type: ignore[no-untyped-def]
    if read_smaps(child.pid) is None:
        pytest.skip("this kernel has no smaps Referenced field")
    ref, rss = _referenced_after(child, None)
    assert rss > 320 * MB and ref < 40 * MB  # both arrays held, neither touched
    ref, rss = _referenced_after(child, "a")
    assert 150 * MB < ref < 230 * MB  # one array touched: about its 160 MB
    both = ref
    clear_referenced(child.pid)
    _touch(child, "a")
    _touch(child, "b")
    got = read_smaps(child.pid)
    ref = got.referenced if got else 0
    assert ref > both + 140 * MB  # the second array joins the working set


def test_the_probe_reads_only_busy_intervals_and_spaces_itself(child, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    if read_smaps(child.pid) is None:
        pytest.skip("this kernel has no smaps Referenced field")
    probe = WorkingSetProbe()
    t0 = time.time()
    assert probe.maybe_probe([child.pid], t0, cpu_s=0.0) == {}  # the first clear opens an interval
    assert probe.maybe_probe([child.pid], t0 + 1.0, cpu_s=0.5) == {}  # too soon (MIN_INTERVAL_S)
    assert probe.maybe_probe([child.pid], t0 + 3.0, cpu_s=0.1) == {}  # not busy: interval stays open
    _touch(child, "b")
    got = probe.maybe_probe([child.pid], t0 + 6.0, cpu_s=3.0)
    assert got["ws_t0"] == round(t0, 4) and 150 * MB < got["ws_b"] < 230 * MB
    assert got["ws_rss_b"] > 320 * MB
    assert probe.next_t >= t0 + 6.0 + _workset.MIN_INTERVAL_S


def test_a_kernel_without_clear_refs_is_said_once(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    def refuse(pid: int, strict: bool = False) -> None:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(_workset, "clear_referenced", refuse)
    probe = WorkingSetProbe()
    assert probe.maybe_probe([1], 10.0, 0.0) == {"ws_error": "working set not readable: Permission denied"}
    assert probe.maybe_probe([1], 20.0, 9.0) == {}


def test_forced_probes_draw_on_a_budget(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A phase per request would buy a probe per request: past the budget an edge gets
    its sample without a probe."""
    probe = WorkingSetProbe()
    monkeypatch.setattr(_workset, "clear_referenced", lambda pid, strict=False: None)
    monkeypatch.setattr(_workset, "_read_all", lambda pids: {1: ProcMemory(rss=1 << 30, referenced=1 << 20)})
    clock = iter(x * 0.5 for x in range(10_000))
    monkeypatch.setattr(_workset.time, "thread_time", lambda: next(clock))  # each probe costs 0.5 s
    assert probe.maybe_probe([1], 100.0, 0.0) == {}  # opens the first interval
    # an edge every 1.25 s (past REUSE_S) for ~49 s
    taken = sum(bool(probe.maybe_probe([1], 100.0 + 1.25 * i, 0.0, force=True)) for i in range(1, 40))
    assert taken == 4  # the 2 s burst; 49 s at 1% of a core adds 0.49 s, not a fifth 0.5 s probe
    assert probe.maybe_probe([1], 100.0 + 200.0, 0.0, force=True)  # the budget refills with time


def test_an_edge_just_after_an_edge_reuses_its_interval(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """One phase's end and the next one's start: the second edge takes no probe."""
    probe = WorkingSetProbe()
    monkeypatch.setattr(_workset, "clear_referenced", lambda pid, strict=False: None)
    monkeypatch.setattr(_workset, "_read_all", lambda pids: {1: ProcMemory(rss=1 << 30, referenced=1 << 20)})
    assert probe.maybe_probe([1], 100.0, 0.0) == {}
    assert probe.maybe_probe([1], 105.0, 0.0, force=True)  # an end edge
    assert probe.maybe_probe([1], 105.4, 0.0, force=True) == {}  # the next start, 0.4 s later
    assert probe.maybe_probe([1], 110.0, 0.0, force=True)["ws_t0"] == 105.0  # that phase's end
