"""What the verifier-owned sensor costs a workload, as CPU-seconds of the sensor per
CPU-second of the workload (goal: <= 2%), for workloads from idle to one busy core, in
the same run. Imported by ``capture_overhead.py --sensor``.

Each arm starts one workload (a torch MLP doing inference in a duty cycle: busy for
``cores x 50 ms`` of CPU, then asleep for the rest of the 50 ms; ``1`` runs flat out,
``0`` only sleeps), puts it in its own cgroup when this host lets us create one (else the
sensors follow its PID), and starts two ``inspectorate sensor`` processes on it at once:
this tree's (adaptive cadence) and, with ``--baseline-src``, another tree's (e.g. the
main branch). Both watch the same workload through the same seconds under the same host
load, so the before/after ratio is not moved by the load changing between arms. CPU of
each sensor and of the workload is read from ``/proc/PID/stat`` (utime + stime), which
contention on a shared host inflates less than wall time; the load average is reported.

``--features`` also reads both sensors' streams back through verify's window features
(``verify._sensor_features.window``) over one-second-aligned stretches of the run and
prints the largest difference per feature: the slower cadence must leave them the same.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

WORKLOAD = r"""
import sys, time, torch
torch.set_num_threads(1)
time.sleep(1.0)  # let the bench move us into the cgroup first
m = torch.nn.Sequential(torch.nn.Linear(256, 1024), torch.nn.GELU(), torch.nn.Linear(1024, 256))
cores, end, period = float(sys.argv[1]), time.time() + float(sys.argv[2]), 0.05
while time.time() < end:
    if cores <= 0:
        time.sleep(period)
        continue
    stop = time.process_time() + cores * period
    while time.process_time() < stop:
        with torch.no_grad():
            m(torch.randn(16, 256))
    if cores < 1:
        time.sleep(period * (1 - cores))
"""
LOADS = (0.0, 0.05, 0.1, 0.5, 1.0)
MIB = 1 << 20


def proc_cpu_s(pid: int) -> float | None:
    """CPU-seconds of one process's live threads to the nanosecond (``schedstat``: the
    10 ms clock ticks of ``stat`` are a whole 2% of a 0.05-core workload over 10 s)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
        return sum(int(Path(f"/proc/{pid}/task/{t}/schedstat").read_text().split()[0]) for t in tids) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def _cgroup(tag: str) -> Any:
    from inspectorate.capture._isolate import Cgroup, missing_rights

    if missing_rights():
        return None
    try:
        return Cgroup.create(f"insp-bench-{tag}")
    except Exception:
        return None


def _start_sensor(target: list[str], out: Path, src: str | None) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    if src is not None:
        env["PYTHONPATH"] = src
    cmd = [sys.executable, "-m", "inspectorate.cli", "sensor", *target, "--out", str(out), "--hz", "10"]
    return subprocess.Popen(cmd, env=env)


def arm(cores: float, seconds: float, baseline_src: str | None, use_cgroup: bool) -> dict[str, Any]:
    """One workload under this tree's sensor (and the baseline's, at the same time)."""
    work = subprocess.Popen([sys.executable, "-c", WORKLOAD, str(cores), str(seconds + 10)])
    group = _cgroup(f"{cores}-{work.pid}") if use_cgroup else None
    tmp = Path(tempfile.mkdtemp(prefix="insp-sensor-bench-"))
    outs = {"after": tmp / "after", **({"before": tmp / "before"} if baseline_src else {})}
    sensors: dict[str, subprocess.Popen[bytes]] = {}
    try:
        if group is not None:
            group.join(work.pid)
        target = ["--cgroup", str(group.sensor_path)] if group is not None else ["--pid", str(work.pid)]
        for name, out in outs.items():
            sensors[name] = _start_sensor(target, out, baseline_src if name == "before" else None)
        for out in outs.values():
            while not (out / "sensor.jsonl").exists() or (out / "sensor.jsonl").stat().st_size < 600:
                time.sleep(0.05)
        time.sleep(3.0)  # torch import and warm-up in the workload, first PSS reads
        pids = [work.pid, *(s.pid for s in sensors.values())]
        c0, t0, load0 = [proc_cpu_s(p) for p in pids], time.monotonic(), os.getloadavg()[0]
        time.sleep(seconds)
        c1, t1 = [proc_cpu_s(p) for p in pids], time.monotonic()
        load1 = os.getloadavg()[0]
    finally:
        for s in sensors.values():
            s.terminate()
            s.wait(10)
        work.kill()
        work.wait()
        if group is not None:
            group.kill_all()
            group.remove()
    assert None not in c0 and None not in c1
    dt = t1 - t0
    used = [b - a for a, b in zip(c0, c1, strict=True)]  # type: ignore[operator]
    row: dict[str, Any] = {
        "cores": cores,
        "target": target[0],
        "seconds": dt,
        "work_cores": used[0] / dt,
        "load1": (load0 + load1) / 2,
        "dirs": outs,
        "window": (time.time() - (time.monotonic() - t0), time.time() - (time.monotonic() - t1)),
    }
    w0, w1 = row["window"]
    for (name, out), cpu in zip(outs.items(), used[1:], strict=True):
        n = sum(1 for t in _sample_times(out) if w0 <= t <= w1)
        row[name] = {
            "ms_per_s": 1e3 * cpu / dt,
            "ratio": cpu / used[0] if used[0] > 0 else None,
            "samples": n,
        }
    return row


def _sample_times(out: Path) -> list[float]:
    import json

    recs = (json.loads(line) for line in (out / "sensor.jsonl").open())
    return [float(r["t"]) for r in recs if r.get("kind") == "sample"]


def report(rows: list[dict[str, Any]]) -> None:
    print(f"host: {os.cpu_count()} logical CPUs, shared with other users; load1 averaged over each arm")
    print(
        f"{'load':>5s} {'target':9s} {'work cores':>10s} {'load1':>6s} | "
        f"{'before ms/s':>11s} {'% of work':>9s} {'samples':>7s} | {'after ms/s':>10s} {'% of work':>9s} "
        f"{'samples':>7s}  verdict"
    )
    for r in rows:
        cells = []
        for name in ("before", "after"):
            s = r.get(name)
            if s is None:
                cells.append(f"{'-':>11s} {'-':>9s} {'-':>7s}")
                continue
            pct = f"{100 * s['ratio']:8.2f}%" if s["ratio"] is not None else f"{'idle':>9s}"
            cells.append(f"{s['ms_per_s']:11.2f} {pct} {s['samples']:7d}")
        ratio = r["after"]["ratio"]
        verdict = (
            "n/a (idle)" if ratio is None or r["work_cores"] < 0.01 else ("PASS" if ratio <= 0.02 else "FAIL")
        )
        print(
            f"{r['cores']:5.2f} {r['target']:9s} {r['work_cores']:10.3f} {r['load1']:6.2f} | "
            f"{cells[0]} | {cells[1][1:]}  {verdict}"
        )


def compare_features(rows: list[dict[str, Any]], span_s: float = 5.0) -> None:
    """verify's window features from both streams over the same stretches: consecutive
    ``span_s`` windows and the whole measured window."""
    from inspectorate.verify._sensor_features import load_sensor, window

    keys = ("cores", "minflt_per_s", "ctx_per_s", "threads_max", "mem_p90_b", "footprint_b", "cg_mem_max_b")
    print(
        "verify window features, before vs after (same workload, same seconds): |after - before|, memory in MiB"
    )
    print(f"  median and largest over {span_s:g} s windows; the whole window")
    for r in rows:
        if "before" not in r:
            continue
        t0, t1 = r["window"]
        # the baseline (lowest memory) over the measured window in both: the sensors
        # started a moment apart during the workload's start-up, which is not cadence
        runs = {n: load_sensor(r["dirs"][n], (t0, t1)) for n in ("before", "after")}
        spans = [(t, t + span_s) for t in _frange(t0, t1 - span_s, span_s)]
        diffs: dict[str, list[float]] = {k: [] for k in keys}
        whole: dict[str, float] = {}
        for i, (a0, a1) in enumerate([*spans, (t0, t1)]):
            f = {n: window(run, a0, a1) for n, run in runs.items() if run is not None}
            for k in keys:
                a, b = f["before"].get(k), f["after"].get(k)
                if a is None or b is None:
                    continue
                # memory as MiB (a steady window's footprint is ~0: a share of it says
                # nothing), the rest as a share of the before figure
                rel = abs(b - a) / MIB if k.endswith("_b") else abs(b - a) / max(abs(a), 1e-9)
                if i == len(spans):
                    whole[k] = rel
                else:
                    diffs[k].append(rel)
        cells = []
        for k in keys:
            v = sorted(diffs[k])
            if v:
                scale, unit = (1.0, " MiB") if k.endswith("_b") else (100.0, "%")
                mid, top, all_ = (scale * x for x in (v[len(v) // 2], v[-1], whole.get(k, float("nan"))))
                cells.append(f"{k} {mid:.1f}/{top:.1f}/{all_:.1f}{unit}")
        print(f"  load {r['cores']:.2f}: " + ", ".join(cells))


def _frange(a: float, b: float, step: float) -> list[float]:
    out = []
    while a <= b:
        out.append(a)
        a += step
    return out


def main(
    seconds: float,
    baseline_src: str | None,
    pid_too: bool,
    loads: tuple[float, ...] = LOADS,
    features: bool = False,
) -> None:
    rows = []
    for cores in loads:
        for use_cgroup in [True, False] if pid_too else [True]:
            rows.append(arm(cores, seconds, baseline_src, use_cgroup))
    report(rows)
    if features:
        compare_features(rows)
