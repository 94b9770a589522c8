"""Rule compilation: semantic rules become deterministic rules when one provably fits.

For each semantic rule the candidate is the built-in fallback (``rules/semantic.py``)
or the rule the agent proposed with its judgement. A candidate is kept only if its
parameters validate, it reproduces the agent's own judgement on the evidence (fires
and flags a cited record where the agent found a violation, stays quiet where it found
none), and it raises nothing on any honest embedded trace. Kept rules are appended to
``deterministic_rules`` and the semantic rule names them (``compiled_to``), so the next
``check`` judges it with no model at all.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from inspectorate.agent._backends import AgentSettings, Backend
from inspectorate.agent._inspector import inspect_semantic
from inspectorate.agent._verdict import RuleJudgement
from inspectorate.commitment import Commitment, RuleSpec, check, load_commitment
from inspectorate.commitment._check import run_rule
from inspectorate.commitment._model import validate_params
from inspectorate.decisions import Decision
from inspectorate.errors import InputError
from inspectorate.trace import Trace, read_trace


@dataclass
class CompileOutcome:
    rule_id: str
    kept: bool
    source: str  # fallback | agent | compiled | none
    kind: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    reason: str = ""


def honest_traces() -> list[Trace]:
    """The embedded honest reference traces every compiled rule must leave alone."""
    from inspectorate.data import SEED_TRACES, seed_path

    return [read_trace(seed_path(name)) for name in SEED_TRACES]


def vet(
    kind: str,
    params: dict[str, Any],
    honest: list[Trace],
    judgement: RuleJudgement | None = None,
    evidence: Trace | None = None,
) -> str | None:
    """Why the candidate rule is rejected, or None when it may be kept."""
    try:
        spec = RuleSpec(kind, kind, validate_params(kind, dict(params), "proposed rule"))
    except InputError as exc:
        return f"invalid proposal: {exc.reason}"
    if judgement is not None and evidence is not None:
        found = run_rule(spec, evidence)
        flagged = {rid for v in found for rid in v.record_ids}
        if judgement.verdict == "violation" and not flagged & set(judgement.cited_record_ids):
            return "does not reproduce the agent's violation (flags none of the cited records)"
        if judgement.verdict == "compliant" and found:
            return "fires where the agent found the evidence compliant"
        if judgement.verdict == Decision.UNVERIFIABLE:
            return "the agent's judgement is unverifiable: nothing to reproduce"
    for trace in honest:
        if run_rule(spec, trace):
            return f"raises a violation on the honest trace {Path(trace.source).name}"
    return None


def compile_commitment(
    commitment: Commitment,
    trace: Trace | None = None,
    settings: AgentSettings | None = None,
    backend: Backend | str | None = None,
    honest: list[Trace] | None = None,
) -> tuple[dict[str, Any], list[CompileOutcome]]:
    """The strengthened commitment (as a mapping) and what happened to each semantic rule."""
    from inspectorate.commitment._semantic import plan_semantic

    honest = honest_traces() if honest is None else honest
    plan = plan_semantic(commitment)
    fallbacks = {spec.id: spec for spec in plan.specs}
    compiled = {str(r["id"]) for r in commitment.semantic_rules if r.get("compiled_to")}
    needing = [rid for rid in plan.unjudged]
    judgements: dict[str, RuleJudgement] = {}
    skipped = "no trace given: the agent needs evidence to judge"
    if needing and trace is not None:
        report = inspect_semantic(
            trace, commitment, needing, settings, check(trace, commitment).violations, backend
        )
        judgements, skipped = report.judgements, report.skipped or ""
    data = commitment.to_dict()
    outcomes = []
    for entry in data["semantic_rules"]:
        rid = str(entry["id"])
        if rid in compiled:
            outcomes.append(
                CompileOutcome(rid, True, "compiled", reason=f"already compiled to {entry['compiled_to']}")
            )
            continue
        outcome = _candidate(rid, fallbacks, judgements, skipped, honest, trace)
        if outcome.kept:
            entry["compiled_to"] = _add_rule(data, rid, outcome.kind, outcome.params)
        outcomes.append(outcome)
    load_commitment(data)  # the strengthened commitment must itself load
    return data, outcomes


def _candidate(
    rid: str,
    fallbacks: dict[str, RuleSpec],
    judgements: dict[str, RuleJudgement],
    skipped: str,
    honest: list[Trace],
    trace: Trace | None,
) -> CompileOutcome:
    if rid in fallbacks:
        spec = fallbacks[rid]
        reason = vet(spec.kind, spec.params, honest)
        return CompileOutcome(
            rid, reason is None, "fallback", spec.kind, dict(spec.params), reason or "built-in fallback"
        )
    judgement = judgements.get(rid)
    if judgement is None or judgement.proposed_rule is None:
        why = (
            judgement.reason if judgement and judgement.reason else skipped
        ) or "the agent proposed no rule"
        return CompileOutcome(rid, False, "none", reason=why)
    kind, params = judgement.proposed_rule["kind"], judgement.proposed_rule["params"]
    reason = vet(kind, params, honest, judgement, trace)
    return CompileOutcome(
        rid, reason is None, "agent", kind, dict(params), reason or "reproduces the agent's judgement"
    )


def _add_rule(data: dict[str, Any], rid: str, kind: str | None, params: dict[str, Any]) -> str:
    taken = {str(r.get("id") or r["kind"]) for r in data["deterministic_rules"]}
    new_id = rid if rid not in taken else f"semantic-{rid}"
    data["deterministic_rules"].append({"kind": kind, "id": new_id, **params})
    return new_id


def write_commitment(data: dict[str, Any], path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True), encoding="utf-8")
