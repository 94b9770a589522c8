"""Seeded Gumbel-max sampling: the one sampler both the server and the verifier run.

``argmax(logits / T + g)`` with ``g`` standard Gumbel noise draws exactly from
``softmax(logits / T)``; when ``g`` is a function of (declared seed, sequence index,
position), the verifier regenerates the same noise and re-derives the token the
reference model would have picked. An honest server then matches the reference on every
token except where the two noisy top scores are closer than the numerical error, and a
mismatched token carries a measurable *shortfall*: how far its noisy score sits below the
reference's winner. Numpy only (float64), so the noise is bit-identical on every platform.
"""

from __future__ import annotations

import numpy as np

from inspectorate.difr._log import SamplingConfig


def gumbel_noise(seed: int, index: int, positions: int, vocab: int) -> np.ndarray:
    """``(positions, vocab)`` Gumbel noise of sequence ``index`` under ``seed``."""
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFFFFFFFFFF, int(index)])
    u = rng.random((positions, vocab))
    u = np.clip(u, np.finfo(np.float64).tiny, 1.0 - np.finfo(np.float64).eps)
    return -np.log(-np.log(u))


def scaled(logits: np.ndarray, sampling: SamplingConfig) -> np.ndarray:
    """Logits divided by the temperature (greedy keeps them as they are)."""
    logits = np.asarray(logits, dtype=np.float64)
    return logits if sampling.temperature == 0 else logits / sampling.temperature


def allowed(z: np.ndarray, sampling: SamplingConfig) -> np.ndarray:
    """Boolean mask of the tokens top-k / top-p keep, row-wise over ``(n, vocab)``."""
    keep = np.ones_like(z, dtype=bool)
    if sampling.top_k is not None and sampling.top_k < z.shape[-1]:
        kth = -np.partition(-z, sampling.top_k - 1, axis=-1)[..., sampling.top_k - 1 : sampling.top_k]
        keep &= z >= kth
    if sampling.top_p is not None and sampling.top_p < 1.0:
        order = np.argsort(-z, axis=-1, kind="stable")
        zs = np.take_along_axis(z, order, axis=-1)
        probs = np.exp(zs - zs[..., :1])
        probs /= probs.sum(axis=-1, keepdims=True)
        before = np.cumsum(probs, axis=-1) - probs  # mass strictly before each token
        keep_sorted = before < sampling.top_p  # the first token is always kept
        top_p_mask = np.zeros_like(keep)
        np.put_along_axis(top_p_mask, order, keep_sorted, axis=-1)
        keep &= top_p_mask
    return keep


def noisy_scores(logits: np.ndarray, noise: np.ndarray | None, sampling: SamplingConfig) -> np.ndarray:
    """``logits / T + g`` (plain logits when greedy or when no noise is given)."""
    z = scaled(logits, sampling)
    if sampling.temperature == 0 or noise is None:
        return z
    return z + noise


def choose(logits: np.ndarray, noise: np.ndarray | None, sampling: SamplingConfig) -> np.ndarray:
    """Token ids the sampler picks, one per row of ``logits``."""
    z = scaled(logits, sampling)
    scores = noisy_scores(logits, noise, sampling)
    return np.where(allowed(z, sampling), scores, -np.inf).argmax(axis=-1)


def shortfall(
    logits: np.ndarray, noise: np.ndarray | None, served: np.ndarray, sampling: SamplingConfig
) -> tuple[np.ndarray, np.ndarray]:
    """(reference choice, shortfall) per row: the winner's noisy score minus the served
    token's (>= 0; 0 when they agree), plus, for a token the reference's top-k / top-p
    would have excluded, its distance below the cutoff (finite, so honest boundary flips
    cost only their numerical error)."""
    z = scaled(logits, sampling)
    scores = noisy_scores(logits, noise, sampling)
    keep = allowed(z, sampling)
    masked = np.where(keep, scores, -np.inf)
    ref = masked.argmax(axis=-1)
    best = np.take_along_axis(masked, ref[:, None], axis=-1)[:, 0]
    got = np.take_along_axis(scores, served[:, None], axis=-1)[:, 0]
    # A token the filter excludes costs at least how far it sits below the cutoff, even
    # when its noisy score is high: otherwise filtered tokens would be free to serve.
    lowest_kept = np.where(keep, z, np.inf).min(axis=-1)
    served_z = np.take_along_axis(z, served[:, None], axis=-1)[:, 0]
    outside = ~np.take_along_axis(keep, served[:, None], axis=-1)[:, 0]
    gap = np.where(outside, np.maximum(lowest_kept - served_z, 0.0), 0.0)
    return ref, np.maximum(best - got, 0.0) + gap


def rank_and_margin(
    logits: np.ndarray, served: np.ndarray, sampling: SamplingConfig
) -> tuple[np.ndarray, np.ndarray]:
    """Rank of each served token under the reference (1 = most likely) and its log-prob
    margin ``log p(top) - log p(served)`` under ``softmax(logits / T)`` (nats)."""
    z = scaled(logits, sampling) if sampling.temperature > 0 else np.asarray(logits, dtype=np.float64)
    got = np.take_along_axis(z, served[:, None], axis=-1)
    rank = 1 + (z > got).sum(axis=-1)
    return rank, z.max(axis=-1) - got[:, 0]
