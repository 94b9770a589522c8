"""Claimed training runs replayed: whole, or by randomly drawn segments (Proof-of-Learning).

    from inspectorate.replay import read_claim, replay_claim
    result = replay_claim(read_claim("run/claim.json"), load_corpus("tiny.txt"), segments=[3])
    result.decision, result.to_dict()

Needs torch (``[testbed]``).

Names are imported lazily (PEP 562): the CLI mounts this package's commands
without importing torch; touching a name imports it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from inspectorate._lazy import lazy_exports

if TYPE_CHECKING:  # the lazy names, for type checkers and editors
    from inspectorate.capture._nonce import derive_seed as derive_seed
    from inspectorate.replay._claim import CheckpointRef as CheckpointRef
    from inspectorate.replay._claim import TrainingClaim as TrainingClaim
    from inspectorate.replay._claim import read_claim as read_claim
    from inspectorate.replay._claim import record_run as record_run
    from inspectorate.replay._code import FAMILY_MODULES as FAMILY_MODULES
    from inspectorate.replay._code import code_fingerprint as code_fingerprint
    from inspectorate.replay._finding import replay_finding as replay_finding
    from inspectorate.replay._replay import ReplayResult as ReplayResult
    from inspectorate.replay._replay import SegmentResult as SegmentResult
    from inspectorate.replay._replay import Tolerance as Tolerance
    from inspectorate.replay._replay import calibrate_tolerance as calibrate_tolerance
    from inspectorate.replay._replay import choose_segments as choose_segments
    from inspectorate.replay._replay import replay_claim as replay_claim
    from inspectorate.replay._train import TrainSpec as TrainSpec
    from inspectorate.replay._train import quick_train as quick_train


_EXPORTS = {
    "CheckpointRef": "_claim",
    "FAMILY_MODULES": "_code",
    "ReplayResult": "_replay",
    "SegmentResult": "_replay",
    "Tolerance": "_replay",
    "TrainSpec": "_train",
    "TrainingClaim": "_claim",
    "calibrate_tolerance": "_replay",
    "code_fingerprint": "_code",
    "derive_seed": "inspectorate.capture._nonce",
    "choose_segments": "_replay",
    "quick_train": "_train",
    "read_claim": "_claim",
    "record_run": "_claim",
    "replay_claim": "_replay",
    "replay_finding": "_finding",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
