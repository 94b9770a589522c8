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


# two 40 MB fp32 arrays: "step" moves "w" by a small step (an optimizer's update),
# "refill" overwrites "act" with new values (an activation buffer reused)
CHILD32 = r"""
import sys
import numpy as np
rng = np.random.default_rng(0)
w = rng.normal(0, 0.02, 10 << 20).astype(np.float32)
act = rng.normal(0, 1, 10 << 20).astype(np.float32)
print("ready", flush=True)
for line in sys.stdin:
    if "step" in line:
        w -= np.float32(1e-3) * rng.normal(0, 1e-2, w.size).astype(np.float32)
    if "refill" in line:
        act[:] = rng.normal(0, 1, act.size).astype(np.float32)
    print("done", flush=True)
"""


def test_an_optimizer_step_reads_as_nudged_and_a_refilled_buffer_does_not(stdin_child) -> None:  # type: ignore[no-untyped-def]
    proc = stdin_child(CHILD32)
    if read_smaps(proc.pid) is None:
        pytest.skip("this kernel reports no Referenced pages (smaps)")
    sampler = StillSampler(seed=11)
    _interval(proc, sampler, "step refill")
    served = _interval(proc, sampler, "refill")  # 40 MB rewritten, none of it nudged
    assert served["ws_nudged_b"] == 0, served
    trained = _interval(proc, sampler, "step")  # the 40 MB copy moved by a small step
    assert trained["ws_nudged_b"] - 3 * trained["ws_nudged_sd_b"] > 20 * MB, trained
    assert trained["ws_nudged_b"] < 60 * MB, trained


def test_nudged_pages_tells_small_steps_from_new_values() -> None:
    np = pytest.importorskip("numpy")
    from inspectorate.capture._stillset import nudged_pages

    rng = np.random.default_rng(3)
    w = rng.normal(0, 0.02, 1024).astype("<f4")
    g = rng.normal(0, 1e-3, 1024).astype("<f4")
    v = np.abs(rng.normal(0, 1e-6, 1024)).astype("<f4")
    act = rng.normal(0, 1, 1024).astype("<f4")
    moved = {
        "sgd": (w, w - np.float32(1e-3) * g),
        "adamw": (w, w - np.float32(1e-3) * np.sign(g)),
        "second moment": (v, np.float32(0.999) * v + np.float32(0.001) * g * g),
    }
    new = {
        "activations": (act, rng.normal(0, 1, 1024).astype("<f4")),
        "correlated 0.99": (act, (0.99 * act + 0.14 * rng.normal(0, 1, 1024)).astype("<f4")),
        "zeros filled": (np.zeros(1024, "<f4"), act),
        "pointers": tuple((0x7F3A12340000 + rng.integers(0, 1 << 20, 512) * 8).astype("<u8") for _ in "ab"),
        "counters": (np.arange(1024, dtype="<u4"), np.arange(1, 1025, dtype="<u4")),
        "a few words": (w, np.where(np.arange(1024) < 100, w * np.float32(1.01), w).astype("<f4")),
    }
    for name, (a, b) in moved.items():
        assert nudged_pages([(a.tobytes(), b.tobytes())]) == 1, name
    for name, (a, b) in new.items():
        assert nudged_pages([(a.tobytes(), b.tobytes())]) == 0, name
