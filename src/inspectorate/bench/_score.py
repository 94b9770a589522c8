"""Scoring: detection counts, honest error rates, AUROC and TPR at fixed FPR, each with a
seeded bootstrap 95% interval.

Conventions (docs/bench.md): a case is *positive* when its truth is ``inconsistent`` or
``violation``. A positive is *caught* when the decision says so, *missed* when the
decision is the honest one, *abstained* when ``unverifiable`` or when the entry failed on
it (crash, hang, malformed output: ``error``, also counted under ``failed``). Honest cases
give the false-positive rate (flagged honest / honest) and the abstention rate. AUROC
and TPR-at-FPR rank the scores (a failed case scores 0.5); TPR at FPR x is the share of
positives scoring strictly above the smallest threshold that keeps the honest flag rate
at or under x (with fewer than 1/x honest cases this is "above every honest score").
Intervals resample cases within the positive and honest groups (stratified), 1000 times
by default, from ``seed``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from inspectorate.bench._case import ERROR, UNVERIFIABLE, get_track

FPRS = (0.01, 0.001)


@dataclass(frozen=True)
class Scored:
    """One case's outcome joined with its truth (host side only)."""

    id: str
    track: str
    family: str
    host: str | None
    positive: bool
    decision: str
    score: float
    seconds: float
    tokens: int = 0
    dollars: float = 0.0

    @property
    def flagged(self) -> bool:
        return self.decision == get_track(self.track).positive

    @property
    def abstained(self) -> bool:
        return self.decision in (UNVERIFIABLE, ERROR)


def auroc(pos: Sequence[float], neg: Sequence[float]) -> float | None:
    """Mann-Whitney AUROC (ties count half); None without both classes."""
    if not pos or not neg:
        return None
    wins = 0.0
    for p in pos:
        for n in neg:
            wins += 1.0 if p > n else 0.5 if p == n else 0.0
    return wins / (len(pos) * len(neg))


def tpr_at_fpr(pos: Sequence[float], neg: Sequence[float], fpr: float) -> float | None:
    if not pos or not neg:
        return None
    ranked = sorted(neg, reverse=True)
    allowed = math.floor(fpr * len(neg))  # honest cases that may score above the threshold
    threshold = ranked[allowed] if allowed < len(ranked) else -math.inf
    return sum(1 for p in pos if p > threshold) / len(pos)


def point(rows: Sequence[Scored]) -> dict[str, float | None]:
    """Every figure for ``rows`` (one track, one family or one host)."""
    pos = [r for r in rows if r.positive]
    neg = [r for r in rows if not r.positive]
    out: dict[str, float | None] = {
        "n": float(len(rows)),
        "n_positive": float(len(pos)),
        "n_honest": float(len(neg)),
        "caught": _rate(pos, lambda r: r.flagged),
        "missed": _rate(pos, lambda r: not r.flagged and not r.abstained),
        "abstained": _rate(pos, lambda r: r.abstained),
        "honest_fpr": _rate(neg, lambda r: r.flagged),
        "honest_abstained": _rate(neg, lambda r: r.abstained),
        "failed": _rate(list(rows), lambda r: r.decision == ERROR),
        "auroc": auroc([r.score for r in pos], [r.score for r in neg]),
    }
    for fpr in FPRS:
        out[f"tpr_at_fpr_{fpr:g}"] = tpr_at_fpr([r.score for r in pos], [r.score for r in neg], fpr)
    return out


def _rate(rows: Sequence[Scored], pred: Callable[[Scored], bool]) -> float | None:
    return sum(1 for r in rows if pred(r)) / len(rows) if rows else None


COUNTS = ("n", "n_positive", "n_honest")


def with_intervals(rows: Sequence[Scored], seed: int = 0, reps: int = 1000) -> dict[str, dict[str, Any]]:
    """``{metric: {"value", "lo", "hi"}}``: the point figure and its percentile bootstrap
    95% interval (stratified by positive/honest; counts carry no interval). The draws are
    vectorised (numpy): rates are means over resampled indices, AUROC is the count-weighted
    pairwise comparison matrix, TPR-at-FPR sorts each draw's honest scores."""
    est = point(rows)
    pos = [r for r in rows if r.positive]
    neg = [r for r in rows if not r.positive]
    draws = _draws(pos, neg, seed, reps) if rows and reps > 0 else {}
    out: dict[str, dict[str, Any]] = {}
    for k, v in est.items():
        d = draws.get(k)
        if k in COUNTS or v is None or d is None or not len(d):
            out[k] = {"value": v if k in COUNTS or v is None else round(v, 4), "lo": None, "hi": None}
            continue
        lo, hi = np.percentile(d, [2.5, 97.5], method="nearest")
        out[k] = {"value": round(v, 4), "lo": round(float(lo), 4), "hi": round(float(hi), 4)}
    return out


def _draws(pos: Sequence[Scored], neg: Sequence[Scored], seed: int, reps: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ip = rng.integers(0, len(pos), size=(reps, len(pos))) if pos else None
    ineg = rng.integers(0, len(neg), size=(reps, len(neg))) if neg else None
    out: dict[str, np.ndarray] = {}

    def rate(
        rows: Sequence[Scored], idx: np.ndarray | None, pred: Callable[[Scored], bool]
    ) -> np.ndarray | None:
        if idx is None:
            return None
        return np.array([pred(r) for r in rows], dtype=float)[idx].mean(axis=1)

    for key, rows, idx, pred in (
        ("caught", pos, ip, lambda r: r.flagged),
        ("missed", pos, ip, lambda r: not r.flagged and not r.abstained),
        ("abstained", pos, ip, lambda r: r.abstained),
        ("honest_fpr", neg, ineg, lambda r: r.flagged),
        ("honest_abstained", neg, ineg, lambda r: r.abstained),
    ):
        got = rate(rows, idx, pred)
        if got is not None:
            out[key] = got
    if ip is not None or ineg is not None:
        fails = [float(r.decision == ERROR) for r in list(pos) + list(neg)]
        parts = []
        if ip is not None:
            parts.append(np.array(fails[: len(pos)])[ip])
        if ineg is not None:
            parts.append(np.array(fails[len(pos) :])[ineg])
        out["failed"] = np.concatenate(parts, axis=1).mean(axis=1)
    if ip is None or ineg is None:
        return out
    ps = np.array([r.score for r in pos])
    ns = np.array([r.score for r in neg])
    cmp = (ps[:, None] > ns[None, :]) + 0.5 * (ps[:, None] == ns[None, :])
    cp = np.stack([np.bincount(row, minlength=len(pos)) for row in ip]).astype(float)
    cn = np.stack([np.bincount(row, minlength=len(neg)) for row in ineg]).astype(float)
    out["auroc"] = np.einsum("ri,ij,rj->r", cp, cmp, cn) / (len(pos) * len(neg))
    ranked = -np.sort(-ns[ineg], axis=1)  # each draw's honest scores, highest first
    drawn = ps[ip]
    for fpr in FPRS:
        allowed = math.floor(fpr * len(neg))
        thr = ranked[:, allowed] if allowed < len(neg) else np.full(reps, -np.inf)
        out[f"tpr_at_fpr_{fpr:g}"] = (drawn > thr[:, None]).mean(axis=1)
    return out


def cost(rows: Sequence[Scored]) -> dict[str, float]:
    n = max(len(rows), 1)
    secs = sorted(r.seconds for r in rows)
    return {
        "tokens_per_verdict": round(sum(r.tokens for r in rows) / n, 2),
        "dollars_per_verdict": round(sum(r.dollars for r in rows) / n, 6),
        "dollars_total": round(sum(r.dollars for r in rows), 6),
        "seconds_per_verdict": round(sum(secs) / n, 4),
        "seconds_p95": round(secs[int(0.95 * (len(secs) - 1))], 4) if secs else 0.0,
        "seconds_total": round(sum(secs), 3),
    }
