"""Activation-DiFR's payload: a few random orthogonal projections of one layer's activations.

Why random and orthogonal: ``dim`` orthonormal directions drawn from the verifier's seed
keep distances (up to a scale) for any activation difference the server did not know it
would be tested on, so the server cannot hide a different model in the directions that
are not sent; ``dim`` floats per token keep the payload small.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import torch

from inspectorate.errors import InputError


def projection_matrix(seed: int, width: int, dim: int) -> np.ndarray:
    """``(width, dim)`` matrix with orthonormal columns, a function of (seed, width, dim)."""
    if dim > width:
        raise InputError(f"projection dim {dim} exceeds the activation width {width}")
    rng = np.random.default_rng([int(seed) & 0xFFFFFFFFFFFFFFFF, width, dim])
    q, r = np.linalg.qr(rng.standard_normal((width, dim)))
    return q * np.sign(np.diag(r))[None, :]  # sign fix: QR is unique only up to column signs


@contextmanager
def capture_layer(model: torch.nn.Module, layer: int) -> Iterator[list[torch.Tensor]]:
    """Collect the residual stream leaving block ``layer`` on every forward call."""
    blocks = getattr(model, "blocks", None)
    if blocks is None or not 0 <= layer < len(blocks):
        raise InputError(f"layer {layer} does not exist in this model")
    seen: list[torch.Tensor] = []

    def hook(_module: torch.nn.Module, _inputs: object, output: object) -> None:
        hidden = output[0] if isinstance(output, tuple) else output
        seen.append(hidden.detach().float())  # type: ignore[union-attr]

    handle = blocks[layer].register_forward_hook(hook)
    try:
        yield seen
    finally:
        handle.remove()


def project(hidden: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``(..., width) @ (width, dim)`` in float64."""
    return np.asarray(hidden, dtype=np.float64) @ matrix
