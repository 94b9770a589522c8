"""Verify a serving log against a reference checkpoint: Token- and Activation-DiFR.

Decision: ``inconsistent`` when the log claims another model hash or vocabulary, or any
sequence's Token-DiFR score (mean Gumbel-margin shortfall) or Activation-DiFR score
(mean relative projection distance) exceeds its calibrated threshold; ``unverifiable``
when neither test can run (no declared sampling seed under temperature > 0 and no
projections): a verifier does not pass what it cannot re-compute; else ``consistent``.
Without a calibration file the verifier calibrates itself on the reference, re-serving
the log's own prompts honestly under thread / batch / composition variants.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from inspectorate.decisions import Decision
from inspectorate.difr._batchlog import is_batch_logged
from inspectorate.difr._calibrate import Calibration, HonestVariant, Thresholds, calibrate, check_compatible
from inspectorate.difr._log import ServingLog
from inspectorate.difr._score import SequenceScore, score_log
from inspectorate.difr._serve import ServeOptions
from inspectorate.difr._ties import TieCalibration, check_ties, is_deterministic, nonce_seed
from inspectorate.errors import InputError
from inspectorate.models._checkpoint import Checkpoint

CONSISTENT, INCONSISTENT, UNVERIFIABLE = Decision.CONSISTENT, Decision.INCONSISTENT, Decision.UNVERIFIABLE
INDETERMINATE = UNVERIFIABLE  # the old name (older reports wrote "indeterminate")


@dataclass
class DifrReport:
    decision: str
    reasons: list[str]
    claimed_hash: str
    reference_hash: str
    thresholds: Thresholds | None
    sequences: list[SequenceScore]
    flagged_token: list[int] = field(default_factory=list)
    flagged_activation: list[int] = field(default_factory=list)
    covert: dict[str, float] = field(default_factory=dict)
    calibration: str = "self"
    ties: dict[str, Any] = field(default_factory=dict)  # the tie check (``_ties.py``), when run

    @property
    def exit_code(self) -> int:
        return 0 if self.decision == CONSISTENT else 1

    def to_dict(self) -> dict[str, Any]:
        seqs = self.sequences
        tok = [s.token_score for s in seqs if s.token_score is not None]
        act = [s.activation_score for s in seqs if s.activation_score is not None]
        mism = [s.mismatch.mean() for s in seqs if s.mismatch is not None]
        th = self.thresholds
        return {
            "decision": self.decision,
            "reasons": self.reasons,
            "claimed_model_hash": self.claimed_hash,
            "reference_model_hash": self.reference_hash,
            "sequences": len(seqs),
            "tokens": int(sum(s.n_tokens for s in seqs)),
            "token_difr": None
            if not tok
            else {
                "threshold": th.token if th else None,
                "max_score": max(tok),
                "exact_match_rate": 1.0 - float(np.mean(mism)),
                "flagged": self.flagged_token,
            },
            "activation_difr": None
            if not act
            else {
                "threshold": th.activation if th else None,
                "max_score": max(act),
                "flagged": self.flagged_activation,
            },
            "log_fpr": th.log_fpr if th else None,
            "per_sequence_fpr": th.per_sequence_fpr if th else None,
            "threshold_basis": th.basis if th else None,
            "covert_channel": self.covert,
            "calibration": self.calibration,
            "ties": self.ties or None,
            "per_sequence": [s.summary() for s in seqs],
        }


def verify_log(
    log: ServingLog,
    reference: Checkpoint,
    calibration: Calibration | None = None,
    log_fpr: float = 1e-3,
    variants: list[HonestVariant] | None = None,
    ties: TieCalibration | None = None,
    nonce: str | None = None,
    schedule: tuple[int, int] | None = None,
    request: Sequence[Sequence[int]] | None = None,
) -> DifrReport:
    """Re-compute every sequence with ``reference`` and judge the log (see module doc).

    With ``ties`` (a tie calibration of the declared precision), or when the log declares
    deterministic decoding, every deviation from the re-computation is also judged
    against honest numerics (``_ties.check_ties``) and the covert capacity the log
    leaves is reported. With ``nonce`` the declared sampling seed must derive from it. A
    batch-logged log (``_batchlog.py``) is replayed batch by batch; ``schedule`` is the
    (max batch, threads) the verifier's request fixed (None: the choice is counted as
    covert capacity). ``request``: the prompts the verifier sent, in order; the log must
    serve request ``i`` as sequence ``i`` (the index names its noise stream and its place
    in the canonical schedule, so a renumbering would be a choice)."""
    header, model = log.header, reference.model
    reasons = _identity_reasons(log, reference)
    if request is not None:
        reasons += _request_reasons(log, request)
    if nonce is not None and header.sampling.seed != nonce_seed(nonce):
        reasons.append("the declared sampling seed does not derive from the verifier's nonce")
    if reasons and any("vocabulary" in r for r in reasons):
        return DifrReport(INCONSISTENT, reasons, header.model_hash, reference.model_hash, None, [])
    lengths = {len(s.tokens) for s in log.sequences}
    if header.projection is not None and header.projection.dim > model.config.n_embd:
        raise InputError(f"projection dim {header.projection.dim} exceeds the reference width")
    scores = score_log(model, log)
    if not any(s.shortfall is not None or s.act_distance is not None for s in scores):
        reasons.append("no sampling seed declared and no projections: nothing can be re-computed")
        return DifrReport(UNVERIFIABLE, reasons, header.model_hash, reference.model_hash, None, scores)
    source = "file" if calibration is not None else "self"
    calibration = calibration or _self_calibrate(log, reference, lengths, variants)
    check_compatible(calibration, header, lengths)
    th = calibration.thresholds(len(log.sequences), log_fpr)
    flag_t = [s.index for s in scores if th.token is not None and (s.token_score or 0.0) > th.token]
    flag_a = [
        s.index for s in scores if th.activation is not None and (s.activation_score or 0.0) > th.activation
    ]
    tie_report = None
    seeded = header.sampling.seed is not None or header.sampling.temperature == 0
    exact = is_deterministic(log) or is_batch_logged(log)
    if exact and not seeded:
        reasons.append(f"{header.server.get('decode')} decoding declared without a sampling seed")
    elif ties is not None or exact:
        tie_report = check_ties(model, log, ties, log_fpr, schedule=schedule)
        reasons.extend(tie_report.reasons)
    if flag_t:
        reasons.append(f"{len(flag_t)} sequence(s) exceed the Token-DiFR threshold {th.token:.3g}")
    if flag_a:
        reasons.append(f"{len(flag_a)} sequence(s) exceed the Activation-DiFR threshold {th.activation:.3g}")
    decision = INCONSISTENT if reasons else CONSISTENT
    report = DifrReport(
        decision, reasons, header.model_hash, reference.model_hash, th, scores, flag_t, flag_a
    )
    report.covert, report.calibration = calibration.covert_bits(th), source
    if tie_report is not None:
        report.ties = tie_report.to_dict()
    return report


def _request_reasons(log: ServingLog, request: Sequence[Sequence[int]]) -> list[str]:
    served = {s.index: tuple(s.prompt) for s in log.sequences}
    want = {i: tuple(p) for i, p in enumerate(request)}
    if served == want:
        return []
    wrong = sorted(i for i in served.keys() | want.keys() if served.get(i) != want.get(i))
    return [
        f"the log's prompts are not the request's in order ({len(wrong)} differ, first: sequence {wrong[0]})"
    ]


def _identity_reasons(log: ServingLog, reference: Checkpoint) -> list[str]:
    header, reasons = log.header, []
    if header.model_hash != reference.model_hash:
        reasons.append(f"log claims model {header.model_hash}, the reference is {reference.model_hash}")
    if header.vocab != reference.vocab or header.n_ids != reference.config.vocab_size:
        reasons.append("log vocabulary differs from the reference's")
    return reasons


def _self_calibrate(
    log: ServingLog, reference: Checkpoint, lengths: set[int], variants: list[HonestVariant] | None
) -> Calibration:
    if len(lengths) != 1:
        raise InputError("self-calibration needs sequences of one length; pass --calibration")
    header = log.header
    options = ServeOptions(
        sampling=header.sampling,
        max_new=next(iter(lengths)),
        precision=header.precision,
        projection=header.projection,
    )
    prompts = [list(s.prompt) for s in log.sequences]
    return calibrate(reference.model, prompts, options, variants, vocab=reference.vocab)
