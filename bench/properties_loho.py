"""Leave-one-host-out evaluation of the verify properties on a testbed sweep.

    python bench/properties_loho.py --runs runs/sweep --hosts 4 --profile test --scale 2

Runs (or reuses, when OUT/<host> already holds a run) ``testbed sweep``, then for each
held-out host fits what calibration needs on the other hosts (fine-tune lr level, CPU
FLOP/s per busy core, the isotonic suspicion->probability map) and scores the held-out
host. Reports per-property AUROC on the held-out scores (LOHO) next to the pooled,
in-sample AUROC, the seed's baseline (logistic regression on mean CPU per phase, or mean
GPU power where nvsmi exists) measured on the same phases, a reliability table, FLOP
estimate errors, and which phases each property flags. Ground truth (``truth``,
``n_params``) is read here, for scoring only; the verifier never sees it.
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from inspectorate.trace import load_run
from inspectorate.verify import (
    DEFAULT,
    Calibration,
    Inspector,
    PhaseEvidence,
    auroc,
    collect,
    fit_isotonic,
    logistic_fit,
    logistic_predict,
    reliability_table,
    separating_threshold,
)
from inspectorate.verify._accounting import step_flops

PROPS = ("p1_op_type", "p2_model_size", "p3_finetune", "flops", "consistency")
OP = {
    "pretrain": "training",
    "finetune": "training",
    "inference": "inference",
    "eval": "eval",
    "idle": "idle",
}


@dataclass
class Row:
    host: str
    ev: PhaseEvidence
    truth: str
    n_true: int | None


def truth_of(run_dir: Path) -> dict[str, tuple[str, int | None]]:
    out: dict[str, tuple[str, int | None]] = {}
    for line in (run_dir / "workload_labels.jsonl").read_text().splitlines():
        obj = json.loads(line)
        out[obj["phase"]] = (obj["truth"], obj.get("n_params"))
    return out


def ensure_runs(root: Path, hosts: int, profile: str, scale: float, corpus: Path | None) -> list[Path]:
    dirs = [root / f"host{i}" for i in range(hosts)]
    if all((d / "workload_labels.jsonl").exists() for d in dirs):
        return dirs
    from inspectorate.testbed.run import sweep

    return [Path(p) for p in sweep(hosts, root, profile, scale=scale, progress=True, corpus=corpus)]


def load_rows(dirs: list[Path]) -> list[Row]:
    rows = []
    for d in dirs:
        truth = truth_of(d)
        for ev in collect(load_run(d)):
            label, n = truth[ev.name]
            rows.append(Row(d.name, ev, label, n))
    return rows


# ------------------------------------------------------------------------ targets


def target(prop: str, r: Row) -> int | None:
    """1 when the claim is false on this property's axis; None when it does not apply."""
    claim, truth = r.ev.claim, r.truth
    t_act, _, t_size = truth.partition(":")
    if prop == "p1_op_type":
        return int(OP[t_act] != claim.op)
    if prop == "p2_model_size":
        return int(bool(r.n_true and claim.n_params and r.n_true > claim.n_params))
    if prop == "p3_finetune":
        if OP[t_act] != "training" or claim.op != "training":
            return None
        return int(t_act != claim.activity)
    return int(truth != claim.label)


# ------------------------------------------------------------------------ calibration


def fit_calibration(train: list[Row]) -> Calibration:
    """What the held-out protocol learns from its training hosts."""
    ft = [r.ev.steps.get("lr_max") for r in train if r.truth.startswith("finetune")]
    pt = [
        r.ev.steps.get("lr_max")
        for r in train
        if r.truth.startswith("pretrain") and r.ev.claim.label == r.truth
    ]
    lr = separating_threshold(ft, pt) or DEFAULT.finetune_lr
    rates = []
    for r in train:
        est, _ = step_flops(r.ev)
        if (
            r.truth == r.ev.claim.label
            and OP[r.truth.split(":")[0]] == "training"
            and est
            and r.ev.cpu_busy_cores
        ):
            rates.append(est / (r.ev.cpu_busy_cores * r.ev.duration))
    cal = DEFAULT.with_(
        finetune_lr=lr, flops_per_busy_core=float(np.median(rates)) if rates else None, source="loho"
    )
    inspector = Inspector(calibration=cal)
    scores = [suspicion(inspector, r) for r in train]
    ix, iy = fit_isotonic(scores, [int(r.truth != r.ev.claim.label) for r in train])
    return cal.with_(iso_x=ix, iso_y=iy)


def suspicion(inspector: Inspector, r: Row, ctx: Any = None) -> float:
    return inspector.judge(r.ev, ctx or _ctx(inspector, r)).suspicion


_CTX: dict[str, Any] = {}


def _ctx(inspector: Inspector, r: Row) -> Any:
    """Context per host (weight lineage needs the host's other phases)."""
    base = _CTX[r.host]
    return base.__class__(inspector.calibration, base.layout, base.hashes_before)


def score_rows(rows: list[Row], cal: Calibration) -> list[dict[str, Any]]:
    inspector = Inspector(calibration=cal)
    out = []
    for r in rows:
        pv = inspector.judge(r.ev, _ctx(inspector, r))
        by = {f.property: f for f in pv.findings}
        out.append(
            {
                "host": r.host,
                "phase": r.ev.name,
                "verdict": pv.verdict,
                "suspicion": pv.suspicion,
                "p_false": cal.probability(pv.suspicion),
                **{p: by[p].score for p in PROPS},
                **{f"{p}_decision": by[p].decision for p in PROPS},
            }
        )
    return out


# ------------------------------------------------------------------------ baseline


def baseline_feature(r: Row) -> float:
    """The seed's baseline: mean GPU power (or mean busy CPU cores) over the phase."""
    if r.ev.gpu_power_w is not None:
        return r.ev.gpu_power_w
    return r.ev.cpu_busy_cores or 0.0


def baseline_scores(train: list[Row], test: list[Row]) -> list[float]:
    """P(training) from a logistic fit on the training hosts, turned into P(claim false)."""
    x = np.array([baseline_feature(r) for r in train])
    y = np.array([int(OP[r.truth.split(":")[0]] == "training") for r in train])
    mu, sd = x.mean(), x.std() or 1.0
    w = logistic_fit((x - mu) / sd, y)
    p = logistic_predict(w, (np.array([baseline_feature(r) for r in test]) - mu) / sd)
    return [float(pi if r.ev.claim.op != "training" else 1 - pi) for pi, r in zip(p, test)]


# ------------------------------------------------------------------------ report


def aurocs(rows: list[Row], scored: list[dict[str, Any]], base: list[float]) -> dict[str, dict[str, float]]:
    out = {}
    for prop in PROPS + ("overall",):
        pairs = [
            (s[prop] if prop != "overall" else s["suspicion"], target(prop, r), b)
            for r, s, b in zip(rows, scored, base)
        ]
        pairs = [(s, t, b) for s, t, b in pairs if t is not None]
        out[prop] = {
            "auroc": auroc([p[0] for p in pairs], [p[1] for p in pairs]),
            "baseline_auroc": auroc([p[2] for p in pairs], [p[1] for p in pairs]),
            "n": len(pairs),
            "positives": sum(p[1] for p in pairs),
        }
    return out


def flop_errors(rows: list[Row], cal_by_host: dict[str, Calibration]) -> dict[str, Any]:
    """Telemetry FLOP estimate (busy cores x calibrated FLOP/s) vs truth 6·N_true·D."""
    from inspectorate.verify._accounting import telemetry_flops
    from inspectorate.verify._properties import Context

    errs, step_errs = [], []
    for r in rows:
        act = r.truth.split(":")[0]
        if OP[act] not in ("training", "inference") or not r.n_true:
            continue
        s = r.ev.steps
        true = (
            (6 if OP[act] == "training" else 2)
            * r.n_true
            * (s.get("train_tokens", 0) + (s.get("infer_token_count") or 0))
        )
        if true <= 0:
            continue
        tele, _ = telemetry_flops(r.ev, Context(cal_by_host[r.host]))
        est, _ = step_flops(r.ev)
        if tele:
            errs.append(abs(tele / true - 1))
        if est:
            step_errs.append(abs(est / true - 1))

    def q(v):
        return (
            {
                "median_abs_err": float(np.median(v)),
                "within_10pct": float(np.mean(np.array(v) <= 0.10)),
                "n": len(v),
            }
            if v
            else {}
        )

    return {"telemetry_vs_truth": q(errs), "step_records_vs_truth": q(step_errs)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, required=True, help="sweep cache: RUNS/host<i> (created if absent)")
    ap.add_argument("--hosts", type=int, default=3)
    ap.add_argument("--profile", default="test")
    ap.add_argument("--scale", type=float, default=2.0)
    ap.add_argument("--corpus", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None, help="write the full results as JSON here")
    args = ap.parse_args()
    dirs = ensure_runs(args.runs, args.hosts, args.profile, args.scale, args.corpus)
    rows = load_rows(dirs)
    for d in dirs:
        run = load_run(d)
        _CTX[d.name] = Inspector().context(run, collect(run))
    hosts = sorted({r.host for r in rows})
    held: dict[int, dict[str, Any]] = {}
    base: dict[int, float] = {}
    cals: dict[str, Calibration] = {}
    for h in hosts:
        train = [r for r in rows if r.host != h]
        test_idx = [i for i, r in enumerate(rows) if r.host == h]
        cals[h] = fit_calibration(train)
        for i, s in zip(test_idx, score_rows([rows[i] for i in test_idx], cals[h])):
            held[i] = s
        for i, b in zip(test_idx, baseline_scores(train, [rows[i] for i in test_idx])):
            base[i] = b
    loho = [held[i] for i in range(len(rows))]
    pooled_cal = fit_calibration(rows)
    pooled = score_rows(rows, pooled_cal)
    result = {
        "hosts": hosts,
        "phases": len(rows),
        "loho": aurocs(rows, loho, [base[i] for i in range(len(rows))]),
        "pooled": aurocs(rows, pooled, baseline_scores(rows, rows)),
        "reliability_loho": reliability_table(
            [s["p_false"] for s in loho], [int(r.truth != r.ev.claim.label) for r in rows]
        ),
        "flops": flop_errors(rows, cals),
        "calibration_pooled": {
            "finetune_lr": pooled_cal.finetune_lr,
            "flops_per_busy_core": pooled_cal.flops_per_busy_core,
            "iso_x": pooled_cal.iso_x,
            "iso_y": pooled_cal.iso_y,
        },
        "flagged": flagged_table(rows, loho),
    }
    print(render(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")


def flagged_table(rows: list[Row], scored: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per phase name (scoring only): hosts flagged, and by which properties."""
    out: dict[str, dict[str, Any]] = {}
    for r, s in zip(rows, scored):
        entry = out.setdefault(
            r.ev.name, {"adversarial": r.truth != r.ev.claim.label, "flagged": 0, "hosts": 0, "by": {}}
        )
        entry["hosts"] += 1
        entry["flagged"] += int(s["verdict"] == 0)
        for p in PROPS:
            if s[f"{p}_decision"] == "inconsistent":
                entry["by"][p] = entry["by"].get(p, 0) + 1
    return out


def render(result: dict[str, Any]) -> str:
    lines = [
        f"hosts: {', '.join(result['hosts'])}; phases: {result['phases']}",
        "",
        "| property | LOHO AUROC | pooled AUROC | baseline LOHO | baseline pooled | n (pos) |",
        "|---|---|---|---|---|---|",
    ]
    for prop, lo in result["loho"].items():
        po = result["pooled"][prop]

        def f(v):
            return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"

        lines.append(
            f"| {prop} | {f(lo['auroc'])} | {f(po['auroc'])} | {f(lo['baseline_auroc'])} | "
            f"{f(po['baseline_auroc'])} | {lo['n']} ({lo['positives']}) |"
        )
    lines += ["", "reliability (LOHO, P(claim false)):"]
    lines += [
        f"  {r['bin']} n={r['n']} predicted={r['mean_predicted']:.2f} observed={r['observed']:.2f}"
        for r in result["reliability_loho"]
    ]
    lines += ["", f"FLOPs: {json.dumps(result['flops'])}", "", "flagged (LOHO verdicts):"]
    for name, e in result["flagged"].items():
        tag = "ADV" if e["adversarial"] else "hon"
        lines.append(f"  {tag} {name}: {e['flagged']}/{e['hosts']} by {e['by']}")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
