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
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

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
    95% interval (stratified by positive/honest; counts carry no interval)."""
    est = point(rows)
    pos = [r for r in rows if r.positive]
    neg = [r for r in rows if not r.positive]
    rng = random.Random(seed)
    draws: dict[str, list[float]] = {k: [] for k in est if k not in COUNTS}
    for _ in range(reps if rows else 0):
        sample = [rng.choice(pos) for _ in pos] + [rng.choice(neg) for _ in neg]
        for k, v in point(sample).items():
            if k in draws and v is not None:
                draws[k].append(v)
    out: dict[str, dict[str, Any]] = {}
    for k, v in est.items():
        if k in COUNTS or v is None:
            out[k] = {"value": v, "lo": None, "hi": None}
            continue
        d = sorted(draws[k])
        lo = d[int(0.025 * (len(d) - 1))] if d else None
        hi = d[int(math.ceil(0.975 * (len(d) - 1)))] if d else None
        out[k] = {
            "value": round(v, 4),
            "lo": None if lo is None else round(lo, 4),
            "hi": None if hi is None else round(hi, 4),
        }
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
