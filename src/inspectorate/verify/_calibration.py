"""Thresholds and confidence calibration, and the statistics they need (scikit-learn, lazily).

Where each default comes from (docs/verify.md has the measurements):

* **physics** — gradient all-reduces move ``dtype_bytes × N_trainable`` bytes per step, so
  model-size and frozen-parameter checks use exact byte ratios with a small headroom;
  6·N·D / 2·N·D FLOP accounting; one sync per optimizer step.
* **calibration** — quantities with no physical constant (the learning-rate level that
  separates fine-tuning from pretraining, the compute tolerances, the idle CPU level, the
  mapping from suspicion score to probability) are fitted by ``bench/properties_loho.py``
  leave-one-host-out: each fold fits on the other hosts only, and the defaults below are
  the median of the fold fits (the isotonic map: the folds' maps averaged on a grid) of a
  4-host test-profile sweep, naive and competent variants. Never a fit on the phases it
  scores. Pass a ``Calibration`` fitted on your own hosts to replace them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from inspectorate.errors import import_optional


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
    # physics: resident memory is not exact bytes (activations, KV cache, allocator): a
    # footprint bound within this factor of the claimed size counts as verified
    footprint_headroom: float = 1.5
    idle_cores: float = 0.05  # LOHO median: 3x the honest idle tree (~0.01-0.02 cores)
    # an idle tree sleeps: its share of the phase with a task runnable but waiting for a
    # CPU (PSI ``some``) stays near 0 on a quiet host and at one scheduling delay per
    # wake-up on a busy one (0.11-0.14 for a 100 Hz heartbeat at load 3-12 on 2 CPUs);
    # a starved compute loop waits 0.6-0.9. At this share a tree that hid work got at
    # most share x (CPUs / load) cores, no more than ``idle_cores`` under load >= 20
    idle_wait_share: float = 0.5
    gap_cpu_s: float = 5.0  # CPU-seconds allowed between phases (model build, checkpoint load)
    # compute: sensor CPU-seconds over (spot-check CPU-s/token x claimed tokens) must lie
    # within [1/compute_low, compute_high]: LOHO median of 2x the honest extremes
    # (honest ratios 0.7-3.3 on the sweep, spot-check noise ~30%; docs/verify.md).
    compute_high: float = 5.06
    compute_low: float = 2.12
    spot_check_s: float = 1.0  # CPU-seconds the verifier spends re-running each claimed work
    size_headroom: float = 1.10  # physics: all-reduced params may exceed claimed N by 10% (control tensors)
    frozen_deficit: float = 0.005  # physics: >0.5% of claimed params missing from the sync = frozen groups
    flop_tolerance: float = 1.25  # physics: 6ND convention vs attention/accounting differences
    traffic_ratio: float = 2.0  # physics: log bytes vs NIC/loopback bytes agree within 2x
    sync_per_step: float = 2.0  # physics: one gradient sync per optimizer step, within 2x
    token_ratio: float = 1.5  # windows vs step records tokens agree within 1.5x
    # calibration (bench/properties_loho.py): fine-tune lr level, CPU FLOP rate
    finetune_lr: float = 1.55e-4  # LOHO median of sqrt(max finetune lr x min pretrain peak lr)
    flops_per_busy_core: float | None = (
        1.49e9  # older pooled fit; the telemetry FLOP estimate is reported, decides nothing
    )
    gpu_peak_flops: float = 989e12  # H100 SXM dense BF16 (datasheet), for utilization x peak
    # isotonic map from phase suspicion to P(claim false): the LOHO folds' maps (each
    # clipped to [0.02, 0.98]) averaged on a 0.05 grid
    iso_x: tuple[float, ...] = tuple(i / 20 for i in range(21))
    iso_y: tuple[float, ...] = (
        *(0.02,) * 3,
        0.023,
        0.063,
        0.129,
        *(0.38,) * 4,
        0.448,
        0.591,
        0.734,
        0.877,
        0.949,
        0.974,
        *(0.98,) * 5,
    )
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
    """Area under the ROC curve (scikit-learn's ``roc_auc_score``); NaN when a class is absent."""
    roc_auc_score = import_optional("sklearn.metrics").roc_auc_score

    y = np.asarray(labels, dtype=int)
    if len(set(y.tolist())) < 2:
        return float("nan")
    return float(roc_auc_score(y, np.asarray(scores, dtype=float)))


def isotonic(x: Sequence[float], y: Sequence[float]) -> tuple[np.ndarray, np.ndarray]:
    """Non-decreasing fit of y(x) (scikit-learn ``IsotonicRegression``); returns knots (x, y)."""
    IsotonicRegression = import_optional("sklearn.isotonic").IsotonicRegression

    xs = np.asarray(x, dtype=float)
    model = IsotonicRegression(increasing=True, out_of_bounds="clip").fit(xs, np.asarray(y, dtype=float))
    return np.asarray(model.X_thresholds_), np.asarray(model.y_thresholds_)


def fit_isotonic(scores: Sequence[float], labels: Sequence[int], floor: float = 0.02) -> tuple[tuple, tuple]:
    """Isotonic score->probability map, clipped to [floor, 1-floor] (n is small: never 0/1)."""
    kx, ky = isotonic(scores, labels)
    ky = np.clip(ky, floor, 1.0 - floor)
    return tuple(float(v) for v in kx), tuple(float(v) for v in ky)


def logistic_fit(x: np.ndarray, y: np.ndarray, l2: float = 1e-2) -> Any:
    """L2-regularised logistic regression (scikit-learn ``LogisticRegression``, C = 1/l2)."""
    LogisticRegression = import_optional("sklearn.linear_model").LogisticRegression

    X = np.asarray(x, dtype=float).reshape(len(x), -1)
    labels = np.asarray(y, dtype=int)
    if len(set(labels.tolist())) < 2:
        return float(labels.mean()) if len(labels) else 0.5  # one class: a constant model
    return LogisticRegression(C=1.0 / l2).fit(X, labels)


def logistic_predict(model: Any, x: np.ndarray) -> np.ndarray:
    """P(class 1) from ``logistic_fit``'s model."""
    X = np.asarray(x, dtype=float).reshape(len(x), -1)
    if isinstance(model, float):
        return np.full(len(X), model)
    return np.asarray(model.predict_proba(X)[:, 1])


def reliability_table(probs: Sequence[float], labels: Sequence[int], bins: int = 5) -> list[dict[str, Any]]:
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
