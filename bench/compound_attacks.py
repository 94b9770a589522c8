"""Caught rates of single and compound record attacks, side by side.

For each (seed trace, commitment) pair where the clean trace complies, the trace is
made to break the per-job training cap (``violate``) and every single library attack
and every pair (``--size 2``) or triple of the attacks that keep the violation is
played ``--seeds`` times. Printed: caught / rounds that kept the violation for singles,
for all compounds, and for the compounds whose every part alone is always caught (the
issue's goal: those at the parts' rate, 100%), and the compounds that evade while each
part alone is caught (gaps).

The shipped frontier commitment caps at 1e25 FLOP; the seed traces are 1e18-scale, so
an inflated copy would be physically impossible (``flop_physically_possible`` catches
every attack for the wrong reason). ``--fit-caps`` (default) scales every FLOP cap of a
commitment so the trace's dominant job sits at 40% of the training cap, as the
reference commitment's demo-scaled caps do; every other rule is kept as shipped.

    PYTHONPATH=src python bench/compound_attacks.py [--size 2] [--seeds 2] [--json out.json]
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
from pathlib import Path
from typing import Any

import yaml

from inspectorate.attacks import violate
from inspectorate.attacks._caught import gaps, rate, side_by_side
from inspectorate.attacks._intent import dominant_job
from inspectorate.commitment import check, load_commitment
from inspectorate.commitment._model import _Loader  # the loader that reads 1.0e25 as a number
from inspectorate.data import SEED_TRACES, seed_path
from inspectorate.trace import read_trace

ROOT = Path(__file__).resolve().parents[1]
FLOP_CAPS = ("aggregate_flop_cap", "lineage_flop_cap")
COMMITMENTS = ("frontier-training-cap.yml", "reference-no-frontier-training.yml")


def fit_caps(data: dict[str, Any], clean: list[dict[str, Any]], share: float = 0.4) -> dict[str, Any]:
    """``data`` with every aggregate_flop_cap threshold scaled by one factor, chosen so the
    clean trace's dominant job is ``share`` of the tightest training cap."""
    job = dominant_job(clean)
    total = sum(float(r["flops"]) for r in clean if r["job_id"] == job and r["op_type"] != "idle")
    caps = [
        float(r["threshold"])
        for r in data["deterministic_rules"]
        if r["kind"] in FLOP_CAPS and r.get("op_type") in ("training", "*")
    ]
    factor = total / share / min(caps)
    out = copy.deepcopy(data)
    for r in out["deterministic_rules"]:
        if r["kind"] in FLOP_CAPS:
            r["threshold"] = float(r["threshold"]) * factor
    return out


def pairs(fit: bool) -> list[tuple[str, str, Any, list[dict[str, Any]]]]:
    out = []
    for name in COMMITMENTS:
        data = yaml.load((ROOT / "commitments" / name).read_text(encoding="utf-8"), Loader=_Loader)
        for trace in SEED_TRACES:
            clean = read_trace(seed_path(trace)).records
            commitment = load_commitment(fit_caps(data, clean) if fit else data)
            verdict = check(clean, commitment)
            if verdict.compliant:
                out.append((name, trace, commitment, clean))
            else:  # an honest trace the commitment rejects is a false positive: say so
                print(
                    f"{name:36} {trace:22} skipped: the clean trace breaks "
                    f"{sorted({v.rule_id for v in verdict.violations})}"
                )
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=2, help="parts per compound (2: pairs, 3: triples)")
    ap.add_argument("--seeds", type=int, default=2, help="rounds per attack spec")
    ap.add_argument("--traces", nargs="*", default=None, help="seed trace names (default: all that comply)")
    ap.add_argument("--no-fit-caps", action="store_true", help="use the shipped caps as they are")
    ap.add_argument("--json", type=Path, default=None, help="write every score here")
    args = ap.parse_args(argv)
    seeds = range(args.seeds)
    report: list[dict[str, Any]] = []
    print(
        f"{'commitment':36} {'trace':22} {'singles caught':>17} {'compounds caught':>18} "
        f"{'of caught parts':>18} gaps"
    )
    for name, trace, commitment, clean in pairs(not args.no_fit_caps):
        if args.traces and trace not in args.traces:
            continue
        baseline = violate(clean, commitment)
        if check(baseline, commitment).compliant:
            continue
        single, compound = side_by_side(baseline, commitment, size=args.size, seeds=seeds)
        (sc, sk), (cc, ck) = rate(single), rate(compound)
        holes = gaps(single, compound)
        always = {s.name for s in single if s.rate == 1.0}
        (pc, pk) = rate([c for c in compound if set(c.parts) <= always])
        print(
            f"{name:36} {trace:22} {sc:>6}/{sk:<4} {sc / max(sk, 1):5.1%} "
            f"{cc:>6}/{ck:<5} {cc / max(ck, 1):5.1%} {pc:>6}/{pk:<5} {pc / max(pk, 1):5.1%} {len(holes)}"
        )
        for hole in holes:
            print(
                f"    gap: {hole.name} evades {hole.evasions}/{hole.rounds} (each part alone always caught)"
            )
        report.append(
            {
                "commitment": name,
                "trace": trace,
                "singles": [s.to_dict() for s in single],
                "compounds": [c.to_dict() for c in compound],
                "gaps": [h.name for h in holes],
            }
        )
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
