"""The still part of the working set: pages a process touched and left unchanged, from
pages drawn at an interval's start and compared at its end (capture._stillset)."""

from __future__ import annotations

import pytest

from inspectorate.capture._stillset import StillSampler, read_smaps
from inspectorate.capture._workset import clear_referenced

MB = 1 << 20

# holds three 80 MB arrays: "w" is read on each line of stdin, "g" read and written,
# "idle" never touched after start-up
CHILD = r"""
import sys, time
import numpy as np
w, g, idle = np.random.rand(10 << 20), np.random.rand(10 << 20), np.random.rand(10 << 20)
print("ready", flush=True)
for line in sys.stdin:
    end = time.monotonic() + 0.5
    while time.monotonic() < end:
        if "read" in line:
            float(w.sum())
        if "write" in line:
            g *= 1.0000001
    print("done", flush=True)
"""


@pytest.fixture
def child(stdin_child):  # type: ignore[no-untyped-def]
    return stdin_child(CHILD)


def _interval(proc, sampler: StillSampler, what: str) -> dict[str, float]:  # type: ignore[no-untyped-def]
    """One probe interval around one command to the child: draw, clear, work, close."""
    mem = read_smaps(proc.pid)
    assert mem is not None
    sampler.open({proc.pid: mem})
    clear_referenced(proc.pid, strict=True)
    proc.stdin.write(what + "\n")
    proc.stdin.flush()
    assert proc.stdout.readline().strip() == "done"
    end = read_smaps(proc.pid)
    assert end is not None
    got = sampler.close({proc.pid: end})
    assert got is not None
    return got


def test_read_memory_is_still_and_written_memory_is_not(child) -> None:  # type: ignore[no-untyped-def]
    if read_smaps(child.pid) is None:
        pytest.skip("this kernel reports no Referenced pages (smaps)")
    sampler = StillSampler(seed=7)
    _interval(child, sampler, "read write")  # a first interval sets the population drawn from
    serve = _interval(child, sampler, "read")  # w read, nothing written
    assert 55 * MB < serve["ws_still_b"] + 3 * serve["ws_still_sd_b"], serve
    assert serve["ws_still_b"] < 110 * MB, serve  # w is 80 MB; the idle array is not counted
    train = _interval(child, sampler, "write")  # g rewritten: touched, not still
    assert train["ws_data_b"] > 70 * MB, train
    assert train["ws_still_b"] - 3 * train["ws_still_sd_b"] < 25 * MB, train
    assert train["ws_still_b"] < serve["ws_still_b"] - 40 * MB, (train, serve)
