"""``check``: judge a trace against a commitment's deterministic rules."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from inspectorate.commitment._model import Commitment, RuleSpec
from inspectorate.commitment._registry import RULES, Violation, load_plugins
from inspectorate.commitment._semantic import plan_semantic
from inspectorate.errors import InputError
from inspectorate.trace import Trace


@dataclass(frozen=True)
class Verdict:
    """The answer: ``verdict`` 1 = compliant, 0 = violation (the seed's verdict format).

    Deterministic rules either hold or not, so ``confidence`` is 1.0 here. Semantic
    rules judged offline (a built-in fallback or a compiled rule) are in
    ``semantic_rules_judged`` with how; the rest need an inspector and are listed as not
    evaluated, with the reason, rather than silently passed.
    """

    commitment_id: str
    verdict: int
    violations: tuple[Violation, ...]
    rules_evaluated: tuple[str, ...]
    semantic_rules_not_evaluated: tuple[str, ...] = ()
    records: int = 0
    seconds: float = 0.0
    confidence: float = 1.0
    timings: dict[str, float] = field(default_factory=dict)
    semantic_rules_judged: dict[str, str] = field(default_factory=dict)
    semantic_unjudged_reasons: dict[str, str] = field(default_factory=dict)
    agent: dict[str, Any] = field(default_factory=dict)  # the LLM tier's report, when it ran

    @property
    def compliant(self) -> bool:
        return self.verdict == 1

    @property
    def exit_code(self) -> int:
        return 0 if self.verdict == 1 else 1

    @property
    def trigger(self) -> Violation | None:
        return self.violations[0] if self.violations else None

    @property
    def triggered_rule_id(self) -> str | None:
        return self.trigger.rule_id if self.trigger else None

    @property
    def flagged_record_ids(self) -> list[str]:
        return list(self.trigger.record_ids) if self.trigger else []

    @property
    def rationale(self) -> str:
        if not self.violations:
            return f"All {len(self.rules_evaluated)} deterministic rules hold over {self.records} records."
        rules = list(dict.fromkeys(v.rule_id for v in self.violations))
        return f"{len(self.violations)} violation(s) of {len(rules)} rule(s) ({', '.join(rules)}); first: {self.violations[0].message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "commitment_id": self.commitment_id,
            "verdict": self.verdict,
            "confidence": self.confidence,
            "triggered_rule_id": self.triggered_rule_id,
            "flagged_record_ids": self.flagged_record_ids,
            "rationale": self.rationale,
            "trigger": self.trigger.to_dict() if self.trigger else None,
            "violations": [v.to_dict() for v in self.violations],
            "rules_evaluated": list(self.rules_evaluated),
            "semantic_rules_judged": dict(self.semantic_rules_judged),
            "semantic_rules_not_evaluated": list(self.semantic_rules_not_evaluated),
            "semantic_unjudged_reasons": dict(self.semantic_unjudged_reasons),
            "records": self.records,
            **({"agent": self.agent} if self.agent else {}),
        }


def run_rule(spec: RuleSpec, trace: Trace) -> list[Violation]:
    """Evaluate one configured rule, stamping its id and kind on each violation."""
    load_plugins()
    kind = RULES[spec.kind]
    return [replace(v, rule_id=spec.id, kind=spec.kind) for v in kind.fn(trace, **spec.params)]


def check(
    trace: Trace | Iterable[dict[str, Any]],
    commitment: Commitment,
    on_rule: Callable[[str], None] | None = None,
) -> Verdict:
    """Judge ``trace`` against ``commitment``: implicit rules first, then the listed ones,
    then the semantic rules that have an offline fallback or a compiled rule
    (``on_rule(rule_id)`` is called as each deterministic rule finishes, for progress)."""
    if not isinstance(trace, Trace):
        trace = Trace.from_records(list(trace))
    if len(trace) == 0:
        raise InputError("empty trace (no records)", trace.source)
    started = time.perf_counter()
    violations: list[Violation] = []
    timings: dict[str, float] = {}
    specs = rule_plan(commitment)
    for spec in specs:
        t0 = time.perf_counter()
        violations.extend(run_rule(spec, trace))
        timings[spec.id] = time.perf_counter() - t0
        if on_rule is not None:
            on_rule(spec.id)
    return assemble(commitment, specs, violations, len(trace), time.perf_counter() - started, timings)


def rule_plan(commitment: Commitment) -> list[RuleSpec]:
    """Every rule a check runs, in order: implicit, listed, then the semantic rules that
    have an offline fallback or a compiled rule. Every engine runs this same list."""
    return commitment.effective_rules() + list(plan_semantic(commitment).specs)


def assemble(
    commitment: Commitment,
    specs: list[RuleSpec],
    violations: list[Violation],
    records: int,
    seconds: float,
    timings: dict[str, float],
) -> Verdict:
    """The verdict over ``specs``' violations (shared by the local and distributed engines)."""
    semantic = plan_semantic(commitment)
    return Verdict(
        commitment_id=commitment.id,
        verdict=0 if violations else 1,
        violations=tuple(violations),
        rules_evaluated=tuple(spec.id for spec in specs),
        semantic_rules_not_evaluated=tuple(semantic.unjudged),
        records=records,
        seconds=seconds,
        timings=timings,
        semantic_rules_judged=semantic.judged,
        semantic_unjudged_reasons=semantic.unjudged,
    )
