"""`verify RUN_DIR --agent`: the LLM tier over a run directory, through the real SDK clients
with a scripted HTTP transport (and the CLI against a stand-in model server on localhost).

The run is tests/data/rundirs_attacks/small_run with its lying phase (lie_train: training
claimed as inference) unlabelled, so that under ``lenient`` the telemetry alone certifies
it and any change of verdict comes from the agent tier.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mock_llm import Script, anthropic_text, openai_server, openai_text, settings, verdict_json

from inspectorate.agent import AgentReport, RuleJudgement, verify_with_agent
from inspectorate.agent._inspector import merge_agent
from inspectorate.agent._verify import NOTHING_LEFT, fold_agent
from inspectorate.cli import invoke
from inspectorate.commitment import check, load_commitment
from inspectorate.verify import RunVerdict, verify_run

SMALL = Path(__file__).resolve().parents[1] / "data" / "rundirs_attacks" / "small_run"
RULE = "labels-match-work"
COMMITMENT = {
    "id": "honest-labels",
    "deterministic_rules": [{"kind": "idle_must_be_zero"}],
    "semantic_rules": [{"id": RULE, "description": "Every phase does the work its label claims."}],
}
KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "INSPECTORATE_AGENT_BASE_URL")


@pytest.fixture
def run(tmp_path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(SMALL, out)
    labels = out / "workload_labels.jsonl"
    events = [json.loads(line) for line in labels.read_text().splitlines()]
    labels.write_text("".join(json.dumps(e) + "\n" for e in events if e["phase"] != "lie_train"))
    return out


@pytest.fixture
def commitment(tmp_path) -> Path:
    path = tmp_path / "c.json"  # YAML is a superset of JSON
    path.write_text(json.dumps(COMMITMENT))
    return path


@pytest.fixture(autouse=True)
def no_keys(monkeypatch):
    for name in KEYS + (
        "INSPECTORATE_AGENT_BACKEND",
        "INSPECTORATE_AGENT_MODEL",
        "INSPECTORATE_AGENT_PRICES",
    ):
        monkeypatch.delenv(name, raising=False)


def digest_sent(body: dict) -> dict:
    """The evidence digest block of the first request (Anthropic message format)."""
    text = body["messages"][0]["content"][1]["text"]
    assert text.startswith("EVIDENCE DIGEST (JSON):\n")
    return json.loads(text.split("\n", 1)[1])


def test_the_telemetry_alone_certifies_this_run_leniently(run):
    """The baseline the other tests move away from (so a change is the agent's doing)."""
    verdict = verify_run(run, load_commitment(COMMITMENT), policy="lenient")
    assert verdict.verdict == 1 and verdict.commitment.semantic_rules_not_evaluated == (RULE,)


def test_a_violation_judged_by_the_agent_uncertifies_the_run(run, tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    answer = verdict_json(RULE, ids=["rec_000001"], signals=["property:honest_infer:p1_op_type"])
    script = Script(anthropic_text(answer))
    verdict = verify_with_agent(
        run, load_commitment(COMMITMENT), settings(script, tmp_path, backend="anthropic"), policy="lenient"
    )
    assert verdict.verdict == 0 and verdict.exit_code == 1 and verdict.outcome == "inconsistent"
    assert verdict.reasons[0] == (
        f"inconsistent: semantic rule {RULE} violated (agent anthropic:claude-sonnet-4-6, confidence 0.90)"
    )
    assert verdict.confidence == 0.9
    doc = verdict.to_dict()
    assert doc["agent"]["judgements"][RULE]["cited_record_ids"] == ["rec_000001"]
    assert doc["agent"]["unjudged"] == {} and doc["agent"]["accounting"]["calls"][0]["cost_usd"] > 0
    # the evidence: the run's window records and the verify findings per phase
    digest = digest_sent(script.bodies[0])
    assert digest["overview"]["records"] == 3
    phases = {p["phase"]: p for p in digest["properties"]["phases"]}
    assert set(phases) == {"honest_train", "honest_infer"}
    assert phases["honest_train"]["outcome"] == "unverifiable"
    assert "p1_op_type" in phases["honest_train"]["unverifiable"]
    assert phases["honest_train"]["decided_by"] == [
        f["property"] for f in phases["honest_train"]["findings"] if f["decision"] == "unverifiable"
    ]
    assert digest["properties"]["policy"] == "lenient"
    assert "property:honest_infer:p1_op_type" in digest["signals"]


def test_a_compliant_judgement_certifies_when_the_rest_does(run, tmp_path, monkeypatch):
    """OpenAI-compatible backend (a local server: no key, a base URL)."""
    answer = verdict_json(RULE, "compliant", ids=["rec_000000"], signals=["overview"], confidence=0.6)
    script = Script(openai_text(answer))
    options = settings(script, tmp_path, backend="openai", base_url="http://model.local/v1", budget_usd=None)
    verdict = verify_with_agent(run, load_commitment(COMMITMENT), options, policy="lenient")
    assert verdict.verdict == 1 and verdict.exit_code == 0
    assert not any("semantic rule" in r for r in verdict.reasons)
    assert verdict.confidence <= 0.6  # no surer than the judgement it rests on
    assert verdict.agent["semantic_rules_judged"] == {
        RULE: "agent openai:gpt-4.1 (compliant, confidence 0.60)"
    }
    assert verdict.agent["unjudged"] == {}
    assert script.requests[0].url.path == "/v1/chat/completions"


def _undetermined(run, tmp_path, monkeypatch, policy):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    answer = verdict_json(RULE, "undetermined", ids=[], signals=[], rationale="windows cannot tell")
    script = Script(anthropic_text(answer))
    options = settings(script, tmp_path, backend="anthropic")
    return verify_with_agent(run, load_commitment(COMMITMENT), options, policy=policy)


def test_undetermined_is_not_certified_under_strict(run, tmp_path, monkeypatch):
    verdict = _undetermined(run, tmp_path, monkeypatch, "strict")
    assert verdict.verdict == 0
    assert (
        f"unverifiable: semantic rule {RULE} (the agent could not decide: windows cannot tell)"
        in verdict.reasons
    )
    assert verdict.agent["unjudged"] == {RULE: "the agent could not decide: windows cannot tell"}


def test_undetermined_is_only_reported_under_lenient(run, tmp_path, monkeypatch):
    verdict = _undetermined(run, tmp_path, monkeypatch, "lenient")
    assert verdict.verdict == 1 and verdict.exit_code == 0
    assert not any("semantic rule" in r for r in verdict.reasons)
    assert verdict.agent["unjudged"] == {RULE: "the agent could not decide: windows cannot tell"}


@pytest.mark.parametrize("policy, certified", [("strict", 0), ("lenient", 1)])
def test_the_policy_alone_decides_an_otherwise_certified_run(policy, certified):
    """A run the telemetry certified (outcome consistent): an undetermined semantic rule
    withholds certification under strict only."""
    from builders import base, chained

    commitment = load_commitment(COMMITMENT)
    rules = check(chained(base()), commitment)
    report = AgentReport({RULE: RuleJudgement(RULE, reason="step budget exhausted")}, "anthropic", "m")
    certified_run = RunVerdict("run", 1, 0.95, [], [], rules, policy=policy, outcome="consistent")
    verdict = fold_agent(certified_run, merge_agent(rules, report), report)
    assert verdict.verdict == certified
    assert verdict.outcome == ("unverifiable" if policy == "strict" else "consistent")
    expected = [f"unverifiable: semantic rule {RULE} (step budget exhausted)"] if policy == "strict" else []
    assert verdict.reasons == expected


def test_no_semantic_rule_left_means_no_model_call(run, tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    script = Script()  # any call fails the test
    plain = {k: v for k, v in COMMITMENT.items() if k != "semantic_rules"}
    options = settings(script, tmp_path, backend="anthropic")
    verdict = verify_with_agent(run, load_commitment(plain), options, policy="strict")
    assert script.requests == [] and verdict.agent["skipped"] == NOTHING_LEFT
    assert verdict.agent["unjudged"] == {} and not any("semantic rule" in r for r in verdict.reasons)


def test_cli_without_a_key_skips_with_one_line_and_names_the_unjudged_rule(run, commitment, capsys):
    args = ["verify", str(run), "-c", str(commitment), "--agent", "-f", "json", "-q"]
    assert invoke([*args, "--policy", "lenient"]) == 0
    captured = capsys.readouterr()
    doc = json.loads(captured.out)
    err = captured.err.strip()
    assert "\n" not in err and err.startswith("agent tier skipped: no ANTHROPIC_API_KEY")
    assert err.endswith(f"semantic rules not judged: {RULE}")
    assert list(doc["agent"]["unjudged"]) == [RULE]
    assert doc["agent"]["unjudged"][RULE].startswith("agent tier skipped")
    assert doc["agent"]["skipped"].startswith("agent tier skipped") and doc["verdict"] == 1
    # strict: a rule nobody judged is evidence that cannot tell, so no certificate
    assert invoke(args) == 1
    doc = json.loads(capsys.readouterr().out)
    assert any(
        r.startswith(f"unverifiable: semantic rule {RULE} (agent tier skipped") for r in doc["reasons"]
    )


def test_cli_text_names_the_rule_and_why_it_was_not_judged(run, commitment, capsys):
    assert invoke(["verify", str(run), "-c", str(commitment), "--agent", "-q", "--policy", "lenient"]) == 0
    out = capsys.readouterr().out
    assert f"semantic rule {RULE}: NOT judged (the tier was skipped)" in out
    assert "agent: agent tier skipped" in out


def test_cli_agent_needs_a_commitment(run, capsys):
    assert invoke(["verify", str(run), "--agent", "-q"]) == 2
    assert "--agent judges a commitment's semantic rules" in capsys.readouterr().err


def test_cli_end_to_end_against_a_local_model_server(run, commitment, tmp_path, monkeypatch, capsys):
    """The real CLI, the real OpenAI client and real HTTP on localhost: a violation -> exit 1."""
    answer = verdict_json(RULE, ids=["rec_000002"], signals=["overview"])
    monkeypatch.setenv("INSPECTORATE_AGENT_MODEL", "local-model")
    monkeypatch.setenv("INSPECTORATE_AGENT_BUDGET_USD", "none")
    monkeypatch.setenv("INSPECTORATE_CACHE_DIR", str(tmp_path / "cache"))
    with openai_server(openai_text(answer)) as (url, seen):
        monkeypatch.setenv("INSPECTORATE_AGENT_BASE_URL", url)
        code = invoke(["verify", str(run), "-c", str(commitment), "--agent", "-q", "--policy", "lenient"])
    out = capsys.readouterr().out
    assert code == 1 and len(seen) == 1 and seen[0][1]["model"] == "local-model"
    assert f"reason: inconsistent: semantic rule {RULE} violated (agent openai:local-model" in out
    assert f"semantic rule {RULE}: agent openai:local-model (violation, confidence 0.90)" in out
