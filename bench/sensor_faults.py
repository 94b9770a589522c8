"""Do training and serving of the same model differ in the sensor's allocator and
page-fault fields (sensor/2: the cgroup's ``pgfault``/``pgmajfault``/``anon_b``/``file_b``,
the tree's ``anon_rss_b``)? Same model, same batch, one intra-op thread, each phase in its
own cgroup (the tree's PID without one), sampled by the real sensor at 10 Hz.

    python bench/sensor_faults.py --seconds 10 --width 1024

Reports per phase: cores, minor faults per second and per CPU-second, the group's
anonymous memory, and the same from the tree's /proc counters.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

WORKLOAD = r"""
import sys, time, torch
torch.set_num_threads(1)
time.sleep(1.0)
op, width, end = sys.argv[1], int(sys.argv[2]), time.time() + float(sys.argv[3])
m = torch.nn.Sequential(*[torch.nn.Linear(width, width) for _ in range(4)])
opt = torch.optim.AdamW(m.parameters()) if op == "train" else None
step = 0
while time.time() < end:
    step += 1
    if step == 4:  # warm: optimizer state allocated, allocator caches filled
        print("ready", flush=True)
    x = torch.randn(int(sys.argv[4]), width)
    if opt is None:
        with torch.no_grad():
            m(x)
    else:
        m(x).pow(2).mean().backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
"""


def phase(op: str, width: int, batch: int, seconds: float) -> dict[str, Any]:
    from capture_sensor_cost import _cgroup
    from inspectorate.capture._proc_sensor import ProcSensor

    work = subprocess.Popen(
        [sys.executable, "-c", WORKLOAD, op, str(width), str(seconds + 120), str(batch)],
        stdout=subprocess.PIPE,
        text=True,
    )
    group = _cgroup(f"faults-{op}-{work.pid}")
    out = Path(tempfile.mkdtemp(prefix="insp-faults-"))
    try:
        if group is not None:
            group.join(work.pid)
        assert work.stdout is not None
        work.stdout.readline()  # imports, model build, first steps: not measured
        kw: dict[str, Any] = {"cgroup": group.sensor_path} if group is not None else {"pid": work.pid}
        sensor = ProcSensor(out, gpu=False, **kw)
        stop = threading.Event()
        t = threading.Thread(target=sensor.run, args=(stop, seconds))
        t.start()
        t.join()
    finally:
        work.kill()
        work.wait()
        if group is not None:
            group.kill_all()
            group.remove()
    recs = [json.loads(line) for line in (out / "sensor.jsonl").open()]
    s = [r for r in recs if r.get("kind") == "sample"]
    a, b = s[0], s[-1]
    dt = b["t"] - a["t"]
    cg_a, cg_b = a.get("cg", {}), b.get("cg", {})
    cpu = (cg_b.get("cpu_s", b["cpu_s"]) - cg_a.get("cpu_s", a["cpu_s"])) or 1e-9
    faults = cg_b["pgfault"] - cg_a["pgfault"] if "pgfault" in cg_b else b["minflt"] - a["minflt"]
    return {
        "op": op,
        "cores": cpu / dt,
        "faults_per_s": faults / dt,
        "faults_per_cpu_s": faults / cpu,
        "tree_minflt_per_cpu_s": (b["minflt"] - a["minflt"]) / cpu,
        "majflt": (cg_b.get("pgmajfault", 0) - cg_a.get("pgmajfault", 0)),
        "cg_anon_mib": max(r.get("cg", {}).get("anon_b", 0) for r in s) / 2**20,
        "tree_anon_mib": max(r.get("anon_rss_b", 0) for r in s) / 2**20,
        "samples": len(s),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--width", type=int, default=1024)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).parent))
    import os

    n = 4 * (args.width * args.width + args.width)
    print(f"model: 4 x Linear({args.width}), {n / 1e6:.2f}M parameters, batch {args.batch}, 1 thread")
    print(
        f"{'op':6s} {'cores':>6s} {'faults/s':>9s} {'faults/cpu-s':>12s} {'tree minflt/cpu-s':>17s} "
        f"{'majflt':>6s} {'cg anon MiB':>11s} {'tree anon MiB':>13s} {'load1':>6s}"
    )
    for _ in range(args.repeats):
        for op in ("serve", "train"):
            r = phase(op, args.width, args.batch, args.seconds)
            print(
                f"{r['op']:6s} {r['cores']:6.2f} {r['faults_per_s']:9.0f} {r['faults_per_cpu_s']:12.0f} "
                f"{r['tree_minflt_per_cpu_s']:17.0f} {r['majflt']:6d} {r['cg_anon_mib']:11.1f} "
                f"{r['tree_anon_mib']:13.1f} {os.getloadavg()[0]:6.2f}"
            )


if __name__ == "__main__":
    main()
