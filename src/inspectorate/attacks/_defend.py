"""``--defend``: the smallest commitment change that catches the loop's evasions.

The seed closed each evasion by hand with a protocol patch. This does it by search:
candidates are tightened parameters of the commitment's own rules and new rules of
registered kinds (parameters derived from the clean baseline, e.g. its chip inventory
or its op types). A candidate is admissible only if it stays quiet on the clean
baseline and adds no new reason to reject any shared honest trace (firing where the
commitment already rejects that trace with a rule of the same kind is not counted:
the reference registries fit only the fine-tune). Admissible candidates are chosen
greedily, most evasions caught first, until no candidate catches more; then every
round is re-scored with the patched commitment.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

from inspectorate.attacks._facts import Facts
from inspectorate.commitment import RULES, Commitment, RuleSpec, check, known_kinds
from inspectorate.commitment._check import run_rule
from inspectorate.commitment._model import validate_params
from inspectorate.data import SEED_TRACES, seed_path
from inspectorate.errors import InputError
from inspectorate.trace import Trace, parse_time, read_trace

Records = list[dict[str, Any]]


def honest_traces() -> dict[str, Records]:
    """Every honest reference trace packaged with inspectorate, by file name."""
    return {f"{name}.jsonl": read_trace(seed_path(name)).records for name in SEED_TRACES}


def _spec(kind: str, rule_id: str, **params: Any) -> RuleSpec | None:
    try:
        return RuleSpec(rule_id, kind, validate_params(kind, params, "defend"))
    except InputError:
        return None


def _tightened(commitment: Commitment) -> Iterable[RuleSpec]:
    """Stricter detection parameters. A FLOP cap's threshold is the promise itself, not a
    detector: lowering it would "catch" evasions by changing the treaty, so it stays."""
    for spec in commitment.rules:
        for name, value in spec.params.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                continue
            if spec.kind == "aggregate_flop_cap" and name == "threshold":
                continue
            values = (
                [value * 0.5, value * 0.8] if isinstance(value, float) else ([value - 1] if value > 1 else [])
            )
            for new in values:
                made = _spec(spec.kind, f"{spec.id}@{name}={new:g}", **{**spec.params, name: new})
                if made:
                    yield made


def _derived(commitment: Commitment, clean: Records) -> Iterable[RuleSpec | None]:
    caps = sorted({float(s.params["threshold"]) for s in commitment.rules if s.kind == "aggregate_flop_cap"})
    for scope in ("per_operator", "global"):
        for cap in caps:
            yield _spec(
                "aggregate_flop_cap",
                f"aggregate_flop_cap[*,{scope},{cap:g}]",
                op_type="*",
                scope=scope,
                threshold=cap,
            )
    ratio = Facts(commitment).quantity("training_flop_ratio_threshold")
    for threshold in (0.6 * ratio, 0.4 * ratio):  # stricter than the commitment's own threshold
        yield _spec("op_type_flop_ratio", f"op_type_flop_ratio[{threshold:g}]", training_threshold=threshold)
    fpt = [float(r["flops"]) / r["tokens_processed"] for r in clean if r["tokens_processed"] > 0]
    if fpt:
        yield _spec("max_flop_per_token", "max_flop_per_token[*]", ceiling=max(fpt) * 1.3, op_types="*")
    trained = [r for r in clean if r["op_type"] == "training" and r["tokens_processed"] > 0]
    if trained:  # FLOPs under-reported while the tokens show the work: a floor for the trained model
        floor = min(float(r["flops"]) / r["tokens_processed"] for r in trained) / 1.3
        models = sorted({r["model_hash_prefix"] for r in trained})
        yield _spec("min_flop_per_token", "min_flop_per_token[baseline]", floor=floor, models=models)
    yield _spec(
        "batch_token_consistency", "batch_token_consistency[2,*]", max_capacity_ratio=2.0, op_types="*"
    )
    yield _spec(
        "allowed_op_types",
        "allowed_op_types[baseline]",
        allowed=sorted({r["op_type"] for r in clean} | {"idle"}),
    )
    yield _spec(
        "allowed_dataset_fingerprints",
        "allowed_dataset_fingerprints[baseline]",
        allowed=sorted({r["dataset_fingerprint"] for r in clean}),
    )
    yield _inventory(clean)


def _inventory(clean: Records) -> RuleSpec | None:
    """window_completeness declared from the baseline's own range and chips."""
    starts = [parse_time(r["window_start"]) for r in clean]
    seconds = statistics.median(parse_time(r["window_end"]) - s for r, s in zip(clean, starts)) or 60.0
    first = min(clean, key=lambda r: parse_time(r["window_start"]))["window_start"]
    last = max(clean, key=lambda r: parse_time(r["window_end"]))["window_end"]
    return _spec(
        "window_completeness",
        "window_completeness[baseline]",
        expected_window_start=first,
        expected_window_end=last,
        expected_chips=sorted({r["chip_id"] for r in clean}),
        window_seconds=seconds,
    )


def candidates(commitment: Commitment, clean: Records) -> list[RuleSpec]:
    """Tightened existing rules, derived new rules, and every parameter-free kind not yet used."""
    used = {s.kind for s in commitment.rules}
    defaults = [
        _spec(kind, f"{kind}[default]")
        for kind in known_kinds()
        if kind not in used and not RULES[kind].implicit and not RULES[kind].required()
    ]
    out, seen = [], set()
    for spec in [*_tightened(commitment), *_derived(commitment, clean), *defaults]:
        if spec is not None and spec.id not in seen:
            seen.add(spec.id)
            out.append(spec)
    return out


def _fires(spec: RuleSpec, trace: Trace) -> bool:
    try:
        return bool(run_rule(spec, trace))
    except (InputError, ValueError):
        return False


def defend(
    report: Any,
    commitment: Commitment,
    clean: Records,
    baseline: Records,
    honest: dict[str, Records] | None = None,
) -> dict[str, Any]:
    """Search the patch, re-score all rounds, report false positives on honest traces."""
    honest = honest_traces() if honest is None else honest
    evasions = {
        r["round"]: Trace.from_records(report.mutated[r["round"]])
        for r in report.evasions
        if r["round"] in report.mutated
    }
    honest_frames = {name: Trace.from_records(recs) for name, recs in honest.items()}
    already = {name: {v.kind for v in check(t, commitment).violations} for name, t in honest_frames.items()}
    clean_trace = Trace.from_records(clean)
    scored = []
    for spec in candidates(commitment, clean):
        if _fires(spec, clean_trace):
            continue
        fps = [n for n, t in honest_frames.items() if spec.kind not in already[n] and _fires(spec, t)]
        if fps:
            continue
        scored.append((spec, {n for n, t in evasions.items() if _fires(spec, t)}))
    added, remaining = _greedy(scored, set(evasions))
    patched = replace(commitment, rules=tuple(commitment.rules) + tuple(added))
    return _rescore(
        report, commitment, patched, added, evasions, remaining, honest_frames, already, len(scored)
    )


def _greedy(scored: list[tuple[RuleSpec, set[int]]], todo: set[int]) -> tuple[list[RuleSpec], set[int]]:
    added: list[RuleSpec] = []
    while todo:
        best = max(scored, key=lambda item: (len(item[1] & todo), -len(item[0].params)), default=None)
        if best is None or not best[1] & todo:
            break
        added.append(best[0])
        todo = todo - best[1]
    return added, todo


def _rescore(
    report: Any,
    base: Commitment,
    patched: Commitment,
    added: Sequence[RuleSpec],
    evasions: dict[int, Trace],
    remaining: set[int],
    honest: dict[str, Trace],
    already: dict[str, set[str]],
    admissible: int,
) -> dict[str, Any]:
    rescored = []
    for row in report.rounds:
        records = report.mutated.get(row["round"])
        if records is None:
            continue
        after = not check(records, patched).compliant
        rescored.append(
            {
                "round": row["round"],
                "caught_before": row["caught"],
                "caught_after": after,
                "evasion_after": bool(row["intent_preserved"] and not after),
            }
        )
    added_ids = {s.id for s in added}
    fps = {}
    for name, trace in honest.items():
        fired = sorted({v.rule_id for v in check(trace, patched).violations} & added_ids)
        new = [rid for rid in fired if next(s.kind for s in added if s.id == rid) not in already[name]]
        if new:
            fps[name] = new
    also = {
        name: sorted({v.rule_id for v in check(t, patched).violations} & added_ids)
        for name, t in honest.items()
    }
    return {
        "evasions_before": len(evasions),
        "evasions_caught_after": len(evasions) - len(remaining),
        "still_evading": sorted(remaining),
        "added_rules": [s.to_dict() for s in added],
        "admissible_candidates": admissible,
        "rescored": rescored,
        "false_positives": fps,
        "also_fires_on_already_rejected": {k: v for k, v in also.items() if v},
        "honest_traces": sorted(honest),
        "patched_commitment": patched.to_dict(),
        "base_commitment_id": base.id,
    }
