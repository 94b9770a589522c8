"""The workloads one rank runs in a phase: pretrain, finetune, inference, eval, idle, and
the two follow-up attacks that need their own loops (fake-collective inference, and
interleaved training/inference bursts).

Why the ``agree`` call before every data-parallel step: DDP needs every rank to run the
same number of backward passes, but our budgets are wall-clock seconds, and two ranks
reading the clock a microsecond apart can disagree about whether time is up; one rank
would then wait forever in an all-reduce. A 2-float MAX all-reduce (stop flag, progress)
makes the decision, and the learning rate that depends on progress, identical on all
ranks. It is control traffic and is not written to the collective log (only gradient
buckets are, through the DDP comm hook); honest inference issues no collective at all.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel as DDP

from inspectorate.capture import CollectiveLog, StepRecorder, allreduce_logging_hook
from inspectorate.models._corpus import BatchSampler, Corpus
from inspectorate.models._gpt import GPT, kv_cache_bytes, sample_next
from inspectorate.testbed.claims import ClaimWriter
from inspectorate.testbed.phases import PhaseSpec
from inspectorate.testbed.profiles import Profile, RoleSpec
from inspectorate.testbed.windows import WindowTally

CONTINUE, END_BURST, END_PHASE = 0, 1, 2


@dataclass
class WorkContext:
    """Everything a workload needs on one rank; built by the worker for each phase."""

    rank: int
    world_size: int
    device: torch.device
    phase: PhaseSpec
    profile: Profile
    role: RoleSpec
    model: GPT
    corpus: Corpus
    recorder: StepRecorder
    collectives: CollectiveLog
    tally: WindowTally
    budget_s: float
    seed: int = 0
    max_steps: int | None = None
    started: float = field(default_factory=time.monotonic)
    claims: ClaimWriter | None = None  # rank 0 of a job that writes a replay claim
    out: Path | None = None  # the run directory (workloads that write served-output logs)
    handover: Any = None  # testbed.handover.Handover: served outputs / eval batches handed over

    @property
    def distributed(self) -> bool:
        return self.world_size > 1 and dist.is_available() and dist.is_initialized()

    def start_clock(self) -> None:
        """The budget counts from here: one-time setup (DDP wrapping) is not workload time."""
        self.started = time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def progress(self, step: int) -> float:
        """Fraction of the budget used: time, or steps when a step cap is set."""
        frac = self.elapsed() / self.budget_s if self.budget_s > 0 else 1.0
        if self.max_steps is not None:
            frac = max(frac, step / max(self.max_steps, 1))
        return frac

    def expired(self, step: int) -> bool:
        return self.progress(step) >= 1.0


@dataclass
class WorkResult:
    steps: int = 0
    tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


# ---------------------------------------------------------------------------- helpers


def agree(ctx: WorkContext, flag: int, progress: float) -> tuple[int, float]:
    """MAX of (flag, progress) over ranks: every rank takes the same decision."""
    if not ctx.distributed:
        return flag, progress
    on_gpu = dist.get_backend() == "nccl"
    t = torch.tensor([float(flag), progress], device=ctx.device if on_gpu else "cpu")
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return int(t[0].item()), float(t[1].item())


def cosine_lr(progress: float, peak: float, warmup: float = 0.05, floor: float = 0.1) -> float:
    """Linear warmup over the first ``warmup`` of the budget, then cosine to ``floor * peak``."""
    p = min(max(progress, 0.0), 1.0)
    if p < warmup:
        return peak * (p + 1e-3) / warmup
    cos = 0.5 * (1.0 + math.cos(math.pi * (p - warmup) / (1.0 - warmup)))
    return peak * (floor + (1.0 - floor) * cos)


def adamw(model: torch.nn.Module, lr: float) -> torch.optim.AdamW:
    """GPT-2-style AdamW over the trainable parameters only (frozen ones get no state)."""
    params = [p for p in model.parameters() if p.requires_grad]
    return torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.95), weight_decay=0.1)


class SubsettedLogHook:
    """Comm hook whose *log* keeps 1 in ``keep_every`` all-reduces in the first half of
    the phase and none after; every all-reduce still happens (the traffic is real)."""

    def __init__(self, ctx: WorkContext, keep_every: int = 4, drop_after: float = 0.5) -> None:
        self.logged = allreduce_logging_hook(ctx.collectives)
        self.ctx, self.keep_every, self.drop_after = ctx, keep_every, drop_after
        self.count = 0

    def __call__(self, state, bucket):  # see unannotated()
        from torch.distributed.algorithms.ddp_comm_hooks.default_hooks import allreduce_hook

        self.count += 1
        keep = self.ctx.elapsed() < self.drop_after * self.ctx.budget_s and self.count % self.keep_every == 1
        return self.logged(state, bucket) if keep else allreduce_hook(state, bucket)


def warm_up(device: torch.device) -> None:
    """Pay DDP's one-time costs (first construction takes seconds) before any phase."""
    if not (dist.is_available() and dist.is_initialized()):
        return
    layer = torch.nn.Linear(4, 4).to(device)
    ids = [device.index] if device.type == "cuda" else None
    net = DDP(layer, device_ids=ids)
    net(torch.zeros(1, 4, device=device)).sum().backward()
    dist.barrier()


def unannotated(hook: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    """DDP rejects a comm hook whose ``bucket`` annotation is not literally
    ``dist.GradBucket`` (a string annotation under ``from __future__ import annotations``
    counts as another one), so hooks are registered through this bare wrapper."""

    def hook_(state, bucket):
        return hook(state, bucket)

    return hook_


def wrap_ddp(ctx: WorkContext, module: torch.nn.Module) -> torch.nn.Module:
    """DDP with the logging comm hook (or the subsetting one); the module itself when alone."""
    if not ctx.distributed:
        return module
    ids = [ctx.device.index] if ctx.device.type == "cuda" else None
    ddp = DDP(module, device_ids=ids)
    hook: Callable[[Any, Any], Any]
    if ctx.phase.collective_log == "subsetted":
        hook = SubsettedLogHook(ctx)
    else:
        hook = allreduce_logging_hook(ctx.collectives)
    ddp.register_comm_hook(None, unannotated(hook))
    return ddp


def to_device(ctx: WorkContext, *arrays: Any) -> list[torch.Tensor]:
    return [torch.from_numpy(a).to(ctx.device, non_blocking=True) for a in arrays]


def autocast(ctx: WorkContext) -> Any:
    """bf16 autocast on CUDA (as a real H100 run would), a no-op context on CPU."""
    if ctx.device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def _sync(ctx: WorkContext) -> float:
    """Wall time after the device finished (CUDA is asynchronous; timings must not lie)."""
    if ctx.device.type == "cuda":
        torch.cuda.synchronize(ctx.device)
    return time.perf_counter()


# ---------------------------------------------------------------------------- training


@dataclass
class Trainer:
    """One model's optimizer, sampler and (DDP-wrapped) forward: a step at a time."""

    ctx: WorkContext
    split: str
    lr_fn: Callable[[float], float]
    step: int = 0

    def __post_init__(self) -> None:
        self.net = wrap_ddp(self.ctx, self.ctx.model)
        self.opt = adamw(self.ctx.model, self.lr_fn(0.0))
        role = self.ctx.role
        self.sampler = BatchSampler(
            self.ctx.corpus.split(self.split),
            role.batch_size,
            role.seq_len,
            seed=self.ctx.seed,
            rank=self.ctx.rank,
        )
        if self.ctx.claims is not None:
            model = self.ctx.model
            self.ctx.claims.begin(
                model,
                self.opt,
                model=model.config.to_dict(),
                batch_size=role.batch_size,
                seq_len=role.seq_len,
                lr=role.lr,
                seed=self.ctx.seed,
                split=self.split,
                world_size=self.ctx.world_size,
                freeze_embeddings=not model.wte.weight.requires_grad,
            )
        self.ctx.start_clock()

    def run_step(self, progress: float) -> int:
        """Forward, backward (gradients all-reduced by DDP), clip, AdamW, record; tokens."""
        ctx, model = self.ctx, self.ctx.model
        model.train()
        x, y = to_device(ctx, *self.sampler.next())
        lr = self.lr_fn(progress)
        for group in self.opt.param_groups:
            group["lr"] = lr
        t0 = _sync(ctx)
        with autocast(ctx):
            _, loss, _ = self.net(x, y)
        t1 = _sync(ctx)
        loss.backward()
        t2 = _sync(ctx)
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        self.opt.step()
        t3 = _sync(ctx)
        ctx.recorder.train_step(
            self.step,
            loss=loss,
            model=model,
            optimizer=self.opt,
            lr=lr,
            tokens=x.numel(),
            forward_s=t1 - t0,
            backward_s=t2 - t1,
            optimizer_s=t3 - t2,
        )
        self.opt.zero_grad(set_to_none=True)
        ctx.tally.add(x.numel())
        self.step += 1
        if ctx.claims is not None:
            ctx.claims.after_step(self.step, lr)
        return x.numel()


def _train(ctx: WorkContext, split: str, lr_fn: Callable[[float], float]) -> WorkResult:
    trainer = Trainer(ctx, split, lr_fn)
    result = WorkResult()
    while True:
        local = END_PHASE if ctx.expired(trainer.step) else CONTINUE
        flag, progress = agree(ctx, local, ctx.progress(trainer.step))
        if flag:
            break
        result.tokens += trainer.run_step(progress)
    result.steps = trainer.step
    return result


def pretrain(ctx: WorkContext) -> WorkResult:
    """AdamW with warmup + cosine decay on the pretraining split, data-parallel."""
    return _train(ctx, "pretrain", lambda p: cosine_lr(p, ctx.role.lr))


def finetune(ctx: WorkContext) -> WorkResult:
    """Embeddings (and the tied head) frozen, constant small lr, the disjoint finetune split."""
    ctx.model.freeze_embeddings()
    return _train(ctx, "finetune", lambda p: ctx.profile.finetune_lr)


# ---------------------------------------------------------------------------- inference


def generation_length(block_size: int, role: RoleSpec) -> int:
    """Tokens per generated sequence (prompt included): the serving 'sequence length'."""
    return min(block_size, max(role.seq_len, 128))


def decode_steps(
    ctx: WorkContext, temperature: float = 0.8, top_k: int = 40, start_step: int = 0
) -> Iterator[int]:
    """Generate forever with a KV cache: prefill a prompt from the val split, decode one
    token per step (recording each), restart when the context is full. Yields tokens
    processed per step (prefill included in the first)."""
    model, role = ctx.model, ctx.role
    gen_len = generation_length(model.config.block_size, role)
    sampler = BatchSampler(
        ctx.corpus.split("val"), role.infer_batch, role.prompt_len, seed=ctx.seed + 7919, rank=ctx.rank
    )
    gen = torch.Generator(device=ctx.device).manual_seed(ctx.seed * 1009 + ctx.rank + start_step)
    handover = ctx.handover
    if handover is not None:  # served outputs the verifier re-computes (testbed.handover)
        handover.begin("serve", model, ctx.corpus.vocab.chars)
    step = start_step
    while True:
        (prompt,) = to_device(ctx, sampler.next()[0])
        if handover is not None:
            handover.start_sequences(prompt)
        with torch.no_grad(), autocast(ctx):
            logits, _, cache = model(prompt)
        pending = prompt.numel()
        for _ in range(gen_len - prompt.shape[1]):
            t0 = _sync(ctx)
            if handover is not None:  # keyed Gumbel-max, the verifier's sampler
                token = handover.sample(logits[:, -1].float())
            else:
                token = sample_next(logits.float(), temperature, top_k, gen)
            with torch.no_grad(), autocast(ctx):
                logits, _, cache = model(token, cache=cache)
            latency = _sync(ctx) - t0
            ctx.recorder.infer_token(
                step,
                logits=logits[0, -1],
                latency_s=latency,
                kv_bytes=kv_cache_bytes(cache),
                token=int(token[0, 0]),
                tokens=pending + token.numel(),
            )
            ctx.tally.add(pending + token.numel())
            yield pending + token.numel()
            pending, step = 0, step + 1


def inference(ctx: WorkContext) -> WorkResult:
    """Serve: sampled generation with a KV cache on each rank; no collectives at all."""
    ctx.model.eval()
    result = WorkResult()
    for tokens in decode_steps(ctx):
        result.steps += 1
        result.tokens += tokens
        if ctx.expired(result.steps):
            break
    return result


def evaluate(ctx: WorkContext) -> WorkResult:
    """No-grad loss on validation batches (eval)."""
    ctx.model.eval()
    role = ctx.role
    sampler = BatchSampler(
        ctx.corpus.split("val"), role.batch_size, role.seq_len, seed=ctx.seed, rank=ctx.rank
    )
    result = WorkResult()
    if ctx.handover is not None:  # eval batches the verifier re-computes (testbed.handover)
        ctx.handover.begin("eval", ctx.model, ctx.corpus.vocab.chars)
    while not ctx.expired(result.steps):
        x, y = to_device(ctx, *sampler.next())
        t0 = _sync(ctx)
        with torch.no_grad(), autocast(ctx):
            _, loss, _ = ctx.model(x, y)
        seconds = _sync(ctx) - t0
        if ctx.handover is not None:
            ctx.handover.evaluated(x, y, float(loss))
        ctx.recorder.eval_step(result.steps, loss=float(loss), tokens=x.numel(), seconds=seconds)
        ctx.tally.add(x.numel())
        result.steps += 1
        result.tokens += x.numel()
    return result


def idle(ctx: WorkContext) -> WorkResult:
    """Sleep: only the sensors speak."""
    while not ctx.expired(0):
        time.sleep(min(0.2, max(0.0, ctx.budget_s - ctx.elapsed())))
    return WorkResult()


# ---------------------------------------------------------------------------- attacks


class GradShadow(torch.nn.Module):
    """A copy of the model whose forward is a zero that touches every parameter: under DDP
    its backward all-reduces gradient buckets exactly as big as training's, for no compute."""

    def __init__(self, model: GPT) -> None:
        super().__init__()
        self.gpt = GPT(model.config).to(next(model.parameters()).device)

    def forward(self) -> torch.Tensor:
        return torch.stack([p.sum() for p in self.gpt.parameters()]).sum() * 0.0


def fake_nccl_inference(ctx: WorkContext) -> WorkResult:
    """Inference, plus one fake gradient sync every ``fake_period_s`` (a training cadence)."""
    ctx.model.eval()
    shadow = GradShadow(ctx.model)
    net = wrap_ddp(ctx, shadow)
    ctx.start_clock()
    steps, result = decode_steps(ctx), WorkResult()
    while True:
        round_end = time.monotonic() + ctx.profile.fake_period_s
        for tokens in steps:
            result.steps += 1
            result.tokens += tokens
            if time.monotonic() >= round_end or ctx.expired(result.steps):
                break
        flag, _ = agree(ctx, END_PHASE if ctx.expired(result.steps) else CONTINUE, 0.0)
        if flag:
            break
        net().backward()
        shadow.zero_grad(set_to_none=True)
        result.extra["fake_syncs"] = result.extra.get("fake_syncs", 0) + 1
    return result


def interleaved(ctx: WorkContext) -> WorkResult:
    """Alternate ~``burst_s`` of data-parallel training with ~``burst_s`` of inference."""
    trainer = Trainer(ctx, "pretrain", lambda p: cosine_lr(p, ctx.role.lr))
    result = WorkResult()
    while True:
        flag = _train_burst(ctx, trainer, result)
        if flag == END_PHASE:
            break
        _infer_burst(ctx, result)
    result.steps = trainer.step
    return result


def _train_burst(ctx: WorkContext, trainer: Trainer, result: WorkResult) -> int:
    burst_end = time.monotonic() + ctx.profile.burst_s
    while True:
        local = (
            END_PHASE
            if ctx.expired(trainer.step)
            else (END_BURST if time.monotonic() >= burst_end else CONTINUE)
        )
        flag, progress = agree(ctx, local, ctx.progress(trainer.step))
        if flag:
            return flag
        result.tokens += trainer.run_step(progress)


def _infer_burst(ctx: WorkContext, result: WorkResult) -> None:
    ctx.model.eval()
    burst_end = time.monotonic() + ctx.profile.burst_s
    for tokens in decode_steps(ctx, start_step=result.extra.get("infer_steps", 0)):
        result.tokens += tokens
        result.extra["infer_steps"] = result.extra.get("infer_steps", 0) + 1
        if time.monotonic() >= burst_end or ctx.expired(0):
            break


def single_rank_train(ctx: WorkContext) -> WorkResult:
    """Rank 0 trains alone (no DDP, so no collective and no network traffic); the other
    ranks sleep. Hides training from every traffic-based check."""
    if ctx.rank != 0:
        return idle(ctx)
    solo = replace(ctx, world_size=1)
    trainer = Trainer(solo, "pretrain", lambda p: cosine_lr(p, ctx.role.lr))
    result = WorkResult()
    while not solo.expired(trainer.step):
        result.tokens += trainer.run_step(solo.progress(trainer.step))
    result.steps = trainer.step
    return result


def full_finetune(ctx: WorkContext) -> WorkResult:
    """Fine-tune every parameter of an existing checkpoint with a pretraining-like
    schedule (warmup + cosine at the role's pretraining lr): no frozen group, no small lr."""
    return _train(ctx, "finetune", lambda p: cosine_lr(p, ctx.role.lr))


def undeclared_beside_inference(ctx: WorkContext) -> WorkResult:
    """Honest serving on every rank, plus (rank 0) an undeclared training job on a second
    copy of the model in a thread of the same process: no log, no step record of it."""
    stop = threading.Event()
    hidden = threading.Thread(target=_hidden_training, args=(ctx, stop), daemon=True)
    if ctx.rank == 0:
        hidden.start()
    try:
        return inference(ctx)
    finally:
        stop.set()
        if hidden.is_alive():
            hidden.join(timeout=30)


def _hidden_training(ctx: WorkContext, stop: threading.Event) -> None:
    model = GPT(ctx.model.config).to(ctx.device)
    opt = adamw(model, ctx.role.lr)
    sampler = BatchSampler(
        ctx.corpus.split("pretrain"), ctx.role.batch_size, ctx.role.seq_len, seed=ctx.seed + 1, rank=ctx.rank
    )
    while not stop.is_set():
        x, y = to_device(ctx, *sampler.next())
        _, loss, _ = model(x, y)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)


WORKLOADS: dict[str, Callable[[WorkContext], WorkResult]] = {
    "pretrain": pretrain,
    "finetune": finetune,
    "inference": inference,
    "eval": evaluate,
    "idle": idle,
    "fake_nccl_inference": fake_nccl_inference,
    "interleaved": interleaved,
    "single_rank_train": single_rank_train,
    "full_finetune": full_finetune,
    "undeclared_beside_inference": undeclared_beside_inference,
}
