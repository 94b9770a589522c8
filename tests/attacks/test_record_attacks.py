"""Every record attack on every trace: chain intact, input untouched, valid records, seeded."""

from __future__ import annotations

import copy
import random

import pytest
from attack_data import REFERENCE_COMMITMENT, SMALL_COMMITMENT, all_traces, small_trace

from inspectorate._plugins import ConformanceError
from inspectorate.attacks import (
    ATTACKS,
    attack,
    attack_names,
    check_attack,
    compose,
    conserves_work,
    get_attack,
    violate,
)
from inspectorate.attacks._facts import Facts
from inspectorate.commitment import check, load_commitment
from inspectorate.errors import InputError
from inspectorate.trace import verify_chain

TRACES = all_traces()
# attacks sized from a commitment (Derived parameters) read the reference commitment's caps
FACTS = Facts(load_commitment(REFERENCE_COMMITMENT))


def test_library_is_large_and_documented():
    assert len(attack_names()) >= 25
    for entry in ATTACKS.values():
        assert entry.doc and entry.intent, entry.name
        for name, values in entry.space.items():
            assert name in entry.defaults(), (entry.name, name)
            assert values, (entry.name, name)


@pytest.mark.parametrize("trace_name", sorted(TRACES))
def test_every_attack_on_trace(trace_name):
    for name in attack_names():
        check_attack(name, TRACES[trace_name], FACTS)


def test_check_attack_names_a_nondeterministic_attack():
    @attack("test_unseeded_attack", intent="test only: ignores its rng")
    def unseeded(records, rng):
        """Uses the global random state instead of ``rng``."""
        records[0]["flops"] = float(random.random())
        return records

    try:
        with pytest.raises(ConformanceError, match="not deterministic"):
            check_attack("test_unseeded_attack", small_trace())
    finally:
        ATTACKS._entries.pop("test_unseeded_attack")


SMALL_FACTS = Facts(load_commitment(SMALL_COMMITMENT))  # no inference cap: shard size given below
SMALL_PARAMS = {"excess_to_ghost_inference": {"keep": 0.7, "shard_flops": 1e17}}


def test_every_attack_changes_the_violating_trace():
    base = violate(small_trace(), cap=1e18)
    base[0]["data_source_tags"] = ["corpus:cbrn-synthesis"]  # something to launder
    base[1]["flops"] *= 1.5  # an uneven window to level
    unchanged = [
        n for n in attack_names() if get_attack(n)(base, 1, SMALL_FACTS, **SMALL_PARAMS.get(n, {})) == base
    ]
    assert unchanged == []


@pytest.mark.parametrize("name", ["drop_violating", "drop_tail", "truncate", "deflate_all"])
def test_intent_false_when_the_violation_is_removed(name):
    base = violate(small_trace(), cap=1e18)
    out = get_attack(name)(base, 1)
    assert not get_attack(name).intent_preserved(base, out)


@pytest.mark.parametrize(
    "name",
    [
        "relabel_op_type",
        "split_jobs",
        "ghost_chips",
        "idle_laundering",
        "deflate_flops",
        "excess_to_ghost_inference",
        "smear_time",
    ],
)
def test_intent_true_when_the_work_is_still_there(name):
    base = violate(small_trace(), cap=1e18)
    assert get_attack(name).intent_preserved(
        base, get_attack(name)(base, 1, SMALL_FACTS, **SMALL_PARAMS.get(name, {}))
    )


def test_dropping_all_violating_records_is_caught_by_the_intent_check_not_the_verifier(small_commitment):
    base = violate(small_trace(), small_commitment)
    assert not check(base, small_commitment).compliant
    out = get_attack("drop_violating")(base, 1)
    assert check(out, small_commitment).compliant  # the verifier is satisfied...
    assert not conserves_work(base, out)  # ...because the violation is gone, not hidden
    assert {r["job_id"] for r in out} == {"job_serve"}


def test_relabel_moves_training_to_the_label():
    base = violate(small_trace(), cap=1e18)
    out = get_attack("relabel_op_type")(base, 1, to="eval", fraction=1.0)
    assert not any(r["op_type"] == "training" for r in out)
    assert sum(r["flops"] for r in out) == pytest.approx(sum(r["flops"] for r in base))


def test_unknown_parameter_and_attack_are_input_errors():
    with pytest.raises(InputError, match="accepted: parts"):
        get_attack("split_jobs")(small_trace(), 1, pieces=3)
    with pytest.raises(InputError, match="unknown attack .no_such_attack.; known: .*split_jobs"):
        get_attack("no_such_attack")


def test_compose_applies_in_order_and_checks_every_intent():
    base = violate(small_trace(), cap=1e18)
    combo = compose([("relabel_op_type", {"to": "eval"}), "inflate_tokens", ("split_jobs", {"parts": 3})])
    out = combo(base, 2)
    assert combo.name == "relabel_op_type+inflate_tokens+split_jobs"
    assert verify_chain(out) == []
    assert len({r["job_id"] for r in out if r["op_type"] == "eval"}) == 3
    assert combo.intent_preserved(base, out)
    assert not compose(["split_jobs", "drop_violating"]).intent_preserved(
        base, compose(["split_jobs", "drop_violating"])(base, 1)
    )
    with pytest.raises(InputError):
        compose([])


def test_violate_crosses_the_cap_only(small_commitment):
    clean = small_trace()
    pristine = copy.deepcopy(clean)
    base = violate(clean, small_commitment)
    assert clean == pristine
    verdict = check(base, small_commitment)
    assert {v.kind for v in verdict.violations} == {"aggregate_flop_cap"}
    extended = violate(clean, small_commitment, mode="extend")
    assert len(extended) > len(clean) and verify_chain(extended) == []
    with pytest.raises(InputError):
        violate(clean, mode="explode")


def test_violate_reference_baseline(reference):
    commitment, clean = reference
    assert check(clean, commitment).compliant
    verdict = check(violate(clean, commitment), commitment)
    assert [v.rule_id for v in verdict.violations] == ["aggregate_flop_cap"]
