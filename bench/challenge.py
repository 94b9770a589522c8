"""The Verifier Challenge's speed goals, measured: the public suite scores our verifier in
under 5 minutes on 2 cores, and the harness adds under 5% over the verifier's own time.

    python bench/challenge.py [--suite DIR] [--verifier ours] [--baselines] [--out DIR]

"Harness" is everything the bench does around the verdicts (suite load and hash check,
evidence views, dispatch, timeouts); scoring and bootstrap intervals run once after the
verdicts and are printed separately. Run it on an otherwise idle machine to claim a
figure; on a shared box (others' load) say so next to the numbers.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

from inspectorate.bench import public_suite, run_bench

GOAL_WALL_S = 300.0
GOAL_OVERHEAD_PCT = 5.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--suite", type=Path, default=None)
    ap.add_argument("--verifier", default="ours")
    ap.add_argument("--baselines", action="store_true", help="also score the two baselines")
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="bench-challenge-")) / "out"
    t0 = time.perf_counter()
    board = run_bench(
        args.suite or public_suite(), out, [args.verifier], baselines=args.baselines, quiet=True, force=True
    )
    wall = time.perf_counter() - t0
    h = board["harness"]
    load = os.getloadavg()[0]
    figures = {
        "cpus": os.cpu_count(),
        "load_avg_1m_at_end": round(load, 2),
        "wall_seconds": round(wall, 1),
        "verdict_seconds": h["verdict_seconds"],
        "harness_seconds": h["harness_seconds"],
        "harness_overhead_pct": h["overhead_pct"],
        "scoring_seconds": h["scoring_seconds"],
        "cases": int(sum(m["n"]["value"] for e in board["entries"][:1] for m in e["tracks"].values())),
        "goal_wall_met": wall < GOAL_WALL_S,
        "goal_overhead_met": (h["overhead_pct"] or 0.0) < GOAL_OVERHEAD_PCT,
    }
    print(json.dumps(figures, indent=1))
    print((out / "leaderboard.md").read_text())


if __name__ == "__main__":
    main()
