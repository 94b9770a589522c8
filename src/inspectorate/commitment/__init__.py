"""Commitments: what a prover promised, as rules a verifier can check.

>>> from inspectorate.commitment import load_commitment, check
>>> verdict = check(read_trace("trace.jsonl"), load_commitment("commitment.yml"))
"""

from inspectorate.commitment._check import Verdict, check
from inspectorate.commitment._conformance import check_rule
from inspectorate.commitment._model import Commitment, RuleSpec, load_commitment
from inspectorate.commitment._partition import by_param
from inspectorate.commitment._registry import (
    RULES,
    RuleKind,
    Violation,
    describe_kind,
    known_kinds,
    rule,
    violation,
)

__all__ = [
    "RULES",
    "Commitment",
    "RuleKind",
    "RuleSpec",
    "Verdict",
    "Violation",
    "by_param",
    "check",
    "check_rule",
    "describe_kind",
    "known_kinds",
    "load_commitment",
    "rule",
    "violation",
]
