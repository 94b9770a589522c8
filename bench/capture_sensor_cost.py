"""What the verifier-owned sensor costs a workload, as CPU-seconds of the sensor per
CPU-second of the workload (goal: <= 2%), for a workload that keeps one core busy and
for a light one (~0.1 core), in the same run. Imported by ``capture_overhead.py --sensor``.

Each arm starts the workload (a small torch MLP: training at full speed, or inference
with a sleep between batches), puts it in its own cgroup when this host lets us create
one (else the sensor follows its PID), starts ``inspectorate sensor`` at 10 Hz as its
own process, waits for the first sample (start-up excluded and reported apart), then
reads both processes' CPU from ``/proc`` over the measured seconds. ``--baseline-src``
runs the same arms with the sensor from another source tree (e.g. the main branch), so
the before/after ratio comes from one run under one load.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

CLK = os.sysconf("SC_CLK_TCK")
WORKLOAD = r"""
import sys, time, torch
torch.set_num_threads(1)
time.sleep(1.0)  # let the bench move us into the cgroup first
m = torch.nn.Sequential(torch.nn.Linear(256, 1024), torch.nn.GELU(), torch.nn.Linear(1024, 256))
opt = torch.optim.AdamW(m.parameters())
light, end = sys.argv[1] == "light", time.time() + float(sys.argv[2])
while time.time() < end:
    x = torch.randn(64, 256)
    if light:
        with torch.no_grad():
            m(x)
        time.sleep(0.02)
    else:
        m(x).pow(2).mean().backward()
        opt.step()
        opt.zero_grad()
"""


def proc_cpu_s(pid: int) -> float | None:
    """utime + stime + the reaped children's, of one process."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    f = text[text.rfind(")") + 2 :].split()
    return sum(int(v) for v in f[11:15]) / CLK


def host_busy_s() -> float:
    vals = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]]
    return (sum(vals) - vals[3] - vals[4]) / CLK


def _cgroup(tag: str) -> Any:
    from inspectorate.capture._isolate import Cgroup, missing_rights

    if missing_rights():
        return None
    try:
        return Cgroup.create(f"insp-bench-{tag}")
    except Exception:
        return None


def arm(kind: str, seconds: float, src: str | None, use_cgroup: bool) -> dict[str, Any]:
    """One workload under one sensor; CPU-seconds of both over the measured window."""
    py = sys.executable
    work = subprocess.Popen([py, "-c", WORKLOAD, kind, str(seconds + 8)])
    group = _cgroup(f"{kind}-{work.pid}") if use_cgroup else None
    tmp = Path(tempfile.mkdtemp(prefix="insp-sensor-bench-"))
    try:
        if group is not None:
            group.join(work.pid)
        target = ["--cgroup", str(group.sensor_path)] if group is not None else ["--pid", str(work.pid)]
        env = dict(os.environ)
        if src is not None:
            env["PYTHONPATH"] = src
        sensor = subprocess.Popen(
            [py, "-m", "inspectorate.cli", "sensor", *target, "--out", str(tmp), "--hz", "10"], env=env
        )
        while not (tmp / "sensor.jsonl").exists() or (tmp / "sensor.jsonl").stat().st_size < 600:
            time.sleep(0.05)
        time.sleep(2.0)  # torch warm-up in the workload, first PSS reads in the sensor
        s0, w0, h0, t0 = proc_cpu_s(sensor.pid), proc_cpu_s(work.pid), host_busy_s(), time.monotonic()
        load0 = os.getloadavg()[0]
        time.sleep(seconds)
        s1, w1, h1, t1 = proc_cpu_s(sensor.pid), proc_cpu_s(work.pid), host_busy_s(), time.monotonic()
        sensor.terminate()
        sensor.wait(10)
        samples = sum(1 for _ in (tmp / "sensor.jsonl").open()) - 2
    finally:
        work.kill()
        work.wait()
        if group is not None:
            group.kill_all()
            group.remove()
    assert None not in (s0, s1, w0, w1)
    sensor_s, work_s, dt = s1 - s0, w1 - w0, t1 - t0  # type: ignore[operator]
    return {
        "kind": kind,
        "target": target[0],
        "sensor": "this tree" if src is None else src,
        "seconds": dt,
        "work_cores": work_s / dt,
        "sensor_ms_per_s": 1e3 * sensor_s / dt,
        "ratio": sensor_s / work_s if work_s > 0 else float("nan"),
        "host_cores": (h1 - h0) / dt,
        "load1": (load0 + os.getloadavg()[0]) / 2,
        "samples": samples,
    }


def report(rows: list[dict[str, Any]]) -> None:
    ncpu = os.cpu_count()
    print(f"host: {ncpu} logical CPUs; load1 and busy host cores measured during each arm")
    print(
        f"{'workload':8s} {'target':9s} {'sensor':18s} {'work cores':>10s} {'sensor ms/s':>11s} "
        f"{'sensor/work':>11s} {'host cores':>10s} {'load1':>6s}"
    )
    for r in rows:
        verdict = "PASS" if r["ratio"] <= 0.02 else "FAIL"
        print(
            f"{r['kind']:8s} {r['target']:9s} {r['sensor'][-18:]:18s} {r['work_cores']:10.3f} "
            f"{r['sensor_ms_per_s']:11.2f} {100 * r['ratio']:10.2f}% {r['host_cores']:10.2f} "
            f"{r['load1']:6.2f}  {verdict}"
        )


def main(seconds: float, baseline_src: str | None, pid_too: bool) -> None:
    rows = []
    targets = [True, False] if pid_too else [True]
    for kind in ("busy", "light"):
        for use_cgroup in targets:
            for src in (None, baseline_src) if baseline_src else (None,):
                rows.append(arm(kind, seconds, src, use_cgroup))
    report(rows)
