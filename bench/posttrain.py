"""Post-training disguised as serving: detection against k, update kind, variant and size;
and the honest false-positive rate, calibrated on one set of honest phases, measured on another.

    python bench/posttrain.py --corpus ../shared/data/corpora/tinyshakespeare.txt \\
        --workdir /tmp/pt-bench --preset laptop --ks 1,10,100 --seeds 0 --scale 8
    python bench/posttrain.py ... --workdir /tmp/pt-fpr --calibrate 6 --scale 2

Per seed, one testbed run (profile ``test``; the ``small`` role plays ``--preset``:
``laptop`` 3.2M or ``tiny`` 10.8M; phases 2.5 s x ``--scale``) interleaves honest
logged-serving phases with every ``pt_<mode>_<update>_<variant>_k<k>_small`` phase asked
for (interleaved so that memory creeping up over a run is not read as an attack);
competent phases are judged after ``make_competent`` rewrote every prover file, naive
ones as run. The four ``posttrain_*`` properties judge each phase (thresholds fixed in
``verify/_posttrain.py`` from honest phases, not from these attacks); a phase is caught
when any says inconsistent. Prints one JSON line per phase (raw signals, and the updates
the phase really took, read from its own ``phase_done`` events: the bench's ground
truth, never the verifier's), then a summary per (mode, update, variant, k).

``--report LOG...`` prints the same FPR report from earlier bench logs' honest lines.

``--calibrate N``: N honest-only runs (every honest replica of both sizes, varied
presets and torch thread counts). Each check's statistic over its limit (its margin) is
fitted on every other honest phase (normal, log-normal for the CPU ratio) and the
fit's quantiles are checked on the held-out others; the empirical FPR with its one-sided
95% Clopper-Pearson bound is reported over all of them.
"""

from __future__ import annotations

import argparse
import json
import os
from collections import defaultdict
from dataclasses import replace
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning OpenMP threads on a shared box: 30x slower

import torch

from inspectorate.testbed import profiles as _profiles
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
PRESETS = {"laptop": "3.2M", "tiny": "10.8M", "micro": "28k"}


def use_preset(preset: str) -> None:
    """The test profile with ``preset`` as its ``small`` role (the ranks get the Profile
    object itself, so the provenance, the claim's n_params and the model all agree)."""
    prof = _profiles.PROFILES["test"]
    roles = {**prof.roles, "small": replace(prof.roles["small"], preset=preset)}
    _profiles.PROFILES["test"] = replace(prof, roles=roles)


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
            "margins": {f.property: P.margin(f) for f in found},
            "n_params": ev.claim.n_params,
        }
    return out


def truth(run: Path) -> dict[str, dict[str, float]]:
    """Per phase, summed over ranks: updates taken, tokens trained on, tokens served, seconds."""
    out: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    for path in sorted(run.rglob("*.jsonl")):
        if "served" in path.parts or "claims" in path.parts:
            continue
        with path.open(encoding="utf-8") as f:
            for line in f:
                if '"phase_done"' not in line:
                    continue
                rec = json.loads(line)
                if rec.get("kind") != "phase_done":
                    continue
                row, body = out[str(rec.get("phase"))], {**rec, **(rec.get("fields") or {})}
                for key in ("updates", "trained_tokens", "tokens", "seconds"):
                    row[key] += float(body.get(key) or 0)
    return {k: dict(v) for k, v in out.items()}


def group(phase: str) -> str:
    return "honest" if phase.startswith("honest") else phase.rsplit("_", 1)[0]


def attack_bench(a: argparse.Namespace) -> None:
    names = phases_for("small", [int(k) for k in a.ks.split(",")], a.modes.split(","), a.honest)
    tally: dict[str, list[bool]] = defaultdict(list)
    for seed in (int(s) for s in a.seeds.split(",")):
        run, comp = a.workdir / f"seed{seed}", a.workdir / f"seed{seed}-competent"
        if not a.judge_only:
            run_testbed(
                "test", "h0", run, phases=names, seed=seed, scale=a.scale, corpus=a.corpus, progress=False
            )
            make_competent(run, comp)
        plain, forged, real = judge(run), judge(comp), truth(run)
        for phase in names:
            row = forged[phase] if "_competent_" in phase else plain[phase]
            tally[group(phase)].append(bool(row["caught_by"]))
            print(json.dumps({"seed": seed, "phase": phase, **row, "truth": real.get(phase, {})}), flush=True)
    print(f"\n{PRESETS.get(a.preset, a.preset)} ({a.preset}), phases {2.5 * a.scale:g} s")
    print("| group | phases | flagged |\n|---|---|---|")
    for g, flags in sorted(tally.items()):
        print(f"| {g} | {len(flags)} | {sum(flags)} ({sum(flags) / len(flags):.2f}) |")


def calibrate(a: argparse.Namespace) -> None:
    """Honest-only runs; fit on every other phase, check on the rest."""
    names = [
        f"honest_serve_logged_{size}{rep}"
        for size in ("small", "tiny")
        for rep in ("", *(f"_r{i}" for i in range(1, HONEST_REPLICAS)))
    ]
    presets = a.calibrate_presets.split(",")
    rows: list[dict[str, Any]] = []
    for i in range(a.calibrate):
        preset, threads = presets[i % len(presets)], 1 + (i // len(presets)) % 2
        run = a.workdir / f"honest{i}-{preset}-t{threads}"
        if not a.judge_only:
            use_preset(preset)
            run_testbed(
                "test", "h0", run, phases=names, seed=100 + i, scale=a.scale, threads=threads,
                corpus=a.corpus, progress=False,
            )  # fmt: skip
        for phase, row in judge(run).items():
            rows.append({"run": run.name, "phase": phase, **row})
            print(json.dumps(rows[-1]), flush=True)
    fpr_report(rows)


def honest_rows(log: Path) -> list[dict[str, Any]]:
    """The honest phases' JSON lines of a bench log (attack phases are never calibrated on)."""
    lines = (json.loads(x) for x in log.read_text(encoding="utf-8").splitlines() if x.startswith("{"))
    return [r for r in lines if r["phase"].startswith("honest")]


def at_module_limits(row: dict[str, Any]) -> dict[str, Any]:
    """A judged row re-decided at the CPU limit now in the module (logs judged at another
    limit keep their raw replay ratio; a check fails exactly when its margin exceeds 1)."""
    margins = dict(row["margins"])
    ratio = row.get("posttrain_backward_share")
    if ratio is not None and margins.get("posttrain_backward_share") is not None:
        margins["posttrain_backward_share"] = float(ratio) / P.COMPUTE_LIMIT
    caught = [p for p, m in margins.items() if m is not None and m > 1.0]
    return {**row, "margins": margins, "caught_by": caught}


def fpr_report(rows: list[dict[str, Any]]) -> None:
    rows = [at_module_limits(r) for r in rows]
    # alternate phases: both halves span every size, thread count and run, no phase in both
    fit_rows, held = rows[0::2], rows[1::2]
    flagged = sum(bool(r["caught_by"]) for r in rows)
    print(f"\nhonest phases: {len(rows)}, flagged {flagged} at the module's limits; one-sided 95% upper bound on the per-phase FPR "
          f"{P.fpr_upper_bound(flagged, len(rows)):.4f}")  # fmt: skip
    print(
        "| check | fit on | fitted tail P(margin > 1) | held-out > fitted q90 (exp.) | > q99 (exp.) | max margin "
        "| fitted q99.75 |"
    )
    print("|---|---|---|---|---|---|---|")
    union = 0.0
    for prop in P.MARGIN_FIELDS:
        cal = [m for r in fit_rows if (m := r["margins"].get(prop)) is not None]
        out = [m for r in held if (m := r["margins"].get(prop)) is not None]
        if len(cal) < 3:
            print(f"| {prop} | {len(cal)} | not judged | | | |")
            continue
        fit = P.normal_tail(cal, log=prop == "posttrain_backward_share")
        union += fit["tail"]
        over90, over99 = sum(m > fit["q90"] for m in out), sum(m > fit["q99"] for m in out)
        print(
            f"| {prop} | {len(cal)} | {fit['tail']:.2e} (mu {fit['mu']:.3f}, sd {fit['sd']:.3f}) | "
            f"{over90}/{len(out)} ({0.1 * len(out):.1f}) | {over99}/{len(out)} ({0.01 * len(out):.2f}) | "
            f"{max(cal + out):.3f} | {fit['q9975']:.3f} |"
        )
    print(f"\nfitted per-phase FPR (union over the checks): <= {union:.2e}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpus", required=True)
    ap.add_argument("--workdir", type=Path, required=True)
    ap.add_argument("--preset", default="laptop", choices=sorted(PRESETS), help="the model the attacks run")
    ap.add_argument("--ks", default="1,10,100")
    ap.add_argument("--modes", default="rl", help=f"comma list of {sorted(POSTTRAIN_MODES)}")
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--honest", type=int, default=4, help=f"honest phases per run (<= {HONEST_REPLICAS})")
    ap.add_argument("--scale", type=float, default=8.0)
    ap.add_argument("--calibrate", type=int, default=0, help="N honest-only runs: the FPR calibration")
    ap.add_argument("--calibrate-presets", default="laptop,tiny")
    ap.add_argument("--judge-only", action="store_true", help="re-judge the runs already in --workdir")
    ap.add_argument(
        "--report",
        nargs="+",
        type=Path,
        help="FPR report from the honest JSON lines of earlier bench logs, (fit on every other phase)",
    )
    a = ap.parse_args()
    if a.report:
        fpr_report([r for path in a.report for r in honest_rows(path)])
        return
    if a.calibrate:
        calibrate(a)
        return
    use_preset(a.preset)
    attack_bench(a)


if __name__ == "__main__":
    main()
