"""The four reference semantic rules, judged offline: each fires on the smallest trace
that breaks it (exact ids and message) and stays quiet on every honest trace."""

from __future__ import annotations

from pathlib import Path

import pytest

from builders import TOKENS, N, base, chained
from inspectorate.commitment import RuleSpec, check, check_rule, load_commitment
from inspectorate.commitment._check import run_rule
from inspectorate.commitment._model import validate_params
from inspectorate.errors import InputError
from inspectorate.trace import read_trace

SEED = Path(__file__).resolve().parents[2] / "src" / "inspectorate" / "data" / "seed"
REFERENCE = SEED / "no_frontier_training.yml"
HONEST = base()
WINDOW_FLOPS = 6 * N * TOKENS


def run(kind, records, **params):
    return run_rule(RuleSpec(kind, kind, validate_params(kind, params, "test")), chained(records))


def edit(records, index, **fields):
    out = [dict(r) for r in records]
    out[index].update(fields)
    return out


def relabel(records, wanted, **fields):
    return [dict(r, **fields) if r["record_id"] in wanted else dict(r) for r in records]


SECOND_HALF = {"r0004", "r0005", "r0006", "r0007"}

# kind -> (params, smallest breaking trace, exact flagged ids, words the message must hold)
CASES = {
    "no_splitting": (
        {"threshold": WINDOW_FLOPS * 7.5},
        relabel(HONEST, SECOND_HALF, job_id="job-b"),
        ["r0004"],
        ["['job-a', 'job-b']", "one logical training run", "exceeds the cap"],
    ),
    "op_type_honesty": (
        {},
        edit(HONEST, 5, op_type="inference", tokens_processed=TOKENS // 2),
        ["r0005"],
        ["1 inference record(s)", "max 8.4e+10 > 5e+10"],
    ),
    "dataset_provenance": (
        {},
        edit(HONEST, 6, dataset_fingerprint="sha256:eeeeeeeeeeeeeeee"),
        ["r0006"],
        ["job 'job-a'", "sha256:dddddddddddddddd -> sha256:eeeeeeeeeeeeeeee", "without a config_hash change"],
    ),
    "batch_token_sanity": (
        {},
        edit(HONEST, 4, batch_size=10_000),
        ["r0004"],
        ["1 record(s)", "above 10×", "81.92×"],
    ),
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_fallback_fires_on_smallest_breaking_trace(kind):
    params, records, expected, words = CASES[kind]
    found = run(kind, records, **params)
    assert [list(v.record_ids) for v in found] == [expected]
    for word in words:
        assert word in found[0].message, (word, found[0].message)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_fallback_quiet_on_honest_builder_trace(kind):
    params = CASES[kind][0]
    assert run(kind, HONEST, **params) == []


@pytest.mark.parametrize("kind", sorted(CASES))
def test_fallback_passes_conformance(kind):
    params, records, _, _ = CASES[kind]
    check_rule(kind, chained(records), chained(HONEST), params)


@pytest.mark.parametrize("trace_path", sorted(SEED.glob("*.jsonl")), ids=lambda p: p.name)
def test_reference_semantic_rules_quiet_on_embedded_honest_traces(trace_path):
    verdict = check(read_trace(trace_path), load_commitment(REFERENCE))
    semantic = {"no-splitting", "op-type-honesty", "dataset-provenance", "batch-token-sanity"}
    assert set(verdict.semantic_rules_judged) == semantic
    assert verdict.semantic_rules_not_evaluated == ()
    assert not [v for v in verdict.violations if v.rule_id in semantic]


def test_check_reports_fallback_violation_under_the_semantic_rule_id():
    records = relabel(HONEST, SECOND_HALF, job_id="job-b")
    data = load_commitment(REFERENCE).to_dict()
    data["deterministic_rules"] = [
        {"kind": "aggregate_flop_cap", "op_type": "training", "threshold": WINDOW_FLOPS * 7.5}
    ]
    verdict = check(chained(records), load_commitment(data))
    assert verdict.verdict == 0
    split = [v for v in verdict.violations if v.rule_id == "no-splitting"]
    assert [(v.kind, list(v.record_ids)) for v in split] == [("no_splitting", ["r0004"])]
    assert verdict.to_dict()["semantic_rules_judged"]["no-splitting"] == "offline fallback no_splitting"


def test_unknown_semantic_rule_is_reported_unjudged_with_reason():
    data = {
        "id": "c",
        "deterministic_rules": [],
        "semantic_rules": [{"id": "no-pretraining-in-disguise", "description": "looks like fine-tuning"}],
    }
    verdict = check(chained(HONEST), load_commitment(data))
    assert verdict.verdict == 1
    assert verdict.semantic_rules_not_evaluated == ("no-pretraining-in-disguise",)
    assert "no offline fallback" in verdict.semantic_unjudged_reasons["no-pretraining-in-disguise"]


def test_no_splitting_without_a_training_cap_is_unjudged_not_passed():
    data = {"id": "c", "deterministic_rules": [], "semantic_rules": [{"id": "no-splitting"}]}
    verdict = check(chained(relabel(HONEST, SECOND_HALF, job_id="job-b")), load_commitment(data))
    assert verdict.semantic_rules_not_evaluated == ("no-splitting",)
    assert "training cap" in verdict.semantic_unjudged_reasons["no-splitting"]


def test_compiled_semantic_rule_is_judged_by_its_deterministic_rule():
    data = {
        "id": "c",
        "deterministic_rules": [
            {"kind": "batch_token_consistency", "id": "x-batch", "max_capacity_ratio": 10}
        ],
        "semantic_rules": [{"id": "custom", "compiled_to": "x-batch"}],
    }
    verdict = check(chained(edit(HONEST, 4, batch_size=10_000)), load_commitment(data))
    assert verdict.semantic_rules_judged == {"custom": "compiled to x-batch (batch_token_consistency)"}
    assert [list(v.record_ids) for v in verdict.violations] == [["r0004"]]
    data["semantic_rules"] = [{"id": "custom", "compiled_to": "missing"}]
    with pytest.raises(InputError, match="compiled_to names no deterministic rule"):
        check(chained(HONEST), load_commitment(data))


def test_no_splitting_needs_shared_operator_time_and_cap():
    split = relabel(HONEST, SECOND_HALF, job_id="job-b")
    cap = {"threshold": WINDOW_FLOPS * 7.5}
    assert run("no_splitting", split, threshold=WINDOW_FLOPS * 8) == []  # together under the cap
    assert run("no_splitting", relabel(split, SECOND_HALF, operator="team-b"), **cap) == []
    assert run("no_splitting", relabel(split, SECOND_HALF, code_commit="git:lab/train@other"), **cap) == []
    far = relabel(
        split,
        SECOND_HALF,
        window_start="2026-04-28T09:00:00Z",
        window_end="2026-04-28T09:01:00Z",
    )
    assert run("no_splitting", far, **cap) == []
    assert run("no_splitting", far, window_hours=100.0, **cap)


def test_no_splitting_links_jobs_transitively_and_flags_every_later_job():
    records = relabel(base(windows=6), {"r0004", "r0005", "r0006", "r0007"}, job_id="job-b")
    records = relabel(records, {"r0008", "r0009", "r0010", "r0011"}, job_id="job-c")
    found = run("no_splitting", records, threshold=WINDOW_FLOPS * 11)
    assert [list(v.record_ids) for v in found] == [["r0004", "r0008"]]
    assert found[0].evidence["jobs"] == ["job-a", "job-b", "job-c"]


def test_dataset_swap_with_config_change_is_provenance_not_a_violation():
    swapped = relabel(HONEST, {"r0006", "r0007"}, dataset_fingerprint="sha256:eeeeeeeeeeeeeeee")
    assert run("dataset_provenance", swapped)
    rotated = relabel(swapped, {"r0006", "r0007"}, config_hash="sha256:ffffffffffffffff")
    assert run("dataset_provenance", rotated) == []
    # back to the first config with the new dataset: a silent swap under that config
    back = relabel(rotated, {"r0007"}, config_hash="sha256:cccccccccccccccc")
    assert [list(v.record_ids) for v in run("dataset_provenance", back)] == [["r0007"]]


def test_op_type_honesty_counts_zero_token_inference_with_flops():
    found = run("op_type_honesty", edit(HONEST, 3, op_type="inference", tokens_processed=0))
    assert [list(v.record_ids) for v in found] == [["r0003"]]


def test_split_with_a_rotated_operator_evades_the_prose_rule_but_not_the_reference_commitment():
    """The strongest split the prose allows: the second job gets its own operator. The
    fallback follows the prose and stays quiet; the reference's deterministic rules
    (training_unique_per_model, audit_window_uniqueness) still reject the trace."""
    split = relabel(HONEST, SECOND_HALF, job_id="job-b", operator="team-b")
    assert run("no_splitting", split, threshold=WINDOW_FLOPS * 7.5) == []
    data = load_commitment(REFERENCE).to_dict()
    data["deterministic_rules"] = [
        r
        for r in data["deterministic_rules"]
        if r["kind"] in ("training_unique_per_model", "audit_window_uniqueness")
    ]
    verdict = check(chained(split), load_commitment(data))
    assert {v.rule_id for v in verdict.violations} == {"training_unique_per_model", "audit_window_uniqueness"}


def test_offline_false_keeps_a_fallback_away_from_a_reused_id():
    data = {
        "id": "c",
        "deterministic_rules": [],
        "semantic_rules": [{"id": "op-type-honesty", "description": "another meaning", "offline": False}],
    }
    verdict = check(
        chained(edit(HONEST, 5, op_type="inference", tokens_processed=TOKENS // 2)), load_commitment(data)
    )
    assert verdict.verdict == 1 and verdict.semantic_rules_not_evaluated == ("op-type-honesty",)
