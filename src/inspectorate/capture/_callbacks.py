"""Label phases and count tokens from common training loops, under ``inspectorate capture``.

* ``lightning_callback(...)``: a PyTorch Lightning ``Callback`` (``lightning.pytorch`` or
  ``pytorch_lightning``; extra ``[lightning]``). ``fit`` is claimed as training in
  segments ``train.0, train.1, ...``; each validation run in between as ``val.N`` (eval);
  ``test`` as eval and ``predict`` as inference.
* ``hf_callback(...)``: a Hugging Face ``transformers.TrainerCallback`` (extra ``[hf]``).
  ``train`` is claimed as training from ``on_train_begin`` to ``on_train_end``; evaluation
  inside it is not split out (the Trainer has no evaluation-begin event).

Written against the documented hook signatures of both libraries and tested with
stand-ins of their base classes (neither package is installed here). The base classes
are imported when a callback is made, so this module imports without them. What the
callbacks send is the prover's claim, like any ``capture.phase``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from inspectorate.capture import _client
from inspectorate.errors import InputError

TokensOf = Callable[[Any], int]


def default_tokens(batch: Any) -> int:
    """Elements of the batch's first tensor (token ids for a language model)."""
    first = batch[0] if isinstance(batch, (list, tuple)) and batch else batch
    if isinstance(first, dict):
        first = first.get("input_ids", next(iter(first.values()), None))
    numel = getattr(first, "numel", None)
    return int(numel()) if callable(numel) else (len(first) if hasattr(first, "__len__") else 0)


def _base(candidates: tuple[tuple[str, str], ...], extra: str) -> type:
    for module, name in candidates:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise InputError(f"this callback needs the [{extra}] extra: pip install 'inspectorate[{extra}]'")


class _Segments:
    """Numbered phase segments (``train.0``, ``val.0``, ``train.1``) with one claim each."""

    def __init__(self, claim: dict[str, Any]) -> None:
        self.claim = claim
        self.count: dict[str, int] = {}
        self.open: str | None = None

    def start(self, kind: str, op: str) -> None:
        self.stop()
        n = self.count.get(kind, 0)
        self.count[kind] = n + 1
        self.open = f"{kind}.{n}"
        _client._send({"event": "start", "phase": self.open, "op": op, **self.claim}, ack=True)

    def stop(self) -> None:
        if self.open is not None:
            _client._send({"event": "end", "phase": self.open}, ack=True)
            self.open = None


def lightning_callback(tokens_of: TokensOf = default_tokens, **claim: Any) -> Any:
    """A Lightning ``Callback`` claiming ``claim`` (model, n_params, batch_size,
    sequence_length, ...) for every phase; only global rank 0 reports tokens."""
    base = _base((("lightning.pytorch", "Callback"), ("pytorch_lightning", "Callback")), "lightning")
    seg = _Segments(claim)

    def rank0(trainer: Any) -> bool:
        return int(getattr(trainer, "global_rank", 0)) == 0

    def batch_end(self: Any, trainer: Any, pl_module: Any, outputs: Any, batch: Any, *args: Any) -> None:
        if rank0(trainer):
            _client.tokens(tokens_of(batch))

    def start(kind: str, op: str) -> Callable[..., None]:
        return lambda self, trainer, pl_module: seg.start(kind, op)

    def val_end(self: Any, trainer: Any, pl_module: Any) -> None:
        fitting = getattr(getattr(trainer, "state", None), "fn", None)
        seg.stop()
        if str(getattr(fitting, "value", fitting)) == "fit" and not getattr(
            trainer, "sanity_checking", False
        ):
            seg.start("train", "training")  # back to training after the validation run

    hooks = {
        "on_train_start": start("train", "training"),
        "on_train_end": lambda self, trainer, pl_module: seg.stop(),
        "on_validation_start": start("val", "eval"),
        "on_validation_end": val_end,
        "on_test_start": start("test", "eval"),
        "on_test_end": lambda self, trainer, pl_module: seg.stop(),
        "on_predict_start": start("predict", "inference"),
        "on_predict_end": lambda self, trainer, pl_module: seg.stop(),
        "on_train_batch_end": batch_end,
        "on_validation_batch_end": batch_end,
        "on_test_batch_end": batch_end,
        "on_predict_batch_end": batch_end,
    }
    return type("InspectorateCapture", (base,), hooks)()


def hf_callback(sequence_length: int, **claim: Any) -> Any:
    """A ``transformers.TrainerCallback``: the training run as one phase; tokens per
    optimizer step = per-device batch x accumulation steps x world size x
    ``sequence_length`` (the Trainer's step hook sees no batch)."""
    base = _base((("transformers", "TrainerCallback"),), "hf")
    seg = _Segments({"sequence_length": sequence_length, **claim})

    def step_end(self: Any, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        if getattr(state, "is_world_process_zero", True):
            per_step = args.per_device_train_batch_size * args.gradient_accumulation_steps
            _client.tokens(int(per_step * max(int(getattr(args, "world_size", 1)), 1) * sequence_length))

    hooks = {
        "on_train_begin": lambda self, args, state, control, **kw: seg.start("train", "training"),
        "on_train_end": lambda self, args, state, control, **kw: seg.stop(),
        "on_step_end": step_end,
    }
    return type("InspectorateCapture", (base,), hooks)()
