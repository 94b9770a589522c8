"""Each rule kind fires on the smallest trace that breaks it and stays quiet on honest ones."""

from __future__ import annotations

import pytest

from builders import TOKENS, N, base, chained
from inspectorate.commitment import RuleSpec, check_rule, known_kinds
from inspectorate.commitment._check import run_rule
from inspectorate.commitment._model import validate_params


def run(kind, records, **params):
    spec = RuleSpec(kind, kind, validate_params(kind, params, "test"))
    return run_rule(spec, chained(records))


def edit(records, index, **fields):
    records = [dict(r) for r in records]
    records[index].update(fields)
    return records


def relabel_window(records, window_ids, **fields):
    return [dict(r, **fields) if r["record_id"] in window_ids else dict(r) for r in records]


HONEST = base()

# kind -> (params, firing records, exactly the ids that must be flagged)
CASES = {
    "aggregate_flop_cap": ({"threshold": 6 * N * TOKENS * 7.5, "op_type": "training"}, HONEST, {"r0007"}),
    "idle_must_be_zero": ({}, edit(HONEST, 3, op_type="idle"), {"r0003"}),
    "op_type_flop_ratio": ({"training_threshold": 3e10}, edit(HONEST, 5, op_type="inference"), {"r0005"}),
    "max_flop_per_token": ({"ceiling": 5e10}, edit(HONEST, 2, tokens_processed=TOKENS // 2), {"r0002"}),
    "min_flop_per_token": ({"floor": 5.5 * N}, edit(HONEST, 3, flops=6 * N * TOKENS / 2), {"r0003"}),
    "batch_token_consistency": ({"max_capacity_ratio": 5}, edit(HONEST, 4, batch_size=10_000), {"r0004"}),
    "flop_physically_possible": (
        {"peak_flops": {"gpu-01": 1e15, "*": 2.5e15}},
        edit(HONEST, 1, flops=1e15 * 61),
        {"r0001"},
    ),
    "forbidden_data_source_tags": (
        {"tags": ["corpus:cbrn-*"]},
        edit(HONEST, 6, data_source_tags=["corpus:web", "corpus:cbrn-nerve"]),
        {"r0006"},
    ),
    "forbidden_operators": ({"operators": ["shadow-*"]}, edit(HONEST, 0, operator="shadow-team"), {"r0000"}),
    "require_upstream_refs": ({}, edit(HONEST, 5, upstream_refs=[]), {"r0005"}),
    "upstream_refs_dag_validity": ({}, edit(HONEST, 3, upstream_refs=["r0006"]), {"r0003"}),
    "allowed_dataset_fingerprints": (
        {"allowed": ["sha256:dddddddddddddddd"]},
        edit(HONEST, 7, dataset_fingerprint="sha256:eeeeeeeeeeeeeeee"),
        {"r0007"},
    ),
    "allowed_op_types": (
        {"allowed": ["training", "inference", "eval", "idle"]},
        edit(HONEST, 2, op_type="preprocessing"),
        {"r0002"},
    ),
    "cross_job_fingerprint_consistency": (
        {},
        relabel_window(HONEST, {"r0004", "r0005", "r0006", "r0007"}, job_id="job-b"),
        {"r0004", "r0005", "r0006", "r0007"},
    ),
    # the run's second half booked as another job: still one run (lineage), over 7.5 windows
    "lineage_flop_cap": (
        {"threshold": 6 * N * TOKENS * 7.5},
        relabel_window(HONEST, {"r0004", "r0005", "r0006", "r0007"}, job_id="job-b"),
        {"r0007"},
    ),
    "code_commit_per_job_stable": ({}, edit(HONEST, 6, code_commit="git:lab/train@fff9999"), {"r0006"}),
    "chip_job_stability": (
        {},
        relabel_window(HONEST, {"r0006"}, job_id="job-b", model_hash_prefix="sha256:bbbbbbbbbbbbbbbb"),
        {"r0006"},
    ),
    "operator_op_type_uniqueness": (
        {},
        relabel_window(
            HONEST,
            {"r0001", "r0003", "r0005", "r0007"},
            job_id="job-b",
            model_hash_prefix="sha256:bbbbbbbbbbbbbbbb",
        ),
        {"r0001", "r0003", "r0005", "r0007"},
    ),
    "training_unique_per_model": (
        {},
        relabel_window(HONEST, {"r0004", "r0005", "r0006", "r0007"}, job_id="job-b", operator="team-b"),
        {"r0004", "r0005", "r0006", "r0007"},  # every record of the second job training the model
    ),
    "audit_window_uniqueness": (
        {},
        relabel_window(
            HONEST,
            {"r0004", "r0005", "r0006", "r0007"},
            job_id="job-b",
            operator="team-b",
            model_hash_prefix="sha256:bbbbbbbbbbbbbbbb",
        ),
        {"r0004", "r0005", "r0006", "r0007"},  # every record of the second training job in the window
    ),
    # chip 1 runs a second model in the same job, at the same time as chip 0's
    "model_uniqueness_per_job": (
        {},
        relabel_window(
            HONEST, {"r0001", "r0003", "r0005", "r0007"}, model_hash_prefix="sha256:bbbbbbbbbbbbbbbb"
        ),
        {"r0001", "r0003", "r0005", "r0007"},  # every record of the second model
    ),
    "model_hash_consistency": (
        {},
        relabel_window(HONEST, {"r0002", "r0005"}, model_hash_prefix="sha256:bbbbbbbbbbbbbbbb"),
        {"r0002", "r0005"},  # both records off the job's lineage
    ),
    "operator_uniqueness_per_job": ({}, edit(HONEST, 7, operator="team-z"), {"r0007"}),
    # r0004 now starts inside r0000's window and r0002 starts inside r0004's: the later of each pair
    "timestamp_monotonic": ({}, edit(HONEST, 4, window_start="2026-04-24T09:00:30Z"), {"r0002", "r0004"}),
    "window_completeness": (
        {
            "expected_window_start": "2026-04-24T09:00:00Z",
            "expected_window_end": "2026-04-24T09:04:00Z",
            "expected_chips": ["gpu-00", "gpu-01"],
        },
        [r for r in HONEST if r["record_id"] != "r0005"],
        {"r0003"},
    ),
    "training_base_models": ({"allowed": ["sha256:0000000000000000"]}, HONEST, {"r0000"}),
    # chip 0's window 1 relabelled idle, identity scrubbed: still inside job-a's run on gpu-00
    "idle_record_honesty": (
        {},
        edit(
            HONEST,
            2,
            op_type="idle",
            flops=0.0,
            tokens_processed=0,
            batch_size=0,
            sequence_length=0,
            job_id="job-idle",
            model_hash_prefix="sha256:9999999999999999",
            dataset_fingerprint="sha256:8888888888888888",
        ),
        {"r0002"},
    ),
    "job_fragmentation": ({}, relabel_window(HONEST, {"r0007"}, job_id="job-b"), {"r0007"}),
    "window_slots_to_end": (
        {"audit_window_end": "2026-04-24T09:04:00Z"},
        [r for r in HONEST if r["record_id"] != "r0005"],
        {"r0003"},
    ),
}


# kind -> what the first violation's message must state (the numbers and names behind it)
MESSAGES = {
    "lineage_flop_cap": "2 training jobs joined by lineage or chip handover are one run: 1.68e+17 FLOP",
    "aggregate_flop_cap": "1.68e+17 FLOP of training exceeds the cap 1.575e+17",
    "allowed_dataset_fingerprints": "unregistered dataset fingerprints ['sha256:eeeeeeeeeeeeeeee']",
    "allowed_op_types": "outside ['training', 'inference', 'eval', 'idle']: ['preprocessing']",
    "audit_window_uniqueness": "the audit window has 2 distinct training jobs (limit 1): ['job-a', 'job-b']",
    "batch_token_consistency": "above 5× the tokens processed",
    "chip_job_stability": "chip_id 'gpu-00' has 2 distinct jobs (limit 1)",
    "code_commit_per_job_stable": "'git:lab/train@abc1234', 'git:lab/train@fff9999'",
    "cross_job_fingerprint_consistency": "has 2 distinct jobs (limit 1): ['job-a', 'job-b']",
    "flop_physically_possible": "more FLOPs than their chip's peak allows (up to 1.017e+15 FLOP/s)",
    "forbidden_data_source_tags": "forbidden data sources: corpus:cbrn-nerve",
    "forbidden_operators": "forbidden operator(s) ['shadow-team']",
    "idle_must_be_zero": "1 idle record(s) report work (2.1e+16 FLOP, 500000 tokens)",
    "max_flop_per_token": "exceed 5e+10 FLOP/token (max 8.4e+10)",
    "min_flop_per_token": "under 3.85e+10 FLOP/token (min 2.1e+10)",
    "model_hash_consistency": "without a config change (2 models under config sha256:cccccccccccccccc)",
    "model_uniqueness_per_job": "job 'job-a' works on 2 models (limit 1)",
    "op_type_flop_ratio": "training-shaped FLOP/token ratio (max 4.2e+10 > 3e+10)",
    "operator_op_type_uniqueness": "operator 'team-a' has 2 distinct training jobs (limit 1)",
    "operator_uniqueness_per_job": "2 distinct operators (limit 1): ['team-a', 'team-z']",
    "require_upstream_refs": "1 record(s) after their job's first declare no upstream_refs",
    "timestamp_monotonic": "2 window(s) overlap an earlier window on the same chip",
    "training_base_models": "start from an unregistered model: ['sha256:aaaaaaaaaaaaaaaa']",
    "training_unique_per_model": "has 2 distinct training jobs (limit 1): ['job-a', 'job-b']",
    "upstream_refs_dag_validity": "1 reference(s) point to the record itself or to a later record",
    "window_completeness": "chip 'gpu-01' has no record for 1 of 4 slots (first missing slot starts 2026-04-24T09:02:00Z)",
    "idle_record_honesty": "1 idle record(s) sit inside a running training job on their chip (jobs ['job-a'])",
    "job_fragmentation": "1 training job(s) have fewer than 2 records (limit 0 such jobs)",
    "window_slots_to_end": "chip 'gpu-01' has no record for 1 of 4 slots up to the declared end 2026-04-24T09:04:00Z",
}


def test_every_kind_has_a_case():
    semantic = {"no_splitting", "op_type_honesty", "dataset_provenance", "batch_token_sanity"}
    # hash_chain_intact: tests/trace; require_head (a property of the trace, not of its
    # records): test_evasion_rules; semantic: test_semantic_fallbacks
    assert set(known_kinds()) - {"hash_chain_intact", "require_head"} - semantic == set(CASES)


@pytest.mark.parametrize("kind", sorted(CASES))
def test_rule_fires_on_smallest_breaking_trace(kind):
    params, records, expected = CASES[kind]
    found = run(kind, records, **params)
    assert found, f"{kind} did not fire"
    flagged = {rid for v in found for rid in v.record_ids}
    assert flagged == expected, f"{kind} flagged {sorted(flagged)}, expected exactly {sorted(expected)}"
    assert all(v.kind == kind and v.message and v.evidence for v in found)
    assert MESSAGES[kind] in found[0].message


@pytest.mark.parametrize("kind", sorted(CASES))
def test_rule_quiet_on_honest_trace(kind):
    params, _, _ = CASES[kind]
    if kind in ("aggregate_flop_cap", "lineage_flop_cap"):
        params = dict(params, threshold=6 * N * TOKENS * 8)
    if kind == "training_base_models":
        params = {"allowed": ["sha256:aaaaaaaaaaaaaaaa"]}
    assert run(kind, HONEST, **params) == []


# Kinds whose firing case is HONEST itself under a tight parameter need another quiet trace.
QUIET = {
    "aggregate_flop_cap": base(windows=3),  # 6 windows of work, under the 7.5-window cap
    "lineage_flop_cap": relabel_window(HONEST, {"r0004", "r0005", "r0006", "r0007"}, job_id="job-b")[:6],
    "training_base_models": base(
        model_hash_prefix="sha256:0000000000000000"
    ),  # starts from the registered base
}


@pytest.mark.parametrize("kind", sorted(CASES))
def test_rule_passes_conformance(kind):
    params, records, _ = CASES[kind]
    check_rule(kind, chained(records), chained(QUIET.get(kind, HONEST)), params)


def test_model_hash_evolving_along_training_is_one_model():
    # every window a new checkpoint hash, on both chips at once: evolution, not a swap
    records = [dict(r, model_hash_prefix=f"sha256:{int(r['record_id'][1:]) // 2:016x}") for r in HONEST]
    assert run("model_uniqueness_per_job", records) == []
    assert run("model_hash_consistency", records) == []


def test_model_hash_returning_after_replacement_is_two_models():
    hashes = ["a", "a", "b", "b", "a", "a", "b", "b"]
    records = [dict(r, model_hash_prefix=f"sha256:{h * 16}") for r, h in zip(HONEST, hashes)]
    assert run("model_uniqueness_per_job", records)


def test_evaluating_the_model_being_trained_is_not_a_second_model():
    records = edit(HONEST, 7, op_type="eval")
    assert run("model_hash_consistency", records) == []


def test_timestamp_order_in_file_is_not_required():
    # BLOOM's chronicles list windows out of order; only overlap on a chip is a violation
    shuffled = [HONEST[i] for i in (6, 7, 0, 1, 4, 5, 2, 3)]
    assert run("timestamp_monotonic", shuffled) == []


def test_wildcard_cap_counts_relabelled_work_but_not_idle():
    records = edit(edit(HONEST, 0, op_type="eval"), 1, op_type="idle", flops=0.0, tokens_processed=0)
    total = sum(r["flops"] for r in records if r["op_type"] != "idle")
    assert run("aggregate_flop_cap", records, threshold=total * 0.999, op_type="*")
    assert run("aggregate_flop_cap", records, threshold=total, op_type="*") == []


def test_cap_scopes():
    records = relabel_window(HONEST, {"r0004", "r0005", "r0006", "r0007"}, job_id="job-b")
    per_window = 6 * N * TOKENS
    assert run("aggregate_flop_cap", records, threshold=per_window * 5, scope="per_job") == []
    assert run("aggregate_flop_cap", records, threshold=per_window * 5, scope="per_operator")
    assert run("aggregate_flop_cap", records, threshold=per_window * 5, scope="global")
    assert run("aggregate_flop_cap", records, threshold=per_window * 5, op_type=["inference", "eval"]) == []


def test_window_completeness_accepts_irregular_windows():
    # 90 s then 30 s windows still cover every 60 s slot
    records = base(chips=1, windows=2)
    records[0]["window_end"] = "2026-04-24T09:01:30Z"
    records[1]["window_start"] = "2026-04-24T09:01:30Z"
    found = run(
        "window_completeness",
        records,
        expected_window_start="2026-04-24T09:00:00Z",
        expected_window_end="2026-04-24T09:02:00Z",
        expected_chips=["gpu-00"],
    )
    assert found == []


def test_window_completeness_counts_a_chip_listed_twice_once():
    params = dict(
        expected_window_start="2026-04-24T09:00:00Z",
        expected_window_end="2026-04-24T09:04:00Z",
    )
    assert run("window_completeness", HONEST, expected_chips=["gpu-00", "gpu-01", "gpu-00"], **params) == []
    dropped = [r for r in HONEST if r["record_id"] != "r0005"]
    twice = run("window_completeness", dropped, expected_chips=["gpu-01", "gpu-00", "gpu-01"], **params)
    once = run("window_completeness", dropped, expected_chips=["gpu-01", "gpu-00"], **params)
    assert twice == once and len(once) == 1


def test_dag_rejects_cycles_self_refs_and_phantoms():
    assert run("upstream_refs_dag_validity", edit(HONEST, 2, upstream_refs=["r0002"]))
    assert run("upstream_refs_dag_validity", edit(HONEST, 2, upstream_refs=["nope"]))
    dupes = edit(HONEST, 2, record_id="r0001")
    assert any("share record_ids" in v.message for v in run("upstream_refs_dag_validity", dupes))
