"""The redteam loop: offline rounds, scoring, determinism, defend, CLI command, LLM wiring."""

from __future__ import annotations

import json
import os

import pytest
from attack_data import REFERENCE_COMMITMENT, small_trace

from inspectorate.attacks import OfflineAttacker, Proposal, attack_names, make_attacker, redteam, violate
from inspectorate.attacks._llm import build_prompt, digest, parse_reply
from inspectorate.attacks._loop import replay
from inspectorate.cli import invoke
from inspectorate.data import seed_path
from inspectorate.errors import InputError

REQUIRED = {
    "round",
    "evasion_name",
    "attack_intent",
    "rationale",
    "attack_spec",
    "mutate_code",
    "caught",
    "triggered_rule_id",
    "intent_preserved",
    "mutated_record_count",
    "cost",
    "seconds",
    "evasion",
}


def rows(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_offline_rounds_are_written_and_scored(small_commitment, tmp_path):
    out = tmp_path / "rounds.jsonl"
    report = redteam(12, "offline", small_commitment, small_trace(), out, seed=3)
    written = rows(out)
    assert [r["round"] for r in written] == list(range(1, 13))
    for r in written:
        assert REQUIRED <= set(r)
        assert r["cost"] == 0.0
        assert r["evasion"] == (not r["caught"] and r["intent_preserved"] and not r["error"])
        assert bool(r["triggered_rule_id"]) == r["caught"]
    assert (
        report.caught
        and len(report.caught) + len(report.evasions) + len(report.hollow_evasions) + len(report.errors) == 12
    )
    assert report.to_dict()["rounds"] == 12


def test_offline_is_deterministic(small_commitment, tmp_path):
    a = redteam(8, "offline", small_commitment, small_trace(), tmp_path / "a.jsonl", seed=5)
    b = redteam(8, "offline", small_commitment, small_trace(), tmp_path / "b.jsonl", seed=5)
    strip = lambda rs: [{k: v for k, v in r.items() if k != "seconds"} for r in rs]  # noqa: E731
    assert strip(a.rounds) == strip(b.rounds)


def test_replay_recreates_a_round(small_commitment, tmp_path):
    report = redteam(4, "offline", small_commitment, small_trace(), None, seed=1)
    baseline = violate(small_trace(), small_commitment)
    assert report.mutated
    for row in report.rounds:
        if row["round"] in report.mutated:
            assert replay(row, baseline) == report.mutated[row["round"]]


def test_exploit_reacts_to_the_rule_that_fired():
    bot = OfflineAttacker(seed=0, explore_first=False)
    history = [
        {
            "round": 1,
            "intent_preserved": True,
            "caught": True,
            "error": None,
            "attack_spec": {"compose": [{"attack": "split_jobs", "params": {"parts": 2}}]},
            "fired_rules": ["chip_job_stability"],
            "fired_kinds": ["chip_job_stability"],
        }
    ]
    proposals = [bot.propose(history) for _ in range(6)]
    assert all(
        p.spec["compose"][0]["attack"] == "split_jobs" for p in proposals if p.rationale.startswith("exploit")
    )
    assert any("chip_job_stability" in p.rationale for p in proposals)


def test_code_proposals_run_in_the_sandbox(small_commitment, os_sandbox):
    code = (
        "def mutate(records):\n    for r in records:\n        if r['op_type'] == 'training':\n"
        "            r['op_type'] = 'eval'\n    return records\n"
    )

    class Coder:
        name = "coder"

        def prepare(self, commitment, baseline):
            pass

        def propose(self, history):
            return Proposal("relabel-eval", "training as eval", "test", code=code, cost_usd=0.01)

    report = redteam(2, Coder(), small_commitment, small_trace(), None)
    assert all(r["mutate_code"] == code and r["cost"] == 0.01 for r in report.rounds)
    assert all(r["intent_preserved"] for r in report.rounds)


def test_bad_inputs(small_commitment):
    with pytest.raises(InputError, match="unknown attacker"):
        make_attacker("gemini")
    with pytest.raises(InputError, match="rounds"):
        redteam(0, "offline", small_commitment, small_trace(), None)
    noisy = small_trace()
    noisy[0]["op_type"] = "idle"  # idle with FLOPs: the clean baseline already breaks the commitment
    from inspectorate.trace import rechain

    with pytest.raises(InputError, match="must comply"):
        redteam(1, "offline", small_commitment, rechain(noisy), None)


def test_defend_on_small_rounds(small_commitment):
    report = redteam(
        30, "offline", small_commitment, small_trace(), None, seed=2, defend=True, honest_traces={}
    )
    d = report.defense
    assert d["evasions_before"] == len(report.evasions)
    assert d["evasions_caught_after"] + len(d["still_evading"]) == d["evasions_before"]
    assert {r["round"] for r in d["rescored"]} == set(report.mutated)
    assert report.evasions  # the small commitment has gaps the search finds within 30 rounds (seeded)
    assert d["added_rules"] and d["evasions_caught_after"] > 0
    assert all(
        r["caught_after"] for r in d["rescored"] if r["caught_before"]
    )  # adding rules never un-catches


def test_reference_loop_and_defend(reference, tmp_path):
    commitment, clean = reference
    rounds = len(attack_names()) + 3  # every library attack (compounds too) once, then exploit
    report = redteam(rounds, "offline", commitment, clean, tmp_path / "r.jsonl", seed=1, defend=True)
    names = {r["evasion_name"] for r in report.evasions}
    assert {"deflate_flops", "deflate_flops_inflate_tokens"} <= names  # FLOPs under-reported, tokens kept
    ghosts = [r for r in report.rounds if "excess_to_ghost_inference" in r["evasion_name"]]
    assert ghosts and all(r["caught"] and r["triggered_rule_id"] == "window_completeness" for r in ghosts)
    # the compound shard attack invents chips: completeness over the declared inventory catches it
    assert report.hollow_evasions  # truncation/deflation passes without carrying the violation
    d = report.defense
    assert d["false_positives"] == {}
    assert d["evasions_caught_after"] == d["evasions_before"] and not d["still_evading"]
    assert {"min_flop_per_token", "aggregate_flop_cap", "op_type_flop_ratio"} & {
        r["kind"] for r in d["added_rules"]
    } >= {"min_flop_per_token"}  # FLOP deflation is closed by a floor scoped to the trained model
    assert not any(
        r["kind"] == "aggregate_flop_cap" and r.get("scope", "per_job") == "per_job" for r in d["added_rules"]
    )  # the promise itself is never lowered


def test_cli_command(tmp_path, capsys):
    out = tmp_path / "rounds.jsonl"
    args = ["--commitment", str(REFERENCE_COMMITMENT), "--baseline", str(seed_path("legit_finetune"))]
    assert invoke(["redteam", "--rounds", "3", *args, "--out", str(out), "--defend"]) == 0
    assert "3 rounds" in capsys.readouterr().out and len(rows(out)) == 3
    assert (tmp_path / "rounds.defense.json").exists()
    assert invoke(["redteam", "--attacker", "gemini", *args, "--out", str(out)]) == 2
    assert "gemini" in capsys.readouterr().err
    assert invoke(["redteam", *args, "--out", str(out), "--rounds", "0"]) == 2
    assert "--rounds" in capsys.readouterr().err


def test_llm_prompt_and_reply_parsing(small_commitment):
    prompt = build_prompt(
        small_commitment, small_trace(), [{"round": 1, "evasion_name": "x", "caught": True}]
    )
    assert "aggregate_flop_cap" in prompt and "sample_records" in prompt and '"round": 1' in prompt
    assert digest(small_trace())["dominant_job"] == "job_train"
    header, code = parse_reply(
        '{"name": "n", "intent": "i", "rationale": "r"}\n```python\ndef mutate(records):\n'
        "    return records\n```"
    )
    assert header["name"] == "n" and code.startswith("def mutate")
    with pytest.raises(InputError):
        parse_reply("no code here")


@pytest.mark.parametrize("provider,key", [("anthropic", "ANTHROPIC_API_KEY"), ("openai", "OPENAI_API_KEY")])
def test_llm_attacker_needs_a_key(provider, key, monkeypatch):
    monkeypatch.delenv(key, raising=False)
    with pytest.raises(InputError, match=key):
        make_attacker(provider)


@pytest.mark.parametrize("provider,key", [("anthropic", "ANTHROPIC_API_KEY"), ("openai", "OPENAI_API_KEY")])
def test_llm_attacker_live_round(provider, key, small_commitment, tmp_path):
    if not os.environ.get(key):
        pytest.skip(f"{key} not set")
    pytest.importorskip(provider)
    report = redteam(1, provider, small_commitment, small_trace(), tmp_path / "r.jsonl")
    row = report.rounds[0]
    assert row["mutate_code"] and row["cost"] > 0
