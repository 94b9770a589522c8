"""The LLM defender: proposals through the offline defender's gate, over a mocked transport."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from types import SimpleNamespace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))
from mock_llm import Script, anthropic_text, settings

from inspectorate.attacks._llm_defender import llm_defend
from inspectorate.commitment import load_commitment
from inspectorate.data import SEED_TRACES, seed_path
from inspectorate.trace import read_trace, rechain

COMMITMENT = load_commitment(
    {
        "id": "cap",
        "deterministic_rules": [{"kind": "aggregate_flop_cap", "op_type": "training", "threshold": 1e19}],
    }
)


def _evasion(clean):
    """Idle laundering: half the (inflated) training windows relabelled idle, FLOPs kept."""
    records = [dict(r, flops=r["flops"] * 4) for r in clean]
    for r in records[::2]:
        r["op_type"] = "idle"
    return rechain(records)


def test_llm_proposals_pass_the_same_gate_as_offline_candidates(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "k")
    clean = read_trace(seed_path("legit_finetune")).records
    honest = {name: read_trace(seed_path(name)).records for name in SEED_TRACES}
    report = SimpleNamespace(
        evasions=[{"round": 1}],
        mutated={1: _evasion(clean)},
        rounds=[{"round": 1, "caught": False, "intent_preserved": True}],
    )
    proposals = {
        "rules": [
            {"kind": "idle_must_be_zero", "params": {}, "rationale": "idle windows report work"},
            {"kind": "allowed_op_types", "params": {"allowed": ["training"]}, "rationale": "no idle"},
            {"kind": "no_such_kind", "params": {}, "rationale": "?"},
        ]
    }
    script = Script(anthropic_text("Here:\n```json\n" + json.dumps(proposals) + "\n```"))
    options = settings(script, tmp_path, backend="anthropic")
    result = llm_defend(report, COMMITMENT, clean, clean, honest, options, include_offline=False)
    body = script.bodies[0]
    assert "tools" not in body and body["messages"][0]["content"][1]["text"].startswith("RULE REGISTRY")
    assert result["added_rules"] == [{"kind": "idle_must_be_zero", "id": "llm:idle_must_be_zero#0"}]
    assert result["evasions_caught_after"] == 1 and result["false_positives"] == {}
    # allowed_op_types [training] would reject the honest inference and eval traces: not admissible
    assert result["llm"]["admissible"] == ["llm:idle_must_be_zero#0"]
    assert [r["kind"] for r in result["llm"]["rejected"]] == ["no_such_kind"]
    assert result["llm"]["accounting"]["calls"][0]["cost_usd"] > 0


def test_llm_defender_without_key_falls_back_to_offline_candidates(monkeypatch):
    for name in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "INSPECTORATE_AGENT_BASE_URL", "OPENAI_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    clean = read_trace(seed_path("legit_finetune")).records
    report = SimpleNamespace(
        evasions=[{"round": 1}],
        mutated={1: _evasion(clean)},
        rounds=[{"round": 1, "caught": False, "intent_preserved": True}],
    )
    honest = {name: read_trace(seed_path(name)).records for name in SEED_TRACES}
    result = llm_defend(report, COMMITMENT, clean, clean, honest)
    assert result["llm"]["skipped"].startswith("agent tier skipped")
    assert result["evasions_caught_after"] == 1  # the offline search still closes it
