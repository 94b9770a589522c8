"""The schedule-grinding sender against batch-logged decoding (``_batchlog.py``).

Under batch-logged decoding every token is determined by the weights, the nonce-derived
seed and the schedule the server ran, so the schedule is the only choice left. This
sender grinds it: it serves the request under every candidate schedule (other max batch
sizes and thread counts, other admission orders), keeps the candidates whose logs the
verifier would pass, and groups them by the tokens they produce. Sending ``k`` bits
takes ``2^k`` distinct passing outcomes: it serves the one numbered by the secret. The
colluding receiver, holding the model, the nonce and the candidate list, re-serves every
candidate and reads the number of the one whose tokens match.

Each candidate is logged two ways: *truthfully* (its own schedule in the header, which
the verifier refuses unless it is canonical and, where the request fixes them, of the
fixed max batch and threads), and *as the canonical schedule* (a lie the verifier
catches wherever the replay's tokens differ from the served ones). So what it carries
is ``log2`` of the distinct token outcomes among passing logs, measured, not assumed.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from inspectorate.difr._batchlog import (
    Batch,
    canonical_schedule,
    generate_logged,
    logged_header,
    schedule_reasons,
)
from inspectorate.difr._log import ServingLog
from inspectorate.difr._serve import ServeOptions
from inspectorate.difr._ties import check_ties


@dataclass(frozen=True)
class Candidate:
    """A schedule the sender may run: max batch, threads and an admission order."""

    max_batch: int
    threads: int
    order_seed: int | None = None  # None: the request order (FIFO); else a shuffled admission

    def schedule(self, n: int, lengths: Sequence[int], steps: int) -> list[Batch]:
        order = list(range(n))
        if self.order_seed is not None:
            np.random.default_rng(self.order_seed).shuffle(order)
        fifo = canonical_schedule([lengths[i] for i in order], self.max_batch, steps)
        return [replace(b, seqs=tuple(order[k] for k in b.seqs)) for b in fifo]


@dataclass
class Outcome:
    """One candidate's tokens and whether the verifier passes its two logs, under the
    request's fixed (max batch, threads) and under a request that fixes neither."""

    candidate: Candidate
    tokens: tuple[tuple[int, ...], ...]
    truthful_passes: bool  # its own schedule logged
    canonical_lie_passes: bool  # logged as the canonical schedule of its max batch / threads
    truthful_passes_free: bool = False
    canonical_lie_passes_free: bool = False

    def passes(self, free: bool) -> bool:
        if free:
            return self.truthful_passes_free or self.canonical_lie_passes_free
        return self.truthful_passes or self.canonical_lie_passes


def grind(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    options: ServeOptions,
    vocab: str,
    candidates: Sequence[Candidate],
    fixed: tuple[int, int],
) -> list[Outcome]:
    """Serve every candidate and judge both of its logs with the verifier's own check
    (one replay each; the fixed schedule's extra reasons are cheap to add)."""
    lengths, n = [len(p) for p in prompts], len(prompts)
    out = []
    for c in candidates:
        opts = replace(options, batch_size=c.max_batch)
        plan = c.schedule(n, lengths, options.max_new)
        gens, _ = generate_logged(model, prompts, opts, c.threads, plan)
        records = tuple(g.record for g in gens)
        truthful = ServingLog(logged_header(model, opts, vocab, c.threads, plan), records)
        canonical = canonical_schedule(lengths, c.max_batch, options.max_new)
        lie = ServingLog(logged_header(model, opts, vocab, c.threads, canonical), records)
        free = [not check_ties(model, log, None).reasons for log in (truthful, lie)]
        held = [
            ok and not schedule_reasons(log, fixed) for ok, log in zip(free, (truthful, lie), strict=True)
        ]
        out.append(Outcome(c, tuple(r.tokens for r in records), *held, *free))
    return out


def carried_bits(outcomes: Sequence[Outcome], free: bool = False) -> float:
    """``log2`` of the distinct token outcomes among logs the verifier passes (either way
    of logging): the most a sender choosing among these candidates can convey; a sender
    using ``floor`` of it bits per log is decoded exactly by re-serving the candidates."""
    passing = {o.tokens for o in outcomes if o.passes(free)}
    return math.log2(len(passing)) if passing else 0.0


def schedule_decode(
    tokens: Sequence[Sequence[int]], outcomes: Sequence[Outcome], free: bool = False
) -> int | None:
    """The receiver: the number of the distinct passing outcome the served tokens are."""
    distinct: list[tuple[tuple[int, ...], ...]] = []
    for o in outcomes:
        if o.passes(free) and o.tokens not in distinct:
            distinct.append(o.tokens)
    key = tuple(tuple(t) for t in tokens)
    return distinct.index(key) if key in distinct else None
