"""Batch-logged decoding: a batched server whose every batch the verifier replays exactly.

Real servers batch, and batch shape changes bf16 rounding, so a verifier that re-computes
each sequence alone must admit a few honest flips per log, and a sender choosing which
flips carries bits (``_ties.py``: ~19 bits per 32 x 64-token log). This declaration
removes that freedom instead of bounding it:

* **The schedule is canonical.** Requests are admitted first in, first out in the order of
  the verifier's request log (the log's sequence index, which also names each sequence's
  noise stream), at most ``max_batch`` at a time; a batch closes when it is full or when
  the next request's prompt length differs (no padding, so no pad mask enters the
  numbers). ``max_batch`` and the thread count are fixed by the verifier's request. The
  server logs what it ran (header ``server``: ``decode = "batch-logged"``, ``max_batch``,
  ``threads``, ``schedule``: per batch its sequences, the prefill length and the decode
  steps; every decode step of a batch holds the same sequences at the same position, so
  that is the per-step composition); the verifier refuses a schedule that is not the
  canonical one.
* **The replay is the server's computation.** The verifier runs exactly those batches,
  KV-cache decoding in the declared precision at the declared thread count, feeding the
  served tokens (teacher forcing through the server's own batch: a sequence's logits at a
  step depend on its batch-mates only through the batch's shape, which is the same).
  CPU kernels are bit-reproducible for a fixed shape and thread count (measured:
  ``bench/difr_covert.py --batch-logged``), so the spread is zero, no deviation is
  admissible and the capacity is 0 bits; the seed derives from the verifier's nonce.

What a sender can still choose: the schedule, where the verifier leaves it free. Then the
choice itself is the channel, and :func:`schedule_capacity_bits` counts it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inspectorate.difr._log import LogHeader, SequenceRecord, ServingLog, write_log
from inspectorate.difr._serve import Generated, ServeOptions, _serve_batch, precision_context
from inspectorate.errors import InputError
from inspectorate.models._checkpoint import config_of, model_hash

DECODE = "batch-logged"
MAX_THREADS = 64  # the thread counts a verifier that fixes none must count as the sender's choice


def is_batch_logged(log: ServingLog) -> bool:
    return bool(log.header.server.get("decode") == DECODE)


@dataclass(frozen=True)
class Batch:
    """One batch as run: its sequences (log indices), prompt length, decode steps."""

    seqs: tuple[int, ...]
    prefill: int
    steps: int

    def to_dict(self) -> dict[str, Any]:
        return {"seqs": list(self.seqs), "prefill": self.prefill, "steps": self.steps}


def canonical_schedule(prompt_lengths: Sequence[int], max_batch: int, steps: int) -> list[Batch]:
    """FIFO admission in request order, at most ``max_batch`` per batch, a batch closing
    early where the next prompt's length differs (module doc)."""
    if max_batch < 1:
        raise InputError(f"max_batch must be >= 1, got {max_batch}")
    out: list[Batch] = []
    current: list[int] = []
    for i, n in enumerate(prompt_lengths):
        if current and (len(current) == max_batch or prompt_lengths[current[0]] != n):
            out.append(Batch(tuple(current), prompt_lengths[current[0]], steps))
            current = []
        current.append(i)
    if current:
        out.append(Batch(tuple(current), prompt_lengths[current[0]], steps))
    return out


@contextmanager
def _threads(n: int) -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def generate_logged(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    options: ServeOptions,
    threads: int,
    schedule: Sequence[Batch] | None = None,
    keep_logits: bool = False,
) -> tuple[list[Generated], list[Batch]]:
    """Serve under ``schedule`` (default: the canonical one for ``options.batch_size``) at
    ``threads``; returns the generations in request order and the schedule run."""
    if options.sampling.temperature > 0 and options.sampling.seed is None:
        raise InputError("batch-logged decoding needs a declared (nonce-derived) sampling seed")
    block = config_of(model).block_size
    if any(len(p) + options.max_new > block for p in prompts):
        raise InputError(f"prompt + {options.max_new} new tokens exceeds the model context {block}")
    plan = list(
        schedule or canonical_schedule([len(p) for p in prompts], options.batch_size, options.max_new)
    )
    out: dict[int, Generated] = {}
    with _threads(threads):
        for b in plan:
            for i, g in zip(b.seqs, _serve_batch(model, prompts, list(b.seqs), options, 0), strict=True):
                out[i] = g if keep_logits else Generated(g.record)
    return [out[i] for i in range(len(prompts))], plan


def serve_logged(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    options: ServeOptions,
    out: Path | str,
    *,
    vocab: str,
    threads: int,
) -> Path:
    """Serve the canonical schedule and write a batch-logged serving log."""
    gens, plan = generate_logged(model, prompts, options, threads)
    return write_log(out, logged_header(model, options, vocab, threads, plan), [g.record for g in gens])


def logged_header(
    model: torch.nn.Module, options: ServeOptions, vocab: str, threads: int, plan: Sequence[Batch]
) -> LogHeader:
    return LogHeader(
        model_hash=model_hash(model),
        vocab=vocab,
        vocab_size=config_of(model).vocab_size,
        sampling=options.sampling,
        precision=options.precision,
        projection=options.projection,
        server={
            "decode": DECODE,
            "max_batch": options.batch_size,
            "threads": threads,
            "schedule": [b.to_dict() for b in plan],
        },
    )


@dataclass(frozen=True)
class LoggedSchedule:
    """The schedule a batch-logged log declares, validated against its sequences."""

    max_batch: int
    threads: int
    batches: tuple[Batch, ...]


def read_schedule(log: ServingLog) -> LoggedSchedule:
    """The declared schedule; InputError unless it covers every sequence once, each batch's
    prompts have its prefill length and its steps equal their served lengths."""
    server = log.header.server
    try:
        max_batch, threads = int(server["max_batch"]), int(server["threads"])
        batches = tuple(
            Batch(tuple(int(i) for i in b["seqs"]), int(b["prefill"]), int(b["steps"]))
            for b in server["schedule"]
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"batch-logged header needs max_batch, threads and schedule ({exc!r})") from None
    if not 1 <= threads <= MAX_THREADS or max_batch < 1:
        raise InputError(f"batch-logged header: threads must be 1..{MAX_THREADS} and max_batch >= 1")
    by_index = {s.index: s for s in log.sequences}
    seen = [i for b in batches for i in b.seqs]
    if sorted(seen) != sorted(by_index) or len(seen) != len(set(seen)):
        raise InputError("batch-logged schedule does not cover every sequence exactly once")
    for b in batches:
        if not b.seqs or any(
            len(by_index[i].prompt) != b.prefill or len(by_index[i].tokens) != b.steps for i in b.seqs
        ):
            raise InputError(f"batch-logged schedule: batch {list(b.seqs)} disagrees with its sequences")
    return LoggedSchedule(max_batch, threads, batches)


def schedule_reasons(log: ServingLog, fixed: tuple[int, int] | None) -> list[str]:
    """Why the declared schedule is not the one the verifier's request fixes: the
    canonical FIFO schedule of the log's order at the declared (or ``fixed``) max batch
    and thread count."""
    sched = read_schedule(log)
    reasons = []
    if fixed is not None and (sched.max_batch, sched.threads) != tuple(fixed):
        reasons.append(
            f"batch-logged server ran max batch {sched.max_batch} at {sched.threads} thread(s); "
            f"the request fixed {fixed[0]} at {fixed[1]}"
        )
    ordered = sorted(log.sequences, key=lambda s: s.index)
    steps = {len(s.tokens) for s in ordered}
    want = canonical_schedule([len(s.prompt) for s in ordered], sched.max_batch, max(steps))
    positions = {s.index: k for k, s in enumerate(ordered)}
    got = [tuple(positions[i] for i in b.seqs) for b in sched.batches]
    if len(steps) != 1 or got != [b.seqs for b in want]:
        reasons.append("batch-logged schedule is not the canonical FIFO schedule of the request order")
    return reasons


def schedule_capacity_bits(n_sequences: int, fixed: tuple[int, int] | None) -> float:
    """Bits a sender can put in its choice of schedule: 0 when the request fixes max batch
    and threads (the canonical schedule is then the only admissible one); else log2 of the
    (max batch, threads) pairs it may declare, an upper bound on the outcomes it can pick
    among (``bench/difr_covert.py`` measures how many are distinct)."""
    if fixed is not None:
        return 0.0
    return math.log2(max(n_sequences, 1) * MAX_THREADS)


@torch.no_grad()
def replay_logged(model: torch.nn.Module, log: ServingLog) -> dict[int, np.ndarray]:
    """Declared-precision logits ``(steps, V)`` per sequence index, from the logged batches
    run exactly (module doc): KV-cache decoding at the declared thread count, the served
    tokens fed back in."""
    sched = read_schedule(log)
    by_index = {s.index: s for s in log.sequences}
    out: dict[int, np.ndarray] = {}
    model.eval()
    with _threads(sched.threads), precision_context(log.header.precision):
        for b in sched.batches:
            rows = _replay_batch(model, [by_index[i] for i in b.seqs], b.steps)
            for k, i in enumerate(b.seqs):
                out[i] = rows[k]
    return out


def _replay_batch(model: torch.nn.Module, records: list[SequenceRecord], steps: int) -> np.ndarray:
    served = torch.tensor([list(r.tokens) for r in records], dtype=torch.long)
    logits, _, cache = model(torch.tensor([list(r.prompt) for r in records], dtype=torch.long))
    rows = []
    for j in range(steps):
        # exactly the server's conversion (``_serve._serve_batch``): float32, then float64
        rows.append(logits[:, -1, :].float().numpy().astype(np.float64))
        if j + 1 < steps:
            logits, _, cache = model(served[:, j : j + 1], cache=cache)
    return np.stack(rows, axis=1)
