"""The verifier's spot-check: re-run a small sample of the claimed work, measure its cost.

Why re-run instead of trusting a FLOP formula: the prover's records say how many tokens
of what work it did; the sensor says how many CPU-seconds the workload's process tree
burned. What connects the two is the cost of one claimed token on this host, which only
the verifier can measure honestly: it builds the declared model config, runs the
declared batch and sequence length (training step, KV-cache decoding or no-grad eval)
for about ``seconds`` of CPU, and divides CPU-seconds by tokens. Results are cached per
(work, host process) because a run repeats the same few claims.

Needs torch (the ``[testbed]`` extra) and a model config the verifier knows by name (the
testbed presets); otherwise the spot-check cannot run and says so.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

ACTIVITIES = ("training", "inference", "eval")
BLOCKS = 5


@dataclass(frozen=True)
class Work:
    """One unit of claimed work: op, model preset, batch and sequence length."""

    op: str
    model: str
    batch: int
    seq: int


@dataclass(frozen=True)
class SpotCheck:
    work: Work
    cpu_s_per_token: float
    tokens: int
    cpu_s: float
    steps: int
    build_cpu_s: float = 0.0  # building the declared model once (what a job's start costs)

    def to_dict(self) -> dict[str, Any]:
        return {
            "op": self.work.op,
            "model": self.work.model,
            "batch": self.work.batch,
            "seq": self.work.seq,
            "cpu_s_per_token": self.cpu_s_per_token,
            "tokens": self.tokens,
            "cpu_s": self.cpu_s,
            "steps": self.steps,
            "build_cpu_s": self.build_cpu_s,
        }


def spot_check(work: Work, seconds: float = 1.0) -> SpotCheck | str:
    """The measured cost of ``work``, or a sentence saying why it cannot be measured."""
    if work.op not in ACTIVITIES:
        return f"no spot-check for op {work.op!r}"
    if work.batch < 1 or work.seq < 2:
        return "claimed batch/sequence length missing from the window records"
    try:
        import torch  # noqa: F401

        from inspectorate.models._gpt import PRESETS
    except ImportError:
        return "torch is not installed (the [testbed] extra): cannot re-run the claimed work"
    if work.model not in PRESETS:
        return f"model config {work.model!r} unknown to the verifier: cannot re-run it"
    return _measure(work, round(seconds, 3))


@lru_cache(maxsize=64)
def _measure(work: Work, seconds: float) -> SpotCheck:
    import torch

    from inspectorate.models._gpt import GPT, preset

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # CPU-seconds per token, one intra-op thread (the busy-core unit)
    try:
        gen = torch.Generator().manual_seed(0)
        config = preset(work.model)
        seq = min(work.seq, config.block_size)
        torch.manual_seed(0)
        built = time.process_time()
        model = GPT(config)
        built = time.process_time() - built
        step = {"training": _train_step, "inference": _decode, "eval": _eval_step}[work.op]
        state, cpu0, warm = None, time.process_time(), 0
        while (
            warm < 1
            or (warm < 3 or time.process_time() - cpu0 < 0.1 * seconds)
            and (time.process_time() - cpu0 < seconds)
        ):  # warm-up: allocations, optimizer state; 1 step when a step is slow
            state, _ = step(model, work.batch, seq, gen, state)
            warm += 1
        costs, tokens, steps, cpu = [], 0, 0, 0.0
        for _ in range(BLOCKS):  # median of blocks: a burst of contention moves one block, not all
            b_cpu0, b_tokens, b_steps = time.process_time(), 0, 0
            while b_steps < 1 or time.process_time() - b_cpu0 < seconds / BLOCKS:
                state, n = step(model, work.batch, seq, gen, state)
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


def _batch(model: Any, batch: int, seq: int, gen: Any) -> Any:
    import torch

    return torch.randint(0, model.config.vocab_size, (batch, seq), generator=gen)


def _train_step(model: Any, batch: int, seq: int, gen: Any, opt: Any) -> tuple[Any, int]:
    import torch

    opt = opt or torch.optim.AdamW(model.parameters(), lr=1e-4)
    x, y = _batch(model, batch, seq, gen), _batch(model, batch, seq, gen)
    _, loss, _ = model(x, y)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
    opt.step()
    opt.zero_grad(set_to_none=True)
    return opt, batch * seq


def _eval_step(model: Any, batch: int, seq: int, gen: Any, state: Any) -> tuple[Any, int]:
    import torch

    with torch.no_grad():
        model(_batch(model, batch, seq, gen), _batch(model, batch, seq, gen))
    return state, batch * seq


def _decode(model: Any, batch: int, seq: int, gen: Any, state: Any) -> tuple[Any, int]:
    """One whole generation of ``seq`` tokens (8-token prompt, then one token per step):
    ``batch * seq`` tokens, as the serving workload tallies prefill plus decoded tokens."""
    import torch

    prompt = min(8, seq - 1)
    with torch.no_grad():
        logits, _, cache = model(_batch(model, batch, prompt, gen))
        for _ in range(seq - prompt):
            token = logits[:, -1, :].argmax(dim=-1, keepdim=True)
            logits, _, cache = model(token, cache=cache)
    return state, batch * seq
