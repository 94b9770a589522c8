"""Eval re-computation: an eval claim's reported loss re-computed from the handed-over
weights on a random draw of the declared batches (the served-output check's analogue).

An eval phase hands over ``eval.json`` beside its weights file::

    {"format": "inspectorate.eval-claim", "version": 1, "weights": "weights.pt",
     "model_hash": "sha256:<16 hex>", "metric": "cross_entropy", "batches": "eval_batches.jsonl"}

and one line per evaluated batch::

    {"index": 0, "ids": [[token ids] per row], "score_from": k, "loss": 4.17, "tokens": n}

Row ``r`` predicts ``ids[r][1:]`` from ``ids[r][:-1]``; the loss is the mean cross
entropy (nats) over the predictions of positions ``score_from..`` of every row (an MLP
LM's window: ``score_from`` = its context; a recurrent LM's sequence: 1), and ``tokens``
counts them. The verifier re-computes the loss of a random draw of batches with its own
module and compares. The tolerance is measured, not assumed: the verifier computes each
drawn batch twice (at 1 and at 2 threads), and a batch
fails when the claimed loss is further from its own than ``TOL_FACTOR`` times the
largest such spread or the fp32 rounding bound of a mean over the batch's tokens,
whichever is larger.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F

from inspectorate.decisions import Decision
from inspectorate.errors import InputError

FORMAT = "inspectorate.eval-claim"
VERSION = 1
SAMPLE = 8  # batches re-computed per claim (the verifier's draw)
TOL_FACTOR = 50.0  # tolerance over the verifier's own measured spread
FP32_EPS = 2.0**-23
PROPERTY = "eval_recompute"


@dataclass(frozen=True)
class EvalBatch:
    index: int
    ids: tuple[tuple[int, ...], ...]
    score_from: int
    loss: float
    tokens: int


@dataclass
class EvalClaim:
    path: Path
    weights: Path
    model_hash: str
    batches: list[EvalBatch] = field(default_factory=list)

    @property
    def tokens(self) -> int:
        return sum(b.tokens for b in self.batches)


def read_eval_claim(path: Path | str) -> EvalClaim:
    """Parse ``eval.json`` and its batches file; any problem is an InputError naming it."""
    path = Path(path)
    try:
        head = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read the eval claim ({exc})", path) from None
    if not isinstance(head, dict) or head.get("format") != FORMAT or head.get("version") != VERSION:
        raise InputError(f"not an {FORMAT} v{VERSION} file", path)
    if head.get("metric") != "cross_entropy":
        raise InputError(f"unknown eval metric {head.get('metric')!r} (cross_entropy)", path)
    try:
        weights = path.parent / str(head["weights"])
        batches_path = path.parent / str(head["batches"])
        model_hash = str(head["model_hash"])
    except KeyError as exc:
        raise InputError(f"eval claim lacks {exc}", path) from None
    claim = EvalClaim(path, weights, model_hash)
    try:
        lines = batches_path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise InputError(f"cannot read the eval batches ({exc})", batches_path) from None
    for number, line in enumerate(lines, start=1):
        if line.strip():
            claim.batches.append(_batch(line, batches_path, number))
    if not claim.batches:
        raise InputError("eval claim holds no batches", batches_path)
    return claim


def _batch(line: str, path: Path, number: int) -> EvalBatch:
    try:
        obj = json.loads(line)
        ids = tuple(tuple(int(t) for t in row) for row in obj["ids"])
        batch = EvalBatch(
            int(obj["index"]), ids, int(obj["score_from"]), float(obj["loss"]), int(obj["tokens"])
        )
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"malformed eval batch ({exc})", path, number) from None
    lengths = {len(r) for r in ids}
    if (
        not ids
        or len(lengths) != 1
        or not 1 <= batch.score_from < lengths.pop()
        or not math.isfinite(batch.loss)
    ):
        raise InputError(
            "eval batch needs equal-length rows longer than score_from and a finite loss", path, number
        )
    return batch


@torch.no_grad()
def batch_loss(module: torch.nn.Module, batch: EvalBatch, rows_at_once: bool = True) -> float:
    """Mean cross entropy of ``batch`` under ``module`` (float64 reduction of fp32 logits)."""
    ids = torch.tensor(batch.ids, dtype=torch.long)
    chunks = [ids] if rows_at_once else list(ids.split(1))
    total, count = 0.0, 0
    for x in chunks:
        logits = module(x[:, :-1])[:, batch.score_from - 1 :].double()
        target = x[:, batch.score_from :]
        total += float(
            F.cross_entropy(logits.reshape(-1, logits.shape[-1]), target.reshape(-1), reduction="sum")
        )
        count += target.numel()
    return total / count


def check_eval(
    claim: EvalClaim, weights: Any, sample: int = SAMPLE, draw_seed: int | None = None
) -> dict[str, Any]:
    """Re-compute a draw of the claim's batches; the finding as a dict (property
    ``eval_recompute``): inconsistent when the weights are not the ones the claim names,
    the vocabulary does not fit, or any drawn batch's loss is off beyond tolerance."""
    from inspectorate.difr._anymodel import draw, weights_hash

    ref = weights_hash(weights)
    evidence: dict[str, Any] = {
        "n_params": int(weights.spec.n_params()),
        "model": weights.spec.to_dict(),
        "batches": len(claim.batches),
        "tokens": claim.tokens,
        "claimed_model_hash": claim.model_hash,
        "reference_model_hash": ref,
    }
    reasons = []
    if claim.model_hash != ref:
        reasons.append(f"the eval claim names model {claim.model_hash}, the handed-over weights are {ref}")
    if any(t >= weights.spec.vocab or t < 0 for b in claim.batches for row in b.ids for t in row):
        reasons.append("eval batches hold token ids outside the model's vocabulary")
    if reasons:
        return _result(Decision.INCONSISTENT, 1.0, reasons, evidence)
    chosen = [claim.batches[i] for i in draw(len(claim.batches), sample, draw_seed)]
    weights.module.eval()
    worst, rows = 0.0, []
    before = torch.get_num_threads()
    try:
        for b in chosen:
            torch.set_num_threads(1)
            ours = batch_loss(weights.module, b, rows_at_once=True)
            torch.set_num_threads(2)
            again = batch_loss(weights.module, b, rows_at_once=True)
            n = b.tokens
            tol = max(TOL_FACTOR * abs(ours - again), 8.0 * FP32_EPS * max(abs(ours), 1.0) * math.sqrt(n))
            off = abs(b.loss - ours)
            worst = max(worst, off / tol)
            rows.append(
                {
                    "index": b.index,
                    "claimed": b.loss,
                    "recomputed": ours,
                    "spread": abs(ours - again),
                    "tolerance": tol,
                }
            )
    finally:
        torch.set_num_threads(before)
    bad = [r for r in rows if abs(r["claimed"] - r["recomputed"]) > r["tolerance"]]
    evidence.update({"recomputed": len(rows), "worst_over_tolerance": worst, "per_batch": rows[:8]})
    if bad:
        reasons.append(
            f"{len(bad)} of {len(rows)} re-computed eval batches disagree with the claimed loss"
            f" (first: batch {bad[0]['index']}: claimed {bad[0]['claimed']:.6g}, re-computed {bad[0]['recomputed']:.6g})"
        )
        return _result(Decision.INCONSISTENT, 1.0, reasons, evidence)
    return _result(Decision.CONSISTENT, min(0.49, worst / 2), reasons, evidence)


def _result(decision: Decision, score: float, reasons: list[str], evidence: dict[str, Any]) -> dict[str, Any]:
    return {
        "property": PROPERTY,
        "decision": str(decision),
        "score": score,
        "grade": "sensor",
        "evidence": {"reasons": reasons, **evidence},
    }
