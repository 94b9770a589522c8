"""Time and size of `inspectorate report` on a 15-phase run (issue 20: render < 3 s, page < 5 MB).

Builds a synthetic flat run directory (15 labelled phases, ``cpu.csv`` and ``netdev.log``
sampled at ``--hz`` over ``--phase-seconds`` each, so the 10 Hz default holds ~40k rows
per stream) and a verdict for it in the ``verify --format json`` shape, then times
``write_report(run, out, verdict=...)``: loading the run, downsampling, building the
specs and writing the page (judging is ``verify``'s cost, measured in docs/verify.md).
The first render builds the JS bundle (~2 s, cached on disk after); the figure is the
median of the warm renders. With ``--run DIR --verdict FILE`` it times a real run too.
Usage: python bench/report_render.py [--hz 10] [--phase-seconds 240] [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import tempfile
import time
from pathlib import Path

from inspectorate.report import write_report

LABELS = ("pretrain:small", "inference:small", "finetune:tiny", "idle", "pretrain:tiny")


def synthetic_run(root: Path, phases: int, phase_seconds: float, hz: float) -> tuple[Path, Path]:
    run = root / "run"
    run.mkdir()
    t0, step = 1_800_000_000.0, 1.0 / hz
    labels, verdict_phases = [], []
    with (run / "cpu.csv").open("w") as cpu, (run / "netdev.log").open("w") as net:
        cpu.write(
            "timestamp,cpu_percent,per_cpu_max,mem_used_mb,mem_percent,proc_rss_mb,load1,ctx_switches\n"
        )
        total, rx = int(phases * phase_seconds * hz), 0
        for i in range(total):
            t = t0 + i * step
            busy = 50 + 45 * math.sin(i / 97.0)
            cpu.write(f"{t:.3f},{busy:.1f},{busy:.1f},2048.0,10.0,{900 + i % 300:.1f},1.0,{i}\n")
            if i % int(hz) == 0:
                rx += int(1e6 * (1 + math.sin(i / 500.0)))
                net.write(
                    f"--- {t:.3f} ---\nInter-|   Receive\n face |bytes packets errs drop fifo frame compressed multicast|"
                    "bytes packets errs drop fifo colls carrier compressed\n"
                    f"  eth0: {rx} 1 0 0 0 0 0 0 {rx // 2} 1 0 0 0 0 0 0\n"
                )
    for k in range(phases):
        claimed, start = LABELS[k % len(LABELS)], t0 + k * phase_seconds
        labels += [
            {"event": "start", "phase": f"phase_{k:02d}", "claimed": claimed, "t": start},
            {"event": "end", "phase": f"phase_{k:02d}", "claimed": claimed, "t": start + phase_seconds - 1},
        ]
        outcome = "inconsistent" if k % 4 == 3 else "consistent"
        verdict_phases.append(
            {
                "phase": f"phase_{k:02d}",
                "claimed": claimed,
                "outcome": outcome,
                "confidence": 0.9,
                "verdict": int(outcome == "consistent"),
                "findings": [
                    {
                        "property": "compute",
                        "decision": outcome,
                        "basis": ["cpu"],
                        "evidence": {"score": 0.8, "observed_cpu_s": 12.0},
                    }
                ],
            }
        )
    (run / "workload_labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in labels))
    (run / "provenance.json").write_text(json.dumps({"cpu_count_logical": 2}))
    verdict = root / "verify.json"
    verdict.write_text(
        json.dumps(
            {
                "run": str(run),
                "verdict": 0,
                "confidence": 0.9,
                "outcome": "inconsistent",
                "reasons": [],
                "missing_streams": [],
                "phases": verdict_phases,
            }
        )
    )
    return run, verdict


def time_render(run: Path, verdict: Path, out: Path, repeat: int) -> dict[str, float]:
    start = time.perf_counter()
    write_report(run, out, verdict=verdict, force=True)
    cold = time.perf_counter() - start
    warm = []
    for _ in range(repeat):
        start = time.perf_counter()
        write_report(run, out, verdict=verdict, force=True)
        warm.append(time.perf_counter() - start)
    return {
        "first_s": round(cold, 3),
        "median_s": round(statistics.median(warm), 3),
        "max_s": round(max(warm), 3),
        "page_mb": round(out.stat().st_size / 1e6, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--phases", type=int, default=15)
    parser.add_argument("--phase-seconds", type=float, default=240.0)
    parser.add_argument("--hz", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--run", type=Path, help="also time a real run directory")
    parser.add_argument("--verdict", type=Path, help="its saved `verify --format json`")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run, verdict = synthetic_run(Path(tmp), args.phases, args.phase_seconds, args.hz)
        rows = sum(1 for _ in (run / "cpu.csv").open()) - 1
        result = time_render(run, verdict, Path(tmp) / "report.html", args.repeat)
        print(json.dumps({"run": f"synthetic {args.phases} phases, cpu.csv {rows} rows", **result}))
        if args.run and args.verdict:
            result = time_render(args.run, args.verdict, Path(tmp) / "real.html", args.repeat)
            print(json.dumps({"run": str(args.run), **result}))


if __name__ == "__main__":
    main()
