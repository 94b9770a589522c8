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
accumulating features (is a columnar sidecar warranted?). ``--declare-model micro``
writes ``claimed_model`` into every host's labels (a model the verifier builds, so every
phase is spot-checked) and ``--repeat 2`` verifies the same run again in a new process:
the spot-check's measurements are cached on disk (``verify/_spotcache.py``, under
``--cache-dir``, emptied before the first pass), and each row reports the seconds
``spot_check`` took, how often it was asked and how many measurements it made. Usage:

    python bench/verify_scale.py --hours 1 6 24 --hosts 8 --frame-hours 1 6 --breakdown
    python bench/verify_scale.py --hours 24 --hosts 8 --frame-hours --declare-model micro --repeat 2

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


def _hosts(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir())


def _child(root: Path, part: int = 0, parts: int = 1) -> None:
    """Verify every ``parts``-th host of ``root`` (from ``part``) in this process, one
    after another; print one JSON line."""
    from inspectorate.verify import Inspector

    spot = _time_spot_checks()
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    hosts, phases, t_all = _hosts(root)[part::parts], 0, 0.0
    per_host: list[dict[str, Any]] = []
    outcomes: dict[str, int] = {}
    decisions: dict[str, dict[str, int]] = {}
    stages: dict[str, float] = {}  # verify's own timings.seconds, summed over hosts
    for host in hosts:
        t0, spot0 = time.perf_counter(), dict(spot)
        verdict = Inspector(policy="lenient").inspect(host)
        took = time.perf_counter() - t0
        t_all += took
        phases += len(verdict.phases)
        seconds = verdict.seconds or {}
        per_host.append(_host_row(host, verdict, took, seconds, spot, spot0))
        # on disk after each host: a long run stopped early still shows the hosts it did
        (root / f"verified.part{part}of{parts}.hosts.json").write_text(json.dumps(per_host))
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
    usage = resource.getrusage(resource.RUSAGE_SELF)
    peak = usage.ru_maxrss
    out: dict[str, Any] = {
        "hosts": len(hosts),
        "phases": phases,
        "verify_s": t_all,
        "cpu_s": usage.ru_utime + usage.ru_stime,  # the child's, imports included
        "rss_imports_mib": rss0 / 1024,
    }
    out.update({"peak_rss_mib": peak / 1024, "outcomes": outcomes, "decisions": decisions})
    out.update({"stages_s": stages, "torch_imported": "torch" in sys.modules})
    out.update({"spot_check": dict(spot), "per_host": per_host})
    print(json.dumps(out))
    # also on disk: a long run stopped before its last child still shows what the others did
    (root / f"verified.part{part}of{parts}.json").write_text(json.dumps(out))


def _time_spot_checks() -> dict[str, float]:
    """Wrap the spot-check's cache lookup (``spot_check`` imports ``cached`` at each
    call) to count the calls, the measurements made (cache misses) and their seconds."""
    from inspectorate.verify import _spotcache

    tally = {"calls": 0, "measured": 0, "s": 0.0}
    inner = _spotcache.cached

    def cached(work: Any, seconds: float, how: str, measure: Any, cls: Any) -> Any:
        def counted() -> Any:
            tally["measured"] += 1
            return measure()

        t0 = time.perf_counter()
        try:
            return inner(work, seconds, how, counted, cls)
        finally:
            tally["calls"] += 1
            tally["s"] += time.perf_counter() - t0

    _spotcache.cached = cached  # type: ignore[assignment]
    return tally


def _host_row(host: Path, verdict: Any, took: float, seconds: dict, spot: dict, spot0: dict) -> dict:
    """One host's figures: seconds, stages, spot-check use, peak RSS so far, the load."""
    return {
        "host": host.name,
        "verify_s": round(took, 1),
        "phases": len(verdict.phases),
        "stages_s": {k: round(seconds.get(k, 0.0), 1) for k in ("load_s", "steps_pass_s", "sensor_pass_s")},
        "spot_check_s": round(spot["s"] - spot0["s"], 2),
        "spot_measured": spot["measured"] - spot0["measured"],
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "outcomes": [p.outcome for p in verdict.phases],
        "load_after": _load(),
    }


def _verify(root: Path, mode: str, jobs: int = 1, cache: Path | None = None) -> dict:
    """Verify ``root`` in ``jobs`` child processes at once, each taking every
    ``jobs``-th host in turn; peak RSS is the largest child's, seconds are summed."""
    loaders = ("INSPECTORATE_SENSOR_LOADER", "INSPECTORATE_STEPS_LOADER", "INSPECTORATE_WINDOWS_LOADER")
    env = {**os.environ, **dict.fromkeys(loaders, mode)}
    if cache is not None:
        env["INSPECTORATE_CACHE_DIR"] = str(cache)
    warm = "import inspectorate.verify, inspectorate.trace, polars, numpy"  # imports counted apart
    here = str(Path(__file__).parent)
    procs = []
    for part in range(jobs):
        call = f"verify_scale._child(__import__('pathlib').Path({str(root)!r}), {part}, {jobs})"
        code = f"{warm}; import sys; sys.path.insert(0, {here!r}); import verify_scale; {call}"
        procs.append(
            subprocess.Popen(
                [sys.executable, "-c", code],
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
        )
    results = []
    for proc in procs:
        out, err = proc.communicate()
        if proc.returncode:
            raise SystemExit(f"verify of {root} failed: {err.strip()[-400:]}")
        results.append(json.loads(out.strip().splitlines()[-1]))
    return _merge(results)


def _merge(results: list[dict]) -> dict:
    out = dict(results[0])
    for r in results[1:]:
        for key in ("hosts", "phases", "verify_s", "cpu_s"):
            out[key] += r[key]
        for key in ("rss_imports_mib", "peak_rss_mib"):
            out[key] = max(out[key], r[key])
        out["torch_imported"] = out["torch_imported"] or r["torch_imported"]
        for name, value in r["outcomes"].items():
            out["outcomes"][name] = out["outcomes"].get(name, 0) + value
        for prop, counts in r["decisions"].items():
            mine = out["decisions"].setdefault(prop, {})
            for name, value in counts.items():
                mine[name] = mine.get(name, 0) + value
        for name, value in r["stages_s"].items():
            out["stages_s"][name] = out["stages_s"].get(name, 0.0) + value
        for name, value in r["spot_check"].items():
            out["spot_check"][name] = out["spot_check"].get(name, 0) + value
        out["per_host"] = out["per_host"] + r["per_host"]
    out["jobs"] = len(results)
    return out


def _generate(root: Path, hosts: int, hours: float, hz: float = 10.0) -> tuple[dict, float]:
    from inspectorate.trace._rungen import RunSpec, generate_run

    stamp = root / "generated.json"
    if stamp.is_file():
        return json.loads(stamp.read_text()), 0.0
    t0 = time.perf_counter()
    summary = generate_run(root, RunSpec(hosts=hosts, hours=hours, hz=hz), force=True)
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


def _declare(root: Path, model: str | None) -> None:
    """Every host's phases declare ``model`` (a name the verifier builds), or none."""
    for host in _hosts(root):
        path = host / "workload_labels.jsonl"
        events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
        for event in events:
            event.pop("claimed_model", None)
            if model and event.get("claimed_op") != "idle":
                event["claimed_model"] = model
        path.write_text("".join(json.dumps(e, sort_keys=True) + "\n" for e in events), encoding="utf-8")


def _row(hours: float, args: argparse.Namespace, mode: str, r: dict, summary: dict, extra: dict) -> dict:
    return {
        "hours": hours,
        "hosts": args.hosts,
        "loader": mode,
        "jobs": args.jobs,
        **extra,
        "sensor_samples": summary["sensor_samples"],
        "phases": r["phases"],
        "verify_s": round(r["verify_s"], 1),
        "cpu_s": round(r.get("cpu_s", 0.0), 1),
        "s_per_phase": round(r["verify_s"] / max(r["phases"], 1), 3),
        "us_per_sample": round(1e6 * r["verify_s"] / max(summary["sensor_samples"], 1), 1),
        "rss_after_imports_mib": round(r["rss_imports_mib"]),
        "peak_rss_mib": round(r["peak_rss_mib"]),
        "outcomes": r["outcomes"],
        # verify's timings.seconds summed over hosts (phases: per phase of the run)
        "stages_s": {k: round(v, 1) for k, v in r.get("stages_s", {}).items()},
        "spot_check": {k: round(v, 2) for k, v in r.get("spot_check", {}).items()},
        "torch_imported": r.get("torch_imported"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hours", type=float, nargs="+", default=[1.0, 6.0])
    parser.add_argument("--hosts", type=int, default=8)
    parser.add_argument("--frame-hours", type=float, nargs="*", default=[1.0])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/verify_scale"))
    parser.add_argument("--breakdown", action="store_true")
    parser.add_argument("--hz", type=float, default=10.0, help="sensor rate of the generated runs")
    parser.add_argument(
        "--jobs", type=int, default=1, help="child processes at once (each verifies its hosts in turn)"
    )
    parser.add_argument("--declare-model", default=None, help="claimed_model of every non-idle phase")
    parser.add_argument("--repeat", type=int, default=1, help="verify each run this many times")
    parser.add_argument("--cache-dir", type=Path, default=None, help="default: WORKDIR/cache")
    args = parser.parse_args()
    cache = args.cache_dir or args.workdir / "cache"
    for hours in args.hours:
        rate = "" if args.hz == 10.0 else f"@{args.hz:g}Hz"
        root = args.workdir / f"{args.hosts}x{hours:g}h{rate}"
        summary, gen_s = _generate(root, args.hosts, hours, args.hz)
        _declare(root, args.declare_model)
        modes = ["stream", "frame"] if hours in args.frame_hours else ["stream"]
        for mode in modes:
            (cache / "spotcheck.json").unlink(missing_ok=True)  # the first pass measures
            for n in range(1, args.repeat + 1):
                before, t0 = _load(), time.perf_counter()
                r = _verify(root, mode, args.jobs, cache)
                extra = {
                    "pass": n,
                    "wall_s": round(time.perf_counter() - t0, 1),
                    "generate_s": round(gen_s, 1),
                }
                print(
                    json.dumps(_row(hours, args, mode, r, summary, extra)),
                    f"[{before} -> {_load()}]",
                    flush=True,
                )
                print(json.dumps({"per_host": r["per_host"]}), flush=True)
        if mode == "stream" and hours == args.hours[-1]:
            print(json.dumps({"decisions": r["decisions"]}))
    if args.breakdown:
        root = args.workdir / f"{args.hosts}x{args.hours[-1]:g}h"  # a 10 Hz run
        before = _load()
        b = _breakdown(root / "host00" / "sensor.jsonl")
        print(
            json.dumps({"breakdown_host00": {k: round(v, 2) for k, v in b.items()}}),
            f"[{before} -> {_load()}]",
        )


if __name__ == "__main__":
    main()
