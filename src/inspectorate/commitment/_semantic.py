"""Which semantic rules ``check`` can judge offline, and with what.

A semantic rule is judged deterministically when the commitment compiled it
(``compiled_to: <deterministic rule id>``, written by ``inspectorate agent compile``)
or when a built-in fallback implements it (``rules/semantic.py``); every other one is
left to the LLM tier and reported as not judged, with the reason. Fallbacks are found
by rule id; a commitment that gives one of those ids another meaning sets
``offline: false`` on it to keep the fallback away.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from inspectorate.commitment._model import Commitment, RuleSpec, validate_params
from inspectorate.errors import InputError


@dataclass(frozen=True)
class SemanticPlan:
    """Extra specs to run, how each judged rule is judged, and why the others are not."""

    specs: tuple[RuleSpec, ...] = ()
    judged: dict[str, str] = field(default_factory=dict)
    unjudged: dict[str, str] = field(default_factory=dict)


def plan_semantic(commitment: Commitment) -> SemanticPlan:
    from inspectorate.commitment.rules.semantic import FALLBACKS

    listed = {spec.id: spec for spec in commitment.rules}
    specs: list[RuleSpec] = []
    judged: dict[str, str] = {}
    unjudged: dict[str, str] = {}
    for entry in commitment.semantic_rules:
        rule_id = str(entry["id"])
        target = entry.get("compiled_to")
        if target is not None:
            if target not in listed:
                raise InputError(
                    f"semantic rule {rule_id!r}: compiled_to names no deterministic rule ({target!r})",
                    commitment.source,
                )
            judged[rule_id] = f"compiled to {target} ({listed[target].kind})"
        elif rule_id in FALLBACKS and entry.get("offline", True) is not False:
            kind, derive = FALLBACKS[rule_id]
            params = derive(commitment)
            if params is None:
                unjudged[rule_id] = f"fallback {kind} needs a per-job training cap the commitment lacks"
                continue
            where = f"{commitment.source}: semantic rule {rule_id}"
            specs.append(RuleSpec(rule_id, kind, validate_params(kind, params, where)))
            judged[rule_id] = f"offline fallback {kind}"
        else:
            unjudged[rule_id] = "no offline fallback (LLM tier: --agent)"
    return SemanticPlan(tuple(specs), judged, unjudged)
