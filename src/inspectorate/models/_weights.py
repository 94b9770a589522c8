"""Weights of any declared model, as a prover hands them over: what a replay resumes
from and what a served-output check recomputes with.

The testbed's GPT has its own checkpoint format (``_checkpoint``); this one carries any
family the verifier can build (``ModelSpec``): the model description itself, so the
file says what it is, and a state dict keyed by the *verifier's* module names. A
workload with its own module maps its tensors onto those names once, by position with
every shape checked (:func:`map_state_dict`): the verifier never runs the prover's
code, it loads tensors into a module it built.

One ``torch.save`` file of plain types and tensors, read with ``weights_only=True``:

    {"format": "inspectorate.weights", "version": 1,
     "model": "<model description JSON>", "vocab": "<characters, may be empty>",
     "meta": "<JSON>", "state_dict": {...}, "optimizer": {...} (optional)}

The weights hash is the checkpoint format's (SHA-256 over sorted names, dtypes,
shapes and bytes), so a hash means the same thing in either format.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from inspectorate.errors import InputError
from inspectorate.models._checkpoint import _plain, load_blob, weights_sha256
from inspectorate.models._files import spec_from_dict
from inspectorate.models._spec import ModelSpec

FORMAT = "inspectorate.weights"
VERSION = 1


@dataclass
class Weights:
    """A loaded weights file: the description, the built module (eval mode, CPU) holding
    the handed-over tensors, the vocabulary, metadata and optimizer state if any."""

    spec: ModelSpec
    module: torch.nn.Module
    vocab: str = ""
    meta: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, Any] | None = None

    @property
    def sha256(self) -> str:
        return weights_sha256(self.module.state_dict())


def map_state_dict(spec: ModelSpec, foreign: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """``foreign`` (a workload's own state dict, in its registration order) renamed to
    the verifier's module names for ``spec``, position by position. Counts and every
    shape must agree: a mismatch is an InputError naming the first tensor that differs,
    never a silent partial load."""
    ours = _shapes(spec)
    theirs = [(k, v) for k, v in foreign.items() if isinstance(v, torch.Tensor)]
    if len(theirs) != len(ours):
        raise InputError(
            f"{len(theirs)} tensors handed over, the declared {spec.family} model has {len(ours)}"
        )
    out: dict[str, torch.Tensor] = {}
    for (name, shape), (their_name, tensor) in zip(ours.items(), theirs, strict=True):
        if tuple(tensor.shape) != shape:
            raise InputError(
                f"tensor {their_name!r} has shape {tuple(tensor.shape)}, the declared model's "
                f"{name!r} has {shape}"
            )
        out[name] = tensor.detach().to("cpu", copy=True).contiguous()
    return out


def save_weights(
    path: Path | str,
    spec: ModelSpec,
    state_dict: Mapping[str, torch.Tensor],
    *,
    vocab: str = "",
    meta: dict[str, Any] | None = None,
    optimizer: dict[str, Any] | None = None,
) -> Path:
    """Write ``path`` atomically. ``state_dict`` must already use the verifier's names
    (see :func:`map_state_dict`): every name of the declared model, no other, each of
    its shape, checked against the model built on the meta device (no memory, no
    initialisation: a training loop writing weights every few steps pays only the
    serialisation), so a file the loader would refuse is refused before a byte is
    written."""
    path = Path(path)
    state = {k: v for k, v in state_dict.items() if isinstance(v, torch.Tensor)}
    _check_fits(spec, state, path)
    state = {k: v.detach().to("cpu", torch.float32).contiguous() for k, v in state.items()}
    if optimizer is not None:
        _plain(optimizer, "optimizer")
    blob: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "model": json.dumps(spec.to_dict(), sort_keys=True),
        "vocab": str(vocab),
        "meta": json.dumps(meta or {}, sort_keys=True),
        "state_dict": state,
    }
    if optimizer is not None:
        blob["optimizer"] = optimizer
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)
    return path


def load_weights(path: Path | str) -> Weights:
    """Read a weights file with ``weights_only=True``; any problem is an InputError."""
    path = Path(path)
    blob = load_blob(path, FORMAT, VERSION, "weights file")
    try:
        spec = spec_from_dict(json.loads(blob["model"]), path)
        meta = json.loads(blob.get("meta") or "{}")
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"malformed weights file ({exc})", path) from None
    if not isinstance(blob.get("state_dict"), dict):
        raise InputError("weights file has no state_dict", path)
    module = spec.build()
    _load_into(module, blob["state_dict"], path)
    module.eval()
    vocab = blob.get("vocab") or ""
    if not isinstance(vocab, str) or len(vocab) > spec.vocab:
        raise InputError("vocabulary is not text or larger than the model's", path)
    return Weights(spec=spec, module=module, vocab=vocab, meta=meta, optimizer=blob.get("optimizer"))


def _load_into(module: torch.nn.Module, state: dict[str, Any], where: Path) -> None:
    """Strict load: every name present, none extra, every shape equal."""
    try:
        module.load_state_dict(state, strict=True)
    except (RuntimeError, TypeError, KeyError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise InputError(f"weights do not fit the declared model ({first})", where) from None


def _shapes(spec: ModelSpec) -> dict[str, tuple[int, ...]]:
    """Names and shapes of the declared model's state dict, in registration order, from
    a build on the meta device (a real build where a family cannot build there)."""
    try:
        with torch.device("meta"):
            module = spec.build()
    except Exception:  # a family whose build needs real tensors (an exported program)
        module = spec.build()
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def _check_fits(spec: ModelSpec, state: dict[str, torch.Tensor], where: Path) -> None:
    """The same refusals as a strict load, named: missing, unexpected, misshapen."""
    want = _shapes(spec)
    missing = [k for k in want if k not in state]
    extra = [k for k in state if k not in want]
    if missing or extra:
        what = f"missing {missing[:3]}" if missing else f"unexpected {extra[:3]}"
        raise InputError(f"weights do not fit the declared model ({what})", where)
    for name, shape in want.items():
        if tuple(state[name].shape) != shape:
            raise InputError(
                f"weights do not fit the declared model ({name!r} has shape "
                f"{tuple(state[name].shape)}, expected {shape})",
                where,
            )
