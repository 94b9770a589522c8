"""The sensor's adaptive cadence: slow while steady, 10 Hz on any change, and a burst
hidden between slow ticks still counted (cumulative CPU) and its memory peak still held
(kernel-held peaks), in pid and cgroup mode."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from inspectorate.capture._cadence import JITTER, Cadence, Gauges, changed
from inspectorate.capture._proc_sensor import ProcSensor
from inspectorate.trace.streams import read_sensor

MIB = 1 << 20


def _rec(t: float, cpu: float = 0.0, rss: int = 100 * MIB, **extra: Any) -> dict[str, Any]:
    rec: dict[str, Any] = {
        "t": t,
        "cpu_s": cpu,
        "rss_b": rss,
        "threads": 1,
        "per_proc": [[7, cpu, rss, 1, 0, 0]],
    }
    rec.update(extra)
    return rec


def _feed(c: Cadence, recs: list[dict[str, Any]]) -> list[float]:
    return [c.observe(r) for r in recs]


def _steady_run(c: Cadence, t0: float, seconds: float, rate: float = 0.0, **extra: Any) -> float:
    """Feed steady samples at the cadence's own waits; returns the end time."""
    t = t0
    while t < t0 + seconds:
        t += c.observe(_rec(t, cpu=rate * t, **extra))
    return t


def test_steady_slows_to_min_hz_with_jitter_and_a_change_brings_10_hz_back():
    c = Cadence(10.0, 1.0)
    t = _steady_run(c, 0.0, 20.0)
    assert c.period == pytest.approx(1.0)  # 1/min_hz once steady
    waits = [c.observe(_rec(t + i)) for i in range(1, 30)]
    assert all(JITTER[0] - 1e-9 <= w <= JITTER[1] + 1e-9 for w in waits)
    assert len({round(w, 6) for w in waits}) > 10  # drawn, not a fixed phase to hide in
    w = c.observe(_rec(t + 31, rss=200 * MIB))  # memory moved
    assert w == pytest.approx(0.1) and c.reason == "mem:rss_b"


@pytest.mark.parametrize(
    ("extra", "reason"),
    [
        ({"per_proc": [[7, 0, 100 * MIB, 1, 0, 0], [8, 0, 0, 1, 0, 0]]}, "procs"),
        ({"threads": 3}, "threads"),
        ({"cg": {"cpu_s": 0.0, "mem_b": 50 * MIB, "mem_peak_b": 400 * MIB}}, "peak:cg"),
        ({"hwm_b": 900 * MIB}, "peak:hwm"),
        ({"gpu_procs": [{"mem_b": 0, "sm_util": 60.0}]}, "gpu"),
    ],
)
def test_every_kind_of_change_is_one(extra, reason):
    base: dict[str, Any] = {
        "cg": {"cpu_s": 0.0, "mem_b": 50 * MIB, "mem_peak_b": 50 * MIB},
        "hwm_b": 120 * MIB,
    }
    base_gpu: dict[str, Any] = {"gpu_procs": [{"mem_b": 0, "sm_util": 0.0}]} if reason == "gpu" else {}
    a = Gauges.of(_rec(0.0, **base, **base_gpu))
    b = Gauges.of(_rec(1.0, **{**base, **extra}))
    assert changed(a, a) is None
    assert changed(a, b) == reason


def test_a_cpu_burst_between_slow_ticks_is_counted_and_brings_fast_ticks_back():
    c = Cadence(10.0, 1.0)
    t = _steady_run(c, 0.0, 10.0)
    assert c.period == pytest.approx(1.0)
    # the prover works 0.6 s at one core between two slow ticks: the next sample's
    # cumulative CPU holds it whatever the gap, and the rate moved: back to 10 Hz
    t_next = t + 0.9
    w = c.observe(_rec(t_next, cpu=0.6))
    assert c.last is not None and c.last.cpu_s == pytest.approx(0.6)
    assert c.reason == "cpu" and w == pytest.approx(0.1)


def test_a_light_loop_with_short_bursts_is_steady_over_whole_seconds():
    # 40 ms of work every 400 ms (0.1 core): 0.1 s rates swing 0 <-> 0.4 cores, the
    # per-second rate is flat, so the cadence slows down all the same
    c = Cadence(10.0, 1.0)
    t, cpu, waits = 0.0, 0.0, []
    while t < 30.0:
        w = c.observe(_rec(t, cpu=cpu))
        waits.append(w)
        nt = t + w
        cpu += 0.04 * (int(nt / 0.4) - int(t / 0.4))  # bursts that started in (t, nt]
        t = nt
    assert c.period == pytest.approx(1.0)
    assert len(waits) < 60  # ~1.25 samples/s once slow, not 300 at 10 Hz


def test_fixed_rate_when_min_hz_equals_hz():
    c = Cadence(10.0, 10.0)
    assert not c.adaptive
    assert all(w == pytest.approx(0.1) for w in _feed(c, [_rec(i * 0.1) for i in range(100)]))
    with pytest.raises(ValueError):
        Cadence(10.0, 20.0)


# ------------------------------------------------------------------------ end to end

BURST = """
import sys, time
time.sleep(float(sys.argv[1]))
buf = bytearray(96 << 20)           # 96 MiB touched ...
end = time.process_time() + 0.4
while time.process_time() < end:    # ... 0.4 s of CPU ...
    pass
del buf                             # ... and gone again
time.sleep(float(sys.argv[1]))
"""


def _samples(out: Path) -> list[dict[str, Any]]:
    recs = [json.loads(line) for line in (out / "sensor.jsonl").open()]
    return [r for r in recs if r["kind"] == "sample"]


def _run_sensor(sensor: ProcSensor, seconds: float) -> None:
    sensor.run(duration=seconds)


def test_pid_mode_keeps_10_hz_and_vmhwm_holds_a_burst_between_slow_ticks(tmp_path):
    child = subprocess.Popen([sys.executable, "-c", BURST, "1.5"])
    try:
        # by PID the default stays at the fixed rate (an exiting process would lose its
        # last gap); forced slow here, VmHWM still holds a peak no tick saw
        assert not ProcSensor(tmp_path / "default", pid=child.pid, gpu=False).cadence.adaptive
        sensor = ProcSensor(tmp_path, pid=child.pid, gpu=False, min_hz=1.0)
        _run_sensor(sensor, 8.0)  # stops when the child exits (~3.6 s)
    finally:
        child.kill()
        child.wait()
    s = _samples(tmp_path)
    gaps = [b["t"] - a["t"] for a, b in zip(s, s[1:], strict=False)]
    assert max(gaps) > 0.35  # slowed while the child slept
    assert max(r["cpu_s"] for r in s) - s[0]["cpu_s"] >= 0.35  # the burst's CPU, counted
    # VmHWM (kernel-held) keeps the 96 MiB whether or not a tick fell inside the burst
    assert max(r["hwm_b"] for r in s) - s[0]["rss_b"] >= 80 * MIB
    read_sensor(tmp_path / "sensor.jsonl")  # the verifier's reader takes the stream as is


def test_cgroup_mode_holds_the_groups_peak_between_slow_ticks(tmp_path):
    from inspectorate.capture._isolate import Cgroup, missing_rights

    if missing_rights():
        pytest.skip(f"no cgroup rights here: {missing_rights()[0]}")
    child = subprocess.Popen([sys.executable, "-c", BURST, "2.5"])
    group = Cgroup.create(f"insp-test-cadence-{child.pid}")
    try:
        group.join(child.pid)
        sensor = ProcSensor(tmp_path, cgroup=group.sensor_path, gpu=False)
        assert sensor.cadence.adaptive  # the default in cgroup mode
        stop = threading.Event()

        def stop_after_child() -> None:  # the group outlives its process: stop 1.5 s later
            child.wait()
            time.sleep(1.5)
            stop.set()

        threading.Thread(target=stop_after_child, daemon=True).start()
        sensor.run(stop, duration=60.0)
        stopped = time.time()
    finally:
        child.kill()
        child.wait()
        group.kill_all()
        group.remove()
    s = _samples(tmp_path)
    cg = [r["cg"] for r in s]
    if "mem_peak_b" not in cg[0]:
        pytest.skip("this host's cgroup has no resettable memory peak")
    assert max(r["t"] - p["t"] for p, r in zip(s, s[1:], strict=False)) > 0.35
    assert max(c["cpu_s"] for c in cg) - cg[0]["cpu_s"] >= 0.35
    # the group's kernel-held peak since the previous tick: the 96 MiB, however short
    assert max(c["mem_peak_b"] for c in cg) >= 80 * MIB
    burst_i = max(range(len(cg)), key=lambda i: cg[i]["mem_peak_b"])
    after = [r["t"] for r in s[burst_i : burst_i + 4]]
    assert min(b - a for a, b in zip(after, after[1:], strict=False)) < 0.3  # back to 10 Hz
    # stopped inside a slow gap: the stream still ends on a sample taken at the stop
    assert s[-1]["t"] >= stopped - 0.5
