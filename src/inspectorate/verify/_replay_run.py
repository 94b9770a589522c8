"""``verify RUN --replay --corpus FILE``: the verifier replays every claim the prover handed over.

Before this, settling a training claim took one ``replay`` command and one
``--recomputed PHASE=FILE`` per phase. Here the verifier walks ``RUN/claims/<phase>/claim.json``
for every labelled phase, replays segment 0 (the claimed start: without it P3 cannot be
settled) plus ``draws`` segments drawn at random, and hands the findings to the
Inspector, which binds each to its phase (``_recomputed.bind``) before it may settle
anything.

The draw is the verifier's: by default it comes from the operating system's entropy, so
a prover cannot know in advance which segments will be checked (Proof-of-Learning's
argument: a forger must then get every segment right). ``seed`` makes the draw
reproducible for tests and audits, and is reported with each finding.

A replayed claim is then bound to weights this host was seen writing: every checkpoint
it lists must appear in the sensor's checkpoint watcher stream (``sensor_ckpt.jsonl``)
during the phase (``_recomputed.observe``); a real run computed elsewhere and handed over
is inconsistent, and without the stream a replay settles nothing.

Needs torch (the ``[testbed]`` extra) through the replay package.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspectorate.errors import InputError
from inspectorate.trace import RunDir
from inspectorate.verify._recomputed import _finding
from inspectorate.verify._registry import Finding

CLAIMS_DIR = "claims"
CLAIM_FILE = "claim.json"


@dataclass(frozen=True)
class ReplayPlan:
    """What the verifier replays: its copy of the data, how many random segments beyond
    segment 0, the draw's seed (None: fresh entropy) and the code it replays with."""

    corpus: Path
    draws: int = 1
    seed: int | None = None
    code: str | None = None


def handed_over(run: RunDir) -> dict[str, Path]:
    """Phase name -> the claim file the prover handed over for it (phases without none)."""
    root = Path(run.path) / CLAIMS_DIR
    found = {}
    for phase in run.phases():
        path = root / phase.name / CLAIM_FILE
        if path.is_file():
            found[phase.name] = path
    return found


def segments_for(n_segments: int, draws: int, seed: int) -> list[int]:
    """Segment 0 and ``draws`` distinct others drawn with ``seed`` (all when there are fewer)."""
    from inspectorate.replay import choose_segments

    if n_segments <= 1:
        return [0] if n_segments == 1 else []
    others = [k + 1 for k in choose_segments(n_segments - 1, draws, seed)]
    return sorted({0, *others})


def replay_run(
    run: RunDir,
    plan: ReplayPlan,
    on_claim: Callable[[str], None] | None = None,
) -> dict[str, list[Finding]]:
    """Replay every handed-over claim of ``run`` under ``plan``; phase -> its finding.

    A claim that cannot be read is the prover's broken evidence: it becomes an
    inconsistent finding for that phase, not a crash of the verifier. A corpus that cannot
    be read is the verifier's own problem: InputError (exit 2)."""
    from inspectorate.models._corpus import load_corpus
    from inspectorate.replay import read_claim, replay_claim, replay_finding

    corpus = load_corpus(plan.corpus)
    seed = plan.seed if plan.seed is not None else secrets.randbits(63)
    out: dict[str, list[Finding]] = {}
    for phase, path in handed_over(run).items():
        try:
            claim = read_claim(path)
        except InputError as exc:
            out[phase] = [_unreadable(path, exc, "cannot be read")]
        else:
            n = len(claim.checkpoints) - 1
            chosen = segments_for(n, plan.draws, _phase_seed(seed, phase))
            try:  # a checkpoint that does not fit its claim is the prover's evidence, not a crash
                data = replay_finding(replay_claim(claim, corpus, chosen, code=plan.code))
            except InputError as exc:
                out[phase] = [_unreadable(path, exc, "does not replay")]
            else:
                data["evidence"]["draw_seed"] = seed
                out[phase] = [_finding(data, path)]
        if on_claim is not None:
            on_claim(phase)
    return out


def _phase_seed(seed: int, phase: str) -> int:
    """One draw per phase from the run's seed (phases must not share their segments)."""
    digest = hashlib.sha256(f"{seed}:{phase}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _unreadable(path: Path, exc: InputError, what: str) -> Finding:
    data: dict[str, Any] = {
        "property": "training_replay",
        "decision": "inconsistent",
        "score": 1.0,
        "evidence": {
            "reasons": [f"the handed-over claim {what}: {exc.reason}"],
            "claim_file": str(path),
        },
    }
    return _finding(data, path)
