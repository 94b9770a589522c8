"""DiFR and replay results enter verify as verifier evidence (verify --recomputed PHASE=FILE)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inspectorate.cli import invoke
from inspectorate.errors import InputError
from inspectorate.verify import verify_run
from inspectorate.verify._recomputed import read_recomputed

SMALL = Path(__file__).resolve().parents[1] / "data" / "rundirs_attacks" / "small_run"


def _write(tmp_path: Path, name: str, prop: str, decision: str, score: float) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(
        json.dumps(
            {"property": prop, "decision": decision, "score": score, "grade": "sensor", "evidence": {"n": 1}}
        )
    )
    return path


def _phase(verdict, name):
    return next(p for p in verdict.phases if p.phase == name)


def test_a_consistent_replay_settles_what_no_sensor_can_tell(tmp_path):
    before = _phase(verify_run(SMALL), "honest_train")
    assert {f.property: f.decision for f in before.findings}["p3_finetune"] == "unverifiable"
    phase, found = read_recomputed(
        f"honest_train={_write(tmp_path, 'r', 'training_replay', 'consistent', 0.1)}"
    )
    after = _phase(verify_run(SMALL, recomputed={phase: [found]}), "honest_train")
    by = {f.property: f for f in after.findings}
    for prop in ("p1_op_type", "p2_model_size", "p3_finetune"):
        assert by[prop].decision == "consistent" and by[prop].basis == ("replay",)
    assert by["training_replay"].decision == "consistent"
    assert after.unverifiable == [
        "compute"
    ]  # replay shows the claimed training, not the absence of other work


def test_an_inconsistent_difr_fails_the_phase_and_never_upgrades(tmp_path):
    phase, found = read_recomputed(
        f"honest_infer={_write(tmp_path, 'd', 'served_model_identity', 'inconsistent', 1.0)}"
    )
    verdict = verify_run(SMALL, policy="lenient", recomputed={phase: [found]})
    infer = _phase(verdict, "honest_infer")
    assert infer.outcome == "inconsistent" and infer.verdict == 0 and verdict.verdict == 0
    assert {f.property: f.decision for f in infer.findings}["p2_model_size"] == "unverifiable"


def test_bad_recomputed_input_is_a_one_line_error(tmp_path, capsys):
    with pytest.raises(InputError, match="PHASE=FILE"):
        read_recomputed("no-equals-sign")
    with pytest.raises(InputError, match="not a re-computation finding"):
        read_recomputed(f"honest_train={_write(tmp_path, 'x', 'p1_op_type', 'consistent', 0.0)}")
    with pytest.raises(InputError, match="decision"):
        read_recomputed(f"honest_train={_write(tmp_path, 'y', 'training_replay', 'maybe', 0.0)}")
    good = _write(tmp_path, "z", "training_replay", "consistent", 0.0)
    assert invoke(["verify", str(SMALL), "--recomputed", f"no_such_phase={good}"]) == 2
    err = capsys.readouterr().err
    assert "no_such_phase" in err and err.count("\n") == 1
