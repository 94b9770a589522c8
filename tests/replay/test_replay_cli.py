"""`inspectorate replay CLAIM`: exit 0 agrees, 1 disagrees, 2 bad input."""

from __future__ import annotations

import json
from pathlib import Path

from inspectorate.cli import invoke
from inspectorate.replay._attacks import metric_inflated
from inspectorate.verify._recomputed import read_recomputed

CORPUS = Path(__file__).resolve().parents[1] / "data" / "testbed_corpus.txt"


def test_replay_cli_honest_segments_and_forgery(honest, tmp_path, capsys):
    claim = str(honest.base / "claim.json")
    assert (
        invoke(
            ["replay", claim, "--corpus", str(CORPUS), "--segments", "2", "--seed", "1", "--format", "json"]
        )
        == 0
    )
    out = json.loads(capsys.readouterr().out)
    assert (
        out["decision"] == "consistent" and len(out["segments_replayed"]) == 2 and out["segments_total"] == 4
    )
    forged = metric_inflated(honest, tmp_path / "f", delta=0.02)
    found = tmp_path / "finding.json"
    args = ["replay", str(forged.base / "claim.json"), "--corpus", str(CORPUS), "--segment", "3"]
    assert invoke([*args, "--finding-out", str(found)]) == 1
    assert "INCONSISTENT" in capsys.readouterr().out
    phase, finding = read_recomputed(f"pretrain={found}")  # what `verify --recomputed` reads
    assert (phase, finding.property, finding.decision, finding.basis) == (
        "pretrain",
        "training_replay",
        "inconsistent",
        ("replay",),
    )


def test_replay_cli_bad_input(tmp_path, capsys):
    (tmp_path / "c.json").write_text("[]")
    assert invoke(["replay", str(tmp_path / "c.json"), "--corpus", str(CORPUS)]) == 2
    assert len(capsys.readouterr().err.strip().splitlines()) == 1


def test_replay_cli_calibrates_a_tolerance_and_uses_it(honest, tmp_path, capsys):
    claim = str(honest.base / "claim.json")
    tol = tmp_path / "tol.json"
    assert (
        invoke(["replay", claim, "--corpus", str(CORPUS), "--calibrate-out", str(tol), "--threads", "1"]) == 0
    )
    saved = json.loads(tol.read_text())
    # one thread, same machine: the replay is bit-exact, so the tolerance sits at its floor
    assert saved["basis"]["honest_max_distance"] == 0.0 and saved["weight"] == 1e-7
    capsys.readouterr()
    assert invoke(["replay", claim, "--corpus", str(CORPUS), "--segment", "0", "--tolerance", str(tol)]) == 0
    assert "CONSISTENT" in capsys.readouterr().out


def test_replay_states_the_steps_it_covered_and_refuses_zero_segments(honest, capsys):
    """Issue 18 item 4: the text and JSON say which training steps the replay covered
    (before: only a segment count), and ``--segments 0`` is bad input (before: a
    verdict over nothing replayed)."""
    claim = str(honest.base / "claim.json")
    assert invoke(["replay", claim, "--corpus", str(CORPUS), "--segment", "1"]) == 0
    text = capsys.readouterr().out
    steps = [c.step for c in honest.checkpoints]
    covered = steps[2] - steps[1]
    assert f"steps {steps[1]}-{steps[2]} ({covered} of {steps[-1]})" in text.splitlines()[0]
    assert invoke(["replay", claim, "--corpus", str(CORPUS), "--segment", "1", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert (out["steps_replayed"], out["steps_total"]) == (covered, steps[-1])
    assert invoke(["replay", claim, "--corpus", str(CORPUS), "--segments", "0"]) == 2
    err = capsys.readouterr().err
    assert "--segments must be >= 1" in err and len(err.strip().splitlines()) == 1
