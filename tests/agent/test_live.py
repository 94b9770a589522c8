"""Live smoke test: one real inspection, only when an API key is set (skipped otherwise)."""

from __future__ import annotations

import os

import pytest

from inspectorate.agent import AgentSettings, check_with_agent
from inspectorate.commitment import load_commitment
from inspectorate.data import commitment_path, seed_path
from inspectorate.trace import read_trace

BACKEND = "anthropic" if os.environ.get("ANTHROPIC_API_KEY") else "openai"
pytestmark = pytest.mark.skipif(
    not (os.environ.get("ANTHROPIC_API_KEY") or os.environ.get("OPENAI_API_KEY")),
    reason="no ANTHROPIC_API_KEY or OPENAI_API_KEY: live smoke test skipped",
)


def test_live_inspection_judges_or_explains_and_accounts(tmp_path):
    settings = AgentSettings(backend=BACKEND, budget_usd=0.50, max_steps=4, cache_dir=str(tmp_path))
    trace = read_trace(seed_path("legit_finetune"))
    verdict = check_with_agent(trace, load_commitment(commitment_path("fine-tune-only")), settings)
    report = verdict.agent
    assert report and report["skipped"] is None
    judgement = report["judgements"]["no-pretraining-in-disguise"]
    assert judgement["verdict"] in ("compliant", "violation", "unverifiable")
    if judgement["verdict"] == "unverifiable":
        assert judgement["reason"] or judgement["rationale"]
    else:
        assert set(judgement["cited_record_ids"]) <= set(trace.frame["record_id"].to_list())
    assert report["accounting"]["tokens"] > 0 and report["accounting"]["calls"]
