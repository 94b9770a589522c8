"""The substitute provers against ``verify --replay``, bound to the checkpoint watcher.

    python bench/substitute_live.py --runs runs/sweep --hosts 4 \
        --corpus tests/data/testbed_corpus.txt --out substitute.json

Reads a ``testbed sweep --replay-claims`` cache (``RUNS/host<i>`` and
``RUNS/host<i>-competent``; builds ``-substitute-live`` and ``-substitute-relay`` beside
them when missing, as ``bench/properties_loho.py`` does) and judges every run as
``verify RUN --replay --corpus FILE`` would: the shipped calibration, the strict policy,
segment 0 plus one drawn segment of every handed-over claim (draw seeded per host).
Ground truth (``truth`` in the labels) is read here for scoring only.

Reports, per prover: lies certified (of all adversarial phases), lies whose
``training_replay`` is inconsistent and why, honest phases certified and honest phases
flagged inconsistent.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from inspectorate.testbed.competent import make_substituting
from inspectorate.verify import verify_run
from inspectorate.verify._replay_run import ReplayPlan

PROVERS = ("naive", "competent", "substitute-live", "substitute-relay")


def ensure(root: Path, host: int, corpus: Path) -> None:
    live = root / f"host{host}-substitute-live"
    if not (live / "workload_labels.jsonl").exists():
        make_substituting(root / f"host{host}-competent", live, corpus, live=True)
    relay = root / f"host{host}-substitute-relay"
    if not (relay / "workload_labels.jsonl").exists():
        make_substituting(
            root / f"host{host}-competent", relay, corpus, live=True, relay=True, claims_from=live
        )


def truth(run: Path) -> dict[str, bool]:
    """Phase -> adversarial (claimed != truth)."""
    out = {}
    for line in (run / "workload_labels.jsonl").read_text().splitlines():
        e = json.loads(line)
        if e.get("event") == "start":
            out[e["phase"]] = e.get("truth") != e.get("claimed")
    return out


def judge(run: Path, corpus: Path, seed: int, lies_only: bool = False) -> list[dict[str, Any]]:
    """``verify RUN --replay`` (segment 0 + one drawn segment per claim). ``lies_only``
    replays only the adversarial phases' claims (the substitute provers hand over the
    naive run's honest claims unchanged: their honest outcomes are the naive run's, and
    the box is too loaded to replay them three times); their honest rows are then not
    scored."""
    adversarial = truth(run)
    if lies_only:
        verdict = verify_run(
            run, recomputed=_replayed(run, corpus, seed, {p for p, a in adversarial.items() if a})
        )
    else:
        verdict = verify_run(run, replay=ReplayPlan(corpus, draws=1, seed=seed))
    rows = []
    for p in verdict.phases:
        replay = next((f for f in p.findings if f.property == "training_replay"), None)
        rows.append(
            {
                "phase": p.phase,
                "adversarial": adversarial.get(p.phase, False),
                "outcome": str(p.outcome),
                "certified": p.verdict == 1,
                "replay": None if replay is None else str(replay.decision),
                "binding": [] if replay is None else list(replay.evidence.get("binding", [])),
                "bound": replay is not None and bool(replay.evidence.get("settles")),
                "open": None if replay is None else (replay.evidence.get("observed") or {}).get("reason"),
                "ingress": None if replay is None else (replay.evidence.get("observed") or {}).get("ingress"),
            }
        )
    return rows


def _replayed(run: Path, corpus: Path, seed: int, phases: set[str]) -> dict[str, list[Any]]:
    """What ``verify --replay`` attaches, for ``phases`` only (same draw per phase)."""
    from inspectorate.models._corpus import load_corpus
    from inspectorate.replay import read_claim, replay_claim, replay_finding
    from inspectorate.trace import load_run
    from inspectorate.verify._recomputed import _finding
    from inspectorate.verify._replay_run import _phase_seed, handed_over, segments_for

    text = load_corpus(corpus)
    out = {}
    for phase, path in handed_over(load_run(run)).items():
        if phase in phases:
            claim = read_claim(path)
            chosen = segments_for(len(claim.checkpoints) - 1, 1, _phase_seed(seed, phase))
            out[phase] = [_finding(replay_finding(replay_claim(claim, text, chosen)), path)]
    return out


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    lies = [r for r in rows if r["adversarial"]]
    honest = [r for r in rows if not r["adversarial"] and not r.get("unscored")]
    return {
        "lies": len(lies),
        "lies_certified": sum(r["certified"] for r in lies),
        "lies_replay_inconsistent": sum(r["replay"] == "inconsistent" for r in lies),
        "honest": len(honest),
        "honest_certified": sum(r["certified"] for r in honest),
        "honest_flagged_inconsistent": sum(r["outcome"] == "inconsistent" for r in honest),
        "honest_replays": sum(r["replay"] is not None for r in honest),
        "honest_replays_bound": sum(r["bound"] for r in honest),
        "lies_replays": sum(r["replay"] is not None for r in lies),
        "lies_replays_bound": sum(r["bound"] for r in lies),
        "lies_relay_open": sum(bool(r["open"]) and "relayed in" in str(r["open"]) for r in lies),
        "certified_lies": sorted({r["phase"] for r in lies if r["certified"]}),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=Path, required=True)
    ap.add_argument("--hosts", type=int, default=4)
    ap.add_argument("--corpus", type=Path, required=True)
    ap.add_argument("--out", type=Path, default=None)
    ap.add_argument("--host-list", default=None, help="comma-separated host indices (default: all)")
    ap.add_argument("--provers", default=",".join(PROVERS), help="comma-separated provers to judge")
    ap.add_argument("--full", action="store_true", help="substitute provers: replay honest claims too")
    args = ap.parse_args()
    per: dict[str, list[dict[str, Any]]] = {p: [] for p in PROVERS}

    hosts = [int(h) for h in args.host_list.split(",")] if args.host_list else range(args.hosts)
    provers = [p for p in args.provers.split(",") if p in PROVERS]
    for h in hosts:
        ensure(args.runs, h, args.corpus)
        for prover in provers:
            name = f"host{h}" if prover == "naive" else f"host{h}-{prover}"
            lies_only = prover.startswith("substitute") and not args.full
            rows = judge(args.runs / name, args.corpus, seed=1000 + h, lies_only=lies_only)
            rows = [{**r, "unscored": lies_only and not r["adversarial"]} for r in rows]
            per[prover] += [{**r, "host": h} for r in rows]
            print(f"host{h} {prover}: {json.dumps(summarize(rows))}", flush=True)
    result = {p: summarize(rows) for p, rows in per.items() if p in provers}
    print(
        "| prover | lies certified | lies with training_replay inconsistent | lie replays bound |"
        " lies left open (could be relayed) | honest certified | honest replays bound | honest flagged |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for p, s in result.items():
        print(
            f"| {p} | {s['lies_certified']}/{s['lies']} | {s['lies_replay_inconsistent']}/{s['lies']} | "
            f"{s['lies_replays_bound']}/{s['lies_replays']} | {s['lies_relay_open']}/{s['lies']} | "
            f"{s['honest_certified']}/{s['honest']} | {s['honest_replays_bound']}/{s['honest_replays']} | "
            f"{s['honest_flagged_inconsistent']}/{s['honest']} |"
        )
    if args.out:
        args.out.write_text(json.dumps({"summary": result, "rows": per}, indent=1, default=str) + "\n")


if __name__ == "__main__":
    main()
