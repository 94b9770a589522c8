"""`check --agent` and `inspectorate agent ...` through the real CLI (no keys: offline)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from inspectorate.data import commitment_path, seed_path


def cli(*args):
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("ANTHROPIC_API_KEY", "OPENAI_API_KEY", "OPENAI_BASE_URL")
    }
    env.pop("INSPECTORATE_AGENT_BASE_URL", None)
    proc = subprocess.run(
        [sys.executable, "-m", "inspectorate.cli", *map(str, args)], capture_output=True, text=True, env=env
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_check_agent_without_keys_skips_with_one_line_and_keeps_the_verdict():
    code, out, err = cli(
        "check",
        seed_path("legit_finetune"),
        "-c",
        commitment_path("fine-tune-only"),
        "--agent",
        "--format",
        "json",
    )
    verdict = json.loads(out)
    assert code == 0 and verdict["verdict"] == 1
    assert verdict["semantic_rules_not_evaluated"] == ["no-pretraining-in-disguise"]
    assert err.strip().count("\n") == 0 and err.startswith("agent tier skipped")


def test_check_judges_reference_semantic_rules_offline():
    code, out, _ = cli("check", seed_path("legit_finetune"), "-c", seed_path("no_frontier_training.yml"))
    assert code == 0
    assert "semantic rules judged: no-splitting (offline fallback no_splitting)" in out
    assert "NOT judged" not in out


def test_agent_compile_writes_a_loadable_commitment(tmp_path):
    out = tmp_path / "strong.yml"
    code, stdout, _ = cli("agent", "compile", seed_path("no_frontier_training.yml"), "--out", out)
    assert code == 0 and stdout.count("KEPT ") == 4
    code, stdout, _ = cli("check", seed_path("legit_finetune"), "-c", out, "--format", "json")
    assert code == 0 and json.loads(stdout)["semantic_rules_judged"]["op-type-honesty"].startswith(
        "compiled to"
    )


def test_agent_digest_prints_json_and_bad_input_exits_2(tmp_path):
    code, out, _ = cli("agent", "digest", seed_path("legit_eval_sweep"), "--max-chars", "8000")
    assert code == 0 and json.loads(out)["overview"]["records"] == 30
    code, _, err = cli("agent", "digest", tmp_path / "missing.jsonl")
    assert code == 2 and err.startswith("error:")


def test_agent_judge_against_a_local_openai_compatible_server(tmp_path):
    """End to end through the CLI and real HTTP on localhost (a stand-in model server)."""
    from mock_llm import openai_server, openai_text, verdict_json

    answer = verdict_json(
        "no-pretraining-in-disguise", "compliant", ids=["rec_000000"], signals=["job:job_finetune_safety_v2"]
    )
    with openai_server(openai_text(answer)) as (url, seen):
        code, out, err = cli(
            "agent", "judge", seed_path("legit_finetune"), "-c", commitment_path("fine-tune-only"),
            "--base-url", url, "--model", "local-model", "--no-budget", "--cache-dir", tmp_path, "--format", "json",
        )  # fmt: skip
    verdict = json.loads(out)
    assert code == 0, err
    assert [p for p, _ in seen] == ["/v1/chat/completions"] and seen[0][1]["model"] == "local-model"
    assert verdict["semantic_rules_judged"]["no-pretraining-in-disguise"].startswith(
        "agent openai:local-model"
    )
    assert verdict["agent"]["accounting"]["calls"][0]["cost_usd"] is None


def test_agent_digest_of_a_run_directory_carries_its_telemetry_findings():
    from pathlib import Path

    run = Path(__file__).resolve().parents[1] / "data" / "rundirs_attacks" / "small_run"
    code, out, _ = cli("agent", "digest", run, "--max-chars", "30000")
    digest = json.loads(out)
    assert code == 0 and digest["properties"]["phases"]
    assert {f["property"] for f in digest["properties"]["phases"][0]["findings"]} >= {"p1_op_type", "flops"}
