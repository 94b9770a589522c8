"""Dishonest servers for the benchmark and tests: the model served is not the one claimed.

The checkpoint-level substitutes (another seed, a fine-tune, a smaller model) are just
other trained GPTs; here live the two that are built from a model or from logs: an
int8-quantised copy (torch's dynamic quantisation of every Linear layer, the cheapest
way to serve "the same" model for less) and a mix, where a fraction of the sequences of
an honest log are replaced by another model's sequences for the same prompts and noise.
A competent attacker writes the claimed model hash in its header, as these do.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Sequence

import numpy as np
import torch

from inspectorate.difr._log import SequenceRecord


def quantize_int8(model: torch.nn.Module) -> torch.nn.Module:
    """A dynamically int8-quantised copy (weights int8, activations quantised per batch)."""
    from torch.ao.quantization import quantize_dynamic

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch deprecates the quantized dtypes; the attack still works
        return quantize_dynamic(copy.deepcopy(model).eval(), {torch.nn.Linear}, dtype=torch.qint8)


def mix_records(
    honest: Sequence[SequenceRecord], other: Sequence[SequenceRecord], fraction: float, seed: int
) -> tuple[list[SequenceRecord], list[int]]:
    """Replace ``round(fraction * n)`` (at least one) honest sequences by the other model's
    sequence of the same index; returns the records and the replaced indices."""
    n = len(honest)
    k = max(1, round(fraction * n))
    chosen = set(np.random.default_rng([seed, 0x313]).choice(n, size=min(k, n), replace=False).tolist())
    by_index = {r.index: r for r in other}
    mixed = [by_index[r.index] if i in chosen else r for i, r in enumerate(honest)]
    return mixed, sorted(honest[i].index for i in chosen)
