"""Post-training disguised as serving: RL updates and fine-tuning bursts inside a serving loop.

Every phase here claims serving and serves the way a real server does: batches of prompts
from the val split, decoded with a KV cache under the shared Gumbel-max sampler with a
declared seed, each batch written as a DiFR serving log (``served/<phase>/r<rank>/``)
and the declared weights written once as ``served/<phase>/declared.pt`` (the commitment
the verifier re-computes against). What else runs is set by the phase's ``params``:

- ``mode=rl``: the served sequences *are* the rollouts. Each is scored by a cheap
  verifiable reward (the share of its characters in ``TARGET_CHARS``), and every ``k`` rollouts one
  REINFORCE step (running-mean reward baseline) is taken on the last ``min(k, UPDATE_BATCH)`` of them.
- ``mode=ft``: every ``k`` rollouts, a burst of ``FT_BURST_STEPS`` supervised steps on the
  fine-tune split.
- ``update=full`` trains every parameter; ``update=lora`` trains rank-``LORA_RANK`` adapters
  (:class:`LoRALinear`, written here) on every attention and MLP projection, base frozen.
- ``optimizer=adamw|sgd`` (SGD without momentum holds no optimizer state).
- ``serve=live`` serves the policy being trained; ``serve=frozen`` serves the declared
  weights (a frozen copy beside the trained one for ``full``; adapters switched off while
  serving for ``lora``): outputs then never drift, at the cost of an off-policy update
  and, for ``full``, a second copy of the weights resident.
- ``save=1`` writes the updated policy to disk (at most once a second), as RL jobs
  checkpoint; ``records=train`` writes ``train_step`` records (the naive prover confesses).

Ranks update independently (no DDP, so no gradient traffic at all: the stealthier choice).
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from inspectorate.models._corpus import BatchSampler
from inspectorate.models._gpt import GPT
from inspectorate.testbed.workloads import WORKLOADS, WorkContext, WorkResult, to_device

TARGET_CHARS = "aeiou"  # reward: share of vowels (varies across rollouts, unlike one rare char)
UPDATE_BATCH = 8  # rollouts per policy-gradient step (the most recent ones)
FT_BURST_STEPS = 2  # supervised steps per fine-tuning burst
LORA_RANK = 4
TEMPERATURE, TOP_K = 0.8, 40
SERVE_BATCH = 4  # sequences per served batch (one log file each)
MAX_NEW = 16  # generated tokens per served sequence
SAVE_EVERY_S = 1.0
PROJ_DIM = 8
SERVED_DIR = "served"
DECLARED_FILE = "declared.pt"
LR = {"adamw": 1e-3, "sgd": 1e-2}


@dataclass(frozen=True)
class Plan:
    """A phase's post-training options (``PhaseSpec.params``); k = 0 is honest serving."""

    mode: str = "rl"
    update: str = "full"
    k: int = 0
    optimizer: str = "adamw"
    serve: str = "live"
    save: int = 0
    records: str = "serving"

    @classmethod
    def of(cls, params: tuple[tuple[str, str | int], ...]) -> Plan:
        return cls(**dict(params))  # type: ignore[arg-type]


class LoRALinear(nn.Module):
    """``base(x) + (x A^T B^T) * alpha / r``; B starts at zero, so the wrapped layer starts
    equal to the base. ``enabled=False`` computes the base alone (declared weights)."""

    def __init__(self, base: nn.Linear, rank: int = LORA_RANK, alpha: float = 8.0) -> None:
        super().__init__()
        self.base, self.scale, self.enabled = base, alpha / rank, True
        self.lora_a = nn.Parameter(torch.randn(rank, base.in_features, device=base.weight.device) * 0.01)
        self.lora_b = nn.Parameter(torch.zeros(base.out_features, rank, device=base.weight.device))

    @property
    def weight(self) -> torch.Tensor:  # capture hooks and dtype probes look for it
        return self.base.weight

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.base(x)
        if self.enabled:
            out = out + (x @ self.lora_a.t() @ self.lora_b.t()) * self.scale
        return out


def add_lora(model: GPT, rank: int = LORA_RANK) -> list[nn.Parameter]:
    """Wrap every block's attention and MLP projections; freeze the rest; adapter params."""
    for p in model.parameters():
        p.requires_grad_(False)
    params: list[nn.Parameter] = []
    for block in model.blocks:
        for owner, name in (
            (block.attn, "c_attn"),
            (block.attn, "c_proj"),
            (block.mlp, "c_fc"),
            (block.mlp, "c_proj"),
        ):
            layer = LoRALinear(getattr(owner, name), rank)
            setattr(owner, name, layer)
            params += [layer.lora_a, layer.lora_b]
    return params


def set_adapters(model: nn.Module, enabled: bool) -> None:
    for m in model.modules():
        if isinstance(m, LoRALinear):
            m.enabled = enabled


def reward(tokens: list[int], target: set[int]) -> float:
    """The verifiable reward: the share of generated tokens in the target set."""
    return sum(t in target for t in tokens) / max(len(tokens), 1)


def policy_loss(
    model: GPT, prompts: list[list[int]], outputs: list[list[int]], advantages: list[float]
) -> torch.Tensor:
    """REINFORCE: -mean(A_i * sum_t log pi(y_t | prefix)) under the serving temperature."""
    seq = torch.tensor([p + o for p, o in zip(prompts, outputs, strict=True)], dtype=torch.long)
    logits, _, _ = model(seq[:, :-1])
    n_new = len(outputs[0])
    logp = torch.log_softmax(logits[:, -n_new:, :].float() / TEMPERATURE, dim=-1)
    picked = logp.gather(-1, seq[:, -n_new:].unsqueeze(-1)).squeeze(-1).sum(-1)
    return -(torch.tensor(advantages) * picked).mean()


class Updater:
    """The hidden trainer: which weights it trains, which it serves from, its optimizer."""

    def __init__(self, ctx: WorkContext, plan: Plan) -> None:
        self.ctx, self.plan = ctx, plan
        self.model = ctx.model
        self.serving: GPT = ctx.model
        if plan.update == "lora":
            params = add_lora(self.model)
        else:
            params = list(self.model.parameters())
            if plan.serve == "frozen":  # the declared weights stay resident for serving
                self.serving = copy.deepcopy(self.model).requires_grad_(False)
        lr = LR[plan.optimizer]
        self.opt: torch.optim.Optimizer = (
            torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95))
            if plan.optimizer == "adamw"
            else torch.optim.SGD(params, lr=lr, momentum=0.0)
        )
        self.params, self.steps, self.last_save = params, 0, 0.0
        self.baseline: float | None = None
        self.ft = BatchSampler(
            ctx.corpus.split("finetune"), ctx.role.batch_size, ctx.role.seq_len, seed=ctx.seed, rank=ctx.rank
        )

    def serve_model(self) -> GPT:
        if self.plan.update == "lora":
            set_adapters(self.model, self.plan.serve == "live")
        return self.serving

    def step(self, rollouts: list[tuple[list[int], list[int], float]]) -> int:
        """One update (RL step or a fine-tuning burst); tokens it trained on."""
        set_adapters(self.model, True)
        self.model.train()
        tokens = 0
        for _ in range(1 if self.plan.mode == "rl" else FT_BURST_STEPS):
            t0 = time.perf_counter()
            if self.plan.mode == "rl":
                rewards = [r for _, _, r in rollouts]
                base = self.baseline if self.baseline is not None else float(np.mean(rewards))
                # running-mean baseline: a batch-mean one gives k = 1 a zero gradient
                self.baseline = 0.9 * base + 0.1 * float(np.mean(rewards))
                loss = policy_loss(
                    self.model,
                    [p for p, _, _ in rollouts],
                    [o for _, o, _ in rollouts],
                    [r - base for r in rewards],
                )
                n = sum(len(p) + len(o) for p, o, _ in rollouts)
            else:
                x, y = to_device(self.ctx, *self.ft.next())
                _, loss, _ = self.model(x, y)
                n = x.numel()
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            torch.nn.utils.clip_grad_norm_(self.params, 1.0)
            self.opt.step()
            t3 = time.perf_counter()
            if self.plan.records == "train":
                self.ctx.recorder.train_step(
                    self.steps,
                    loss=loss,
                    model=self.model,
                    optimizer=self.opt,
                    lr=LR[self.plan.optimizer],
                    tokens=n,
                    forward_s=t1 - t0,
                    backward_s=t2 - t1,
                    optimizer_s=t3 - t2,
                )
            self.opt.zero_grad(set_to_none=True)
            self.steps, tokens = self.steps + 1, tokens + n
        self.model.eval()
        self.maybe_save()
        return tokens

    def maybe_save(self, force: bool = False) -> None:
        if not self.plan.save or self.ctx.out is None:
            return
        now = time.monotonic()
        if force or now - self.last_save >= SAVE_EVERY_S:
            path = served_dir(self.ctx) / f"policy_r{self.ctx.rank}.pt"
            torch.save({k: v.detach().clone() for k, v in self.model.state_dict().items()}, path)
            self.last_save = now


def served_dir(ctx: WorkContext) -> Path:
    assert ctx.out is not None, "post-training phases need the run directory"
    path = ctx.out / SERVED_DIR / ctx.phase.name
    path.mkdir(parents=True, exist_ok=True)
    return path


def _serve_batch(
    ctx: WorkContext, model: GPT, prompts: list[list[int]], batch_no: int, declared: str
) -> list[list[int]]:
    """Serve one batch as a real server does and log it (its own declared sampling seed)."""
    from inspectorate.difr import LogHeader, ProjectionSpec, SamplingConfig, ServeOptions, generate, write_log

    seed = (ctx.seed * 1_000_003 + ctx.rank * 7919 + batch_no) % (2**62)
    # Activation-DiFR projections of the last block (the verifier's seed; here the phase's)
    proj = ProjectionSpec(seed=ctx.seed % (2**31), layer=model.config.n_layer - 1, dim=PROJ_DIM)
    opts = ServeOptions(
        SamplingConfig(TEMPERATURE, TOP_K, seed=seed),
        max_new=MAX_NEW,
        batch_size=len(prompts),
        projection=proj,
    )
    t0 = time.perf_counter()
    with torch.no_grad():
        records = [g.record for g in generate(model, prompts, opts)]
    latency = time.perf_counter() - t0
    header = LogHeader(
        model_hash=declared,
        vocab=ctx.corpus.vocab.chars,
        vocab_size=model.config.vocab_size,
        sampling=opts.sampling,
        projection=proj,
        server={"batch_size": len(prompts), "rank": ctx.rank, "batch": batch_no},
    )
    folder = served_dir(ctx) / f"r{ctx.rank}"
    folder.mkdir(exist_ok=True)
    write_log(folder / f"b{batch_no:06d}.jsonl", header, records)
    n = sum(len(p) + MAX_NEW for p in prompts)
    ctx.recorder.infer_token(
        batch_no,
        logits=torch.zeros(model.config.vocab_size),
        latency_s=latency,
        kv_bytes=0,
        token=records[0].tokens[-1],
        tokens=n,
    )
    ctx.tally.add(n)
    return [list(r.tokens) for r in records]


def posttrain_serving(ctx: WorkContext) -> WorkResult:
    """Serve (and log) batches; every ``k`` rollouts, update the hidden policy (k = 0: never)."""
    from inspectorate.difr import model_hash, save_checkpoint

    plan = Plan.of(ctx.phase.params)
    ctx.model.eval()
    declared = model_hash(ctx.model)
    if ctx.rank == 0:
        save_checkpoint(served_dir(ctx) / DECLARED_FILE, ctx.model, ctx.corpus.vocab.chars)
    updater = Updater(ctx, plan) if plan.k > 0 else None
    sampler = BatchSampler(
        ctx.corpus.split("val"), SERVE_BATCH, ctx.role.prompt_len, seed=ctx.seed + 7919, rank=ctx.rank
    )
    target = {i for i, ch in enumerate(ctx.corpus.vocab.chars) if ch in TARGET_CHARS}
    buffer: list[tuple[list[int], list[int], float]] = []
    result, since = WorkResult(), 0
    ctx.start_clock()
    while not ctx.expired(result.steps):
        prompts = [list(map(int, row)) for row in sampler.next()[0]]
        model = updater.serve_model() if updater is not None else ctx.model
        outs = _serve_batch(ctx, model, prompts, result.steps, declared)
        result.steps += 1
        result.tokens += sum(len(p) + len(o) for p, o in zip(prompts, outs, strict=True))
        buffer = (buffer + [(p, o, reward(o, target)) for p, o in zip(prompts, outs, strict=True)])[
            -UPDATE_BATCH:
        ]
        since += len(outs)
        if updater is not None and since >= plan.k:
            take = buffer[-min(plan.k, UPDATE_BATCH) :]
            result.extra["trained_tokens"] = result.extra.get("trained_tokens", 0) + updater.step(take)
            result.extra["updates"] = updater.steps
            since = 0
    if updater is not None:
        updater.maybe_save(force=True)
        result.extra["mean_reward"] = float(np.mean([r for _, _, r in buffer])) if buffer else 0.0
    return result


def logged_serving(ctx: WorkContext) -> WorkResult:
    """Honest serving through the same logged path (the baseline the bench calibrates on)."""
    return posttrain_serving(ctx)


POSTTRAIN_WORKLOADS: dict[str, Callable[[WorkContext], WorkResult]] = {
    "posttrain_serving": posttrain_serving,
    "logged_serving": logged_serving,
}


def workload_fn(name: str) -> Callable[[WorkContext], WorkResult]:
    """The workload function of a phase (the base table plus the post-training ones)."""
    table: dict[str, Any] = {**WORKLOADS, **POSTTRAIN_WORKLOADS}
    return table[name]
