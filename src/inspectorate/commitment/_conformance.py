"""``check_rule``: a conformance battery for rule-kind plugins (cf. sklearn's check_estimator).

A plugin author runs it on a trace that should make their rule fire and one that
should not; it raises ConformanceError naming the first property that fails.
"""

from __future__ import annotations

from typing import Any

from inspectorate._plugins import ConformanceError, require
from inspectorate.commitment._model import RuleSpec, validate_params
from inspectorate.commitment._registry import RULES, load_plugins
from inspectorate.errors import InputError
from inspectorate.trace import Trace, canonical_json


def check_rule(kind: str, firing: Trace, quiet: Trace, params: dict[str, Any] | None = None) -> None:
    """Assert that rule ``kind`` is registered and documented, validates parameters,
    is deterministic, leaves its input untouched, fires on ``firing`` with evidence
    naming records of that trace, and stays quiet on ``quiet``."""
    from inspectorate.commitment._check import run_rule

    load_plugins()
    require(kind in RULES, f"{kind!r} is not registered")
    require(RULES[kind].doc.strip(), f"{kind!r} has no docstring stating its semantics")
    spec = RuleSpec(kind, kind, validate_params(kind, dict(params or {}), "check_rule"))
    _rejects_unknown_param(kind, params or {})
    before = ([canonical_json(r) for r in firing.records], firing.frame.clone())
    first, second = run_rule(spec, firing), run_rule(spec, firing)
    require([v.to_dict() for v in first] == [v.to_dict() for v in second], f"{kind!r} is not deterministic")
    require([canonical_json(r) for r in firing.records] == before[0], f"{kind!r} mutated the records")
    require(firing.frame.equals(before[1]), f"{kind!r} mutated the frame")
    require(first, f"{kind!r} did not fire on the firing trace")
    known = set(firing.frame["record_id"].to_list())
    for v in first:
        require(v.message, f"{kind!r} produced a violation without a message")
        require(
            isinstance(v.evidence, dict) and v.evidence, f"{kind!r} produced a violation without evidence"
        )
        require(set(v.record_ids) <= known, f"{kind!r} flagged record ids that are not in the trace")
    require(not run_rule(spec, quiet), f"{kind!r} fired on the quiet trace")


def _rejects_unknown_param(kind: str, params: dict[str, Any]) -> None:
    try:
        validate_params(kind, {**params, "__no_such_parameter__": 1}, "check_rule")
    except InputError:
        return
    raise ConformanceError(f"{kind!r} accepted an unknown parameter")
