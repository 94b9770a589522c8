"""`inspectorate bench ...`: thin commands, exit 2 and one line on bad input."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from inspectorate.cli import invoke

EXTERNAL = Path(__file__).resolve().parent / "external_verifier.py"


def test_bad_suite_is_one_line_exit_2(tmp_path, capsys):
    code = invoke(
        ["bench", "run", "--suite", str(tmp_path), "--verifier", "ours", "--out", str(tmp_path / "o")]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "manifest.json missing" in err[0]
    assert invoke(["bench", "run", "--verifier", "nope", "--out", str(tmp_path / "o2")]) == 2
    assert "unknown verifier 'nope'" in capsys.readouterr().err


def test_cmd_entry_compare_and_catalogue(tmp_path, capsys):
    cmd = f"{sys.executable} {EXTERNAL}"
    args = [
        "bench",
        "run",
        "--cmd",
        cmd,
        "--select",
        "compliance/seed-*",
        "--no-baselines",
        "--reps",
        "50",
        "--quiet",
    ]
    assert invoke([*args, "--out", str(tmp_path / "a")]) == 0
    assert invoke([*args, "--out", str(tmp_path / "a")]) == 2  # never overwrites without --force
    assert invoke([*args, "--out", str(tmp_path / "b"), "--answers", str(_answers())]) == 0
    rows = [json.loads(line) for line in (tmp_path / "b" / "results.jsonl").read_text().splitlines()]
    assert all("truth" in r for r in rows)  # the truth only when --answers is given
    capsys.readouterr()
    assert invoke(["bench", "compare", str(tmp_path / "a"), str(tmp_path / "b")]) == 0
    assert "## compliance" in capsys.readouterr().out
    out = tmp_path / "properties.md"
    assert invoke(["bench", "catalogue", "--results", str(tmp_path / "a"), "--out", str(out)]) == 0
    text = out.read_text()
    assert "FLOP cap" in text and "not yet" in text


def _answers() -> Path:
    from inspectorate.bench import public_suite

    return public_suite() / "answers.jsonl"
