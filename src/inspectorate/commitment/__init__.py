"""Commitments: what a prover promised, as rules a verifier can check.

>>> from inspectorate.commitment import load_commitment, check
>>> verdict = check(read_trace("trace.jsonl"), load_commitment("commitment.yml"))
"""

from inspectorate.commitment._check import Verdict, check, run_rule
from inspectorate.commitment._conformance import check_rule
from inspectorate.commitment._model import Commitment, RuleSpec, load_commitment, validate_params
from inspectorate.commitment._registry import (
    MAX_IDS,
    RULES,
    RuleKind,
    Violation,
    describe_kind,
    known_kinds,
    rule,
    violation,
)

__all__ = [
    "MAX_IDS",
    "RULES",
    "Commitment",
    "RuleKind",
    "RuleSpec",
    "Verdict",
    "Violation",
    "check",
    "check_rule",
    "describe_kind",
    "known_kinds",
    "load_commitment",
    "rule",
    "run_rule",
    "validate_params",
    "violation",
]
