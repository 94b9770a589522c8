"""``verify --replay`` plumbing that needs no training run: the draw, the handed-over
claims, an unreadable claim, and what-would-settle sentences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inspectorate.cli import invoke
from inspectorate.verify._registry import finding, unverifiable
from inspectorate.verify._replay_run import segments_for
from inspectorate.verify._settle import would_settle

RUN = Path(__file__).parents[1] / "data" / "rundirs" / "h100_two_hosts" / "host-a"


def test_segment_zero_is_always_replayed_plus_the_draw() -> None:
    for seed in range(20):
        chosen = segments_for(10, 2, seed)
        assert chosen[0] == 0 and len(chosen) == 3 and len(set(chosen)) == 3
        assert all(0 <= k < 10 for k in chosen)
    assert segments_for(1, 3, 0) == [0]
    assert segments_for(3, 5, 0) == [0, 1, 2]
    draws = {tuple(segments_for(50, 1, seed)) for seed in range(30)}
    assert len(draws) > 5  # the draw depends on the seed


def test_replay_and_corpus_go_together(capsys: pytest.CaptureFixture[str]) -> None:
    assert invoke(["verify", str(RUN), "--replay"]) == 2
    assert "--corpus" in capsys.readouterr().err


def test_an_unreadable_claim_is_the_provers_broken_evidence(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    from inspectorate.trace import load_run
    from inspectorate.verify._replay_run import ReplayPlan, replay_run

    run = load_run(RUN)
    phase = run.phases()[0].name
    claim = tmp_path / "claims" / phase / "claim.json"
    claim.parent.mkdir(parents=True)
    claim.write_text(json.dumps({"version": 1, "garbage": True}))
    for name in ("workload_labels.jsonl", "nvsmi.csv", "netdev.log", "provenance.json"):
        if (RUN / name).exists():
            (tmp_path / name).write_bytes((RUN / name).read_bytes())
    corpus = Path(__file__).parents[1] / "data" / "testbed_corpus.txt"
    found = replay_run(load_run(tmp_path), ReplayPlan(corpus, seed=1))
    assert list(found) == [phase]
    (f,) = found[phase]
    assert f.property == "training_replay" and f.decision == "inconsistent"
    assert "cannot be read" in f.evidence["reasons"][0]


def test_a_claim_whose_checkpoints_do_not_fit_is_inconsistent_not_a_crash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A readable claim whose replay refuses its files (an optimizer state of other
    shapes, a checkpoint of another model): the phase's finding, not exit 2 for the run."""
    pytest.importorskip("torch")
    from inspectorate.errors import InputError
    from inspectorate.trace import load_run
    from inspectorate.verify import _replay_run

    run = load_run(RUN)
    phase = run.phases()[0].name
    (tmp_path / "claims" / phase).mkdir(parents=True)
    (tmp_path / "claims" / phase / "claim.json").write_text("{}")
    for name in ("workload_labels.jsonl", "nvsmi.csv", "netdev.log", "provenance.json"):
        if (RUN / name).exists():
            (tmp_path / name).write_bytes((RUN / name).read_bytes())

    class Claim:
        checkpoints = [0, 1, 2]

    def refuse(*args: object, **kwargs: object) -> None:
        raise InputError("checkpoint ckpt_000001.pt: optimizer exp_avg of parameter 1 has shape (16, 16)")

    import inspectorate.replay as replay  # what replay_run imports when it runs

    monkeypatch.setattr(replay, "read_claim", lambda path: Claim())
    monkeypatch.setattr(replay, "replay_claim", refuse)
    corpus = Path(__file__).parents[1] / "data" / "testbed_corpus.txt"
    (f,) = _replay_run.replay_run(load_run(tmp_path), _replay_run.ReplayPlan(corpus, seed=1))[phase]
    assert f.property == "training_replay" and f.decision == "inconsistent"
    assert "does not replay" in f.evidence["reasons"][0] and "exp_avg" in f.evidence["reasons"][0]


def test_would_settle_names_the_missing_evidence() -> None:
    assert would_settle(finding("compute", 0.0, "consistent", basis=["sensor"])) is None
    no_sensor = would_settle(unverifiable("compute", ["sensor"]))
    assert no_sensor is not None and "capture" in no_sensor
    p3 = would_settle(unverifiable("p3_finetune", ["steps"]))
    assert p3 is not None and "steps.jsonl" in p3 and "--replay" in p3
    reason = "model config 'gru' unknown to the verifier: cannot re-run it"
    spot = would_settle(unverifiable("compute", ["spot_check"], reason=reason))
    assert spot is not None and "spot-check" in spot and reason in spot
