"""Signed evidence in a run's verdict: the sensor's chain checked against its signed,
witnessed heads (``verify --head-log LOG --keyring K``; design in docs/signing.md).

Why it can only take certification away: a signature says where and when a head was
made, not that the records are true; the properties judge those. Tampering the log
proves (truncation, re-chaining, a replayed or split log, a key on two hosts) makes the
run inconsistent; evidence that cannot be proven (no witness, stream not closed) makes
it unverifiable under ``strict``.
"""

from __future__ import annotations

from pathlib import Path

from inspectorate.errors import InputError
from inspectorate.ledger import verify_signed
from inspectorate.verify._inspector import RunVerdict
from inspectorate.verify._registry import CONSISTENT, INCONSISTENT, UNVERIFIABLE

SENSOR_FILE = "sensor.jsonl"


def attach_signed(
    verdict: RunVerdict,
    log: Path,
    keyring: Path,
    *,
    challenge: str | None = None,
    state: Path | None = None,
    peers: list[Path] | None = None,
) -> RunVerdict:
    """Check the run's sensor stream against ``log`` and fold the answer into ``verdict``."""
    stream = Path(verdict.run) / SENSOR_FILE
    if not stream.is_file():
        raise InputError(f"--head-log needs the run's {SENSOR_FILE}", verdict.run)
    report = verify_signed(stream, log, keyring, challenge=challenge, state=state, peers=peers)
    verdict.signed = report.to_dict()
    if report.decision == CONSISTENT:
        return verdict
    verdict.reasons += report.reasons()
    if report.decision == INCONSISTENT:
        verdict.verdict, verdict.outcome = 0, INCONSISTENT
    elif verdict.policy == "strict":
        verdict.verdict = 0
        verdict.outcome = verdict.outcome if verdict.outcome == INCONSISTENT else UNVERIFIABLE
    return verdict
