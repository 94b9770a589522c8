"""The evidence digest: what it holds, and that it fits its cap whatever the trace size."""

from __future__ import annotations

import json

import polars as pl
import pytest

from builders import TOKENS, base, chained
from inspectorate.agent import build_digest
from inspectorate.agent._digest import evidence_hash
from inspectorate.commitment import check, load_commitment
from inspectorate.data import seed_path
from inspectorate.trace import GenSpec, Trace, generate_trace, read_trace


def test_digest_of_a_split_run_names_the_pair_and_the_change_points():
    records = base()
    for r in records[4:]:
        r["job_id"] = "job-b"
    records[6]["dataset_fingerprint"] = "sha256:eeeeeeeeeeeeeeee"
    records[5]["batch_size"] = 2000  # 2000 * 4096 > 10 * tokens
    digest = build_digest(chained(records))
    assert {j["job_id"]: j["records"] for j in digest["jobs"]} == {"job-a": 4, "job-b": 4}
    pair = digest["similar_jobs"][0]
    assert pair["jobs"] == ["job-a", "job-b"] and set(pair["shared"]) == {
        "models",
        "commits",
        "datasets",
        "operators",
    }
    assert pair["gap_hours"] <= 0
    change = [c for c in digest["change_points"] if c["field"] == "dataset_fingerprint"]
    assert change == [
        {
            "job_id": "job-b",
            "field": "dataset_fingerprint",
            "from": "sha256:dddddddddddddddd",
            "to": "sha256:eeeeeeeeeeeeeeee",
            "record_id": "r0006",
            "time": "2026-04-24T09:03:00Z",
            "config_hash": "sha256:cccccccccccccccc",
        }
    ]
    assert digest["suspicious_batch_records"]["record_ids"] == ["r0005"]
    fpt = digest["distributions"]["flop_per_token"]["training"]
    assert fpt["n"] == 8 and fpt["p50"] == pytest.approx(6 * 7e9)
    assert {"job:job-a", "similar:job-a|job-b", "change:job-b:dataset_fingerprint"} <= set(digest["signals"])
    assert digest["chips"]["top"][0]["jobs"] == 2


def test_digest_carries_findings_and_their_records():
    trace = read_trace(seed_path("legit_inference_serve"))
    verdict = check(trace, load_commitment(seed_path("no_frontier_training.yml")))
    digest = build_digest(trace, verdict.violations)
    cap = [f for f in digest["findings"] if f["rule_id"] == "aggregate_flop_cap#2"]
    assert cap and cap[0]["record_count"] == 18 and cap[0]["record_ids"][0] == "rec_000021"
    assert "rec_000021" in {r["record_id"] for r in digest["cited_records"]}
    assert "finding:aggregate_flop_cap#2" in digest["signals"]


def test_eval_sweep_batch_records_are_listed_as_the_seed_summary_does():
    digest = build_digest(read_trace(seed_path("legit_eval_sweep")))
    assert digest["suspicious_batch_records"]["count"] == 30
    assert digest["suspicious_batch_records"]["by_op_type"] == {"eval": 30}
    assert digest["distributions"]["flop_per_token"]["eval"]["zero_token_records"] == 30


def test_digest_fits_its_cap_on_a_large_trace_with_many_jobs():
    trace = generate_trace(GenSpec(chips=64, hours=6, scenario="mixed"))
    frame = trace.frame.with_columns(  # a job per chip per hour: 384 jobs, many sharing a model
        (pl.lit("job-") + pl.col("chip_id").cast(pl.Utf8) + "-" + (pl.col("ws") // 3600).cast(pl.Utf8)).alias(
            "job_id"
        )
    )
    big = Trace(frame, None, "<many jobs>")
    assert len(big) == 23_040 and big.frame["job_id"].n_unique() == 384
    digest = build_digest(big, max_chars=20_000, evidence="x")
    text = json.dumps(digest, default=str)
    assert len(text) <= 20_000
    assert digest["limit"] < 40  # it had to shrink
    assert digest["overview"]["jobs"] == 384 and digest["overview"]["records"] == 23_040
    assert len(digest["jobs"]) == digest["limit"] and digest["similar_jobs"]


def test_prover_strings_are_clipped():
    records = base()
    records[0]["operator"] = "x" * 5000
    digest = build_digest(chained(records))
    longest = max(len(o["operator"]) for o in digest["operators"])
    assert longest <= 96


def test_evidence_hash_changes_with_any_record():
    records = base()
    a = evidence_hash(chained(records))
    records[7]["tokens_processed"] = TOKENS + 1
    assert evidence_hash(chained(records)) != a


def test_jobs_sharing_only_an_operator_are_candidates_too():
    records = base()
    for r in records[4:]:
        r.update(job_id="job-b", model_hash_prefix="sha256:bbbbbbbbbbbbbbbb", code_commit="git:lab/x@1")
        r["dataset_fingerprint"] = "sha256:eeeeeeeeeeeeeeee"
    pairs = build_digest(chained(records))["similar_jobs"]
    assert [(p["jobs"], sorted(p["shared"])) for p in pairs] == [(["job-a", "job-b"], ["operators"])]


def test_public_names_resolve_lazily():
    import inspectorate.agent as agent

    assert all(getattr(agent, name) is not None for name in agent.__all__)
    with pytest.raises(AttributeError):
        agent.no_such_name  # noqa: B018


def test_property_findings_of_the_run_join_the_digest_and_its_signals():
    run = {
        "verdict": 0,
        "missing_streams": ["dcgm"],
        "phases": [
            {
                "phase": "adv_train_as_infer",
                "claimed": "inference",
                "verdict": 0,
                "confidence": 0.93,
                "findings": [
                    {
                        "property": "p1_op_type",
                        "decision": "inconsistent",
                        "evidence": {
                            "score": 0.97,
                            "gpu_util": 100.0,
                            "flagged_record_ids": ["r0001", "r0003"],
                        },
                    }
                ],
            }
        ],
    }
    digest = build_digest(chained(base()), properties=run)
    assert digest["properties"]["phases"][0]["findings"] == [
        {
            "property": "p1_op_type",
            "decision": "inconsistent",
            "score": 0.97,
            "flagged_record_ids": ["r0001", "r0003"],
        }
    ]
    assert "property:adv_train_as_infer:p1_op_type" in digest["signals"]


def test_tools_filter_numbers_as_numbers_and_answer_bad_arguments_as_errors():
    from inspectorate.agent._tools import run_tool

    records = base()
    records[2]["batch_size"] = 16
    trace = chained(records)
    text, error, signals = run_tool(trace, "fetch_records", {"where": {"batch_size": 16}})
    assert not error and [r["record_id"] for r in json.loads(text)["records"]] == ["r0002"]
    assert signals == ["records"]
    text, error, _ = run_tool(trace, "aggregate", {"group_by": "prev_record_hash"})
    assert error and "group_by must be one of" in json.loads(text)["error"]
    text, error, _ = run_tool(trace, "run_rule", {"kind": "batch_token_sanity", "params": {"max_ratio": "x"}})
    assert error and "must be a number" in json.loads(text)["error"]
    text, error, signals = run_tool(
        trace, "run_rule", {"kind": "batch_token_sanity", "params": {"max_ratio": 0.01}}
    )
    assert not error and json.loads(text)["violations"] == 1 and signals == ["rule:batch_token_sanity"]
    text, error, _ = run_tool(trace, "drop_table", {})
    assert error and "unknown tool" in json.loads(text)["error"]
