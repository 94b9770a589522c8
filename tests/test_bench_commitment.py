"""The benchmark's commitment really exercises every rule kind, and honest traces pass it."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from inspectorate.commitment import RULES, check, load_commitment
from inspectorate.trace import GenSpec, generate_trace

BENCH = Path(__file__).resolve().parents[1] / "bench" / "check_throughput.py"


def _bench():
    spec = importlib.util.spec_from_file_location("check_throughput", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_every_rule_kind_is_listed_or_implicit_and_honest_traces_comply():
    raw = _bench().all_rules_commitment(8, 1.0)
    listed = {rule["kind"] for rule in raw["deterministic_rules"]}
    implicit = {name for name in RULES.names() if RULES[name].implicit}
    assert listed | implicit == set(RULES.names()) and not listed & implicit
    commitment = load_commitment(raw)
    for scenario in ("training", "inference", "mixed"):
        verdict = check(generate_trace(GenSpec(chips=8, hours=1.0, scenario=scenario)), commitment)
        assert verdict.compliant, (scenario, [v.message for v in verdict.violations][:3])
    over = check(generate_trace(GenSpec(chips=8, hours=1.0, scenario="tampered")), commitment)
    assert not over.compliant
