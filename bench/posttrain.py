"""Post-training disguised as serving: detection against k, update kind and variant.

    python bench/posttrain.py --corpus ../shared/data/corpora/tinyshakespeare.txt \
        --workdir /tmp/pt-bench --size small --ks 1,10,100 --seeds 0,1 [--scale 2]

Per seed, one testbed run (profile ``test``; ``small`` is the 3.2M ``laptop`` preset,
``tiny`` the 28k ``micro``) holds honest logged-serving phases and every
``pt_<mode>_<update>_<variant>_k<k>_<size>`` phase asked for; competent phases are then
rewritten by ``make_competent`` (every prover file agrees with serving). The four
``posttrain_*`` properties score each phase; a phase is flagged when any is
inconsistent. Prints honest FPR and TPR per (mode, update, variant, k).
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from pathlib import Path

from inspectorate.testbed import run_testbed
from inspectorate.testbed.competent import make_competent
from inspectorate.testbed.phases import POSTTRAIN_MODES
from inspectorate.trace import load_run
from inspectorate.verify import _posttrain as P
from inspectorate.verify._evidence import collect
from inspectorate.verify._properties import Context

PROPS = (P.resident_state, P.backward_share, P.weight_writes, P.served_drift)


def phases_for(size: str, ks: list[int], modes: list[str]) -> list[str]:
    out = [f"honest_serve_logged_{size}"]
    for mode in modes:
        for update in ("full", "lora"):
            for variant in ("naive", "competent"):
                out += [f"pt_{mode}_{update}_{variant}_k{k}_{size}" for k in ks]
    return out


def score_run(run: Path) -> dict[str, dict[str, str]]:
    ctx, out = Context(), {}
    for ev in collect(load_run(run)):
        out[ev.name] = {f.property: str(f.decision) for f in (fn(ev, ctx) for fn in PROPS)}
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--size", default="small", choices=("tiny", "small"))
    ap.add_argument("--ks", default="1,10,100")
    ap.add_argument("--modes", default="rl", help=f"comma list of {sorted(POSTTRAIN_MODES)}")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--scale", type=float, default=2.0)
    a = ap.parse_args()
    ks = [int(k) for k in a.ks.split(",")]
    names = phases_for(a.size, ks, a.modes.split(","))
    flags: dict[str, list[bool]] = defaultdict(list)
    by_prop: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for seed in (int(s) for s in a.seeds.split(",")):
        run = run_testbed(
            "test",
            "h0",
            a.workdir / f"seed{seed}",
            phases=names,
            seed=seed,
            scale=a.scale,
            corpus=a.corpus,
            progress=False,
        )
        comp = make_competent(run, a.workdir / f"seed{seed}-competent")
        for src in (run, comp):
            for phase, found in score_run(src).items():
                if "competent" in phase and src == run or "naive" in phase and src == comp:
                    continue  # naive phases are judged as run, competent ones after the rewrite
                if phase.startswith("honest") and src == comp:
                    continue
                caught = [p for p, d in found.items() if d == "inconsistent"]
                flags[phase].append(bool(caught))
                for p in caught:
                    by_prop[phase][p] += 1
    rows = {p: {"n": len(v), "flagged": sum(v), "by_property": dict(by_prop[p])} for p, v in flags.items()}
    print(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
