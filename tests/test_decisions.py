"""One verdict vocabulary: Decision, used by verify, replay, difr and the agent."""

from __future__ import annotations

import ast
import json
from pathlib import Path

import pytest

import inspectorate
from inspectorate.decisions import Decision
from inspectorate.errors import InputError

SRC = Path(inspectorate.__file__).resolve().parent


def test_a_decision_is_its_word_in_json_and_text():
    assert [str(d) for d in Decision] == ["consistent", "inconsistent", "unverifiable"]
    assert json.dumps({"decision": Decision.UNVERIFIABLE}) == '{"decision": "unverifiable"}'
    assert f"{Decision.CONSISTENT}" == "consistent" and Decision.INCONSISTENT == "inconsistent"


def test_old_words_read_as_unverifiable_and_unknown_words_are_input_errors():
    assert Decision.parse("indeterminate") is Decision.UNVERIFIABLE
    assert Decision.parse("undetermined") is Decision.UNVERIFIABLE
    assert Decision.parse("consistent") is Decision.CONSISTENT
    with pytest.raises(InputError, match=r"f.json: decision must be one of .*'passed'"):
        Decision.parse("passed", "f.json")


def test_no_module_writes_an_old_word():
    """The old words appear only in decisions.py's reader table."""
    found = []
    for path in SRC.rglob("*.py"):
        if path.name == "decisions.py":
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in ("indeterminate", "undetermined"):
                found.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert found == []


def test_verify_reads_an_old_recomputed_finding(tmp_path):
    from inspectorate.verify._recomputed import read_recomputed

    for word, expected in (("indeterminate", Decision.UNVERIFIABLE), ("inconsistent", Decision.INCONSISTENT)):
        path = tmp_path / f"{word}.json"
        path.write_text(json.dumps({"property": "training_replay", "decision": word, "score": 0.0}))
        phase, found = read_recomputed(f"finetune={path}")
        assert phase == "finetune" and found.decision is expected
        assert found.to_dict()["decision"] == str(expected)
    path.write_text(json.dumps({"property": "training_replay", "decision": "fine", "score": 0.0}))
    with pytest.raises(InputError, match="decision must be one of"):
        read_recomputed(f"finetune={path}")


def test_the_agent_reads_an_old_reply_word_and_answers_in_the_vocabulary():
    from inspectorate.agent._verdict import VERDICTS, RuleJudgement, validate_reply

    old = {"id": "r", "verdict": "undetermined", "confidence": 0.3, "cited_record_ids": [], "signals": []}
    judged, errors = validate_reply({"rules": [{**old, "rationale": "cannot tell"}]}, ["r"], set(), set())
    assert errors == [] and judged["r"].verdict is Decision.UNVERIFIABLE
    assert Decision.UNVERIFIABLE in VERDICTS and RuleJudgement("r").verdict is Decision.UNVERIFIABLE
    _, errors = validate_reply(
        {"rules": [{**old, "verdict": "maybe", "rationale": "x"}]}, ["r"], set(), set()
    )
    assert errors and "verdict must be one of" in errors[0]


def test_every_package_names_the_same_three_members():
    from inspectorate import verify

    assert (verify.CONSISTENT, verify.INCONSISTENT, verify.UNVERIFIABLE) == tuple(Decision)
    from inspectorate.verify._registry import DECISIONS

    assert all(type(d) is Decision for d in DECISIONS)
    pytest.importorskip("torch")
    from inspectorate.difr import _verify as difr_verify
    from inspectorate.replay import _replay

    for module in (difr_verify, _replay):
        assert (module.CONSISTENT, module.INCONSISTENT, module.UNVERIFIABLE) == tuple(Decision)
        assert all(type(d) is Decision for d in (module.CONSISTENT, module.INCONSISTENT, module.UNVERIFIABLE))
