"""Thresholds and confidence calibration, and the small statistics they need (numpy only).

Where each default comes from (docs/verify.md has the measurements):

* **physics** — gradient all-reduces move ``dtype_bytes × N_trainable`` bytes per step, so
  model-size and frozen-parameter checks use exact byte ratios with a small headroom;
  6·N·D / 2·N·D FLOP accounting; one sync per optimizer step.
* **calibration** — quantities with no physical constant (the learning-rate level that
  separates fine-tuning from pretraining, FLOP/s per busy CPU core, the mapping from
  suspicion score to probability) are fitted by ``bench/properties_loho.py`` on honest
  and adversarial phases of the training hosts and tested on the held-out host. The
  defaults below are that bench's fit on a 4-host test-profile sweep (scale 2); pass a
  ``Calibration`` fitted on your own hosts to replace them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np


@dataclass(frozen=True)
class Calibration:
    """Every threshold a property uses, with where it comes from."""

    # physics: fewer than `min_syncs` claimed-size fp32 gradients' worth of traffic in a
    # phase is no data-parallel training (independent of step time).
    min_syncs: float = 3.0
    train_bytes_per_param: float = 16.0  # physics: fp32 weights + grads + Adam m and v
    infer_bytes_per_param: float = 4.0  # physics: fp32 weights (KV cache on top)
    # measured on honest test-profile runs (docs/verify.md): the workload tree's memory
    # above the run's lowest level moves this much with no model change (allocator
    # retention after a larger phase, runtime buffers); below it memory cannot tell.
    footprint_slack_b: float = 256 * 2**20
    idle_cores: float = 0.1  # measured: an honest idle tree uses ~0.01 cores (sleeping ranks)
    gap_cpu_s: float = 5.0  # CPU-seconds allowed between phases (model build, checkpoint load)
    # compute: sensor CPU-seconds over (spot-check CPU-s/token x claimed tokens) must lie
    # within [1/compute_low, compute_high]; set from honest runs (docs/verify.md).
    compute_high: float = 6.0
    compute_low: float = 3.0
    spot_check_s: float = 1.0  # CPU-seconds the verifier spends re-running each claimed work
    size_headroom: float = 1.10  # physics: all-reduced params may exceed claimed N by 10% (control tensors)
    frozen_deficit: float = 0.005  # physics: >0.5% of claimed params missing from the sync = frozen groups
    flop_tolerance: float = 1.25  # physics: 6ND convention vs attention/accounting differences
    traffic_ratio: float = 2.0  # physics: log bytes vs NIC/loopback bytes agree within 2x
    sync_per_step: float = 2.0  # physics: one gradient sync per optimizer step, within 2x
    token_ratio: float = 1.5  # windows vs step records tokens agree within 1.5x
    # calibration (bench/properties_loho.py): fine-tune lr level, CPU FLOP rate
    finetune_lr: float = 1.2e-4  # sweep fit: sqrt(max finetune lr x min pretrain peak lr)
    flops_per_busy_core: float | None = 1.49e9  # sweep fit: median 6ND/(busy cores x s), honest training
    gpu_peak_flops: float = 989e12  # H100 SXM dense BF16 (datasheet), for utilization x peak
    # isotonic map from phase suspicion to P(claim false): (score knots, probabilities)
    iso_x: tuple[float, ...] = (0.0, 0.344, 1.0)  # sweep fit (pooled isotonic, clipped to [0.02, 0.98])
    iso_y: tuple[float, ...] = (0.02, 0.02, 0.98)
    source: str = "defaults"
    extra: dict[str, Any] = field(default_factory=dict)

    def with_(self, **changes: Any) -> Calibration:
        return replace(self, **changes)

    def probability(self, score: float) -> float:
        """P(the claim is false | phase suspicion ``score``), from the isotonic table."""
        return float(np.interp(score, self.iso_x, self.iso_y))


DEFAULT = Calibration()


# ------------------------------------------------------------------------ statistics


def auroc(scores: Sequence[float], labels: Sequence[int]) -> float:
    """Area under the ROC curve (ties count one half); NaN when a class is absent."""
    s, y = np.asarray(scores, dtype=float), np.asarray(labels, dtype=int)
    pos, neg = s[y == 1], s[y == 0]
    if len(pos) == 0 or len(neg) == 0:
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


def isotonic(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Pool-adjacent-violators fit of a non-decreasing y(x); returns knots (x, fitted y)."""
    order = np.argsort(np.asarray(x, dtype=float), kind="stable")
    xs, ys = np.asarray(x, dtype=float)[order], np.asarray(y, dtype=float)[order]
    blocks: list[list[float]] = []  # [sum y, count, x min, x max]
    for xi, yi in zip(xs, ys):
        blocks.append([yi, 1.0, xi, xi])
        while len(blocks) > 1 and blocks[-2][0] / blocks[-2][1] >= blocks[-1][0] / blocks[-1][1]:
            s, c, lo, hi = blocks.pop()
            blocks[-1][0] += s
            blocks[-1][1] += c
            blocks[-1][3] = hi
    kx, ky = [], []
    for s, c, lo, hi in blocks:
        kx += [lo, hi]
        ky += [s / c, s / c]
    return np.asarray(kx), np.asarray(ky)


def fit_isotonic(scores: Sequence[float], labels: Sequence[int], floor: float = 0.02) -> tuple[tuple, tuple]:
    """Isotonic score->probability map, clipped to [floor, 1-floor] (n is small: never 0/1)."""
    kx, ky = isotonic(scores, labels)
    ky = np.clip(ky, floor, 1.0 - floor)
    return tuple(float(v) for v in kx), tuple(float(v) for v in ky)


def logistic_fit(x: np.ndarray, y: np.ndarray, l2: float = 1e-2, iters: int = 200) -> np.ndarray:
    """L2-regularised logistic regression by Newton's method; returns [bias, weights...]."""
    X = np.column_stack([np.ones(len(x)), np.asarray(x, dtype=float).reshape(len(x), -1)])
    w = np.zeros(X.shape[1])
    reg = l2 * np.eye(X.shape[1])
    reg[0, 0] = 0.0
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ w, -30, 30)))
        grad = X.T @ (p - y) + reg @ w
        hess = X.T @ (X * (p * (1 - p))[:, None]) + reg + 1e-9 * np.eye(X.shape[1])
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-9:
            break
    return w


def logistic_predict(w: np.ndarray, x: np.ndarray) -> np.ndarray:
    X = np.column_stack([np.ones(len(x)), np.asarray(x, dtype=float).reshape(len(x), -1)])
    return 1.0 / (1.0 + np.exp(-np.clip(X @ w, -30, 30)))


def reliability_table(probs: Sequence[float], labels: Sequence[int], bins: int = 5) -> list[dict[str, float]]:
    """Per probability bin: count, mean predicted probability, observed frequency."""
    p, y = np.asarray(probs, dtype=float), np.asarray(labels, dtype=float)
    edges = np.linspace(0.0, 1.0, bins + 1)
    rows = []
    for lo, hi in zip(edges[:-1], edges[1:]):
        mask = (p >= lo) & ((p < hi) if hi < 1.0 else (p <= hi))
        if mask.any():
            rows.append(
                {
                    "bin": f"[{lo:.1f},{hi:.1f}]",
                    "n": int(mask.sum()),
                    "mean_predicted": float(p[mask].mean()),
                    "observed": float(y[mask].mean()),
                }
            )
    return rows


def separating_threshold(low: Sequence[float], high: Sequence[float]) -> float | None:
    """Geometric midpoint between the largest of ``low`` and the smallest of ``high``
    (positive values): the threshold a held-out protocol learns from its training hosts."""
    lo = [v for v in low if v is not None and v > 0]
    hi = [v for v in high if v is not None and v > 0]
    if not lo or not hi:
        return None
    return (
        float(np.sqrt(max(lo) * min(hi)))
        if max(lo) < min(hi)
        else float(np.sqrt(np.median(lo) * np.median(hi)))
    )
