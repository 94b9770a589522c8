"""Numerics ties: where honest non-determinism could flip a token, counted per position.

Token-DiFR's mean shortfall tolerates honest mismatches with one global width, and an
attacker spends that width on steered tokens (``_covert.py``: ~4 bits per 128-token
sequence under a bf16 declaration). This module replaces the global width by a
per-position one the verifier measures itself:

* it re-computes every sequence twice, in float32 and in the *declared* precision
  (bf16 autocast: the same weight rounding and kernels an honest bf16 server runs), and
  takes the declared-precision logits as the reference: the honest residual is then
  batch/thread/cache variation inside bf16, not bf16 against fp32;
* at position ``j`` the numerics spread ``s_j`` is the largest |bf16 - fp32| scaled logit
  the verifier itself sees there (never below the precision's rounding of the largest
  logit); a token ``t`` is a *tie* at ``j`` when its Gumbel-margin cost under the
  declared-precision logits is at most ``kappa * s_j``, ``kappa`` calibrated on honest
  servers (peaks-over-threshold tail of the honest error ratio, at a per-position rate
  ``log_fpr / (n * L)``);
* a served token that is neither the re-computed winner nor a tie is impossible for
  honest numerics: the sequence is flagged. Deviations at ties are counted over the log
  and compared with what honest numerics produce (a binomial bound on the calibrated
  per-tie flip rate, at the log FPR): more deviations than that is flagged too.

The covert capacity a log leaves is then countable: ``log2`` of the deviation patterns
the verifier accepts (choose at most ``m*`` ties, any tied token at each), reported
against two measures of what the output could carry (see :func:`output_bits`).

A *deterministic-decode* declaration (``server["decode"] == "deterministic"``: the
server decodes each sequence as if alone, batch-invariant, in the declared precision)
lets the verifier replay that decode exactly (batch-1 KV cache); the spread is then zero,
there are no ties, and any deviation is flagged: capacity 0.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inspectorate.difr._log import SamplingConfig, SequenceRecord, ServingLog
from inspectorate.difr._sampling import allowed, gumbel_noise, noisy_scores, scaled
from inspectorate.difr._serve import precision_context
from inspectorate.errors import InputError

FORMAT = "inspectorate.difr.tie-calibration"
EPS = {"float32": float(np.finfo(np.float32).eps), "bfloat16": 2.0**-8}
RATIO_KEEP = 4096  # largest honest error ratios kept (the exponential tail is fitted to them)
RIVALS = 4  # tokens per position, after the winner, whose honest errors are measured


def nonce_seed(nonce: str) -> int:
    """The sampling seed a deterministic-decode server must use: derived from the
    verifier's nonce, so the server cannot grind seeds for a covert channel."""
    digest = hashlib.sha256(b"inspectorate.difr.sampling-seed\0" + nonce.encode()).digest()
    return int.from_bytes(digest[:8], "big") >> 1


def is_deterministic(log: ServingLog) -> bool:
    return bool(log.header.server.get("decode") == "deterministic")


@torch.no_grad()
def recompute(
    model: torch.nn.Module, record: SequenceRecord, precision: str, deterministic: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """(fp32 logits, declared-precision logits), each ``(n, V)`` float64, predicting every
    served token. Teacher-forced (one pass) unless ``deterministic``: then a batch-1
    KV-cache replay, the computation a deterministic-decode server declares."""
    ids = list(record.prompt) + list(record.tokens[:-1])
    lo = len(record.prompt) - 1
    idx = torch.tensor([ids], dtype=torch.long)
    fp32 = model(idx)[0][0, lo:].double().numpy()
    with precision_context(precision):
        if not deterministic:
            return fp32, model(idx)[0][0, lo:].float().double().numpy()
        logits, _, cache = model(torch.tensor([list(record.prompt)], dtype=torch.long))
        rows = [logits[0, -1].float().double().numpy()]
        for t in record.tokens[:-1]:
            logits, _, cache = model(torch.tensor([[int(t)]], dtype=torch.long), cache=cache)
            rows.append(logits[0, -1].float().double().numpy())
    return fp32, np.stack(rows)


def all_costs(logits: np.ndarray, noise: np.ndarray | None, sampling: SamplingConfig) -> np.ndarray:
    """``(n, V)``: every token's Token-DiFR shortfall (``_sampling.shortfall`` for all
    tokens at once): the winner's noisy score minus the token's, plus a filtered
    token's distance below the cutoff. The winner costs 0."""
    z = scaled(logits, sampling)
    scores = noisy_scores(logits, noise, sampling)
    keep = allowed(z, sampling)
    best = np.where(keep, scores, -np.inf).max(axis=-1, keepdims=True)
    lowest_kept = np.where(keep, z, np.inf).min(axis=-1, keepdims=True)
    gap = np.where(keep, 0.0, np.maximum(lowest_kept - z, 0.0))
    return np.maximum(best - scores, 0.0) + gap


@dataclass
class Profile:
    """The verifier's view of one sequence: winner, spread and every token's cost."""

    winner: np.ndarray  # (n,) the declared-precision Gumbel-max token
    spread: np.ndarray  # (n,) numerics spread s_j, scaled-logit units
    costs: np.ndarray  # (n, V)
    entropy_bits: np.ndarray  # (n,) entropy of the honest sampler's distribution


def profile(
    fp32: np.ndarray, declared: np.ndarray, sampling: SamplingConfig, noise: np.ndarray | None, eps: float
) -> Profile:
    zf, zd = scaled(fp32, sampling), scaled(declared, sampling)
    # Why both terms: the verifier's own |bf16 - fp32| measures how far rounding moved
    # this position's logits; the eps term keeps the spread from vanishing where the two
    # happen to agree (and gives fp32 declarations a spread at their own rounding).
    spread = np.maximum(np.abs(zd - zf).max(axis=-1), eps * np.abs(zf).max(axis=-1))
    costs = all_costs(declared, noise, sampling)
    p = np.where(allowed(zf, sampling), np.exp(zf - zf.max(axis=-1, keepdims=True)), 0.0)
    p /= p.sum(axis=-1, keepdims=True)
    ent = -(p * np.log2(np.where(p > 0, p, 1.0))).sum(axis=-1)
    return Profile(costs.argmin(axis=-1), spread, costs, ent)


def sequence_profile(
    model: torch.nn.Module,
    log: ServingLog,
    record: SequenceRecord,
    deterministic: bool | None = None,
    replayed: np.ndarray | None = None,
) -> Profile:
    """``replayed``: the declared-precision logits of a batch-logged replay
    (``_batchlog.replay_logged``), which then stand for the declared computation."""
    header = log.header
    det = is_deterministic(log) if deterministic is None else deterministic
    if replayed is not None:
        fp32, _ = recompute(model, record, "float32")  # the entropy's logits; the spread is 0
        declared, det = replayed, True
    else:
        fp32, declared = recompute(model, record, header.precision, det)
    n, vocab = fp32.shape
    sampling = header.sampling
    noise = gumbel_noise(sampling.seed or 0, record.index, n, vocab) if sampling.temperature > 0 else None
    prof = profile(fp32, declared, sampling, noise, EPS[header.precision])
    if det:
        prof.spread = np.zeros_like(prof.spread)  # the replay is the declared computation
    return prof


def output_bits(profiles: Sequence[Profile], vocab: int) -> dict[str, float]:
    """What the outputs could carry. ``vocab``: ``log2(V)`` per token, the channel a
    server choosing tokens freely would have (the convention of the DiFR paper's "fraction
    of output bits"). ``entropy``: the Shannon entropy of the honest sampler (softmax at
    T under top-k/top-p) summed over positions: the bits honest sampling actually puts in
    the outputs, the stricter denominator (a covert channel can only hide inside it)."""
    n = sum(len(p.winner) for p in profiles)
    return {
        "vocab": n * math.log2(max(vocab, 1)),
        "entropy": float(sum(p.entropy_bits.sum() for p in profiles)),
    }


@dataclass
class TieCalibration:
    """The honest error ratio's distribution for one reference, precision and sampling:
    ``(e_t - e_w) / s_j`` for the winner ``w`` and its ``RIVALS`` nearest rivals ``t``,
    ``e`` the honest server's scaled logits minus the verifier's declared-precision
    re-computation: a flip to ``t`` needs it above ``cost_t / s_j``."""

    precision: str
    quantiles: list[float]  # QUANTILES evenly spaced quantiles of the honest ratio
    tail: list[float]  # the largest honest ratios (the exponential tail is fitted to them)
    n: int  # honest (position, rival) pairs measured
    flips: int = 0  # honest served tokens that differ from the re-computed winner
    version: int = 1
    meta: dict[str, Any] = field(default_factory=dict)

    def survival(self, x: np.ndarray) -> np.ndarray:
        """P(honest ratio > x): empirical up to the tail's start, then the exponential
        (peaks-over-threshold) tail of the excesses, extrapolated past the largest seen."""
        x = np.asarray(x, dtype=np.float64)
        q = np.asarray(self.quantiles)
        body = 1.0 - np.interp(x, q, np.linspace(0.0, 1.0, q.size), left=0.0, right=1.0)
        tail = np.sort(np.asarray(self.tail))
        u, k = float(tail[0]), tail.size
        beta = max(float((tail - u).mean()), 1e-12)
        fitted = (k / self.n) * np.exp(-np.maximum(x - u, 0.0) / beta)
        return np.where(x >= u, np.minimum(fitted, k / self.n), np.maximum(body, k / self.n))

    def to_dict(self) -> dict[str, Any]:
        return {"format": FORMAT, **asdict(self)}

    def save(self, path: Path | str) -> Path:
        Path(path).write_text(json.dumps(self.to_dict()), encoding="utf-8")
        return Path(path)

    @classmethod
    def load(cls, path: Path | str) -> TieCalibration:
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
            if data.pop("format", None) != FORMAT or data.get("version") != 1:
                raise ValueError(f"not an {FORMAT} v1 file")
            return cls(**data)
        except (OSError, ValueError, TypeError) as exc:
            raise InputError(f"bad tie calibration file ({exc})", path) from None


def flip_probability(prof: Profile, cal: TieCalibration) -> np.ndarray:
    """``(n, V)``: an upper bound on the chance honest numerics serve token ``t`` at ``j``
    (its cost must be outrun by the honest error: P(ratio > cost / s_j)); 0 for the
    winner, and 0 wherever the spread is 0 (a deterministic replay)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(prof.spread[:, None] > 0, prof.costs / prof.spread[:, None], np.inf)
    q = np.where(np.isfinite(ratio), cal.survival(np.where(np.isfinite(ratio), ratio, 0.0)), 0.0)
    q[np.arange(len(prof.winner)), prof.winner] = 0.0
    return q


def poisson_tail_count(lam: float, alpha: float) -> int:
    """Smallest ``m`` with P(Poisson(lam) > m) <= alpha (a sum of Bernoullis with total
    mean ``lam`` is no more spread out than that)."""
    if lam <= 0:
        return 0
    term = cdf = math.exp(-lam)
    m = 0
    while 1.0 - cdf > alpha:
        m += 1
        term *= lam / m
        cdf += term
    return m


def accepted_patterns(alternatives: Sequence[int], m: int) -> int:
    """Deviation patterns with at most ``m`` deviations, ``alternatives[i]`` admissible
    tokens at position ``i``: the elementary symmetric sums e_0..e_m (exact integers)."""
    e = [1] + [0] * m
    for a in alternatives:
        for k in range(m, 0, -1):
            e[k] += e[k - 1] * a
    return sum(e)


@dataclass
class Admission:
    """What a log's honest numerics admit: at most ``max_deviations`` deviations, each at
    a (position, token) whose honest probability is at least ``theta``."""

    theta: float
    max_deviations: int
    expected_flips: float  # honest numerics' expected deviations over the log

    def admissible(self, q: np.ndarray) -> np.ndarray:
        return (q >= self.theta) & (q > 0)


def admission(qs: Sequence[np.ndarray], log_fpr: float) -> Admission:
    """Half the FPR goes to the count (Poisson tail at the expected honest flips), half to
    the rarest deviations: every (position, token) whose honest probability is below
    ``theta`` is refused, ``theta`` the largest cut whose refused mass is <= ``alpha / 2``.
    Honest logs are then refused with probability <= ``log_fpr`` (union bound)."""
    per_position = [np.minimum(q.sum(axis=-1), 1.0) for q in qs]
    lam = float(sum(p.sum() for p in per_position))
    flat = np.sort(np.concatenate([q[q > 0] for q in qs])) if qs else np.zeros(0)
    spent = np.cumsum(flat)
    cut = int(np.searchsorted(spent, log_fpr / 2, side="right"))
    theta = float(flat[cut]) if cut < flat.size else math.inf
    return Admission(theta, poisson_tail_count(lam, log_fpr / 2), lam)


def calibrate_ties(
    model: torch.nn.Module,
    honest: Sequence[tuple[ServingLog, SequenceRecord, np.ndarray]],
    quantiles: int = 512,
) -> TieCalibration:
    """From honest generations (log, record, the logits the server computed)."""
    ratios: list[np.ndarray] = []
    flips = 0
    precision = honest[0][0].header.precision if honest else "float32"
    for log, record, served in honest:
        sampling = log.header.sampling
        fp32, declared = recompute(model, record, log.header.precision)
        n, vocab = fp32.shape
        noise = gumbel_noise(sampling.seed or 0, record.index, n, vocab) if sampling.temperature > 0 else None
        prof = profile(fp32, declared, sampling, noise, EPS[log.header.precision])
        err = scaled(served, sampling) - scaled(declared, sampling)
        # The signed error a flip needs (e_t - e_w > cost_t), for the RIVALS tokens
        # whose noisy scores come next after the winner's: ties happen between them,
        # and they are the largest logits, whose rounding is the largest.
        rivals = np.argsort(prof.costs, axis=-1, kind="stable")[:, 1 : 1 + RIVALS]
        pair = np.take_along_axis(err, rivals, axis=-1) - err[np.arange(n), prof.winner][:, None]
        ratios.append((pair / np.maximum(prof.spread, 1e-300)[:, None]).ravel())
        flips += int((np.asarray(record.tokens) != prof.winner).sum())
    if not ratios:
        raise InputError("tie calibration needs honest sequences")
    r = np.sort(np.concatenate(ratios))
    # The tail is fitted to the largest *positive* ratios: most pairs err by exactly 0
    # (same bf16 rounding), and zeros in the excesses would shrink the fitted scale.
    positive = int((r > 0).sum())
    k = max(min(RATIO_KEEP, positive // 10), min(20, r.size))
    grid = np.quantile(r, np.linspace(0.0, 1.0, quantiles)).tolist()
    return TieCalibration(precision, grid, r[-k:].tolist(), int(r.size), flips)


@dataclass
class TieReport:
    """One log judged on its deviations, and the covert capacity it leaves."""

    admission: Admission
    deviations: int  # served tokens that differ from the re-computed winner
    refused: list[tuple[int, int]]  # (sequence index, position) of inadmissible deviations
    capacity_bits: float  # log2 of the deviation patterns this log admits
    output_bits: dict[str, float]
    deterministic: bool  # the verifier replayed the declared computation (spread 0)
    decode: str = "batched"  # batched | deterministic | batch-logged
    schedule_bits: float = 0.0  # a batch-logged sender's choice of schedule (counted in capacity_bits)
    schedule_reasons: list[str] = field(default_factory=list)

    @property
    def flagged(self) -> list[int]:
        return sorted({i for i, _ in self.refused})

    @property
    def reasons(self) -> list[str]:
        out = list(self.schedule_reasons)
        if self.refused:
            i, j = self.refused[0]
            out.append(
                f"{len(self.refused)} served token(s) honest {'deterministic ' if self.deterministic else ''}"
                f"numerics could not produce (first: sequence {i}, position {j})"
            )
        if self.deviations > self.admission.max_deviations:
            out.append(
                f"{self.deviations} deviations from the re-computation; honest numerics allow "
                f"{self.admission.max_deviations} (expected {self.admission.expected_flips:.3g})"
            )
        return out

    def to_dict(self) -> dict[str, Any]:
        ob = self.output_bits
        return {
            "deterministic_decode": self.deterministic,
            "decode": self.decode,
            "schedule_bits": self.schedule_bits,
            "deviations": self.deviations,
            "max_deviations": self.admission.max_deviations,
            "expected_honest_flips": self.admission.expected_flips,
            "theta": self.admission.theta,
            "refused": [list(r) for r in self.refused],
            "capacity_bits": self.capacity_bits,
            "output_bits": ob,
            "capacity_fraction": {k: (self.capacity_bits / v if v else None) for k, v in ob.items()},
        }


def check_ties(
    model: torch.nn.Module,
    log: ServingLog,
    cal: TieCalibration | None,
    log_fpr: float = 1e-3,
    deterministic: bool | None = None,
    schedule: tuple[int, int] | None = None,
) -> TieReport:
    """Judge every deviation of ``log`` against honest numerics (module doc). Without a
    calibration only a deterministic-decode or batch-logged log can be judged (the
    verifier replays the declared computation: the spread is zero). ``schedule``: the
    (max batch, threads) the verifier's request fixed for a batch-logged server."""
    from inspectorate.difr._batchlog import is_batch_logged, replay_logged, schedule_capacity_bits
    from inspectorate.difr._batchlog import schedule_reasons as logged_reasons

    logged = is_batch_logged(log)
    det = (is_deterministic(log) if deterministic is None else deterministic) or logged
    if cal is None and not det:
        raise InputError("a tie check of a batched (non-deterministic) log needs a tie calibration")
    if cal is not None and not det and cal.precision != log.header.precision:
        raise InputError(f"tie calibration is for {cal.precision}, the log declares {log.header.precision}")
    model.eval()
    replay = replay_logged(model, log) if logged else {}
    profiles = [sequence_profile(model, log, r, det, replay.get(r.index)) for r in log.sequences]
    if cal is None or det:
        qs = [np.zeros_like(p.costs) for p in profiles]
    else:
        qs = [flip_probability(p, cal) for p in profiles]
    adm = admission(qs, log_fpr)
    refused: list[tuple[int, int]] = []
    alternatives: list[int] = []
    deviations = 0
    for record, prof, q in zip(log.sequences, profiles, qs, strict=True):
        tokens = np.asarray(record.tokens)
        ok = adm.admissible(q)
        alternatives.extend(int(a) for a in ok.sum(axis=-1) if a)
        for j in np.nonzero(tokens != prof.winner)[0]:
            deviations += 1
            if not ok[j, tokens[j]]:
                refused.append((record.index, int(j)))
    bits = math.log2(accepted_patterns(alternatives, adm.max_deviations))
    decode = "batch-logged" if logged else ("deterministic" if det else "batched")
    report = TieReport(adm, deviations, refused, bits, output_bits(profiles, log.header.n_ids), det, decode)
    if logged:
        report.schedule_reasons = logged_reasons(log, schedule)
        report.schedule_bits = schedule_capacity_bits(len(log.sequences), schedule)
        report.capacity_bits += report.schedule_bits
    return report


def serve_and_calibrate_ties(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    options: Any,
    variants: Sequence[Any],
    vocab: str,
) -> TieCalibration:
    """Serve ``prompts`` honestly under each ``HonestVariant`` (threads, batch, order,
    seed) keeping the served logits, and calibrate the tie check on them."""
    from dataclasses import replace

    from inspectorate.difr._calibrate import _as_log
    from inspectorate.difr._serve import generate

    honest = []
    threads = torch.get_num_threads()
    try:
        for v in variants:
            torch.set_num_threads(v.threads)
            opts = replace(options, batch_size=v.batch_size, order_seed=v.order_seed, projection=None)
            opts = replace(opts, sampling=replace(options.sampling, seed=v.sampling_seed))
            gens = generate(model, prompts, opts, keep_logits=True)
            log = _as_log(model, opts, vocab, [g.record for g in gens])
            honest += [(log, g.record, g.logits) for g in gens if g.logits is not None]
    finally:
        torch.set_num_threads(threads)
    return calibrate_ties(model, honest)
