"""The CLI contract: exit 0/1/2, the verdict JSON, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from inspectorate.data import commitment_path, seed_path

FRONTIER = str(commitment_path("frontier-training-cap"))


def cli(*args):
    proc = subprocess.run(
        [sys.executable, "-m", "inspectorate.cli", *map(str, args)], capture_output=True, text=True
    )
    return proc.returncode, proc.stdout, proc.stderr


def test_compliant_json_verdict():
    code, out, _ = cli("check", seed_path("legit_finetune"), "--commitment", FRONTIER, "--format", "json")
    verdict = json.loads(out)
    assert code == 0 and verdict["verdict"] == 1
    assert {
        "commitment_id",
        "verdict",
        "confidence",
        "triggered_rule_id",
        "flagged_record_ids",
        "rationale",
        "trigger",
    } <= set(verdict)


def test_violation_text_lists_rules_and_records(tmp_path):
    trace = tmp_path / "t.jsonl"
    assert (
        cli("trace", "generate", "--out", trace, "--chips", "4", "--hours", "1", "--scenario", "idle_work")[0]
        == 0
    )
    code, out, _ = cli("check", trace, "--commitment", FRONTIER)
    assert (
        code == 1 and out.startswith("VIOLATION") and "[idle_must_be_zero]" in out and "records: rec_" in out
    )
    code, out, _ = cli("check", trace, "--commitment", FRONTIER, "--format", "json")
    assert code == 1 and json.loads(out)["triggered_rule_id"] == "idle_must_be_zero"


@pytest.mark.parametrize(
    "content, expected",
    [
        ('{"record_id": "x"\n', ":1: not valid JSON"),
        ("", "empty trace"),
        ('{"record_id": "x"}\n', ":1: missing field(s)"),
    ],
)
def test_bad_trace_exit_2_one_line(tmp_path, content, expected):
    path = tmp_path / "bad.jsonl"
    path.write_text(content)
    code, out, err = cli("check", path, "--commitment", FRONTIER)
    assert code == 2 and expected in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_bad_commitment_exit_2(tmp_path):
    bad = tmp_path / "c.yml"
    bad.write_text("id: x\ndeterministic_rules:\n  - kind: nope\n")
    code, _, err = cli("check", seed_path("legit_finetune"), "--commitment", bad)
    assert code == 2 and "unknown rule kind 'nope'" in err and len(err.strip().splitlines()) == 1
    code, _, err = cli("check", seed_path("legit_finetune"), "--commitment", tmp_path / "missing.yml")
    assert code == 2 and "cannot read commitment" in err


def test_head_pins_the_tail(tmp_path):
    code, out, _ = cli(
        "check", seed_path("legit_finetune"), "--commitment", FRONTIER, "--head", "0" * 64, "--format", "json"
    )
    assert code == 1 and json.loads(out)["triggered_rule_id"] == "hash_chain_intact"


def test_usage_error_exit_2():
    code, _, err = cli("check", "--format", "yaml")
    assert code == 2 and "Traceback" not in err


def test_rules_lists_every_kind_with_parameters():
    code, out, _ = cli("rules")
    assert (
        code == 0
        and "aggregate_flop_cap(threshold: float" in out
        and "scope: per_job|per_operator|global" in out
        and "op_type: training|inference|eval|idle|* or a list of them" in out
    )
    code, out, _ = cli("rules", "idle_must_be_zero")
    assert code == 0 and "Idle windows do no work" in out
    code, _, err = cli("rules", "nope")
    assert code == 2 and "known kinds" in err


def test_choices_are_enums_and_bad_values_exit_2(tmp_path):
    code, _, err = cli("trace", "generate", "--out", tmp_path / "t.jsonl", "--scenario", "bogus")
    assert code == 2 and "bogus" in err and "Traceback" not in err
    assert not (tmp_path / "t.jsonl").exists()
    code, out, _ = cli(
        "trace", "generate", "--out", tmp_path / "t.jsonl", "--scenario", "over_cap", "--hours", "0.1"
    )
    assert code == 0 and "over_cap" in out


def test_demo_writes_to_a_fresh_temporary_directory_by_default(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "inspectorate.cli", "demo"], capture_output=True, text=True, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    assert list(tmp_path.iterdir()) == []  # nothing written relative to the working directory
