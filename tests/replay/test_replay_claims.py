"""Replay of claimed training: honest runs agree, each competent forgery is caught."""

from __future__ import annotations

import json
import shutil

import pytest

from inspectorate.errors import InputError
from inspectorate.replay import Tolerance, choose_segments, read_claim, replay_claim, replay_finding
from inspectorate.replay._attacks import (
    checkpoint_swapped,
    data_substituted,
    metric_inflated,
    state_crafted,
    steps_skipped,
)


def test_claim_round_trip(honest):
    again = read_claim(honest.base / "claim.json")
    assert again.to_dict() == honest.to_dict()
    assert [c.step for c in again.checkpoints] == [0, 10, 20, 30, 40]


def test_honest_full_replay_agrees_exactly(honest, corpus):
    result = replay_claim(read_claim(honest.base / "claim.json"), corpus)
    assert result.decision == "consistent" and result.exit_code == 0, result.reasons
    assert len(result.segments) == 4 and all(s.exact and s.distance == 0.0 for s in result.segments)
    assert result.metric["difference"] == 0.0
    finding = replay_finding(result)
    assert finding["decision"] == "consistent" and finding["evidence"]["coverage"] == 1.0


def test_metric_better_than_reached(honest, corpus, tmp_path):
    forged = metric_inflated(honest, tmp_path / "m", delta=0.01)
    result = replay_claim(forged, corpus, segments=[])  # no training replayed: one evaluation
    assert result.decision == "inconsistent" and "final checkpoint scores" in result.reasons[-1]


def test_checkpoint_swapped_caught_by_the_segments_that_touch_it(honest, donor, corpus, tmp_path):
    forged = checkpoint_swapped(honest, donor, 2, tmp_path / "s")
    assert replay_claim(forged, corpus, segments=[1]).decision == "inconsistent"  # 1 -> swapped 2
    assert replay_claim(forged, corpus, segments=[2]).decision == "inconsistent"  # swapped 2 -> 3
    assert replay_claim(forged, corpus, segments=[0]).decision == "consistent"  # does not touch it
    result = replay_claim(forged, corpus)
    assert [s.segment for s in result.segments if not s.agree] == [1, 2]
    assert replay_finding(result)["decision"] == "inconsistent"


def test_steps_skipped(spec, corpus, tmp_path):
    forged = steps_skipped(spec, corpus, tmp_path / "k", segment=3, keep=0.5)
    result = replay_claim(forged, corpus)
    assert [s.segment for s in result.segments if not s.agree] == [3]
    assert result.segments[3].distance > 0.1


def test_data_substituted_caught_by_any_segment(spec, corpus, tmp_path):
    forged = data_substituted(spec, corpus, tmp_path / "d")
    for k in range(4):
        assert replay_claim(forged, corpus, segments=[k]).decision == "inconsistent"


def test_tampered_file_without_updating_fingerprint(honest, donor, corpus, tmp_path):
    forged = metric_inflated(honest, tmp_path / "t", delta=0.0)
    shutil.copyfile(donor.path_of(donor.checkpoints[2]), forged.path_of(forged.checkpoints[2]))
    result = replay_claim(forged, corpus, segments=[1])
    assert result.decision == "inconsistent" and "file fingerprint" in result.reasons[0]


def test_wrong_initialisation_is_caught(honest, donor, corpus, tmp_path):
    forged = checkpoint_swapped(honest, donor, 0, tmp_path / "i")
    result = replay_claim(forged, corpus, segments=[0])
    assert any("initialisation" in r for r in result.reasons)


def test_other_data_on_the_verifier_side_is_indeterminate(honest, tmp_path):
    from inspectorate.models._corpus import load_corpus

    text = (honest.base / "claim.json").read_text()
    other = tmp_path / "other.txt"
    other.write_text("the quick brown fox jumps over the lazy dog\n" * 60)
    result = replay_claim(read_claim(honest.base / "claim.json"), load_corpus(other))
    assert result.decision == "unverifiable" and result.exit_code == 1
    assert replay_finding(result)["decision"] == "unverifiable" and replay_finding(result)["score"] == 0.0
    assert json.loads(text)["data"]["fingerprint"].startswith("sha256:")


def test_segment_choice_and_bad_claims(honest, corpus, tmp_path):
    picks = choose_segments(10, 3, seed=5)
    assert len(set(picks)) == 3 and picks == choose_segments(10, 3, seed=5)
    with pytest.raises(InputError, match="segments must be"):
        replay_claim(honest, corpus, segments=[9])
    bad = json.loads((honest.base / "claim.json").read_text())
    bad["checkpoints"] = bad["checkpoints"][1:]
    (tmp_path / "claim.json").write_text(json.dumps(bad))
    with pytest.raises(InputError, match="step 0"):
        read_claim(tmp_path / "claim.json")
    (tmp_path / "claim.json").write_text("{")
    with pytest.raises(InputError):
        read_claim(tmp_path / "claim.json")


def test_tolerance_round_trip(tmp_path):
    tol = Tolerance(0.01, 0.001, {"threads": [1, 2]})
    assert Tolerance.load(tol.save(tmp_path / "t.json")) == tol


def test_a_crafted_optimizer_state_is_caught_by_the_segment_that_should_have_made_it(
    honest, corpus, tmp_path
):
    """The weights alone do not chain segments: an optimizer state rewritten at the start
    of the last segment carries its claimed steps further than the run's own optimizer,
    and that segment replays exactly from it. The segment before ends on the honest
    state, not the crafted one."""
    forged = state_crafted(honest, corpus, tmp_path / "c")
    last = len(forged.checkpoints) - 2
    assert replay_claim(forged, corpus, segments=[last]).decision == "consistent"  # exact from the craft
    result = replay_claim(forged, corpus, segments=[last - 1])
    assert result.decision == "inconsistent", result.reasons
    seg = result.segments[0]
    assert seg.exact and seg.state_distance is not None and seg.state_distance > 0.5  # tolerance 1e-2
    assert "optimizer state lands" in result.reasons[0]
    # the honest run's states chain: every segment's replayed state is its checkpoint's
    honest_result = replay_claim(honest, corpus)
    assert all(s.state_distance == 0.0 for s in honest_result.segments[:-1]), honest_result.segments
