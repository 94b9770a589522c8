"""A small checkpoint format for testbed GPTs: what a served model *is*.

One ``torch.save`` file holding only plain types and tensors, so ``torch.load(...,
weights_only=True)`` reads it (no pickled classes, no code execution on load):

    {"format": "inspectorate.checkpoint", "version": 1,
     "config": "<GPTConfig as JSON>", "vocab": "<characters>", "meta": "<JSON>",
     "state_dict": {...}, "optimizer": {...} (optional, training resumes from it)}

The model hash is SHA-256 over the state dict (sorted names; name, dtype, shape, bytes),
the same construction as the recorder's fingerprint, so a hash in a serving log, a
window record and a training claim mean the same weights.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from inspectorate.errors import InputError
from inspectorate.models._gpt import GPT, GPTConfig

FORMAT = "inspectorate.checkpoint"
VERSION = 1


@dataclass
class Checkpoint:
    """A loaded checkpoint: the model (eval mode, CPU), its vocabulary and metadata."""

    model: GPT
    vocab: str
    meta: dict[str, Any] = field(default_factory=dict)
    optimizer: dict[str, Any] | None = None

    @property
    def config(self) -> GPTConfig:
        return self.model.config

    @property
    def model_hash(self) -> str:
        return model_hash(self.model)


def config_of(model: torch.nn.Module) -> GPTConfig:
    """The GPTConfig of a testbed GPT or of a wrapped copy (a quantised one keeps it)."""
    config = getattr(model, "config", None)
    if not isinstance(config, GPTConfig):
        raise InputError(f"{type(model).__name__} is not a testbed GPT (no GPTConfig)")
    return config


def weights_sha256(state: dict[str, torch.Tensor]) -> str:
    """Hex SHA-256 over a state dict: sorted names, each ``name|dtype|shape|`` then bytes."""
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name]
        if not isinstance(tensor, torch.Tensor):
            continue
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        flat = tensor.detach().contiguous().reshape(-1).cpu()
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def model_hash(model: torch.nn.Module) -> str:
    """``sha256:<16 hex>`` of the model's weights (the testbed's ``model_hash_prefix``)."""
    return "sha256:" + weights_sha256(model.state_dict())[:16]


def save_checkpoint(
    path: Path | str,
    model: GPT,
    vocab: str,
    meta: dict[str, Any] | None = None,
    optimizer: dict[str, Any] | None = None,
) -> Path:
    """Write ``path`` atomically (temp file then rename); returns the path.

    What ``load_checkpoint`` would refuse is refused here, before a byte is written
    (a ``CharVocab`` object instead of its characters would otherwise be pickled into a
    file that ``weights_only`` loading rejects): ``TypeError``/``ValueError``."""
    path = Path(path)
    config = config_of(model)
    if not isinstance(vocab, str):
        hint = " (pass its .chars)" if isinstance(getattr(vocab, "chars", None), str) else ""
        raise TypeError(
            f"vocab must be the vocabulary's characters as a str, got {type(vocab).__name__}{hint}"
        )
    if len(vocab) > config.vocab_size:
        raise ValueError(f"vocab has {len(vocab)} characters, the model only {config.vocab_size}")
    if optimizer is not None:
        _plain(optimizer, "optimizer")
    encoded_meta = json.dumps(meta or {}, sort_keys=True)  # TypeError here, not on load
    path.parent.mkdir(parents=True, exist_ok=True)
    blob: dict[str, Any] = {
        "format": FORMAT,
        "version": VERSION,
        "config": json.dumps(config.to_dict(), sort_keys=True),
        "vocab": vocab,
        "meta": encoded_meta,
        "state_dict": model.state_dict(),
    }
    if optimizer is not None:
        blob["optimizer"] = optimizer
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(blob, tmp)
    tmp.replace(path)
    return path


_PLAIN = (str, int, float, bool, type(None), torch.Tensor)


def _plain(value: Any, where: str) -> None:
    """Only what ``torch.load(weights_only=True)`` reads back: containers, scalars, tensors."""
    if isinstance(value, dict):
        for key, item in value.items():
            _plain(key, where)
            _plain(item, f"{where}[{key!r}]")
    elif isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            _plain(item, f"{where}[{index}]")
    elif not isinstance(value, _PLAIN):
        raise TypeError(f"{where} holds a {type(value).__name__}, which a checkpoint cannot store")


def load_blob(path: Path, fmt: str, version: int, noun: str) -> dict[str, Any]:
    """``torch.load(weights_only=True)`` a file of format ``fmt``; any problem is an InputError.

    Shared by the checkpoint and weights formats: both are plain dicts stamped with a
    format name and version, and a corrupt, pickled or foreign file must read as one
    line naming the file, whichever format was asked for.
    """
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise InputError(f"{noun} not found", path) from None
    except Exception as exc:  # torch raises many types for corrupt or pickled files
        raise InputError(f"not a loadable {noun} ({type(exc).__name__})", path) from None
    if not isinstance(blob, dict) or blob.get("format") != fmt:
        raise InputError(f"not an {fmt} file", path)
    if blob.get("version") != version:
        raise InputError(f"unsupported {noun} version {blob.get('version')!r}", path)
    return blob


def load_checkpoint(path: Path | str) -> Checkpoint:
    """Read a checkpoint with ``weights_only=True``; any problem is an InputError."""
    path = Path(path)
    blob = load_blob(path, FORMAT, VERSION, "checkpoint")
    try:
        config = GPTConfig(**json.loads(blob["config"]))
        model = GPT(config)
        model.load_state_dict(blob["state_dict"])
        meta = json.loads(blob.get("meta") or "{}")
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise InputError(f"malformed checkpoint ({exc})", path) from None
    vocab = blob.get("vocab")
    if not isinstance(vocab, str) or len(vocab) > config.vocab_size:
        raise InputError("checkpoint vocabulary missing or larger than the model's", path)
    model.eval()
    return Checkpoint(model=model, vocab=vocab, meta=meta, optimizer=blob.get("optimizer"))


def file_sha256(path: Path | str) -> str:
    """Hex SHA-256 of a file's bytes (what a claim pins a checkpoint file by)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
