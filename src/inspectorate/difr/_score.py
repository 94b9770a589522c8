"""Re-computation: score every served token and sequence against the reference model.

The verifier runs one teacher-forced fp32 pass over ``prompt + tokens[:-1]`` per sequence
(never the server's batching or cache), so its own numbers do not depend on the log.
Per token: whether the reference, under the regenerated Gumbel noise, picks the served
token (exact match); the Gumbel-margin *shortfall* when it does not; the served token's
rank and log-probability margin; and, with projections, the relative distance between
the served and re-computed projected activations. Per sequence: the mean shortfall
(Token-DiFR's statistic), the mismatch fraction, and the mean activation distance
(Activation-DiFR's statistic). Judging per sequence, not per token, is what shrinks the
room honest non-determinism leaves to an attacker.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import torch

from inspectorate.difr._log import SamplingConfig, SequenceRecord, ServingLog
from inspectorate.difr._projection import capture_layer, project, projection_matrix
from inspectorate.difr._sampling import gumbel_noise, noisy_scores, rank_and_margin, shortfall


@dataclass
class SequenceScore:
    """One sequence's re-computation; per-token arrays kept for benchmarks and bounds."""

    index: int
    n_tokens: int
    shortfall: np.ndarray | None  # per token; None when no sampling seed was declared
    mismatch: np.ndarray | None
    rank: np.ndarray
    margin: np.ndarray
    act_distance: np.ndarray | None  # per token; None without projections
    costs: np.ndarray | None = field(default=None, repr=False)  # (n, V) alternative costs

    @property
    def token_score(self) -> float | None:
        return None if self.shortfall is None else float(self.shortfall.mean())

    @property
    def activation_score(self) -> float | None:
        return None if self.act_distance is None else float(self.act_distance.mean())

    def summary(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "tokens": self.n_tokens,
            "token_score": self.token_score,
            "mismatch_fraction": None if self.mismatch is None else float(self.mismatch.mean()),
            "max_shortfall": None if self.shortfall is None else float(self.shortfall.max()),
            "mean_rank": float(self.rank.mean()),
            "mean_logprob_margin": float(self.margin.mean()),
            "activation_score": self.activation_score,
        }


@torch.no_grad()
def reference_pass(
    model: torch.nn.Module, record: SequenceRecord, layer: int | None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Logits predicting each served token, ``(n, V)``, and the layer's activations at the
    positions that produced them, ``(n, width)`` (None when ``layer`` is None)."""
    ids = list(record.prompt) + list(record.tokens[:-1])
    lo = len(record.prompt) - 1
    idx = torch.tensor([ids], dtype=torch.long)
    if layer is None:
        logits, _, _ = model(idx)
        return logits[0, lo:].double().numpy(), None
    with capture_layer(model, layer) as seen:
        logits, _, _ = model(idx)
    return logits[0, lo:].double().numpy(), seen[-1][0, lo:].double().numpy()


def score_sequence(
    model: torch.nn.Module, log: ServingLog, record: SequenceRecord, keep_costs: bool = False
) -> SequenceScore:
    header = log.header
    spec, sampling = header.projection, header.sampling
    logits, hidden = reference_pass(model, record, spec.layer if spec else None)
    token = token_score(logits, record, sampling, keep_costs)
    act = None
    if spec is not None and hidden is not None and record.projections is not None:
        ref_proj = project(hidden, projection_matrix(spec.seed, hidden.shape[-1], spec.dim))
        got = np.asarray(record.projections, dtype=np.float64)
        act = np.linalg.norm(got - ref_proj, axis=-1) / (np.linalg.norm(ref_proj, axis=-1) + 1e-12)
    return replace(token, act_distance=act)


def token_score(
    logits: np.ndarray, record: SequenceRecord, sampling: SamplingConfig, keep_costs: bool = False
) -> SequenceScore:
    """The token half of a sequence's score from the verifier's own logits (no activation
    term): rank and margin of each served token, and where the sampler's noise is known
    (a seed, or greedy) the shortfall against the token it would pick, the mismatches and,
    with ``keep_costs``, every candidate's cost."""
    served = np.asarray(record.tokens, dtype=np.int64)
    n, vocab = logits.shape
    rank, margin = rank_and_margin(logits, served, sampling)
    short = mismatch = costs = None
    if sampling.seed is not None or sampling.temperature == 0:
        noise = gumbel_noise(sampling.seed or 0, record.index, n, vocab) if sampling.temperature else None
        ref, short = shortfall(logits, noise, served, sampling)
        mismatch = ref != served
        if keep_costs:
            scores = noisy_scores(logits, noise, sampling)
            costs = np.take_along_axis(scores, ref[:, None], axis=-1) - scores
    return SequenceScore(record.index, n, short, mismatch, rank, margin, None, costs)


def score_log(model: torch.nn.Module, log: ServingLog, keep_costs: bool = False) -> list[SequenceScore]:
    model.eval()
    return [score_sequence(model, log, rec, keep_costs) for rec in log.sequences]
