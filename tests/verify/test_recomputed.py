"""DiFR and replay results enter verify as verifier evidence (verify --recomputed PHASE=FILE)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from inspectorate.cli import invoke
from inspectorate.errors import InputError
from inspectorate.verify import verify_run
from inspectorate.verify._recomputed import read_recomputed

SMALL = Path(__file__).resolve().parents[1] / "data" / "rundirs_attacks" / "small_run"


SEED_INIT = {
    "n_params": 1000,
    "start": "seed_init",
    "start_checked": True,
    "final_weights_sha256": "w-final",
    "checkpoints": [
        {"step": 0, "file": "ckpt_000000.pt", "weights_sha256": "w-init"},
        {"step": 4, "file": "ckpt_000004.pt", "weights_sha256": "w-final"},
    ],
}


def _write(tmp_path: Path, name: str, prop: str, decision: str, score: float, **evidence) -> Path:
    path = tmp_path / f"{name}.json"
    path.write_text(
        json.dumps(
            {
                "property": prop,
                "decision": decision,
                "score": score,
                "grade": "sensor",
                "evidence": {"n": 1, **evidence},
            }
        )
    )
    return path


def _phase(verdict, name):
    return next(p for p in verdict.phases if p.phase == name)


def _watched(tmp_path: Path) -> Path:
    """SMALL plus a checkpoint watcher that saw SEED_INIT's checkpoints written in honest_train."""
    from inspectorate.capture._chain_writer import ChainWriter
    from inspectorate.trace import load_run

    run = tmp_path / "run"
    shutil.copytree(SMALL, run)
    phase = next(p for p in load_run(run).phases() if p.name == "honest_train")
    with ChainWriter(run / "sensor_ckpt.jsonl") as w:
        for i, ck in enumerate(SEED_INIT["checkpoints"]):
            w.append(
                {
                    "kind": "written",
                    "t": phase.t0 + 1 + i,
                    "path": f"claims/honest_train/{ck['file']}",
                    "weights_sha256": ck["weights_sha256"],
                }
            )
    return run


def test_a_consistent_replay_settles_what_no_sensor_can_tell(tmp_path, monkeypatch):
    before = _phase(verify_run(SMALL), "honest_train")
    assert {f.property: f.decision for f in before.findings}["p3_finetune"] == "unverifiable"
    phase, found = read_recomputed(
        f"honest_train={_write(tmp_path, 'r', 'training_replay', 'consistent', 0.1, claim=SEED_INIT)}"
    )
    # no watcher stream: the replay cannot be tied to weights this host wrote, settles nothing
    unbound = _phase(verify_run(SMALL, recomputed={phase: [found]}), "honest_train")
    by = {f.property: f for f in unbound.findings}
    assert by["p3_finetune"].decision == "unverifiable" and by["training_replay"].evidence["settles"] == []
    assert "no checkpoint watcher stream" in by["training_replay"].evidence["observed"]["reason"]
    # the fixture has no sensor stream: without receive counters the relay bound stays open
    watched = _watched(tmp_path)
    open_ = _phase(verify_run(watched, recomputed={phase: [found]}), "honest_train")
    by = {f.property: f for f in open_.findings}
    assert by["p3_finetune"].decision == "unverifiable"
    assert "could have been relayed in" in by["training_replay"].evidence["observed"]["reason"]
    # with a quiet host (nothing received since the challenge) it binds
    import inspectorate.capture._ckpt_watch as ckpt_watch

    quiet = ckpt_watch.Ingress(0.0, [0.0, 4e9], [0.0, 0.0])
    monkeypatch.setattr(ckpt_watch, "read_ingress", lambda run: quiet)
    after = _phase(verify_run(watched, recomputed={phase: [found]}), "honest_train")
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


def test_a_replay_without_a_claim_summary_settles_nothing(tmp_path):
    """A file that says "consistent" but names no replayed claim cannot be bound to the
    phase, and a ``settles`` list written into the file is ignored."""
    path = _write(tmp_path, "r", "training_replay", "consistent", 0.1, settles=["p3_finetune"])
    phase, found = read_recomputed(f"honest_train={path}")
    by = {
        f.property: f for f in _phase(verify_run(SMALL, recomputed={phase: [found]}), "honest_train").findings
    }
    assert by["p3_finetune"].decision == "unverifiable"
    assert by["training_replay"].evidence["settles"] == []


def _claim(**kw):
    from inspectorate.verify._evidence import Claim

    base = dict(label="pretrain:tiny", activity="pretrain", op="training", size="tiny", n_params=1000)
    return Claim(**{**base, **kw})


def _replay(**summary):
    from inspectorate.verify._registry import Finding

    claim = {
        "n_params": 1000,
        "start": "seed_init",
        "start_weights_sha256": None,
        "start_checked": True,
        "final_weights_sha256": "w1",
        "tokens": 4096,
        **summary,
    }
    return Finding("training_replay", 0.1, "consistent", {"claim": claim}, basis=("replay",))


def test_bind_settles_p3_only_for_a_checked_start_the_verifier_knows():
    from inspectorate.verify._recomputed import bind

    assert bind(_replay(), _claim(), 4096, set()).evidence["settles"] == [
        "p1_op_type",
        "p2_model_size",
        "p3_finetune",
    ]
    unchecked = bind(_replay(start_checked=False), _claim(), 4096, set())
    assert unchecked.decision == "consistent" and unchecked.evidence["settles"] == [
        "p1_op_type",
        "p2_model_size",
    ]
    finetune = _claim(label="finetune:tiny", activity="finetune")
    from_model = _replay(start="model", start_weights_sha256="w0")
    assert bind(from_model, finetune, 4096, set()).evidence["settles"] == ["p1_op_type", "p2_model_size"]
    known = bind(from_model, finetune, 4096, {"w0"})
    assert known.evidence["settles"] == ["p1_op_type", "p2_model_size", "p3_finetune"]


@pytest.mark.parametrize(
    ("claim_kw", "summary", "window_tokens", "needle"),
    [
        ({}, {"n_params": 9000}, 4096, "trains 9000 parameters; the phase claims 1000"),
        (
            {},
            {"start": "model", "start_weights_sha256": "w0"},
            4096,
            "claims pretrain; the replayed run starts from model",
        ),
        (
            {"label": "finetune:tiny", "activity": "finetune"},
            {},
            4096,
            "claims finetune; the replayed run starts from seed_init",
        ),
        ({}, {"tokens": 1000}, 4096, "covers 1000 tokens; the phase's windows claim 4096"),
        ({"op": "inference", "activity": "inference"}, {}, 4096, "attached to a phase claimed as inference"),
        ({}, {"final_weights_sha256": "w0"}, 4096, "already handed over for an earlier phase"),
    ],
)
def test_a_replay_that_contradicts_the_phase_claim_is_inconsistent(claim_kw, summary, window_tokens, needle):
    """The prover's replay claim and its phase claim disagree: a competent forger that
    hands over a real run of something else (a bigger model, a fine-tune under a
    pretraining claim, a shorter run) is caught by the binding, not trusted."""
    from inspectorate.verify._recomputed import bind

    bound = bind(_replay(**summary), _claim(**claim_kw), window_tokens, {"w0"})
    assert bound.decision == "inconsistent" and bound.score == 1.0
    assert any(needle in p for p in bound.evidence["binding"]), bound.evidence["binding"]


def test_bind_checks_the_seed_against_the_sensors_challenge():
    from inspectorate.replay import derive_seed
    from inspectorate.verify._recomputed import bind

    fresh = _replay(seed=derive_seed("n0", "job/1"), nonce_key="job/1")
    assert bind(fresh, _claim(), 4096, set(), "n0").decision == "consistent"
    assert bind(fresh, _claim(), 4096, set(), None).decision == "consistent"  # no challenge issued
    for stale in (fresh, _replay(seed=123, nonce_key="job/1"), _replay(seed=derive_seed("n0", "job/1"))):
        nonce = "n1" if stale is fresh else "n0"
        bound = bind(stale, _claim(), 4096, set(), nonce)
        assert bound.decision == "inconsistent"
        assert any("not derived from the verifier's challenge" in b for b in bound.evidence["binding"])
