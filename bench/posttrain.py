"""Post-training disguised as serving: detection against k, update kind and variant.

    python bench/posttrain.py --corpus ../shared/data/corpora/tinyshakespeare.txt \\
        --workdir /tmp/pt-bench --size small --ks 1,10,100 --seeds 0,1 --scale 8

Per seed, one testbed run (profile ``test``: ``small`` is the 3.2M ``laptop`` preset,
``tiny`` the 28k ``micro``; phases 2.5 s x ``--scale``) interleaves honest
logged-serving phases with every ``pt_<mode>_<update>_<variant>_k<k>_<size>`` phase
asked for (interleaved so that memory creeping up over a run is not read as an attack);
competent phases are judged after ``make_competent`` rewrote every prover file, naive
ones as run. The four ``posttrain_*`` properties judge each phase (thresholds fixed in
``verify/_posttrain.py`` from honest phases, not from these attacks); a phase is caught
when any says inconsistent. Prints one JSON line per phase (the raw signals), then a
summary: honest phases flagged (FPR) and caught share per (mode, update, variant, k).
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP threads on a shared box: 30x slower

import torch

from inspectorate.testbed import run_testbed
from inspectorate.testbed.competent import make_competent
from inspectorate.testbed.phases import HONEST_REPLICAS, POSTTRAIN_MODES
from inspectorate.trace import load_run
from inspectorate.verify import _posttrain as P
from inspectorate.verify._evidence import collect
from inspectorate.verify._properties import Context

PROPS = (P.resident_state, P.backward_share, P.weight_writes, P.served_drift)
SIGNALS = {  # property -> the evidence field that is its raw signal
    "posttrain_resident_state": "excess_per_param_b",
    "posttrain_backward_share": "ratio",
    "posttrain_weight_writes": "excess_b",
    "posttrain_served_drift": "late_share",
}


def phases_for(size: str, ks: list[int], modes: list[str], honest: int) -> list[str]:
    attacks = [
        f"pt_{mode}_{update}_{variant}_k{k}_{size}"
        for mode in modes
        for update in ("full", "lora")
        for variant in ("naive", "competent")
        for k in ks
    ]
    pool = [f"honest_serve_logged_{size}"] + [f"honest_serve_logged_{size}_r{i}" for i in range(1, honest)]
    out: list[str] = []
    step = max(len(attacks) // max(len(pool), 1), 1)
    for i, name in enumerate(attacks):  # an honest phase every `step` attacks
        if i % step == 0 and pool:
            out.append(pool.pop(0))
        out.append(name)
    return out + pool


def judge(run: Path) -> dict[str, dict[str, Any]]:
    torch.set_num_threads(1)  # the verifier's re-computation; threads only add contention here
    ctx, out = Context(), {}
    for ev in collect(load_run(run)):
        found = [fn(ev, ctx) for fn in PROPS]
        out[ev.name] = {
            "caught_by": [f.property for f in found if str(f.decision) == "inconsistent"],
            **{f.property: f.evidence.get(SIGNALS[f.property]) for f in found},
        }
    return out


def group(phase: str) -> str:
    return "honest" if phase.startswith("honest") else phase.rsplit("_", 1)[0]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--size", default="small", choices=("tiny", "small"))
    ap.add_argument("--ks", default="1,10,100")
    ap.add_argument("--modes", default="rl", help=f"comma list of {sorted(POSTTRAIN_MODES)}")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--honest", type=int, default=4, help=f"honest phases per run (<= {HONEST_REPLICAS})")
    ap.add_argument("--scale", type=float, default=8.0)
    ap.add_argument("--judge-only", action="store_true", help="re-judge the runs already in --workdir")
    a = ap.parse_args()
    names = phases_for(a.size, [int(k) for k in a.ks.split(",")], a.modes.split(","), a.honest)
    tally: dict[str, list[bool]] = defaultdict(list)
    for seed in (int(s) for s in a.seeds.split(",")):
        run, comp = a.workdir / f"seed{seed}", a.workdir / f"seed{seed}-competent"
        if not a.judge_only:
            run_testbed(
                "test", "h0", run, phases=names, seed=seed, scale=a.scale, corpus=a.corpus, progress=False
            )
            make_competent(run, comp)
        plain, forged = judge(run), judge(comp)
        for phase in names:
            row = forged[phase] if "_competent_" in phase else plain[phase]
            tally[group(phase)].append(bool(row["caught_by"]))
            print(json.dumps({"seed": seed, "phase": phase, **row}), flush=True)
    print("\n| group | phases | flagged |\n|---|---|---|")
    for g, flags in sorted(tally.items()):
        print(f"| {g} | {len(flags)} | {sum(flags)} ({sum(flags) / len(flags):.2f}) |")


if __name__ == "__main__":
    main()
