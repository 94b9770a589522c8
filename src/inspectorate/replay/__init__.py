"""Claimed training runs replayed: whole, or by randomly drawn segments (Proof-of-Learning).

    from inspectorate.replay import read_claim, replay_claim
    result = replay_claim(read_claim("run/claim.json"), load_corpus("tiny.txt"), segments=[3])
    result.decision, result.to_dict()

Needs torch (``[testbed]``).

Names are imported lazily (PEP 562): the CLI mounts this package's commands
without importing torch; touching a name imports it.
"""

from __future__ import annotations

from inspectorate._lazy import lazy_exports

_EXPORTS = {
    "CheckpointRef": "_claim",
    "ReplayResult": "_replay",
    "SegmentResult": "_replay",
    "Tolerance": "_replay",
    "TrainSpec": "_train",
    "TrainingClaim": "_claim",
    "calibrate_tolerance": "_replay",
    "check_metric": "_replay",
    "checkpoint_steps": "_claim",
    "code_fingerprint": "_code",
    "derive_seed": "inspectorate.capture._nonce",
    "choose_segments": "_replay",
    "evaluate": "_train",
    "init_model": "_train",
    "quick_train": "_train",
    "read_claim": "_claim",
    "record_run": "_claim",
    "replay_claim": "_replay",
    "replay_finding": "_finding",
    "replay_segment": "_replay",
    "train_steps": "_train",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
