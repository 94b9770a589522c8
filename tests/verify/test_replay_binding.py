"""A replay binds to a phase only through weights the checkpoint watcher saw written
during it (verify/_recomputed.observe, bind)."""

from __future__ import annotations

import pytest

from inspectorate.capture._ckpt_watch import WatchLog
from inspectorate.verify._evidence import Claim
from inspectorate.verify._recomputed import PhaseWatch, bind, observe
from inspectorate.verify._registry import Finding

CKPTS = [
    {"step": 0, "file": "ckpt_000000.pt", "weights_sha256": "w0"},
    {"step": 4, "file": "ckpt_000004.pt", "weights_sha256": "w4"},
    {"step": 9, "file": "ckpt_000009.pt", "weights_sha256": "w9"},
]


def _seen(*writes: tuple[float, str, str], problems: list[str] | None = None) -> WatchLog:
    rows = [{"kind": "written", "t": t, "path": path, "weights_sha256": w} for t, path, w in writes]
    return WatchLog(rows, problems or [], True)


def _honest() -> WatchLog:
    return _seen(
        *((100.0 + 10 * i, f"claims/p/{c['file']}", c["weights_sha256"]) for i, c in enumerate(CKPTS))
    )


def _watch(log: WatchLog | None) -> PhaseWatch:
    return PhaseWatch("p", 95.0, 140.0, log)


def _replay() -> Finding:
    claim = {
        "n_params": 1000,
        "start": "seed_init",
        "start_checked": True,
        "final_weights_sha256": "w9",
        "tokens": 4096,
        "checkpoints": CKPTS,
    }
    return Finding("training_replay", 0.1, "consistent", {"claim": claim}, basis=("replay",))


CLAIM = Claim(label="pretrain:tiny", activity="pretrain", op="training", size="tiny", n_params=1000)


def test_weights_seen_written_in_the_phase_bind_the_replay():
    found = bind(_replay(), CLAIM, 4096, set(), watch=_watch(_honest()))
    assert found.decision == "consistent"
    assert found.evidence["settles"] == ["p1_op_type", "p2_model_size", "p3_finetune"]
    assert found.evidence["observed"] == {
        "bound": True,
        "problems": [],
        "checkpoints_seen": 3,
        "checkpoints": 3,
    }


@pytest.mark.parametrize(
    ("log", "needle"),
    [
        (_seen(), "3 of 3 claimed checkpoints were never seen written on this host"),
        (
            _seen((100.0, "claims/p/ckpt_000000.pt", "w0"), (110.0, "elsewhere/a.pt", "w4")),
            "1 of 3 claimed checkpoints were never seen written",
        ),
        (
            _seen(*((10.0 + i, f"claims/p/{c['file']}", c["weights_sha256"]) for i, c in enumerate(CKPTS))),
            "3 of 3 claimed checkpoints were seen written only outside the phase",
        ),
        (
            _seen((120.0, "a", "w0"), (110.0, "b", "w4"), (130.0, "c", "w9")),
            "seen written out of step order",
        ),
        (
            _seen(
                (100.0, "claims/p/a", "w0"),
                (110.0, "claims/p/b", "w4"),
                (120.0, "claims/p/c", "w9"),
                (125.0, "claims/p/true.pt", "wX"),  # the phase's own weights, not in the claim
            ),
            "1 other weight files written to claims/p/ during the phase",
        ),
        (_seen(problems=["sensor_ckpt.jsonl: hash chain broken at record 3"]), "hash chain broken"),
    ],
)
def test_weights_not_seen_in_the_phase_make_the_replay_inconsistent(log, needle):
    found = bind(_replay(), CLAIM, 4096, set(), watch=_watch(log))
    assert found.decision == "inconsistent" and found.score == 1.0
    assert any(needle in b for b in found.evidence["binding"]), found.evidence["binding"]


def test_without_a_watcher_stream_a_replay_settles_nothing():
    found = bind(_replay(), CLAIM, 4096, set(), watch=_watch(None))
    assert found.decision == "consistent" and found.evidence["settles"] == []
    assert "cannot be tied to weights this host wrote" in found.evidence["observed"]["reason"]


def test_a_claim_without_checkpoint_fingerprints_cannot_bind():
    rec = _replay()
    rec.evidence["claim"].pop("checkpoints")
    assert observe(rec.evidence["claim"], _watch(_honest()))["problems"] == [
        "the replayed claim lists no checkpoint fingerprints to bind"
    ]
