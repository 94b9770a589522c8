"""`redteam --defend --defender llm`: the agent's LLM defender wired into the loop, over the
real SDK clients with a scripted transport (tests/agent/mock_llm.py), and the CLI.

Six seeded offline rounds against the small commitment leave evasions (deflated FLOPs
among them); the model's proposals must pass the offline defender's gate: parameters
that validate, quiet on the clean baseline and on every packaged honest trace, and kept
only when they catch an evasion.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from attack_data import SMALL_COMMITMENT, small_trace

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "agent"))
from mock_llm import Script, anthropic_text, openai_server, openai_text, settings

from inspectorate.attacks._loop import redteam
from inspectorate.cli import invoke
from inspectorate.commitment import RuleSpec, load_commitment
from inspectorate.commitment._check import run_rule
from inspectorate.commitment._model import validate_params
from inspectorate.data import SEED_TRACES, seed_path
from inspectorate.trace import Trace, read_trace, write_trace

MODEL = "sha256:aaaaaaaaaaaaaaaa"  # the small trace's model
FLOOR = {"kind": "min_flop_per_token", "params": {"floor": 5.0e10, "models": [MODEL]}, "rationale": "6N"}
BROKEN = {"kind": "min_flop_per_token", "params": {"floor": "high"}, "rationale": "not a number"}
# Quiet on the clean baseline (it has no eval) but the packaged eval sweep is honest eval work:
NOISY = {
    "kind": "allowed_op_types",
    "params": {"allowed": ["training", "inference", "idle"]},
    "rationale": "x",
}
# Valid and quiet everywhere, but it catches nothing the commitment does not already catch:
IDLE = {"kind": "idle_must_be_zero", "params": {}, "rationale": "idle windows report work"}
KEYS = ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL", "INSPECTORATE_AGENT_BASE_URL")


@pytest.fixture(autouse=True)
def no_keys(monkeypatch):
    for name in KEYS + ("INSPECTORATE_AGENT_BACKEND", "INSPECTORATE_AGENT_PRICES"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def honest():
    return {f"{name}.jsonl": read_trace(seed_path(name)).records for name in SEED_TRACES}


def play(proposals, tmp_path, honest, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-key")
    script = Script(anthropic_text(json.dumps({"rules": proposals})))
    report = redteam(
        6,
        "offline",
        load_commitment(SMALL_COMMITMENT),
        small_trace(),
        None,
        seed=2,
        defend=True,
        honest_traces=honest,
        defender="llm",
        defender_settings=settings(script, tmp_path, backend="anthropic"),
    )
    return report, script


def caught_by(params, report) -> set[int]:
    """The evasion rounds a rule fires on, computed apart from the defender."""
    spec = RuleSpec("oracle", "min_flop_per_token", validate_params("min_flop_per_token", params, "t"))
    return {
        r["round"] for r in report.evasions if run_rule(spec, Trace.from_records(report.mutated[r["round"]]))
    }


def test_a_valid_rule_that_catches_an_evasion_is_kept_and_an_invalid_one_rejected(
    tmp_path, honest, monkeypatch
):
    report, script = play([FLOOR, BROKEN], tmp_path, honest, monkeypatch)
    d = report.defense
    caught = caught_by(FLOOR["params"], report)
    assert caught and len(report.evasions) > len(caught)  # it closes some evasions, not all
    assert d["added_rules"] == [
        {"kind": "min_flop_per_token", "id": "llm:min_flop_per_token#0", **FLOOR["params"]}
    ]
    assert d["llm"]["admissible"] == ["llm:min_flop_per_token#0"]
    assert [(r["index"], r["kind"]) for r in d["llm"]["rejected"]] == [(1, "min_flop_per_token")]
    assert d["evasions_caught_after"] == len(caught)
    assert set(d["still_evading"]) == {r["round"] for r in report.evasions} - caught
    assert d["false_positives"] == {} and d["honest_traces"] == sorted(honest)
    assert d["llm"]["accounting"]["calls"][0]["cost_usd"] > 0
    # the offline candidates are not in the pool: the patch is the model's alone
    assert all(r["id"].startswith("llm:") for r in d["added_rules"])
    assert len(script.requests) == 1 and "defender llm: 1 valid proposal(s), 1 rejected" in report.summary()


def test_a_rule_noisy_on_honest_traces_or_catching_nothing_is_not_kept(tmp_path, honest, monkeypatch):
    report, _ = play([NOISY, IDLE], tmp_path, honest, monkeypatch)
    d = report.defense
    assert report.evasions and d["added_rules"] == []
    assert d["llm"]["admissible"] == ["llm:idle_must_be_zero#1"]  # quiet, but catches nothing
    assert d["evasions_caught_after"] == 0 and d["llm"]["rejected"] == []
    eval_sweep = Trace.from_records(honest["legit_eval_sweep.jsonl"])
    noisy = RuleSpec("n", NOISY["kind"], validate_params(NOISY["kind"], NOISY["params"], "t"))
    assert run_rule(noisy, eval_sweep)  # why it was inadmissible: it rejects honest eval work


def _args(tmp_path: Path) -> list[str]:
    commitment, baseline = tmp_path / "c.json", tmp_path / "b.jsonl"
    commitment.write_text(json.dumps(SMALL_COMMITMENT))
    write_trace(Trace.from_records(small_trace()), baseline)
    return ["redteam", "--commitment", str(commitment), "--baseline", str(baseline), "-q"]


def test_cli_without_a_key_exits_2_before_any_round(tmp_path, capsys):
    out = tmp_path / "r.jsonl"
    code = invoke([*_args(tmp_path), "--rounds", "2", "--out", str(out), "--defend", "--defender", "llm"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err
    assert err.startswith("error:")
    assert "--defender llm needs a model: no ANTHROPIC_API_KEY, OPENAI_API_KEY" in err
    assert not out.exists()  # refused before the first round
    assert invoke([*_args(tmp_path), "--out", str(out), "--defender", "llm"]) == 2
    assert "--defender llm needs --defend" in capsys.readouterr().err
    assert invoke([*_args(tmp_path), "--out", str(out), "--model", "m"]) == 2
    assert "configure --defender llm" in capsys.readouterr().err


def test_cli_writes_the_defense_with_the_llm_block(tmp_path, monkeypatch, capsys):
    """The real CLI and OpenAI client against a stand-in model server on localhost."""
    monkeypatch.setenv("INSPECTORATE_AGENT_BUDGET_USD", "none")
    monkeypatch.setenv("INSPECTORATE_CACHE_DIR", str(tmp_path / "cache"))
    out = tmp_path / "r.jsonl"
    with openai_server(openai_text(json.dumps({"rules": [FLOOR, BROKEN]}))) as (url, seen):
        code = invoke(
            [*_args(tmp_path), "--rounds", "6", "--seed", "2", "--out", str(out), "--defend"]
            + ["--defender", "llm", "--base-url", url, "--model", "local-model"]
        )
    assert code == 0 and len(seen) == 1 and seen[0][1]["model"] == "local-model"
    defense = json.loads((tmp_path / "r.defense.json").read_text())
    assert [r["id"] for r in defense["added_rules"]] == ["llm:min_flop_per_token#0"]
    assert defense["llm"]["admissible"] == ["llm:min_flop_per_token#0"]
    assert defense["llm"]["accounting"]["calls"][0]["cost_usd"] is None  # an unpriced local model
    assert "defender llm: 1 valid proposal(s), 1 rejected, 1 admissible" in capsys.readouterr().out
