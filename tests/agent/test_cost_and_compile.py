"""Price table and accounting; compiling semantic rules into deterministic ones."""

from __future__ import annotations

import pytest
from mock_llm import Script, anthropic_text, settings, verdict_json

from builders import base, chained
from inspectorate.agent import AgentSettings, CallRecord, Ledger, compile_commitment, load_prices
from inspectorate.agent._compile import honest_traces, vet, write_commitment
from inspectorate.agent._verdict import RuleJudgement
from inspectorate.commitment import check, load_commitment
from inspectorate.data import seed_path
from inspectorate.errors import InputError


def test_price_table_exact_snapshot_and_override(tmp_path):
    table = load_prices()
    assert table.price("claude-sonnet-4-6").input == 3.0
    assert table.price("claude-sonnet-4-5-20250929") == table.price("claude-sonnet-4-5")
    assert table.price("claude-sonnet-9") is None  # no guessing from a prefix
    override = tmp_path / "prices.yml"
    override.write_text(
        "version: mine-1\nmodels:\n  local-model: {input: 0, output: 0}\n  gpt-4.1: {input: 1, output: 2}\n"
    )
    mine = load_prices(override)
    assert mine.version == "mine-1" and mine.price("gpt-4.1").input == 1.0
    assert mine.price("local-model").output == 0.0 and mine.price("claude-sonnet-4-6")


@pytest.mark.parametrize(
    "text, problem",
    [
        ("models: {m: {input: 1}}", "needs input and output"),
        ("models: {m: {input: -1, output: 1}}", "non-negative"),
        ("[1]", "mapping"),
    ],
)
def test_bad_price_file_is_an_input_error(tmp_path, text, problem):
    path = tmp_path / "p.yml"
    path.write_text(text)
    with pytest.raises(InputError, match=problem):
        load_prices(path)


def test_ledger_costs_each_kind_of_token():
    ledger = Ledger(load_prices(), budget_usd=1.0)
    call = ledger.add(
        CallRecord(
            "claude-sonnet-4-6",
            input_tokens=100,
            output_tokens=10,
            cache_write_tokens=1000,
            cache_write_1h_tokens=2000,
            cache_read_tokens=4000,
        )
    )
    assert call.cost_usd == pytest.approx((100 * 3 + 10 * 15 + 1000 * 3.75 + 2000 * 6 + 4000 * 0.3) / 1e6)
    assert ledger.refusal("claude-sonnet-4-6", 10_000, 1000) is None
    assert ledger.refusal("claude-sonnet-4-6", 10_000_000, 1000).startswith("dollar budget exhausted")


def test_fallbacks_compile_and_the_next_check_needs_no_model(tmp_path):
    data, outcomes = compile_commitment(load_commitment(seed_path("no_frontier_training.yml")))
    assert [(o.rule_id, o.kept, o.kind) for o in outcomes] == [
        ("no-splitting", True, "no_splitting"),
        ("op-type-honesty", True, "op_type_honesty"),
        ("dataset-provenance", True, "dataset_provenance"),
        ("batch-token-sanity", True, "batch_token_sanity"),
    ]
    assert outcomes[0].params == {"threshold": 1e19}
    path = tmp_path / "strong.yml"
    write_commitment(data, path)
    strong = load_commitment(path)
    assert {r["id"]: r["compiled_to"] for r in strong.semantic_rules}["no-splitting"] == "no-splitting"
    verdict = check(chained(base()), strong)
    assert set(verdict.semantic_rules_judged) == {
        "no-splitting",
        "op-type-honesty",
        "dataset-provenance",
        "batch-token-sanity",
    }
    assert all(v.startswith("compiled to") for v in verdict.semantic_rules_judged.values())


REGIONS = {
    "id": "regions",
    "deterministic_rules": [],
    "semantic_rules": [{"id": "gpu-hours-honest", "description": "Idle chips report no work."}],
}


def _idle_work_trace():
    records = base()
    records[3] = dict(records[3], op_type="idle")
    return chained(records)


def test_agent_proposal_kept_when_it_reproduces_and_honest_traces_stay_quiet(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    proposal = {"kind": "idle_must_be_zero", "params": {"max_flops": 0}}
    script = Script(anthropic_text(verdict_json("gpu-hours-honest", proposed_rule=proposal)))
    data, outcomes = compile_commitment(
        load_commitment(REGIONS), _idle_work_trace(), settings(script, tmp_path, backend="anthropic")
    )
    assert [(o.kept, o.source, o.kind) for o in outcomes] == [(True, "agent", "idle_must_be_zero")]
    assert data["deterministic_rules"] == [
        {"kind": "idle_must_be_zero", "id": "gpu-hours-honest", "max_flops": 0}
    ]
    assert data["semantic_rules"][0]["compiled_to"] == "gpu-hours-honest"


def test_agent_proposal_rejected_when_it_fires_on_honest_traces_or_misses_the_cited_records():
    honest = honest_traces()
    evidence = _idle_work_trace()
    judged = RuleJudgement("r", "violation", 0.9, ["r0003"], [], "idle chip worked")
    assert vet("idle_must_be_zero", {}, honest, judged, evidence) is None
    assert "honest trace legit_inference_serve.jsonl" in vet(
        "allowed_op_types", {"allowed": ["training"]}, honest, judged, evidence
    )
    assert "flags none of the cited records" in vet(
        "allowed_op_types", {"allowed": ["training", "idle"]}, honest, judged, evidence
    )
    clean = RuleJudgement("r", "compliant", 0.9, [], [], "fine")
    assert "fires where the agent found the evidence compliant" in vet(
        "idle_must_be_zero", {}, honest, clean, evidence
    )
    assert vet("idle_must_be_zero", {"bogus": 1}, honest, judged, evidence).startswith("invalid proposal")
    assert vet("no_such_kind", {}, honest, judged, evidence).startswith("invalid proposal")


def test_compile_without_model_reports_why_a_rule_stayed_semantic(monkeypatch):
    for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "INSPECTORATE_AGENT_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    data, outcomes = compile_commitment(load_commitment(REGIONS), _idle_work_trace(), AgentSettings())
    assert [(o.kept, o.source) for o in outcomes] == [(False, "none")]
    assert outcomes[0].reason.startswith("agent tier skipped")
    assert "compiled_to" not in data["semantic_rules"][0]


def test_budget_from_environment(monkeypatch):
    monkeypatch.setenv("INSPECTORATE_AGENT_BUDGET_USD", "0.25")
    assert AgentSettings.from_env().budget_usd == 0.25
    monkeypatch.setenv("INSPECTORATE_AGENT_BUDGET_USD", "none")
    assert AgentSettings.from_env().budget_usd is None
    monkeypatch.setenv("INSPECTORATE_AGENT_BUDGET_USD", "lots")
    with pytest.raises(InputError, match="not a number"):
        AgentSettings.from_env()
