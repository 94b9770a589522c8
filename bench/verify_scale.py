"""verify at scale (issue 22 item 4): N hosts x H hours of 10 Hz sensor samples, verified
in bounded memory; time per phase and peak RSS at each length, the load beside each.

For every ``--hours`` value the script generates the run (``trace._rungen``: one flat run
dir a host, an honest schedule of training / inference / eval / idle phases with 3 s
gaps) unless it is already in ``--workdir``, then verifies every host in one fresh child
process (as a fleet verifier would: ``Inspector(policy="lenient").inspect(host)`` host
after host) and reports the child's peak RSS (``ru_maxrss``), its RSS after imports,
verify seconds, seconds per phase and microseconds per sensor sample. ``--frame-hours``
repeats the lengths given with the frame loaders (``INSPECTORATE_SENSOR_LOADER=frame``
``INSPECTORATE_STEPS_LOADER=frame`` and ``INSPECTORATE_WINDOWS_LOADER=frame``: the
sensor stream, the step and the window records in memory) in the same run, as the baseline. Each row also sums verify's own
``timings.seconds`` over the hosts: loading, the step, sensor and window passes, and
the per-phase evidence and judgement. ``--breakdown`` times what
one host's streaming pass spends reading bytes, parsing JSON, hashing the chain and
accumulating features (is a columnar sidecar warranted?). Usage:

    python bench/verify_scale.py --hours 1 6 24 --hosts 8 --frame-hours 1 6 --breakdown

Timings come from whatever machine runs it; the load average is printed beside each.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any


def _load() -> str:
    return "load {:.2f} {:.2f} {:.2f}".format(*os.getloadavg())


def _child(root: Path) -> None:
    """Verify every host of ``root`` in this process; print one JSON line."""
    from inspectorate.verify import Inspector

    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hosts, phases, t_all = sorted(p for p in root.iterdir() if p.is_dir()), 0, 0.0
    outcomes: dict[str, int] = {}
    decisions: dict[str, dict[str, int]] = {}
    stages: dict[str, float] = {}  # verify's own timings.seconds, summed over hosts
    for host in hosts:
        t0 = time.perf_counter()
        verdict = Inspector(policy="lenient").inspect(host)
        t_all += time.perf_counter() - t0
        phases += len(verdict.phases)
        seconds = verdict.seconds or {}
        for key in ("load_s", "steps_pass_s", "sensor_pass_s", "windows_pass_s", "total_s"):
            stages[key] = stages.get(key, 0.0) + seconds.get(key, 0.0)
        for phase in seconds.get("by_phase", []):
            for key in ("evidence_s", "judge_s"):
                stages[key] = stages.get(key, 0.0) + phase.get(key, 0.0)
        for p in verdict.phases:
            outcomes[p.outcome] = outcomes.get(p.outcome, 0) + 1
            for f in p.findings:
                d = decisions.setdefault(f.property, {})
                d[f.decision] = d.get(f.decision, 0) + 1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out: dict[str, Any] = {
        "hosts": len(hosts),
        "phases": phases,
        "verify_s": t_all,
        "rss_imports_mib": rss0 / 1024,
    }
    out.update({"peak_rss_mib": peak / 1024, "outcomes": outcomes, "decisions": decisions})
    out.update({"stages_s": stages, "torch_imported": "torch" in sys.modules})
    print(json.dumps(out))


def _verify(root: Path, mode: str) -> dict:
    loaders = ("INSPECTORATE_SENSOR_LOADER", "INSPECTORATE_STEPS_LOADER", "INSPECTORATE_WINDOWS_LOADER")
    env = {**os.environ, **dict.fromkeys(loaders, mode)}
    warm = "import inspectorate.verify, inspectorate.trace, polars, numpy"  # imports counted apart
    code = f"{warm}; import sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); import verify_scale; verify_scale._child(__import__('pathlib').Path({str(root)!r}))"
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"verify of {root} failed: {done.stderr.strip()[-400:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _generate(root: Path, hosts: int, hours: float) -> tuple[dict, float]:
    from inspectorate.trace._rungen import RunSpec, generate_run

    stamp = root / "generated.json"
    if stamp.is_file():
        return json.loads(stamp.read_text()), 0.0
    t0 = time.perf_counter()
    summary = generate_run(root, RunSpec(hosts=hosts, hours=hours), force=True)
    took = time.perf_counter() - t0
    stamp.write_text(json.dumps(summary))
    return summary, took


def _breakdown(sensor: Path) -> dict:
    """Seconds one pass spends on each layer of the work, on one host's sensor.jsonl."""
    from inspectorate.trace._canonical import record_hash
    from inspectorate.verify._sensor_features import stream_windows

    out: dict[str, float] = {}
    t0 = time.perf_counter()
    with sensor.open("rb") as f:
        n = sum(1 for _ in f)
    out["read_lines_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with sensor.open("rb") as f:
        records = (json.loads(line) for line in f)
        for _ in records:
            pass
    out["read_parse_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    with sensor.open("rb") as f:
        for line in f:
            record_hash(json.loads(line))
    out["read_parse_hash_s"] = time.perf_counter() - t0
    t0 = time.perf_counter()
    stream_windows(sensor, [(0.0, 1e12, False)], [None])
    out["full_stream_pass_s"] = time.perf_counter() - t0
    out["lines"] = n
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, nargs="+", default=[1.0, 6.0])
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--frame-hours", type=float, nargs="*", default=[1.0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/verify_scale"))
    parser.add_argument("--breakdown", action="store_true")
    args = parser.parse_args()
    for hours in args.hours:
        root = args.workdir / f"{args.hosts}x{hours:g}h"
        summary, gen_s = _generate(root, args.hosts, hours)
        modes = ["stream", "frame"] if hours in args.frame_hours else ["stream"]
        for mode in modes:
            before = _load()
            r = _verify(root, mode)
            row = {
                "hours": hours,
                "hosts": args.hosts,
                "loader": mode,
                "sensor_samples": summary["sensor_samples"],
                "phases": r["phases"],
                "generate_s": round(gen_s, 1),
                "verify_s": round(r["verify_s"], 1),
                "s_per_phase": round(r["verify_s"] / max(r["phases"], 1), 3),
                "us_per_sample": round(1e6 * r["verify_s"] / max(summary["sensor_samples"], 1), 1),
                "rss_after_imports_mib": round(r["rss_imports_mib"]),
                "peak_rss_mib": round(r["peak_rss_mib"]),
                "outcomes": r["outcomes"],
                # verify's timings.seconds summed over hosts (phases: per phase of the run)
                "stages_s": {k: round(v, 1) for k, v in r.get("stages_s", {}).items()},
                "torch_imported": r.get("torch_imported"),
            }
            print(json.dumps(row), f"[{before} -> {_load()}]", flush=True)
        if mode == "stream" and hours == args.hours[-1]:
            print(json.dumps({"decisions": r["decisions"]}))
    if args.breakdown:
        root = args.workdir / f"{args.hosts}x{args.hours[-1]:g}h"
        before = _load()
        b = _breakdown(root / "host00" / "sensor.jsonl")
        print(
            json.dumps({"breakdown_host00": {k: round(v, 2) for k, v in b.items()}}),
            f"[{before} -> {_load()}]",
        )


if __name__ == "__main__":
    main()
