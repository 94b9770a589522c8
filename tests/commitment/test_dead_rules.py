"""A typo in a rule's filter is bad input, and a rule whose filter selects no record
says so: the two ways a commitment's rule could pass without checking anything."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any, Literal, get_args, get_origin

import pytest

from builders import base, chained
from inspectorate.commitment import RULES, check, load_commitment
from inspectorate.commitment._registry import load_plugins
from inspectorate.commitment.rules._common import OpType
from inspectorate.data import seed_path
from inspectorate.errors import InputError
from inspectorate.report import verdict_text
from inspectorate.trace import read_trace, write_trace
from inspectorate.trace._schema import OP_TYPES_KNOWN

FINETUNE = seed_path("legit_finetune")


def _cap(**params: Any) -> dict[str, Any]:
    return {"id": "c", "deterministic_rules": [{"kind": "aggregate_flop_cap", "threshold": 0, **params}]}


def _cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "inspectorate.cli", *args], capture_output=True, text=True)


def test_the_typo_commitment_is_bad_input_naming_rule_value_and_accepted(tmp_path):
    # before: COMPLIANT ... confidence=1.00, exit 0 (the filter matched nothing)
    path = tmp_path / "typo.yml"
    path.write_text(
        "id: typo\ndeterministic_rules:\n  - kind: aggregate_flop_cap\n    op_type: trainig\n    threshold: 0\n"
    )
    run = _cli("check", str(FINETUNE), "-c", str(path))
    assert run.returncode == 2, run.stdout
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in run.stderr
    for part in ("aggregate_flop_cap", "'trainig'", "training, inference, eval, idle, *", str(path)):
        assert part in lines[0], lines[0]
    path.write_text(path.read_text().replace("trainig", "training"))
    assert _cli("check", str(FINETUNE), "-c", str(path)).returncode == 1  # the spelt rule fires


@pytest.mark.parametrize(
    "params",
    [{"op_type": "trainig"}, {"op_type": ["training", "infrence"]}, {"scope": "per-job"}, {"op_type": 3}],
)
def test_enumerated_values_are_checked_on_load(params):
    with pytest.raises(InputError) as err:
        load_commitment(_cap(**params))
    bad = next(iter(params.values()))
    wrong = bad[1] if isinstance(bad, list) else bad
    assert repr(wrong) in str(err.value) and "must be one of" in str(err.value)


def _enumerated(annotation: Any) -> list[Any]:
    """The Literal values an annotation accepts, directly or inside a union or list."""
    if get_origin(annotation) is Literal:
        return list(get_args(annotation))
    return [v for arg in get_args(annotation) for v in _enumerated(arg)]


def test_every_enumerated_parameter_of_every_kind_rejects_a_value_outside_it():
    """Generic: the loader reads the enumerations from the annotations, so a new kind's
    enumerated parameter is checked without code of its own."""
    load_plugins()
    checked = 0
    for name, kind in RULES.items():
        for pname, param in kind.params.items():
            if not _enumerated(param.annotation):
                continue
            required = {
                n: _sample(p.annotation)
                for n, p in kind.params.items()
                if p.default is p.empty and n != pname
            }
            with pytest.raises(InputError, match=f"{name}.{pname} must be one of"):
                load_commitment(
                    {"id": "x", "deterministic_rules": [{"kind": name, **required, pname: "no-such"}]}
                )
            checked += 1
    assert checked >= 15  # every op_type/op_types/scope parameter of the built-in kinds


def _sample(annotation: Any) -> Any:
    """A valid value for a required parameter (only the enumerated one is under test)."""
    text = str(annotation)
    if "list" in text:
        return ["2026-04-24T09:00:00Z"]
    if annotation is str:
        return "2026-04-24T09:00:00Z"
    return 1.0


def test_op_type_enumeration_is_the_schemas():
    assert set(get_args(OpType)) == set(OP_TYPES_KNOWN) | {"*"}


def test_a_rule_matching_no_record_says_so_in_json_and_text():
    verdict = check(read_trace(FINETUNE), load_commitment(_cap(op_type="eval")))
    assert verdict.compliant  # no eval records: nothing over the cap, but nothing checked either
    coverage = {row["rule_id"]: row for row in verdict.to_dict()["rule_coverage"]}
    assert coverage["aggregate_flop_cap"]["matched"] == 0
    assert coverage["timestamp_monotonic"]["matched"] == 120
    assert "rule aggregate_flop_cap matched no record: it checked nothing" in verdict_text(verdict)
    assert verdict.dead_rules == ["aggregate_flop_cap"]


def test_matched_counts_follow_each_rules_filter():
    records = base()  # 8 training records; make 2 eval and 1 idle
    records[1]["op_type"], records[2]["op_type"] = "eval", "eval"
    records[3].update(op_type="idle", flops=0.0, tokens_processed=0, batch_size=0)
    commitment = load_commitment(
        {
            "id": "m",
            "deterministic_rules": [
                {"kind": "aggregate_flop_cap", "threshold": 1e30, "op_type": ["eval", "training"]},
                {"kind": "aggregate_flop_cap", "threshold": 1e30},  # "*": every non-idle record
                {"kind": "idle_must_be_zero"},
                {"kind": "min_flop_per_token", "floor": 1.0, "models": ["sha256:nope"]},
                {"kind": "allowed_op_types", "allowed": ["training", "eval", "idle"]},
            ],
        }
    )
    matched = check(chained(records), commitment).matched
    assert matched["aggregate_flop_cap"] == 7
    assert matched["aggregate_flop_cap#2"] == 7
    assert matched["idle_must_be_zero"] == 1
    assert matched["min_flop_per_token"] == 0  # the declared model is not in the trace
    assert matched["allowed_op_types"] == 8


def test_json_verdict_says_the_tail_is_unprotected_without_a_head(tmp_path):
    commitment = str(seed_path("no_frontier_training.yml"))
    out = json.loads(_cli("check", str(FINETUNE), "-c", commitment, "-f", "json").stdout)
    assert out["head_checked"] is False
    assert any("no published head" in note and "left off" in note for note in out["notes"])
    pinned = tmp_path / "pinned.jsonl"
    write_trace(read_trace(FINETUNE), pinned)  # leaves pinned.jsonl.head.json
    out = json.loads(_cli("check", str(pinned), "-c", commitment, "-f", "json").stdout)
    assert out["head_checked"] is True and not any("head" in note for note in out["notes"])
