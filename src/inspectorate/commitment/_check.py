"""``check``: judge a trace against a commitment's deterministic rules."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import polars as pl

from inspectorate.commitment._model import Commitment, RuleSpec
from inspectorate.commitment._registry import RULES, Violation, load_plugins
from inspectorate.commitment._semantic import plan_semantic
from inspectorate.commitment.rules._common import op_mask
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
    # records each rule's filter selected (rule id -> count); 0 means the rule checked
    # nothing, which a commitment author must see (a dead rule passes vacuously)
    matched: dict[str, int] = field(default_factory=dict)
    rule_kinds: dict[str, str] = field(default_factory=dict)
    # False: no published head pinned the last record, so the chain protects the records
    # submitted but not a tail that may have been left off (a prefix passes every rule)
    head_checked: bool | None = None

    @property
    def dead_rules(self) -> list[str]:
        """Rules whose filter matched no record (they checked nothing)."""
        return [rule_id for rule_id, n in self.matched.items() if n == 0]

    @property
    def notes(self) -> list[str]:
        """What the verdict does not cover, in words (text and JSON say the same)."""
        out = []
        if self.head_checked is False:
            out.append(
                "no published head: the hash chain protects the records submitted, not a tail "
                "that may have been left off (a prefix of the log passes); publish the head "
                "(--head or <trace>.head.json) or declare the audit window's end "
                "(require_head, window_slots_to_end)"
            )
        for rule_id in self.dead_rules:
            out.append(f"rule {rule_id} matched no record: it checked nothing")
        return out

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
            "rule_coverage": [
                {"rule_id": rule_id, "kind": self.rule_kinds.get(rule_id, ""), "matched": n}
                for rule_id, n in self.matched.items()
            ],
            "head_checked": self.head_checked,
            "notes": self.notes,
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
    verdict = assemble(commitment, specs, violations, len(trace), time.perf_counter() - started, timings)
    return with_coverage(verdict, trace, specs)


def matched_counts(trace: Trace, specs: list[RuleSpec]) -> dict[str, int]:
    """Records each rule's filter selects (its ``selects`` metadata; else its op_type or
    op_types parameter; else every record), all counted in one pass over the frame."""
    load_plugins()
    exprs: dict[str, Any] = {}
    for spec in specs:
        kind = RULES[spec.kind]
        params = kind.configured(spec.params)
        if kind.selects is not None:
            mask = kind.selects(params)
        elif "op_type" in params or "op_types" in params:
            mask = op_mask(params["op_type"] if "op_type" in params else params["op_types"])
        else:
            mask = None
        exprs[spec.id] = pl.len() if mask is None else mask.fill_null(False).sum()
    if not exprs:
        return {}
    names = {f"_m{i}": rule_id for i, rule_id in enumerate(exprs)}
    row = trace.frame.select(
        [expr.cast(pl.Int64).alias(alias) for alias, expr in zip(names, exprs.values())]
    ).row(0, named=True)
    return {names[alias]: int(row[alias]) for alias in names}


def with_coverage(verdict: Verdict, trace: Trace, specs: list[RuleSpec]) -> Verdict:
    """The verdict with each rule's matched count and whether a head pinned the tail."""
    return replace(
        verdict,
        matched=matched_counts(trace, specs),
        rule_kinds={spec.id: spec.kind for spec in specs},
        head_checked=trace.head is not None,
    )


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
