"""Leave-one-host-out evaluation of verify on a testbed sweep: naive and competent
adversaries, three evidence subsets (plus ``full+replay`` with ``--replay``), the strict
policy's certification, per-property AUROC, and the compute spot-check's estimate error.

    python bench/properties_loho.py --runs runs/sweep --hosts 4 --profile test --out loho.json \
        --replay --corpus tests/data/testbed_corpus.txt

``--replay``: the verifier replays segment 0 (the claimed start) and one segment drawn
at random of every replay claim the prover hands over for a phase it claims as
training (``claims/<phase>/``; the competent prover withholds its lying phases'), and
judges the full evidence with those findings attached (``verify --recomputed``).

Runs (or reuses, when RUNS/host<i> and RUNS/host<i>-competent exist) ``testbed sweep``.
For each held-out host, everything calibration needs (fine-tune lr level, compute
tolerances, idle CPU level, memory slack, the isotonic suspicion->probability map) is
fitted on the other hosts only, then the held-out host is scored; the shipped defaults
are the median of these per-fold fits (never a fit on the phases it scores). A second
split fits on phases claiming one model family and scores the other. Ground truth
(``truth``, ``n_params``) is read here for scoring only; the verifier never sees it.
Statistics come from scikit-learn (``roc_auc_score``, ``IsotonicRegression``,
``LogisticRegression``).
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.isotonic import IsotonicRegression
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from inspectorate.trace import load_run
from inspectorate.verify import Calibration, Inspector, PhaseEvidence
from inspectorate.verify._calibration import DEFAULT, separating_threshold
from inspectorate.verify._evidence import collect
from inspectorate.verify._physics import claimed_work
from inspectorate.verify._properties import Context
from inspectorate.verify._spotcheck import SpotCheck, spot_check

PROPS = ("p1_op_type", "p2_model_size", "p3_finetune", "compute", "flops", "consistency")
SUBSETS = ("full", "sensor", "prover")
REPLAY_VIEW = "full+replay"
# substitute*: with --replay only; -relay also lands the live substitute's checkpoints on
# the host during the phase, where the checkpoint watcher sees them written
VARIANTS = ("naive", "competent", "substitute", "substitute-live", "substitute-relay")
# Honest compute ratios vary ~1.8x within one host (load, batch, threads) and the
# spot-check itself varies between processes on a shared box: tolerances are the honest
# extremes of the training hosts widened by this factor (spot-checks of one work item
# measured in separate processes here differ by up to 30%).
MARGIN = 2.0
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
    variant: str
    subset: str
    ev: PhaseEvidence
    truth: str
    n_true: int | None
    ctx: Any
    recomputed: list[Any] = field(default_factory=list)
    known: frozenset[str] = frozenset()  # final weights of earlier bound replays in the run

    @property
    def adversarial(self) -> bool:
        return self.truth != self.ev.claim.label


def truth_of(run_dir: Path) -> dict[str, tuple[str, int | None]]:
    out: dict[str, tuple[str, int | None]] = {}
    for line in (run_dir / "workload_labels.jsonl").read_text().splitlines():
        obj = json.loads(line)
        out[obj["phase"]] = (obj["truth"], obj.get("n_params"))
    return out


FORGERS = ("substitute", "substitute-live", "substitute-relay")


def ensure_runs(
    root: Path,
    hosts: int,
    profile: str,
    scale: float,
    corpus: Path | None,
    claims: bool = False,
    forgers: tuple[str, ...] = FORGERS,
) -> list[Path]:
    dirs = [root / f"host{i}{s}" for i in range(hosts) for s in ("", "-competent")]
    if not all((d / "workload_labels.jsonl").exists() for d in dirs):
        from inspectorate.testbed.run import sweep

        sweep(hosts, root, profile, scale=scale, progress=True, corpus=corpus, replay_claims=claims)
    if claims and corpus is not None:  # the strongest forgery against the replay binding
        from inspectorate.testbed.competent import make_substituting

        for i in range(hosts):
            for name, live, relay in (
                ("substitute", False, False),
                ("substitute-live", True, False),
                ("substitute-relay", True, True),
            ):
                if name not in forgers:
                    continue
                sub = root / f"host{i}-{name}"
                if not (sub / "workload_labels.jsonl").exists():
                    reuse = root / f"host{i}-substitute-live" if relay else None  # same runs, trained once
                    make_substituting(
                        root / f"host{i}-competent", sub, corpus, live=live, relay=relay, claims_from=reuse
                    )
                dirs.append(sub)
    return dirs


def load_rows(dirs: list[Path], corpus: Path | None = None) -> list[Row]:
    """Rows of every run, subset and phase; with ``corpus``, also the replay view."""
    rows = []
    cache: dict[str, Any] = {}
    for d in dirs:
        truth = truth_of(d)
        host, _, variant = d.name.partition("-")
        run = load_run(d)
        for subset in SUBSETS:
            evidence = collect(run, subset)
            ctx = Inspector().context(run, evidence)
            for ev in evidence:
                label, n = truth[ev.name]
                rows.append(Row(host, variant or "naive", subset, ev, label, n, ctx))
            if subset == "full" and corpus is not None:
                rows += replay_rows(d, host, variant or "naive", evidence, ctx, truth, corpus, cache)
    return rows


def replay_rows(
    d: Path,
    host: str,
    variant: str,
    evidence: list[PhaseEvidence],
    ctx: Any,
    truth: dict,
    corpus: Path,
    cache: dict,
) -> list[Row]:
    """The full view with the verifier's replay of each handed-over claim attached; the
    lineage set grows phase by phase as ``Inspector.inspect`` grows it."""
    from inspectorate.models._checkpoint import file_sha256
    from inspectorate.models._corpus import load_corpus
    from inspectorate.replay import read_claim, replay_claim, replay_finding
    from inspectorate.verify._recomputed import PhaseWatch, _finding, bind_phase

    text = cache.setdefault(("corpus", corpus), load_corpus(corpus))
    known: set[str] = set()
    out = []
    for ev in evidence:
        path = d / "claims" / ev.name / "claim.json"
        found = []
        if path.exists() and ev.claim.op == "training":
            key = file_sha256(path)
            if key not in cache:
                claim = read_claim(path)
                n = len(claim.checkpoints) - 1
                rng = np.random.default_rng([int(host.removeprefix("host") or 0), n])
                segments = sorted({0, int(rng.integers(1, n))} if n > 1 else {0})
                cache[key] = replay_finding(replay_claim(claim, text, segments))
            found = [_finding(cache[key], path)]
        label, n_true = truth[ev.name]
        out.append(Row(host, variant, REPLAY_VIEW, ev, label, n_true, ctx, found, frozenset(known)))
        watch = PhaseWatch(ev.name, ev.t0, ev.t1, ctx.ckpt_watch)
        bind_phase(found, ev.claim, (ev.windows or {}).get("tokens"), known, ctx.nonce, watch)
    return out


# ------------------------------------------------------------------------ targets


def target(prop: str, r: Row) -> int | None:
    """1 when the claim is false on this property's axis; None when it does not apply."""
    claim, t_act = r.ev.claim, r.truth.partition(":")[0]
    if prop == "p1_op_type":
        return int(OP[t_act] != claim.op)
    if prop == "p2_model_size":
        return int(bool(r.n_true and claim.n_params and r.n_true > claim.n_params))
    if prop == "p3_finetune":
        if OP[t_act] != "training" or claim.op != "training":
            return None
        return int(t_act != claim.activity)
    return int(r.adversarial)


# ------------------------------------------------------------------------ calibration


def compute_ratio(r: Row) -> float | None:
    s = r.ev.sensor or {}
    work, tokens = claimed_work(r.ev), (r.ev.windows or {}).get("tokens")
    if "cpu_s" not in s or work is None or not tokens:
        return None
    check = spot_check(work, DEFAULT.spot_check_s)
    return s["cpu_s"] / (check.cpu_s_per_token * tokens) if isinstance(check, SpotCheck) else None


def with_cal(ctx: Any, cal: Calibration, known: frozenset[str] = frozenset()) -> Context:
    """The host's run context (layout, weight lineage) under calibration ``cal``."""
    return Context(cal, ctx.layout, ctx.hashes_before, set(known), ctx.nonce, ctx.ckpt_watch)


def fit_calibration(train: list[Row]) -> Calibration:
    """What the held-out protocol learns from its training rows (honest phases only for
    the tolerances; naive phases for the lr level, where the lie's own records speak)."""
    full = [r for r in train if r.subset == "full" and r.variant in ("naive", "competent")]  # fit as before
    honest = [r for r in full if not r.adversarial and r.variant == "naive"]
    ft = [r.ev.steps.get("lr_max") for r in full if r.truth.startswith("finetune") and r.variant == "naive"]
    pt = [r.ev.steps.get("lr_max") for r in honest if r.truth.startswith("pretrain")]
    ratios = [x for x in (compute_ratio(r) for r in honest) if x]
    idle = [r.ev.sensor.get("cores") for r in honest if r.ev.claim.op == "idle" and r.ev.sensor]
    cal = DEFAULT.with_(
        finetune_lr=separating_threshold(ft, pt) or DEFAULT.finetune_lr,
        compute_high=MARGIN * max(ratios) if ratios else DEFAULT.compute_high,
        compute_low=MARGIN / min(ratios) if ratios else DEFAULT.compute_low,
        idle_cores=max(3.0 * max(idle), 0.02) if idle else DEFAULT.idle_cores,
        source="loho",
    )
    inspector = Inspector(calibration=cal)
    scores = [inspector.judge(r.ev, with_cal(r.ctx, cal)).suspicion for r in full]
    iso = IsotonicRegression(out_of_bounds="clip", y_min=0.02, y_max=0.98).fit(
        scores, [int(r.adversarial) for r in full]
    )
    return cal.with_(iso_x=tuple(map(float, iso.X_thresholds_)), iso_y=tuple(map(float, iso.y_thresholds_)))


def score_rows(
    rows: list[Row], cal: Calibration, properties: tuple[str, ...] | None = None
) -> list[dict[str, Any]]:
    inspector = Inspector(properties=properties, calibration=cal, policy="strict")
    out = []
    for r in rows:
        pv = inspector.judge(r.ev, with_cal(r.ctx, cal, r.known), recomputed=r.recomputed)
        by = {f.property: f for f in pv.findings}
        out.append(
            {
                "outcome": pv.outcome,
                "certified": pv.verdict,
                "suspicion": pv.suspicion,
                "caught_by": sorted(p for p, f in by.items() if f.decision == "inconsistent"),
                "open": pv.unverifiable,
                **{p: by[p].score for p in PROPS if p in by},
            }
        )
    return out


# ------------------------------------------------------------------------ figures


def auroc(scores: list[float], labels: list[int]) -> float:
    return float(roc_auc_score(labels, scores)) if len(set(labels)) == 2 else float("nan")


def aurocs(rows: list[Row], scored: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    out = {}
    for prop in (*PROPS, "overall"):
        pairs = [
            (s["suspicion"] if prop == "overall" else s[prop], target(prop, r))
            for r, s in zip(rows, scored)
            if (prop == "overall" or prop in s) and target(prop, r) is not None
        ]
        out[prop] = {
            "auroc": auroc([p[0] for p in pairs], [p[1] for p in pairs]),
            "n": len(pairs),
            "positives": sum(p[1] for p in pairs),
        }
    return out


def certification(rows: list[Row], scored: list[dict[str, Any]]) -> dict[str, Any]:
    adv = [(r, s) for r, s in zip(rows, scored) if r.adversarial]
    honest = [(r, s) for r, s in zip(rows, scored) if not r.adversarial]
    per_phase: dict[str, dict[str, Any]] = {}
    for r, s in adv:
        e = per_phase.setdefault(r.ev.name, {"hosts": 0, "not_certified": 0, "caught_by": {}, "open": {}})
        e["hosts"] += 1
        e["not_certified"] += int(s["certified"] == 0)
        for p in s["caught_by"]:
            e["caught_by"][p] = e["caught_by"].get(p, 0) + 1
        if s["outcome"] == "unverifiable":
            for p in s["open"]:
                e["open"][p] = e["open"].get(p, 0) + 1
    honest_phase: dict[str, dict[str, Any]] = {}
    for r, s in honest:
        e = honest_phase.setdefault(r.ev.name, {"hosts": 0, "certified": 0, "open": {}, "caught_by": {}})
        e["hosts"] += 1
        e["certified"] += int(s["certified"] == 1)
        for p in s["open"] if s["certified"] != 1 else ():
            e["open"][p] = e["open"].get(p, 0) + 1
        for p in s["caught_by"]:
            e["caught_by"][p] = e["caught_by"].get(p, 0) + 1
    return {
        "per_honest_phase": honest_phase,
        "adversarial_not_certified": sum(s["certified"] == 0 for _, s in adv) / max(len(adv), 1),
        "adversarial_caught_inconsistent": sum(s["outcome"] == "inconsistent" for _, s in adv)
        / max(len(adv), 1),
        "honest_certified": sum(s["certified"] == 1 for _, s in honest) / max(len(honest), 1),
        "honest_flagged_inconsistent": sum(s["outcome"] == "inconsistent" for _, s in honest)
        / max(len(honest), 1),
        "n_adversarial": len(adv),
        "n_honest": len(honest),
        "per_phase": per_phase,
    }


def compute_estimate_errors(rows: list[Row], overhead: dict[str, float]) -> dict[str, Any]:
    """Spot-check FLOP estimate on honest phases: sensor CPU-s / (CPU-s per token x honest
    overhead fitted on the other hosts) x FLOPs per token, against 6·N_true·D_true (2·N·D
    for inference/eval), D_true the tokens the workload really processed."""
    errs = []
    for r in rows:
        ratio = compute_ratio(r)
        if r.adversarial or ratio is None or r.variant != "naive" or r.subset != "full" or not r.n_true:
            continue
        errs.append(abs(ratio / overhead[r.host] - 1.0))  # tokens_est / tokens_true - 1 (N and 6/2 cancel)
    if not errs:
        return {}
    return {
        "median_abs_err": float(np.median(errs)),
        "within_25pct": float(np.mean(np.array(errs) <= 0.25)),
        "within_50pct": float(np.mean(np.array(errs) <= 0.5)),
        "n": len(errs),
    }


def baseline(train: list[Row], test: list[Row]) -> list[float]:
    """The seed's baseline: logistic regression on mean busy CPU cores (host cpu.csv)."""
    x = np.array([[r.ev.cpu_busy_cores or 0.0] for r in train])
    y = np.array([int(OP[r.truth.split(":")[0]] == "training") for r in train])
    model = LogisticRegression().fit(x, y) if len(set(y)) == 2 else None
    xt = np.array([[r.ev.cpu_busy_cores or 0.0] for r in test])
    p = model.predict_proba(xt)[:, 1] if model is not None else np.full(len(test), 0.5)
    return [float(pi if r.ev.claim.op != "training" else 1 - pi) for pi, r in zip(p, test)]


def family_split(rows: list[Row]) -> dict[str, Any]:
    """Fit the compute overhead on phases claiming one model, score the estimate on the other."""
    honest = [r for r in rows if not r.adversarial and r.variant == "naive" and r.subset == "full"]
    fams = sorted({r.ev.claim.model for r in honest if r.ev.claim.model})
    out = {}
    for fit_on in fams:
        fit = [x for x in (compute_ratio(r) for r in honest if r.ev.claim.model == fit_on) if x]
        test = [x for x in (compute_ratio(r) for r in honest if r.ev.claim.model not in (fit_on, None)) if x]
        if fit and test:
            over = float(np.median(fit))
            err = [abs(x / over - 1) for x in test]
            out[f"fit {fit_on} -> score others"] = {
                "median_abs_err": float(np.median(err)),
                "n": len(err),
                "overhead": over,
            }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, required=True, help="sweep cache: RUNS/host<i>[-competent]")
    ap.add_argument("--hosts", type=int, default=4)
    ap.add_argument("--profile", default="test")
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--corpus", type=Path, default=None)
    ap.add_argument("--out", type=Path, default=None, help="write the full results as JSON here")
    ap.add_argument("--replay", action="store_true", help="add the full+replay view (needs --corpus)")
    ap.add_argument(
        "--forgers",
        default=",".join(FORGERS),
        help="with --replay: which substituting provers to build and score (comma-separated)",
    )
    args = ap.parse_args()
    if args.replay and args.corpus is None:
        ap.error("--replay needs --corpus (the verifier's copy of the training text)")
    forgers = tuple(f for f in args.forgers.split(",") if f)
    if unknown := set(forgers) - set(FORGERS):
        ap.error(f"--forgers: unknown {sorted(unknown)} (choose from {', '.join(FORGERS)})")
    dirs = ensure_runs(args.runs, args.hosts, args.profile, args.scale, args.corpus, args.replay, forgers)
    rows = load_rows(dirs, args.corpus if args.replay else None)
    result = evaluate(rows)
    print(render(result))
    if args.out:
        args.out.write_text(json.dumps(result, indent=1, default=str) + "\n")


def evaluate(rows: list[Row]) -> dict[str, Any]:
    hosts = sorted({r.host for r in rows})
    held: dict[int, dict[str, Any]] = {}
    held_no_p3: dict[int, dict[str, Any]] = {}
    base: dict[int, float] = {}
    cals: dict[str, Calibration] = {}
    no_p3 = tuple(p for p in ("p1_op_type", "p2_model_size", "compute", "flops", "consistency", "integrity"))
    for h in hosts:
        train = [r for r in rows if r.host != h]
        idx = [i for i, r in enumerate(rows) if r.host == h]
        cals[h] = fit_calibration(train) if train else DEFAULT
        test = [rows[i] for i in idx]
        for i, s, s2, b in zip(
            idx, score_rows(test, cals[h]), score_rows(test, cals[h], no_p3), baseline(train or test, test)
        ):
            held[i], held_no_p3[i], base[i] = s, s2, b
    views = [v for v in (*SUBSETS, REPLAY_VIEW) if any(r.subset == v for r in rows)]
    variants = [v for v in VARIANTS if any(r.variant == v for r in rows)]
    out: dict[str, Any] = {
        "hosts": hosts,
        "views": views,
        "variants": variants,
        "phases_per_view": len(rows) // (len(views) * len(variants)),
    }
    for variant in variants:
        for subset in views:
            ids = [i for i, r in enumerate(rows) if r.variant == variant and r.subset == subset]
            sel, sc = [rows[i] for i in ids], [held[i] for i in ids]
            out[f"{variant}/{subset}"] = {
                "auroc": aurocs(sel, sc),
                "baseline_auroc": auroc([base[i] for i in ids], [target("p1_op_type", rows[i]) for i in ids]),
                "strict": certification(sel, sc),
                "strict_without_p3": certification(sel, [held_no_p3[i] for i in ids]),
            }
    overhead = {
        h: float(
            np.median(
                [
                    x
                    for x in (
                        compute_ratio(r)
                        for r in rows
                        if r.host != h and r.subset == "full" and r.variant == "naive" and not r.adversarial
                    )
                    if x
                ]
                or [1.0]
            )
        )
        for h in hosts
    }
    out["compute_estimate"] = compute_estimate_errors(rows, overhead)
    out["family_split"] = family_split(rows)
    keys = ("finetune_lr", "compute_high", "compute_low", "idle_cores")
    out["defaults_from_loho"] = {k: float(np.median([getattr(c, k) for c in cals.values()])) for k in keys}
    grid = tuple(i / 20 for i in range(21))  # the folds' isotonic maps, averaged on a grid
    out["defaults_from_loho"]["iso_x"] = grid
    out["defaults_from_loho"]["iso_y"] = tuple(
        round(float(np.mean([c.probability(x) for c in cals.values()])), 3) for x in grid
    )
    out["per_fold"] = {h: {k: getattr(c, k) for k in keys} for h, c in cals.items()}
    return out


def render(result: dict[str, Any]) -> str:
    def f(v: Any) -> str:
        return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"

    lines = [
        f"hosts: {', '.join(result['hosts'])}; phases per host and view: {result['phases_per_view']}",
        "",
    ]
    lines += [
        "| view | adv not certified | adv inconsistent | honest certified | honest flagged | "
        "honest certified w/o p3 |",
        "|---|---|---|---|---|---|",
    ]
    views, variants = result["views"], result["variants"]
    for key in (f"{v}/{s}" for v in variants for s in views):
        st, st2 = result[key]["strict"], result[key]["strict_without_p3"]
        lines.append(
            f"| {key} | {f(st['adversarial_not_certified'])} | {f(st['adversarial_caught_inconsistent'])} | "
            f"{f(st['honest_certified'])} | {f(st['honest_flagged_inconsistent'])} | "
            f"{f(st2['honest_certified'])} |"
        )
    lines += [
        "",
        "| property | " + " | ".join(f"{v}/{s}" for v in variants for s in views) + " |",
        "|---|" + "---|" * len(variants) * len(views),
    ]
    for prop in (*PROPS, "overall"):
        cells = [f(result[f"{v}/{s}"]["auroc"][prop]["auroc"]) for v in variants for s in views]
        lines.append(f"| {prop} | " + " | ".join(cells) + " |")
    lines.append(
        "| baseline (CPU cores, P1 target) | "
        + " | ".join(f(result[f"{v}/{s}"]["baseline_auroc"]) for v in variants for s in views)
        + " |"
    )
    for key in (f"{v}/{s}" for v in variants for s in ("full", REPLAY_VIEW) if s in views):
        lines += [
            "",
            f"{key}, strict, per adversarial phase (hosts not certified; caught by; open):",
        ]
        for name, e in result[key]["strict"]["per_phase"].items():
            lines.append(
                f"  {name}: {e['not_certified']}/{e['hosts']} caught_by={e['caught_by']} open={e['open']}"
            )
        lines.append(f"{key}, strict, per honest phase (hosts certified; open where not):")
        for name, e in result[key]["strict"]["per_honest_phase"].items():
            lines.append(
                f"  {name}: {e['certified']}/{e['hosts']} open={e['open']} caught_by={e['caught_by']}"
            )
    lines += [
        "",
        f"compute estimate (honest, LOHO overhead): {json.dumps(result['compute_estimate'])}",
        f"family split: {json.dumps(result['family_split'])}",
        f"defaults (median of LOHO folds): {json.dumps(result['defaults_from_loho'])}",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
