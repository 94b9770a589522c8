"""The verifier's spot-check: re-run a small sample of the claimed work, measure its cost.

Why re-run instead of trusting a FLOP formula: the prover's records say how many tokens
of what work it did; the sensor says how many CPU-seconds the workload's process tree
burned. What connects the two is the cost of one claimed token on this host, which only
the verifier can measure honestly: it builds the declared model config, runs the
declared batch and sequence length (training step, KV-cache decoding or no-grad eval)
for about ``seconds`` of CPU, and divides CPU-seconds by tokens. Results are cached per
(work, host process) because a run repeats the same few claims.

Needs torch (the ``[testbed]`` extra) and a model the verifier can build: a well-known
name (the testbed presets, GPT-2 sizes) or a description handed over with the run
(``RUN_DIR/models/<name>.json``, ``inspectorate.models``); otherwise the spot-check cannot
run and says so. A model too large for the verifier's memory is timed by slices.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any

from inspectorate.models import ModelSpec, named_spec

# "recompute": a generation that re-reads the (context-cropped) prefix for every token,
# as nanoGPT's ``generate`` does; the verifier prices it, no claim names it (see
# verify/_physics.py ``_generation_hi``).
ACTIVITIES = ("training", "inference", "eval", "recompute")
BLOCKS = 5
# A declared model whose claimed op needs more than this share of the host's available
# memory is timed by slices (one and two blocks at full width) scaled by depth.
SLICE_MEMORY_SHARE = 0.25
ACTIVATION_ALLOWANCE = 2.0  # the bound counts no activations: leave room for them


@dataclass(frozen=True)
class Work:
    """One unit of claimed work: op, declared model (its name and, once resolved, its
    spec), batch and sequence length."""

    op: str
    model: str
    batch: int
    seq: int
    spec: ModelSpec | None = None


@dataclass(frozen=True)
class SpotCheck:
    work: Work
    cpu_s_per_token: float
    tokens: int
    cpu_s: float
    steps: int
    build_cpu_s: float = 0.0  # building the declared model once (what a job's start costs)
    slice: dict[str, Any] | None = None  # how a model too large to build whole was timed

    def to_dict(self) -> dict[str, Any]:
        spec = self.work.spec
        out: dict[str, Any] = {
            "op": self.work.op,
            "model": self.work.model,
            "family": None if spec is None else spec.family,
            "n_params": None if spec is None else spec.n_params(),
            "batch": self.work.batch,
            "seq": self.work.seq,
            "cpu_s_per_token": self.cpu_s_per_token,
            "tokens": self.tokens,
            "cpu_s": self.cpu_s,
            "steps": self.steps,
            "build_cpu_s": self.build_cpu_s,
        }
        if self.slice is not None:
            out["slice"] = self.slice
        return out


def spot_check(work: Work, seconds: float = 1.0, max_bytes: float | None = None) -> SpotCheck | str:
    """The measured cost of ``work``, or a sentence saying why it cannot be measured.
    ``max_bytes``: the memory the verifier may spend building the model (default: a
    share of what the host has available); above it the model is timed by slices."""
    if work.op not in ACTIVITIES:
        return f"no spot-check for op {work.op!r}"
    if work.batch < 1 or work.seq < 2:
        return "claimed batch/sequence length missing from the window records"
    try:
        import torch  # noqa: F401
    except ImportError:
        return "torch is not installed (the [testbed] extra): cannot re-run the claimed work"
    spec = work.spec or named_spec(work.model)
    if spec is None:
        return (
            f"model config {work.model!r} unknown to the verifier: cannot re-run it "
            f"(hand over its description as RUN_DIR/models/{work.model}.json)"
        )
    work = replace(work, spec=spec)
    budget = _budget() if max_bytes is None else max_bytes
    from inspectorate.verify._spotcache import cached  # kept across runs per host and model

    if _needs_b(work) <= budget:
        return cached(work, seconds, "whole", lambda: _measure(work, round(seconds, 3)), SpotCheck)
    return cached(work, seconds, "sliced", lambda: _sliced(work, round(seconds, 3), budget), SpotCheck)


def _budget() -> float:
    import psutil

    return SLICE_MEMORY_SHARE * psutil.virtual_memory().available


def _needs_b(work: Work) -> float:
    assert work.spec is not None
    return ACTIVATION_ALLOWANCE * sum(work.spec.memory_b(work.op, work.batch, work.seq).values())


def _sliced(work: Work, seconds: float, budget: float) -> SpotCheck | str:
    """Time one and two blocks at full width; the full model's cost per token is the
    one-block cost plus (depth - 1) times the cost the second block added. What the
    slice leaves out (attention over longer contexts is the same; cache effects of a
    larger working set are not) is measured in bench/spotcheck_slice.py."""
    spec = work.spec
    assert spec is not None
    if spec.depth < 2:
        return f"{work.model!r} needs {_needs_b(work) / 2**30:.1f} GiB to time, over the verifier's budget"
    if _needs_b(replace(work, spec=spec.with_layers(2))) > budget:
        return f"even two blocks of {work.model!r} exceed the verifier's memory budget"
    one, two = (_measure(replace(work, spec=spec.with_layers(k)), seconds) for k in (1, 2))
    per_block = max(two.cpu_s_per_token - one.cpu_s_per_token, 0.05 * one.cpu_s_per_token)
    cost = one.cpu_s_per_token + (spec.depth - 1) * per_block
    build = one.build_cpu_s + (spec.depth - 1) * max(two.build_cpu_s - one.build_cpu_s, 0.0)
    how = {"blocks_timed": [1, 2], "depth": spec.depth, "per_block_cpu_s_per_token": per_block}
    return SpotCheck(
        work, cost, one.tokens + two.tokens, one.cpu_s + two.cpu_s, one.steps + two.steps, build, how
    )


@lru_cache(maxsize=64)
def _measure(work: Work, seconds: float) -> SpotCheck:
    import torch

    assert work.spec is not None
    spec = work.spec
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # CPU-seconds per token, one intra-op thread (the busy-core unit)
    try:
        gen = torch.Generator().manual_seed(0)
        seq = min(work.seq, spec.context or work.seq)
        torch.manual_seed(0)
        built = time.process_time()
        model = spec.build()
        built = time.process_time() - built
        step = {"training": _train_step, "inference": _decode, "eval": _eval_step, "recompute": _recompute}[
            work.op
        ]
        state, cpu0, warm = None, time.process_time(), 0
        while (
            warm < 1
            or (warm < 3 or time.process_time() - cpu0 < 0.1 * seconds)
            and (time.process_time() - cpu0 < seconds)
        ):  # warm-up: allocations, optimizer state; 1 step when a step is slow
            state, _ = step(model, spec.vocab, work.batch, seq, gen, state)
            warm += 1
        costs, tokens, steps, cpu = [], 0, 0, 0.0
        for _ in range(BLOCKS):  # median of blocks: a burst of contention moves one block, not all
            b_cpu0, b_tokens, b_steps = time.process_time(), 0, 0
            while b_steps < 1 or time.process_time() - b_cpu0 < seconds / BLOCKS:
                state, n = step(model, spec.vocab, work.batch, seq, gen, state)
                b_tokens, b_steps = b_tokens + n, b_steps + 1
            b_cpu = time.process_time() - b_cpu0
            costs.append(b_cpu / b_tokens)
            tokens, steps, cpu = tokens + b_tokens, steps + b_steps, cpu + b_cpu
    finally:
        torch.set_num_threads(threads)
    return SpotCheck(work, float(sorted(costs)[len(costs) // 2]), tokens, cpu, steps, built)


@lru_cache(maxsize=1)
def checkpoint_cpu_s_per_byte(mib: int = 32) -> float | None:
    """CPU-seconds per byte of writing a replay checkpoint the way the claim format asks:
    serialise the tensors to a file (torch.save), hash the file and hash the weights.
    Measured once per process on a ``mib`` MiB state; None without torch."""
    try:
        import torch

        from inspectorate.models._checkpoint import file_sha256, weights_sha256
    except ImportError:
        return None
    import tempfile
    from pathlib import Path

    state = {f"w{i}": torch.randn(mib * 2**16 // 8) for i in range(8)}  # mib MiB of float32
    with tempfile.TemporaryDirectory(prefix="inspectorate-spot-") as tmp:
        path = Path(tmp) / "ckpt.pt"
        cpu0 = time.process_time()
        torch.save(state, path)
        file_sha256(path)
        weights_sha256(state)
        cpu = time.process_time() - cpu0
        size = path.stat().st_size
    return cpu / max(size, 1)


def _batch(vocab: int, batch: int, seq: int, gen: Any) -> Any:
    import torch

    return torch.randint(0, vocab, (batch, seq), generator=gen)


def _train_step(model: Any, vocab: int, batch: int, seq: int, gen: Any, opt: Any) -> tuple[Any, int]:
    import torch
    from torch.nn import functional as F

    opt = opt or torch.optim.AdamW(model.parameters(), lr=1e-4)
    x, y = _batch(vocab, batch, seq, gen), _batch(vocab, batch, seq, gen)
    loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return opt, batch * seq


def _eval_step(model: Any, vocab: int, batch: int, seq: int, gen: Any, state: Any) -> tuple[Any, int]:
    import torch
    from torch.nn import functional as F

    with torch.no_grad():
        y = _batch(vocab, batch, seq, gen)
        F.cross_entropy(model(_batch(vocab, batch, seq, gen)).flatten(0, 1), y.flatten())
    return state, batch * seq


def _decode(model: Any, vocab: int, batch: int, seq: int, gen: Any, state: Any) -> tuple[Any, int]:
    """One whole generation of ``seq`` tokens (8-token prompt, then one token per step):
    ``batch * seq`` tokens, as the serving workload tallies prefill plus decoded tokens."""
    import torch

    prompt = max(1, min(8, seq // 4))  # a short generation is mostly decoded, not prompt
    with torch.no_grad():
        logits, cache = model.decode(_batch(vocab, batch, prompt, gen), None)
        for _ in range(seq - prompt):
            token = logits.argmax(dim=-1, keepdim=True)
            logits, cache = model.decode(token, cache)
    return state, batch * seq


def _recompute(model: Any, vocab: int, batch: int, seq: int, gen: Any, state: Any) -> tuple[Any, int]:
    """The same generation as ``_decode`` without a cache: every new token runs the
    model over the whole prefix so far (nanoGPT's ``generate``; a server with its KV
    cache turned off). Honest, and dearer per token than decoding with a cache."""
    import torch

    prompt = max(1, min(8, seq // 4))
    with torch.no_grad():
        idx = _batch(vocab, batch, prompt, gen)
        for _ in range(seq - prompt):
            token = model(idx)[:, -1, :].argmax(dim=-1, keepdim=True)
            idx = torch.cat([idx, token], dim=1)
    return state, batch * seq
