"""Declared models: typed architecture configs the verifier can build without the prover's code.

A prover that claims "this phase served model X" hands over a *description* of X, not
its code: a JSON file naming an architecture family and its config
(``{"format": "inspectorate.model", "version": 1, "family": "llama", "config": {...}}``).
The verifier builds that architecture with random weights from its own code (this
package), so it can price a claimed token (the spot-check), bound the memory the claimed
op needs, and count parameters, without running anything the prover wrote.

Families are registered classes (``@architecture("llama")``); third parties add theirs
through the ``inspectorate.models`` entry-point group. Every spec counts its parameters
analytically, and that count must equal the built module's (a conformance test checks
every registered family), because P2 compares it with what the sensor saw.

This module is torch-free: only ``ModelSpec.build`` imports torch.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

from inspectorate._plugins import Registry
from inspectorate.errors import PluginError

FORMAT = "inspectorate.model"
VERSION = 1
FP32 = 4  # bytes per parameter, value or state
WEIGHT_DTYPES = {"fp32": 4, "bf16": 2, "fp16": 2, "int8": 1}
ADAM_STATES = 2  # AdamW's first and second moments


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """Base of every architecture config: frozen (it keys caches), counted, buildable.

    ``weights_dtype`` (keyword only, in every family's config): the precision the
    workload holds its weights in while it serves or evaluates (``fp32``, ``bf16``,
    ``fp16``, ``int8``). The verifier builds and times the model in fp32 whatever it
    says; what it changes is the bytes a forward pass must read (``verify._stillness``),
    so a server of bf16 weights is not held to fp32's."""

    family: ClassVar[str] = ""
    weights_dtype: str = dataclasses.field(default="fp32", kw_only=True)

    @property
    def weight_bytes(self) -> int:
        """Bytes per parameter of the weights as held (``weights_dtype``)."""
        return WEIGHT_DTYPES[self.weights_dtype]

    def n_params(self) -> int:
        raise NotImplementedError

    @property
    def depth(self) -> int:
        """Repeated blocks (what a slice keeps one or two of)."""
        raise NotImplementedError

    @property
    def context(self) -> int | None:
        """Longest sequence the model takes (None: unbounded, a recurrent model)."""
        return None

    @property
    def vocab(self) -> int:
        raise NotImplementedError

    def with_layers(self, k: int) -> ModelSpec:
        """The same model at full width with ``k`` blocks (the spot-check's slice)."""
        changes: dict[str, Any] = {self._layer_field: k}
        return dataclasses.replace(self, **changes)

    _layer_field: ClassVar[str] = "n_layers"  # the config field that counts the blocks

    def build(self) -> Any:
        """A torch module with random weights: ``forward(idx) -> logits (B, T, V)`` and
        ``decode(idx, state) -> (logits of the last position (B, V), state)``."""
        raise NotImplementedError

    def flops_per_token(self, training: bool) -> float:
        """Kaplan's estimate: 6N per trained token, 2N per inferred token."""
        return (6.0 if training else 2.0) * self.n_params()

    def lookup_params(self) -> int | None:
        """Parameters a forward pass reads only in part: lookup tables indexed by token or
        position (an untied input embedding), of which a batch touches its own rows.
        None: the family cannot say."""
        return None

    def cache_bytes(self, batch: int, seq: int) -> int:
        """Bytes of decoding state for ``batch`` sequences of ``seq`` tokens (KV cache)."""
        return 0

    def memory_b(self, op: str, batch: int = 1, seq: int = 1) -> dict[str, int]:
        """Lower bounds on resident bytes for ``op`` in fp32: weights for any op, plus
        gradients and AdamW's two moments for training, plus the decoding cache for
        inference. Activations and the runtime are not counted: a bound, not a guess."""
        n = self.n_params()
        out = {"weights": FP32 * n}
        if op == "training":
            out |= {"gradients": FP32 * n, "optimizer": ADAM_STATES * FP32 * n}
        elif op == "inference":
            out["cache"] = self.cache_bytes(batch, seq)
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "family": self.family,
            "config": {
                k: v
                for k, v in _plain(dataclasses.asdict(self)).items()
                if not (k == "weights_dtype" and v == "fp32")  # the default stays unwritten
            },
        }


def _plain(value: Any) -> Any:
    return (
        list(value)
        if isinstance(value, tuple)
        else value
        if not isinstance(value, dict)
        else {k: _plain(v) for k, v in value.items()}
    )


S = TypeVar("S", bound=type[ModelSpec])
# The built-in families register when ``_families`` is imported (``_files`` does, and so
# does the package); third-party ones through the entry-point group.
ARCHITECTURES: Registry[type[ModelSpec]] = Registry("model family", "inspectorate.models", ())


def architecture(name: str) -> Callable[[S], S]:
    """Register a ModelSpec subclass as the family ``name`` (a docstring is required)."""

    def register(cls: S) -> S:
        if not isinstance(cls, type) or not issubclass(cls, ModelSpec):
            raise PluginError(f"model family {name!r} must be a ModelSpec subclass")
        doc = (cls.__doc__ or "").strip()
        if not dataclasses.is_dataclass(cls) or not doc or doc.startswith(f"{cls.__name__}("):
            # (a dataclass without a docstring gets its signature as one)
            raise PluginError(f"model family {name!r} must be a documented dataclass")
        cls.family = name
        ARCHITECTURES.add(name, cls, cls)
        return cls

    return register
