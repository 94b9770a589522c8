"""Deterministic, resumable training of a testbed GPT: the run a claim describes.

Why batches are drawn per step and not from one running RNG: a Proof-of-Learning replay
starts in the middle (at checkpoint k), so the batch of step ``s`` must depend on
``(seed, s)`` only. The learning rate is a function of the step for the same reason, and
checkpoints carry the AdamW state, so a segment replay continues exactly where the
recorded run stood.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import numpy as np
import torch

from inspectorate.errors import InputError
from inspectorate.models._corpus import BatchSampler
from inspectorate.models._gpt import GPT, GPTConfig, count_params
from inspectorate.models._spec import ModelSpec
from inspectorate.replay._family import build_optimizer, check_optimizer, family_loss, windows

SAMPLERS = ("step", "stream", "manifest")


@dataclass(frozen=True)
class TrainSpec:
    """Everything that determines a run besides the data and the code."""

    model: dict[str, Any] = field(default_factory=lambda: GPTConfig().to_dict())
    steps: int = 100
    batch_size: int = 8
    seq_len: int = 32
    lr: float = 3e-3
    warmup_steps: int = 5
    min_lr_frac: float = 0.1
    weight_decay: float = 0.1
    seed: int = 0
    split: str = "pretrain"
    eval_split: str = "val"
    eval_batches: int = 4
    checkpoint_every: int = 20
    freeze_embeddings: bool = False
    # A data-parallel run (the testbed's DDP jobs): each step averages the gradients of
    # ``world_size`` rank batches, the learning rate of every step is recorded (budgets
    # in wall-clock seconds make it a function of time, not of the step), and batches
    # come from one running stream per rank (``sampler="stream"``, the testbed's
    # BatchSampler) instead of being drawn from ``(seed, step)``.
    world_size: int = 1
    lr_schedule: tuple[float, ...] | None = None
    sampler: str = "step"
    # Any declared family (``model`` is then an ``inspectorate.model`` description, see
    # ``_family``): the declared optimizer, the first scored position, gradient clipping
    # (None: none) and the batch manifest's file name (``sampler="manifest"``).
    optimizer: dict[str, Any] | None = None
    loss_start: int = 0
    clip_grad_norm: float | None = 1.0
    manifest: str | None = None
    # Gradient accumulation: each rank's ``batch_size`` sequences of a step are
    # ``grad_accum`` equal micro-batches in order, each one's mean loss divided by
    # ``grad_accum`` and backpropagated into the same gradients (what a loop that calls
    # ``(loss / k).backward()`` k times before ``optimizer.step()`` computes).
    grad_accum: int = 1

    @property
    def family(self) -> ModelSpec | None:
        """The declared model of a family claim; None for the testbed GPT's config."""
        if self.model.get("format") != "inspectorate.model":
            return None
        from inspectorate.models._files import spec_from_dict

        return spec_from_dict(self.model, "claim model")

    @property
    def config(self) -> GPTConfig:
        return GPTConfig(**self.model)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainSpec:
        try:
            if data.get("lr_schedule") is not None:
                data = {**data, "lr_schedule": tuple(float(v) for v in data["lr_schedule"])}
            spec = cls(**data)
            if spec.family is None:
                spec.config  # noqa: B018  (validates the model block)
            else:
                spec = replace(spec, optimizer=check_optimizer(spec.optimizer))
        except (TypeError, ValueError) as exc:
            raise InputError(f"bad training config ({exc})") from None
        if (spec.sampler == "manifest") != (spec.manifest is not None):
            raise InputError("a batch manifest file goes with sampler 'manifest', and only with it")
        if not 0 <= spec.loss_start < spec.seq_len:
            raise InputError(f"loss_start must be in [0, seq_len={spec.seq_len})")
        if spec.steps < 1 or spec.checkpoint_every < 1 or spec.batch_size < 1 or spec.world_size < 1:
            raise InputError("steps, checkpoint_every, batch_size and world_size must be >= 1")
        if spec.grad_accum < 1 or spec.batch_size % spec.grad_accum:
            raise InputError(f"grad_accum must be >= 1 and divide batch_size={spec.batch_size}")
        if spec.sampler not in SAMPLERS:
            raise InputError(f"sampler must be one of {', '.join(SAMPLERS)}, got {spec.sampler!r}")
        if spec.lr_schedule is not None and (
            len(spec.lr_schedule) != spec.steps or not all(math.isfinite(v) for v in spec.lr_schedule)
        ):
            raise InputError(f"lr_schedule must hold {spec.steps} finite learning rates, one a step")
        return spec

    @property
    def n_params(self) -> int:
        family = self.family
        return family.n_params() if family is not None else count_params(self.config)

    @property
    def scored_tokens(self) -> int:
        """Tokens scored by the loss in one rank's batch."""
        return self.batch_size * (self.seq_len - self.loss_start)


def init_model(spec: TrainSpec) -> Any:
    """The run's initial weights: a function of the seed and the architecture only."""
    torch.manual_seed(spec.seed)
    family = spec.family
    if family is not None:
        return family.build()
    model = GPT(spec.config)
    if spec.freeze_embeddings:
        model.freeze_embeddings()
    return model


def make_optimizer(model: Any, spec: TrainSpec) -> torch.optim.Optimizer:
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    params = [p for _, p in named]
    if spec.optimizer is not None:
        return build_optimizer(params, spec.optimizer, spec.lr, [n for n, _ in named])
    return torch.optim.AdamW(params, lr=spec.lr, betas=(0.9, 0.95), weight_decay=spec.weight_decay)


def lr_at(spec: TrainSpec, step: int) -> float:
    """The recorded rate of the step, else linear warmup, then cosine to
    ``min_lr_frac * lr`` at the last step."""
    if spec.lr_schedule is not None:
        return spec.lr_schedule[step]
    if step < spec.warmup_steps:
        return spec.lr * (step + 1) / spec.warmup_steps
    span = max(spec.steps - spec.warmup_steps, 1)
    cos = 0.5 * (1.0 + math.cos(math.pi * min((step - spec.warmup_steps) / span, 1.0)))
    return spec.lr * (spec.min_lr_frac + (1.0 - spec.min_lr_frac) * cos)


def batch_at(tokens: np.ndarray, spec: TrainSpec, step: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Step ``step``'s batch: random windows drawn from ``(seed, step)`` alone."""
    if len(tokens) <= spec.seq_len + 1:
        raise InputError(f"split of {len(tokens)} tokens is too short for sequences of {spec.seq_len}")
    rng = np.random.default_rng([spec.seed, step])
    starts = rng.integers(0, len(tokens) - spec.seq_len - 1, size=spec.batch_size)
    rows = tokens[starts[:, None] + np.arange(spec.seq_len + 1)[None, :]]
    return torch.from_numpy(rows[:, :-1].copy()), torch.from_numpy(rows[:, 1:].copy())


def step_batches(
    tokens: np.ndarray,
    spec: TrainSpec,
    start: int,
    end: int,
    manifest: list[list[np.ndarray]] | None = None,
) -> Iterator[list[tuple[torch.Tensor, torch.Tensor]]]:
    """Per step in ``[start, end)``, the batch of every rank, in rank order."""
    if spec.sampler == "manifest":
        if manifest is None:
            raise InputError("this claim's batches come from its manifest: none was read")
        for step in range(start, end):
            yield [windows(tokens, s, spec.seq_len) for s in manifest[step]]
        return
    if spec.sampler == "step":
        for step in range(start, end):
            yield [batch_at(tokens, spec, step)]
        return
    # The testbed's stream: rank r reads draw s of the generator seeded (seed, r); a
    # segment starting mid-run skips the draws before it (cheap: index draws only).
    samplers = [
        BatchSampler(tokens, spec.batch_size, spec.seq_len, seed=spec.seed, rank=r)
        for r in range(spec.world_size)
    ]
    for s in samplers:
        for _ in range(start):
            s.next()
    for _ in range(start, end):
        yield [tuple(torch.from_numpy(a) for a in s.next()) for s in samplers]  # type: ignore[misc]


def train_steps(
    model: Any,
    opt: torch.optim.Optimizer,
    tokens: np.ndarray,
    spec: TrainSpec,
    start: int,
    end: int,
    manifest: list[list[np.ndarray]] | None = None,
) -> float:
    """Run steps ``[start, end)``; returns the last training loss."""
    model.train()
    loss_value = float("nan")
    trainable: list[torch.Tensor] = [p for p in model.parameters() if p.requires_grad]
    loss_of = _loss_fn(spec)
    batches_of = step_batches(tokens, spec, start, end, manifest)
    for step, batches in zip(range(start, end), batches_of, strict=True):
        for group in opt.param_groups:
            group["lr"] = lr_at(spec, step)
        loss_value = _backward(loss_of, model, trainable, batches, spec.grad_accum)
        if spec.clip_grad_norm is not None:
            torch.nn.utils.clip_grad_norm_(trainable, spec.clip_grad_norm)
        opt.step()
        opt.zero_grad(set_to_none=True)
    model.eval()
    return loss_value


def _loss_fn(spec: TrainSpec) -> Any:
    """(x, y) -> loss: the GPT's own loss, or next-token cross-entropy over a family's logits."""
    model_loss: Any
    if spec.family is None:

        def model_loss(model: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return model(x, y)[1]

    else:

        def model_loss(model: Any, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return family_loss(model, x, y, spec.loss_start)

    return model_loss


def _backward(
    loss_of: Any,
    model: Any,
    trainable: list[torch.Tensor],
    batches: list[tuple[torch.Tensor, torch.Tensor]],
    accum: int = 1,
) -> float:
    """Gradients as data parallelism leaves them: each rank's own, divided by the world
    size, summed in rank order (the comm hook divides before the all-reduce sums; a
    power-of-two divide is exact, so two ranks replay bit for bit on equal threads).
    Tied weights are why each rank's gradient is taken whole before summing: letting
    autograd accumulate across ranks would add the terms in another order."""
    if len(batches) == 1:
        return _accumulate(loss_of, model, *batches[0], accum)
    total: list[torch.Tensor] | None = None
    loss = float("nan")
    for x, y in batches:
        loss = _accumulate(loss_of, model, x, y, accum)
        grads = [p.grad.div_(len(batches)) if p.grad is not None else torch.zeros_like(p) for p in trainable]
        total = grads if total is None else [t.add_(g) for t, g in zip(total, grads, strict=True)]
        for p in trainable:
            p.grad = None
    for p, g in zip(trainable, total or [], strict=True):
        p.grad = g
    return loss


def _accumulate(loss_of: Any, model: Any, x: torch.Tensor, y: torch.Tensor, accum: int) -> float:
    """One rank's gradient: its ``accum`` micro-batches in order, each mean loss divided
    by ``accum`` before its backward (autograd adds them in that order); returns the
    step's loss (the micro-batches' mean)."""
    if accum == 1:
        loss = loss_of(model, x, y)
        assert loss is not None
        loss.backward()
        return float(loss.item())
    if x.shape[0] % accum:
        raise InputError(f"a step of {x.shape[0]} sequences does not split into {accum} equal micro-batches")
    total = 0.0
    for xs, ys in zip(x.chunk(accum), y.chunk(accum), strict=True):
        loss = loss_of(model, xs, ys)
        assert loss is not None
        (loss / accum).backward()
        total += float(loss.item())
    return total / accum


@torch.no_grad()
def evaluate(model: Any, tokens: np.ndarray, spec: TrainSpec) -> float:
    """Mean cross-entropy (nats/char) on fixed validation windows drawn from the seed."""
    model.eval()
    rng = np.random.default_rng([spec.seed, 0x5EED])
    losses = []
    loss_of = _loss_fn(spec)
    for _ in range(spec.eval_batches):
        starts = rng.integers(0, len(tokens) - spec.seq_len - 1, size=spec.batch_size)
        rows = torch.from_numpy(tokens[starts[:, None] + np.arange(spec.seq_len + 1)[None, :]])
        loss = loss_of(model, rows[:, :-1], rows[:, 1:])
        assert loss is not None
        losses.append(float(loss))
    return float(np.mean(losses))


def quick_train(tokens: np.ndarray, spec: TrainSpec, model: GPT | None = None) -> GPT:
    """Train ``spec.steps`` steps (from ``model`` when given, e.g. a fine-tune) and return it."""
    model = model if model is not None else init_model(spec)
    if spec.freeze_embeddings:
        model.freeze_embeddings()
    train_steps(model, make_optimizer(model, spec), tokens, spec, 0, spec.steps)
    return model
