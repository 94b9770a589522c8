"""The inspector's structured verdict: schema, parsing and validation.

A reply is accepted only as written: a number given as a string, a missing field, an
unknown verdict word, a record id not in the trace or a signal not in the evidence
makes it invalid (the inspector retries, then reports the rule unverifiable). Nothing
is coerced into shape.
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from inspectorate.decisions import LEGACY, Decision

# The third word is the shared Decision vocabulary; replies and cached files of older
# versions said "undetermined", read as the same thing.
VERDICTS = ("compliant", "violation", str(Decision.UNVERIFIABLE))
RULE_KEYS = {"id", "verdict", "confidence", "cited_record_ids", "signals", "rationale", "proposed_rule"}
REQUIRED = RULE_KEYS - {"proposed_rule"}

VERDICT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["rules"],
    "additionalProperties": False,
    "properties": {
        "rules": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": sorted(REQUIRED),
                "properties": {
                    "id": {"type": "string"},
                    "verdict": {"enum": list(VERDICTS)},
                    "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    "cited_record_ids": {"type": "array", "items": {"type": "string"}},
                    "signals": {"type": "array", "items": {"type": "string"}},
                    "rationale": {"type": "string", "minLength": 1, "maxLength": 2000},
                    "proposed_rule": {
                        "type": ["object", "null"],
                        "required": ["kind", "params"],
                        "properties": {"kind": {"type": "string"}, "params": {"type": "object"}},
                    },
                },
            },
        }
    },
}


@dataclass
class RuleJudgement:
    """The inspector's answer for one semantic rule (``verdict`` unverifiable + ``reason``
    when no valid answer came back)."""

    id: str
    verdict: str = Decision.UNVERIFIABLE
    confidence: float = 0.0
    cited_record_ids: list[str] = field(default_factory=list)
    signals: list[str] = field(default_factory=list)
    rationale: str = ""
    proposed_rule: dict[str, Any] | None = None
    reason: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def extract_json(text: str) -> Any:
    """The reply's JSON object: the whole text, a fenced ```json block, or the outermost braces."""
    stripped = text.strip()
    candidates = [stripped]
    fenced = re.search(r"```(?:json)?\s*\n(.*?)```", text, re.S)
    if fenced:
        candidates.append(fenced.group(1))
    if "{" in text and "}" in text:
        candidates.append(text[text.index("{") : text.rindex("}") + 1])
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            continue
    raise ValueError("the reply holds no parseable JSON object")


def validate_reply(
    data: Any, rule_ids: list[str], record_ids: set[str], signals: set[str]
) -> tuple[dict[str, RuleJudgement], list[str]]:
    """Valid judgements by rule id, and one line per problem found."""
    if not isinstance(data, dict) or set(data) != {"rules"} or not isinstance(data["rules"], list):
        return {}, ['the reply must be exactly {"rules": [...]}']
    judged: dict[str, RuleJudgement] = {}
    errors: list[str] = []
    for index, entry in enumerate(data["rules"]):
        problems = _problems(entry, rule_ids, record_ids, signals)
        rid = entry.get("id") if isinstance(entry, dict) else None
        if not problems and rid in judged:
            problems = [f"rule {rid!r} answered twice"]
        if problems:
            errors += [f"rules[{index}]: {p}" for p in problems]
            continue
        fields = {k: entry.get(k) for k in RULE_KEYS}
        if fields["verdict"] not in ("compliant", "violation"):  # the shared third word, old or new
            fields["verdict"] = Decision.parse(fields["verdict"])
        judged[str(rid)] = RuleJudgement(**fields)
    errors += [f"rule {rid!r} has no answer" for rid in rule_ids if rid not in judged]
    return judged, errors


def _problems(entry: Any, rule_ids: list[str], record_ids: set[str], signals: set[str]) -> list[str]:
    if not isinstance(entry, dict):
        return ["must be an object"]
    problems = [f"missing {k}" for k in sorted(REQUIRED - set(entry))]
    problems += [f"unknown field {k}" for k in sorted(set(entry) - RULE_KEYS)]
    if problems:
        return problems
    if entry["id"] not in rule_ids:
        problems.append(f"id {entry['id']!r} is not a rule asked for ({', '.join(rule_ids)})")
    if LEGACY.get(entry["verdict"], entry["verdict"]) not in VERDICTS:
        problems.append(f"verdict must be one of {', '.join(VERDICTS)}")
    confidence = entry["confidence"]
    if isinstance(confidence, bool) or not isinstance(confidence, (int, float)) or not 0 <= confidence <= 1:
        problems.append("confidence must be a number in [0, 1]")
    problems += _list_problems(entry, "cited_record_ids", record_ids, "record id not in the trace")
    problems += _list_problems(entry, "signals", signals, "signal not in the evidence")
    if entry["verdict"] == "violation" and not entry["cited_record_ids"]:
        problems.append("a violation must cite at least one record id")
    if (
        not isinstance(entry["rationale"], str)
        or not entry["rationale"].strip()
        or len(entry["rationale"]) > 2000
    ):
        problems.append("rationale must be a non-empty string of at most 2000 characters")
    proposal = entry.get("proposed_rule")
    if proposal is not None and not (
        isinstance(proposal, dict)
        and set(proposal) == {"kind", "params"}
        and isinstance(proposal["kind"], str)
        and isinstance(proposal["params"], dict)
    ):
        problems.append('proposed_rule must be null or {"kind": str, "params": {...}}')
    return problems


def _list_problems(entry: dict[str, Any], key: str, known: set[str], what: str) -> list[str]:
    value = entry[key]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        return [f"{key} must be a list of strings"]
    unknown = [v for v in value if v not in known]
    return [f"{what}: {', '.join(unknown[:5])}"] if unknown else []
