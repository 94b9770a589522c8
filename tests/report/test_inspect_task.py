"""The inspect_ai task (`inspect eval inspectorate/verifier_challenge`), run offline with
inspect_ai's mock model: the metrics are the leaderboard's and they move with the answers."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import pytest

pytest.importorskip("inspect_ai", reason="the [inspect] extra (inspect-ai) is not installed")

from inspect_ai import eval as inspect_eval
from inspect_ai.model import ModelOutput, ModelUsage, get_model

from inspectorate.agent._inspect_task import (
    builtin_suite,
    parse_decision,
    samples_from_suite,
    verifier_challenge,
)
from inspectorate.commitment import check, load_commitment
from inspectorate.errors import InputError
from inspectorate.trace import read_trace

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def suite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return builtin_suite(tmp_path_factory.mktemp("suite"))


def metrics(log) -> dict[str, float]:
    assert log.status == "success", log.error
    return {name: m.value for name, m in log.results.scores[0].metrics.items()}


def reply(text: str) -> ModelOutput:
    # usage given, so the mock does not count tokens with tiktoken (whose tables it would download)
    out = ModelOutput.from_content(model="mockllm/model", content=text)
    out.usage = ModelUsage(input_tokens=1000, output_tokens=len(text), total_tokens=1000 + len(text))
    return out


def run(suite: Path, answers: list[str], tmp_path: Path) -> dict[str, float]:
    model = get_model("mockllm/model", custom_outputs=[reply(f"reasoning...\nVERDICT: {a}") for a in answers])
    [log] = inspect_eval(
        verifier_challenge(suite=str(suite)),
        model=model,
        max_samples=1,
        log_dir=str(tmp_path),
        display="none",
    )
    return metrics(log)


def truths(suite: Path) -> list[str]:
    answers = {
        a["id"]: a["truth"] for a in map(json.loads, (suite / "answers.jsonl").read_text().splitlines())
    }
    return [answers[c["id"]] for c in map(json.loads, (suite / "cases.jsonl").read_text().splitlines())]


def test_builtin_truths_agree_with_the_deterministic_checker(suite: Path) -> None:
    promise = load_commitment(suite / "commitment.yml")
    for case, truth in zip(map(json.loads, (suite / "cases.jsonl").read_text().splitlines()), truths(suite)):
        verdict = check(read_trace(suite / case["evidence"]), promise)
        assert ("compliant" if verdict.compliant else "violation") == truth, case["id"]


def test_prompts_hold_the_commitment_and_the_evidence_but_not_our_findings(suite: Path) -> None:
    samples = samples_from_suite(suite)
    assert len(samples) == 8 and {s.target for s in samples} == {"compliant", "violation"}
    for sample in samples:
        assert "aggregate_flop_cap" in sample.input and "EVIDENCE DIGEST" in sample.input
        assert '"findings": []' in sample.input  # the model judges; it is not shown our rule hits


def test_a_perfect_inspector_scores_one(suite: Path, tmp_path: Path) -> None:
    got = run(suite, truths(suite), tmp_path)
    assert got["accuracy"] == 1.0 and got["caught_rate"] == 1.0
    assert got["honest_fpr"] == 0.0 and got["abstention_rate"] == 0.0


def test_always_violation_catches_all_and_flags_every_honest_case(suite: Path, tmp_path: Path) -> None:
    got = run(suite, ["violation"] * 8, tmp_path)
    assert got["caught_rate"] == 1.0 and got["honest_fpr"] == 1.0
    assert got["accuracy"] == pytest.approx(5 / 8)


def test_an_answer_without_a_verdict_is_an_abstention(suite: Path, tmp_path: Path) -> None:
    model = get_model("mockllm/model", custom_outputs=[reply("Default output from mockllm/model")] * 8)
    [log] = inspect_eval(
        verifier_challenge(suite=str(suite)), model=model, log_dir=str(tmp_path), display="none"
    )
    got = metrics(log)
    assert got["abstention_rate"] == 1.0 and got["accuracy"] == 0.0 and got["caught_rate"] == 0.0


def test_parse_takes_the_last_verdict_line() -> None:
    assert parse_decision("VERDICT: compliant\n...on reflection\nVERDICT: **Violation**") == "violation"
    assert parse_decision("I think it complies.") == "unverifiable"


def test_a_suite_without_answers_is_refused(tmp_path: Path) -> None:
    (tmp_path / "cases.jsonl").write_text('{"id": "x", "track": "compliance"}\n')
    with pytest.raises(InputError, match="answers.jsonl"):
        samples_from_suite(tmp_path)


def test_the_entry_point_names_the_module_holding_the_task() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    module = project["project"]["entry-points"]["inspect_ai"]["inspectorate"]
    assert module == verifier_challenge.__module__
    assert "inspect-ai" in " ".join(project["project"]["optional-dependencies"]["inspect"])


def run_dir_suite(tmp_path: Path) -> Path:
    """Two op_type cases over the H100 fixture's host-a (its labels say pretrain and idle)."""
    import shutil

    shutil.copytree(
        ROOT / "tests" / "data" / "rundirs" / "h100_two_hosts" / "host-a", tmp_path / "runs" / "a"
    )
    cases = [
        {
            "id": f"op_type/a/{p}",
            "track": "op_type",
            "evidence": "runs/a",
            "phase": p,
            "claim": {"claimed_op": op},
        }
        for p, op in (("honest_pretrain_small", "training"), ("idle_baseline", "training"))
    ]
    answers = [
        {"id": "op_type/a/honest_pretrain_small", "truth": "consistent", "family": "honest"},
        {"id": "op_type/a/idle_baseline", "truth": "inconsistent", "family": "idle_as_training"},
    ]
    for name, rows in (("cases.jsonl", cases), ("answers.jsonl", answers)):
        (tmp_path / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
    return tmp_path


def test_run_dir_tracks_show_each_streams_readings_not_the_truth(tmp_path: Path) -> None:
    samples = samples_from_suite(run_dir_suite(tmp_path), ("op_type",))
    busy, idle = (
        json.loads(s.input.split("owner says who wrote it):\n")[1].split("\n\n")[0]) for s in samples
    )
    assert busy["streams"]["nvsmi"]["utilization_gpu"]["mean"] > 90
    assert idle["streams"]["nvsmi"]["utilization_gpu"]["mean"] < 10
    assert all('"truth"' not in s.input and "VERDICT" not in s.input for s in samples)
    assert "consistent, inconsistent, unverifiable" in samples[0].input


def test_run_dir_track_metrics_use_the_consistent_vocabulary(tmp_path: Path) -> None:
    suite = run_dir_suite(tmp_path / "suite")
    model = get_model("mockllm/model", custom_outputs=[reply("VERDICT: inconsistent")] * 2)
    [log] = inspect_eval(
        verifier_challenge(suite=str(suite), tracks="op_type"),
        model=model,
        log_dir=str(tmp_path / "logs"),
        display="none",
    )
    got = metrics(log)
    assert got["caught_rate"] == 1.0 and got["honest_fpr"] == 1.0 and got["accuracy"] == 0.5


def test_the_task_resolves_by_name_through_the_entry_point(tmp_path: Path) -> None:
    """What `inspect eval inspectorate/verifier_challenge` does, in a child process that sees
    the pyproject's entry point through a dist-info on its path (no reinstall needed)."""
    import os
    import subprocess
    import sys

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    group = project["project"]["entry-points"]["inspect_ai"]
    info = tmp_path / "inspectorate_ep-0.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: inspectorate-ep\nVersion: 0.0\n")
    (info / "entry_points.txt").write_text(
        "[inspect_ai]\n" + "".join(f"{k} = {v}\n" for k, v in group.items())
    )
    script = (
        "from inspect_ai import eval as ev\n"
        "from inspect_ai.model import get_model, ModelOutput, ModelUsage\n"
        "o = ModelOutput.from_content(model='mockllm/model', content='VERDICT: violation')\n"
        "o.usage = ModelUsage(input_tokens=1, output_tokens=1, total_tokens=2)\n"
        "[log] = ev('inspectorate/verifier_challenge', model=get_model('mockllm/model', custom_outputs=[o] * 8),"
        f" log_dir={str(tmp_path / 'logs')!r}, display='none')\n"
        "print(log.status, log.results.scores[0].metrics['caught_rate'].value)\n"
    )
    # the installed (editable) package, not ROOT/src on the path: setuptools leaves an
    # egg-info there without direct_url.json, and inspect_ai then fails to see the package
    path = os.pathsep.join([str(tmp_path), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "PYTHONPATH": path},
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split()[-2:] == ["success", "1.0"]
