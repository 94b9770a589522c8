"""Calibration of honest non-determinism, per-sequence thresholds, the covert-channel bound.

The reference model is served honestly under perturbations a real server is allowed
(torch thread count, batch size and composition, fp32 vs bf16 on CPU, KV-cache decoding
against the verifier's single teacher-forced pass) and scored exactly as a log would be.
A log of ``n`` sequences is judged at a log-level false-positive rate ``alpha``; each
sequence is tested at ``alpha / n`` (Bonferroni). Honest calibration holds far fewer than
``n / alpha`` sequences, so the threshold extrapolates the honest tail (exponential
peaks-over-threshold) and is never below what was observed, nor below the shortfall one
token's measured numerical error can produce (:func:`fit_threshold`).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inspectorate.difr._log import LogHeader, SamplingConfig, ServingLog
from inspectorate.difr._sampling import scaled
from inspectorate.difr._score import score_log
from inspectorate.difr._serve import ServeOptions, generate
from inspectorate.errors import InputError
from inspectorate.models._checkpoint import config_of, model_hash

TRUSTED_TAIL = 20  # excesses a fitted tail needs before it may go below the physical floor
COST_KEEP = 256  # smallest alternative costs kept per honest sequence (the covert bound needs no more)


@dataclass(frozen=True)
class HonestVariant:
    """One honest way to serve: what differs from the verifier's own pass."""

    threads: int = 1
    batch_size: int = 16
    order_seed: int | None = None
    sampling_seed: int = 0


def default_variants(count: int = 4, threads: Sequence[int] = (1, 2)) -> list[HonestVariant]:
    """Thread counts cycled over ``threads``, batch sizes 1..16, shuffled batch
    composition, a fresh sampling seed per variant."""
    grid = [(16, None), (4, 1), (1, None), (16, 2), (8, 3), (2, 4)]
    return [HonestVariant(threads[k % len(threads)], b, o, 1000 + k) for k, (b, o) in enumerate(grid[:count])]


@dataclass(frozen=True)
class Thresholds:
    token: float | None
    activation: float | None
    per_sequence_fpr: float
    log_fpr: float
    n_sequences: int
    basis: dict[str, Any] = field(default_factory=dict)


@dataclass
class Calibration:
    """Honest per-sequence scores of one reference, sampling config, length and precision."""

    model_hash: str
    precision: str
    max_new: int
    sampling: dict[str, Any]
    token_scores: list[float]
    activation_scores: list[float] | None
    logit_error_max: float  # largest |served - reference| scaled logit seen on an honest token
    max_mismatches: int
    activation_token_max: float = 0.0  # largest single-token honest activation distance
    small_costs: list[list[float]] = field(default_factory=list, repr=False)
    variants: list[dict[str, Any]] = field(default_factory=list)

    def thresholds(self, n_sequences: int, log_fpr: float = 1e-3) -> Thresholds:
        if not 0 < log_fpr < 1 or n_sequences < 1:
            raise InputError("log FPR must be in (0, 1) and the log must hold sequences")
        p = log_fpr / n_sequences
        floor = 2.0 * self.logit_error_max * max(self.max_mismatches, 1) / self.max_new
        token, basis = fit_threshold(self.token_scores, p, floor)
        act = None
        if self.activation_scores:
            # A sequence's mean distance above the largest single honest token's is not
            # numerical noise: that is the floor when few honest sequences were seen.
            act, act_basis = fit_threshold(self.activation_scores, p, self.activation_token_max)
            basis = {"token": basis, "activation": act_basis}
        else:
            basis = {"token": basis}
        return Thresholds(token, act, p, log_fpr, n_sequences, basis)

    def covert_bits(self, thresholds: Thresholds) -> dict[str, float]:
        """Bits per sequence an attacker could choose while staying under the token threshold."""
        if thresholds.token is None or not self.small_costs:
            return {}
        budget = thresholds.token * self.max_new
        bits = [covert_bits(np.asarray(c), budget) for c in self.small_costs]
        return {"budget": budget, "median_bits": float(np.median(bits)), "max_bits": float(np.max(bits))}

    def to_dict(self) -> dict[str, Any]:
        return {"format": "inspectorate.difr.calibration", "version": 1, **asdict(self)}

    def save(self, path: Path | str) -> Path:
        Path(path).write_text(json.dumps(self.to_dict()), encoding="utf-8")
        return Path(path)

    @classmethod
    def load(cls, path: Path | str) -> Calibration:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data.pop("format", None) != "inspectorate.difr.calibration" or data.pop("version", None) != 1:
                raise ValueError("not an inspectorate.difr.calibration v1 file")
            return cls(**data)
        except (OSError, ValueError, TypeError) as exc:
            raise InputError(f"bad calibration file ({exc})", path) from None


def fit_threshold(samples: Sequence[float], p: float, floor: float) -> tuple[float, dict[str, Any]]:
    """Score above which an honest sequence falls with probability ~``p``.

    Exponential tail fitted to the excesses over the 90th percentile (peaks over
    threshold, shape 0), extrapolated to ``p``, and never below the largest honest value
    seen; below ``TRUSTED_TAIL`` excesses ``floor`` is a lower bound too. With fewer than
    5 excesses (or none above zero) the tail is not fitted (said in the basis).
    """
    x = np.sort(np.asarray(samples, dtype=np.float64))
    if x.size == 0:
        raise InputError("calibration holds no honest scores")
    u = float(np.quantile(x, 0.9))
    excess = x[x > u] - u
    pot = None
    if excess.size >= 5 and excess.mean() > 0:
        pot = u + float(excess.mean()) * math.log((excess.size / x.size) / p)
    # The floor gives way to the fitted tail only once the tail rests on TRUSTED_TAIL
    # excesses: a floor built from single-token extremes is far above the per-sequence
    # tail once enough honest sequences exist (bf16: 0.022 vs 0.003) and would hand an
    # attacker that margin, but a tail fitted to a handful of points is too noisy to
    # stand alone (64 honest sequences put it within 10% of an honest log's maximum).
    trusted = pot is not None and excess.size >= TRUSTED_TAIL
    value = max(pot or 0.0, float(x[-1]), 0.0 if trusted else floor)
    return value, {"pot": pot, "honest_max": float(x[-1]), "floor": floor, "honest_n": int(x.size)}


def covert_bits(costs: np.ndarray, budget: float) -> float:
    """log2 of the number of deviation sets affordable: any ``m`` of the ``A`` alternatives
    costing <= budget, where ``m`` is the most deviations whose cheapest costs fit. An
    upper bound on the honest path (it ignores that two alternatives may share a position)."""
    c = np.sort(costs[costs > 0])
    c = c[c <= budget]
    if c.size == 0:
        return 0.0
    m = int(np.searchsorted(np.cumsum(c), budget, side="right"))
    total = sum(math.comb(c.size, j) for j in range(m + 1))
    return math.log2(total)


def calibrate(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    options: ServeOptions,
    variants: Sequence[HonestVariant] | None = None,
    vocab: str = "",
    collect: list[Any] | None = None,
) -> Calibration:
    """Serve ``prompts`` honestly under each variant, score, and collect the honest scores
    (every SequenceScore is also appended to ``collect`` when given: benchmarks re-cut them)."""
    if options.sampling.temperature > 0 and options.sampling.seed is None and options.projection is None:
        raise InputError("nothing to calibrate: no declared sampling seed and no projections")
    variants = list(variants or default_variants())
    token, act, err, mism, costs, act_max = [], [], 0.0, 0, [], 0.0
    threads = torch.get_num_threads()
    try:
        for v in variants:
            torch.set_num_threads(v.threads)
            opts = replace(options, batch_size=v.batch_size, order_seed=v.order_seed)
            opts = replace(opts, sampling=replace(options.sampling, seed=v.sampling_seed))
            gens = generate(model, prompts, opts, keep_logits=True)
            log = _as_log(model, opts, vocab, [g.record for g in gens])
            scores = score_log(model, log, keep_costs=True)
            if collect is not None:
                collect.extend(scores)
            for g, s in zip(gens, scores, strict=True):
                token.append(s.token_score or 0.0)
                if s.act_distance is not None:
                    act.append(float(s.act_distance.mean()))
                    act_max = max(act_max, float(s.act_distance.max()))
                mism = max(mism, int(s.mismatch.sum()) if s.mismatch is not None else 0)
                err = max(err, _logit_error(model, log, g.record, g.logits, opts.sampling))
                if s.costs is not None:
                    costs.append(np.round(np.sort(s.costs[s.costs > 0])[:COST_KEEP], 6).tolist())
    finally:
        torch.set_num_threads(threads)
    return Calibration(
        model_hash=model_hash(model),
        precision=options.precision,
        max_new=options.max_new,
        sampling={k: v for k, v in vars(options.sampling).items() if k != "seed"},
        token_scores=token,
        activation_scores=act or None,
        logit_error_max=err,
        max_mismatches=mism,
        activation_token_max=act_max,
        small_costs=costs,
        variants=[asdict(v) for v in variants],
    )


def _as_log(model: torch.nn.Module, opts: ServeOptions, vocab: str, records: list[Any]) -> ServingLog:
    header = LogHeader(
        model_hash=model_hash(model),
        vocab=vocab or "x" * config_of(model).vocab_size,
        vocab_size=config_of(model).vocab_size,
        sampling=opts.sampling,
        precision=opts.precision,
        projection=opts.projection,
    )
    return ServingLog(header, tuple(records))


def _logit_error(
    model: torch.nn.Module, log: ServingLog, record: Any, served: np.ndarray | None, sampling: SamplingConfig
) -> float:
    """Largest |served - reference| scaled logit over one honest sequence's tokens."""
    from inspectorate.difr._score import reference_pass

    if served is None:
        return 0.0
    ref, _ = reference_pass(model, record, None)
    return float(np.abs(scaled(served, sampling) - scaled(ref, sampling)).max())


def check_compatible(cal: Calibration, header: LogHeader, n_tokens: set[int]) -> None:
    """A calibration applies only to logs of its sampling config, precision and length."""
    sampling = {k: v for k, v in vars(header.sampling).items() if k != "seed"}
    if sampling != cal.sampling:
        raise InputError(f"calibration is for sampling {cal.sampling}, the log declares {sampling}")
    if header.precision != cal.precision:
        raise InputError(f"calibration is for {cal.precision}, the log declares {header.precision}")
    if n_tokens != {cal.max_new}:
        raise InputError(f"calibration is for {cal.max_new}-token sequences, the log has {sorted(n_tokens)}")
