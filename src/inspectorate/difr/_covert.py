"""An adaptive covert channel against Token-DiFR: the declared model, steered tokens.

The attacker serves the declared weights and knows the declared sampling seed, the
verifier's score (a sequence's mean Gumbel-margin shortfall) and its per-sequence
threshold. It spends that threshold as a budget ``B = threshold * L`` of total shortfall
to embed a secret bitstring. At each position it computes, exactly as the verifier
would, the cost of every token under the regenerated noise; the position *carries* a
bit when the cheapest deviation (usually the runner-up of the noisy scores) costs at
most ``cap`` and fits what is left of the budget. Bit 0 serves the Gumbel-max token
(free), bit 1 the cheapest deviation; with ``bits_per_carrier = b`` a position where
``2^b - 1`` deviations fit carries ``b`` bits (value ``v`` serves the ``v``-th cheapest,
0 the Gumbel-max token). A colluding receiver who holds the model and the
seed walks the served sequence with the same computation, so it finds the same carrier
positions (they depend only on the prefix and on what was spent, which it re-derives)
and reads the bits back exactly.

Why it computes in float32 whatever precision it declares: declaring bfloat16 buys the
wider threshold calibrated on bf16 non-determinism, while exact fp32 costs let it spend
that width on bits instead of on noise. Activation-DiFR does not constrain the choice
at all: projections are re-computed on the tokens served, and the attacker's are the
declared model's own on those tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace

import numpy as np
import torch

from inspectorate.difr._log import SamplingConfig, SequenceRecord
from inspectorate.difr._projection import capture_layer
from inspectorate.difr._sampling import gumbel_noise, shortfall
from inspectorate.difr._serve import ServeOptions, _projections
from inspectorate.errors import InputError
from inspectorate.models._checkpoint import config_of


@dataclass(frozen=True)
class CovertPlan:
    """What the sender may spend per sequence (total shortfall) and the per-position cap."""

    budget: float
    cap: float
    bits_per_carrier: int = 1

    def __post_init__(self) -> None:
        if not (self.budget >= 0 and self.cap >= 0 and 1 <= self.bits_per_carrier <= 8):
            raise InputError("a covert plan needs budget, cap >= 0 and 1-8 bits per carrier")

    @classmethod
    def under(
        cls,
        threshold: float,
        n_tokens: int,
        margin: float = 0.9,
        cap_fraction: float = 0.25,
        bits_per_carrier: int = 1,
    ) -> CovertPlan:
        """A plan that keeps ``margin`` of the verifier's per-sequence budget, spent by
        deviations costing at most ``cap_fraction`` of it each."""
        budget = threshold * n_tokens * margin
        return cls(budget, budget * cap_fraction, bits_per_carrier)


@dataclass(frozen=True)
class CovertSequence:
    """A served sequence, the secret bits it carries (at ``positions``), and its total
    shortfall as the sender computed it."""

    record: SequenceRecord
    bits: tuple[int, ...]
    positions: tuple[int, ...]
    spent: float


Picker = Callable[[int, list[int]], int]  # (position, carrier options, [] if none) -> token


def covert_serve(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    options: ServeOptions,
    plan: CovertPlan,
    secret: Sequence[int],
) -> list[CovertSequence]:
    """Serve every prompt (sequence ``i`` under noise stream ``i``) embedding ``secret``'s
    bits in order across sequences; once it is spent, carriers carry 0 (free)."""
    _check(options.sampling)
    stream: Iterator[int] = iter(secret)
    out = []
    for index, prompt in enumerate(prompts):
        bits: list[int] = []
        where: list[int] = []

        def pick(j: int, choices: list[int], bits: list[int] = bits, where: list[int] = where) -> int:
            value = 0
            for _ in range(len(choices).bit_length() - 1):  # log2 of a power of two
                bits.append(1 if next(stream, 0) else 0)
                where.append(j)
                value = 2 * value + bits[-1]
            return choices[value]

        tokens, hidden, spent = _walk(model, index, prompt, options, plan, pick)
        projections = _projections(hidden[None], options.projection)
        record = SequenceRecord(
            index=index,
            prompt=tuple(int(t) for t in prompt),
            tokens=tuple(tokens),
            projections=projections[0] if projections is not None else None,
        )
        out.append(CovertSequence(record, tuple(bits), tuple(where), spent))
    return out


def covert_decode(
    model: torch.nn.Module, record: SequenceRecord, options: ServeOptions, plan: CovertPlan
) -> tuple[int, ...]:
    """The receiver: the bits one served sequence carries (it needs the model, the seed and
    the plan). A carrier holding none of its choices is not this channel: InputError."""
    _check(options.sampling)
    served, bits = record.tokens, list[int]()

    def pick(j: int, choices: list[int]) -> int:
        if len(choices) > 1:
            if served[j] not in choices:
                raise InputError(f"sequence {record.index} position {j}: not a carrier token of this plan")
            width, value = len(choices).bit_length() - 1, choices.index(served[j])
            bits.extend((value >> k) & 1 for k in reversed(range(width)))
        return int(served[j])

    _walk(model, record.index, record.prompt, replace(options, max_new=len(served)), plan, pick)
    return tuple(bits)


def _check(sampling: SamplingConfig) -> None:
    if sampling.temperature > 0 and sampling.seed is None:
        raise InputError("the covert channel rides on the declared sampling seed; none is declared")


@torch.no_grad()
def _walk(
    model: torch.nn.Module,
    index: int,
    prompt: Sequence[int],
    options: ServeOptions,
    plan: CovertPlan,
    pick: Picker,
) -> tuple[list[int], np.ndarray, float]:
    """Decode one sequence with a KV cache at batch 1, in float32, letting ``pick`` choose
    each token among the position's choices; sender and receiver both run exactly this, so
    they see bit-identical costs. Returns tokens, layer activations and the spend."""
    sampling, n_new = options.sampling, options.max_new
    vocab = config_of(model).vocab_size
    noise = gumbel_noise(sampling.seed or 0, index, n_new, vocab) if sampling.temperature > 0 else None
    layer = options.projection.layer if options.projection is not None else 0
    tokens: list[int] = []
    hidden = []
    spent = 0.0
    model.eval()
    with capture_layer(model, layer) as seen:
        logits, _, cache = model(torch.tensor([list(prompt)], dtype=torch.long))
        for j in range(n_new):
            row = logits[0, -1, :].float().numpy().astype(np.float64)
            hidden.append(seen[-1][0, -1, :].numpy())
            choices, costs = _carrier(row, None if noise is None else noise[j], sampling, plan, spent)
            token = pick(j, choices)
            spent += float(costs[token])
            tokens.append(token)
            if j + 1 < n_new:
                logits, _, cache = model(torch.tensor([[token]], dtype=torch.long), cache=cache)
    return tokens, np.stack(hidden), spent


def _carrier(
    logits: np.ndarray, noise: np.ndarray | None, sampling: SamplingConfig, plan: CovertPlan, spent: float
) -> tuple[list[int], np.ndarray]:
    """(the position's choices: the Gumbel-max token then the cheapest deviations that fit,
    ``2^b`` of them, or just the Gumbel-max token; every token's cost). Costs are the
    verifier's own shortfall function, token by token."""
    v = logits.shape[-1]
    grid = np.broadcast_to(logits, (v, v))
    ref, costs = shortfall(
        grid, None if noise is None else np.broadcast_to(noise, (v, v)), np.arange(v), sampling
    )
    winner = int(ref[0])
    order = [int(t) for t in np.argsort(costs, kind="stable") if t != winner]
    room = min(plan.cap, plan.budget - spent)
    fit = sum(1 for t in order[: 2**plan.bits_per_carrier - 1] if costs[t] <= room)
    width = (fit + 1).bit_length() - 1  # the most bits whose 2^b - 1 deviations all fit
    return [winner, *order[: 2**width - 1]], costs
