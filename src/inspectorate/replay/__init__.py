"""Claimed training runs replayed: whole, or by randomly drawn segments (Proof-of-Learning).

    from inspectorate.replay import read_claim, replay_claim
    result = replay_claim(read_claim("run/claim.json"), load_corpus("tiny.txt"), segments=[3])
    result.decision, result.to_dict()

Needs torch (``[testbed]``).
"""

from inspectorate.replay._claim import CheckpointRef, TrainingClaim, checkpoint_steps, read_claim, record_run
from inspectorate.replay._finding import replay_finding
from inspectorate.replay._replay import (
    ReplayResult,
    SegmentResult,
    Tolerance,
    calibrate_tolerance,
    check_metric,
    choose_segments,
    replay_claim,
    replay_segment,
)
from inspectorate.replay._train import TrainSpec, evaluate, init_model, quick_train, train_steps

__all__ = [
    "CheckpointRef",
    "ReplayResult",
    "SegmentResult",
    "Tolerance",
    "TrainSpec",
    "TrainingClaim",
    "calibrate_tolerance",
    "check_metric",
    "checkpoint_steps",
    "choose_segments",
    "evaluate",
    "init_model",
    "quick_train",
    "read_claim",
    "record_run",
    "replay_claim",
    "replay_finding",
    "replay_segment",
    "train_steps",
]
