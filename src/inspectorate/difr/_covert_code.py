"""The strongest covert sender we built against the tie check: arithmetic coding over the
deviations honest numerics admit.

The sender serves the declared weights under the declared seed and knows the verifier's
whole rule (``_ties.py``): its re-computation (fp32 and the declared precision,
teacher-forced), the honest error distribution (the tie calibration) and so every
(position, token)'s honest probability ``q``. It walks each sequence position by
position; where some token other than the re-computed winner has ``q >= theta`` and
the log has deviations left (``max_deviations``), the position is a *carrier*. It then
acts as an arithmetic *decoder* of the secret: the carrier's choices (the winner with
probability ``1 - rate``, each admissible deviation with ``rate / k``) split the current
interval, and it serves the choice whose sub-interval holds the secret. Elsewhere it
serves the winner. Every other rule of the verifier (the mean shortfall, activations)
sees an honest server, since the tokens are the verifier's own winners save at carriers.

A receiver holding the model, seed, calibration and plan re-computes the same carriers
from each served prefix, narrows the same interval by the tokens it sees, and reads the
secret's leading bits off it: the bits both ends of the interval share. The measured
capacity is the count of bits it reads back exactly.

Why teacher-forced re-computation of the prefix at every step (with filler after it):
the verifier's logits at ``j`` come from one pass over the whole served sequence, whose
rows depend only on the prefix (causal attention) but whose float rounding depends on the
pass's shape; a pass of the same length reproduces them bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
import torch

from inspectorate.difr._log import SequenceRecord, ServingLog
from inspectorate.difr._sampling import gumbel_noise
from inspectorate.difr._serve import ServeOptions, precision_context
from inspectorate.difr._ties import EPS, TieCalibration, flip_probability, profile, sequence_profile
from inspectorate.errors import InputError
from inspectorate.models._checkpoint import config_of


@dataclass(frozen=True)
class CodePlan:
    """Deviate only where honest probability is >= ``theta``, at most ``max_deviations``
    times per log, coding a deviation with probability ``rate`` at each carrier."""

    theta: float
    max_deviations: int
    rate: Fraction = Fraction(1, 2)

    def __post_init__(self) -> None:
        if not (self.theta > 0 and self.max_deviations >= 0 and 0 < self.rate < 1):
            raise InputError("a code plan needs theta > 0, max_deviations >= 0 and 0 < rate < 1")


class _Interval:
    """The arithmetic coder's interval [lo, lo + width), exact rationals."""

    def __init__(self) -> None:
        self.lo, self.width = Fraction(0), Fraction(1)

    def split(self, choices: int, rate: Fraction) -> list[tuple[Fraction, Fraction]]:
        parts = [1 - rate] + [rate / (choices - 1)] * (choices - 1)
        out, lo = [], self.lo
        for p in parts:
            out.append((lo, self.width * p))
            lo += self.width * p
        return out

    def take(self, part: tuple[Fraction, Fraction]) -> None:
        self.lo, self.width = part

    def information(self) -> float:
        """Bits the interval pins down, -log2(width): the code's information content."""
        return math.log2(self.width.denominator) - math.log2(self.width.numerator)

    def known_bits(self) -> list[int]:
        """Leading bits every number in the interval shares."""
        bits: list[int] = []
        lo, hi = self.lo, self.lo + self.width
        while True:
            b = len(bits) + 1
            a, z = int(lo * 2**b), -int(-(hi * 2**b)) - 1  # floor(lo 2^b), ceil(hi 2^b) - 1
            if a != z:
                return bits
            bits.append(a & 1)


def _carrier(q_row: np.ndarray, winner: int, plan: CodePlan, used: int) -> list[int]:
    """The position's choices: the winner, then admissible deviations by token id."""
    if used >= plan.max_deviations:
        return [winner]
    alts = [int(t) for t in np.nonzero(q_row >= plan.theta)[0] if t != winner]
    return [winner, *alts]


@torch.no_grad()
def _row(model: torch.nn.Module, prompt: Sequence[int], tokens: list[int], n_new: int, precision: str):
    """fp32 and declared-precision logits predicting token ``len(tokens)``, from a pass of
    the verifier's length (filler after the prefix)."""
    ids = list(prompt) + tokens + [0] * (n_new - 1 - len(tokens))
    idx = torch.tensor([ids], dtype=torch.long)
    j = len(prompt) - 1 + len(tokens)
    fp32 = model(idx)[0][0, j : j + 1].double().numpy()
    with precision_context(precision):
        declared = model(idx)[0][0, j : j + 1].float().double().numpy()
    return fp32, declared


def code_serve(
    model: torch.nn.Module,
    prompts: Sequence[Sequence[int]],
    options: ServeOptions,
    cal: TieCalibration,
    plan: CodePlan,
    secret: Sequence[int],
) -> tuple[list[SequenceRecord], int]:
    """Serve every prompt embedding ``secret``; returns the records and the deviations
    used. Projections are left out (Activation-DiFR does not constrain token choice)."""
    sampling = options.sampling
    if sampling.temperature > 0 and sampling.seed is None:
        raise InputError("the covert code rides on the declared sampling seed; none is declared")
    # the secret as a binary fraction, nudged to the middle of its dyadic cell
    x = Fraction(2 * int("".join(str(int(b)) for b in secret) or "0", 2) + 1, 2 ** (len(secret) + 1))
    interval, used, records = _Interval(), 0, []
    vocab = config_of(model).vocab_size
    model.eval()
    for index, prompt in enumerate(prompts):
        noise = gumbel_noise(sampling.seed or 0, index, options.max_new, vocab)
        tokens: list[int] = []
        for j in range(options.max_new):
            fp32, declared = _row(model, prompt, tokens, options.max_new, options.precision)
            prof = profile(fp32, declared, sampling, noise[j : j + 1], EPS[options.precision])
            winner = int(prof.winner[0])
            choices = _carrier(flip_probability(prof, cal)[0], winner, plan, used)
            token = winner
            if len(choices) > 1:
                parts = interval.split(len(choices), plan.rate)
                k = next(i for i, (lo, w) in enumerate(parts) if lo <= x < lo + w)
                interval.take(parts[k])
                token = choices[k]
                used += token != winner
            tokens.append(token)
        records.append(SequenceRecord(index, tuple(int(t) for t in prompt), tuple(tokens)))
    return records, used


def code_decode(
    model: torch.nn.Module, log: ServingLog, cal: TieCalibration, plan: CodePlan
) -> tuple[list[int], float]:
    """The receiver: the secret's leading bits a served log carries (exactly), and the
    information its choices convey, -log2 of the final interval's width (an interval
    straddling a dyadic boundary pins fewer leading bits than that)."""
    interval, used = _Interval(), 0
    model.eval()
    for record in log.sequences:
        prof = sequence_profile(model, log, record, deterministic=False)
        q = flip_probability(prof, cal)
        for j, token in enumerate(record.tokens):
            choices = _carrier(q[j], int(prof.winner[j]), plan, used)
            if len(choices) > 1:
                if token not in choices:
                    raise InputError(
                        f"sequence {record.index} position {j}: not a carrier token of this plan"
                    )
                interval.take(interval.split(len(choices), plan.rate)[choices.index(token)])
                used += token != choices[0]
    return interval.known_bits(), interval.information()
