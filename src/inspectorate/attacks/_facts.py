"""What an attacker reads out of the commitment it attacks: caps, thresholds, registries.

A competent prover sizes its evasion to the commitment in force: shards just under
*this* inference cap, a FLOP/token ratio just under *this* threshold, a dataset from
*this* allow-list. So attack parameters that depend on the commitment are declared as
``Derived(quantity, factor)`` and resolved at run time against ``Facts`` built from the
commitment; no number in the attack library assumes the seed's 1e19 / 1e18 caps, and
the attacker never special-cases an attack by name (hints are declared on the attack).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from inspectorate.attacks._intent import job_cap
from inspectorate.errors import InputError


@dataclass(frozen=True)
class Derived:
    """A parameter value sized from the commitment: ``factor`` × the named quantity."""

    quantity: str
    factor: float = 1.0

    def __repr__(self) -> str:
        return f"{self.factor:g}×{self.quantity}"


def sized(quantity: str, factor: float = 1.0) -> Any:
    """A ``Derived`` default for a parameter annotated ``float``: the registry resolves it
    to a number before the attack runs, so the function body only ever sees floats."""
    return Derived(quantity, factor)


def _rule_params(commitment: Any, kind: str) -> list[Mapping[str, Any]]:
    return [spec.params for spec in getattr(commitment, "rules", ()) if spec.kind == kind]


def _kind_default(kind: str, param: str) -> float:
    from inspectorate.commitment import RULES

    return float(RULES.get(kind).params[param].default)


def _cap(op_type: str) -> Callable[[Any], float]:
    def read(commitment: Any) -> float:
        cap = job_cap(commitment, op_type, default=float("nan"))
        if cap != cap:  # no cap of that kind: nothing to size against
            raise InputError(f"the commitment sets no per-job FLOP cap on {op_type}")
        return cap

    return read


def _ratio(commitment: Any) -> float:
    found = [float(p["training_threshold"]) for p in _rule_params(commitment, "op_type_flop_ratio")]
    return min(found) if found else _kind_default("op_type_flop_ratio", "training_threshold")


def _floor(commitment: Any) -> float:
    found = [float(p["floor"]) for p in _rule_params(commitment, "min_flop_per_token")]
    if not found:
        raise InputError("the commitment sets no min_flop_per_token floor")
    return max(found)


QUANTITIES: dict[str, Callable[[Any], float]] = {
    "training_job_cap": _cap("training"),
    "inference_job_cap": _cap("inference"),
    "eval_job_cap": _cap("eval"),
    "training_flop_ratio_threshold": _ratio,
    "min_flop_per_token_floor": _floor,
}


def _allowed(kind: str, drop: tuple[str, ...] = ()) -> Callable[[Any], list[Any]]:
    def read(commitment: Any) -> list[Any]:
        values = [v for p in _rule_params(commitment, kind) for v in p.get("allowed", [])]
        return [v for v in values if v not in drop]

    return read


HINTS: dict[str, Callable[[Any], list[Any]]] = {
    "allowed_dataset_fingerprints": _allowed("allowed_dataset_fingerprints"),
    "allowed_non_training_op_types": _allowed("allowed_op_types", drop=("training", "idle")),
}


@dataclass
class Facts:
    """The commitment as an attacker reads it; quantities are computed on first use."""

    commitment: Any = None
    _cache: dict[str, float] = field(default_factory=dict)

    def quantity(self, name: str) -> float:
        if name not in QUANTITIES:
            raise InputError(f"unknown commitment quantity {name!r}; known: {', '.join(sorted(QUANTITIES))}")
        if name not in self._cache:
            if self.commitment is None:
                raise InputError(f"sizing an attack needs the commitment ({name})")
            self._cache[name] = QUANTITIES[name](self.commitment)
        return self._cache[name]

    def hint(self, name: str) -> list[Any]:
        """Values a registry in the commitment allows (empty without a commitment)."""
        if name not in HINTS:
            raise InputError(f"unknown commitment hint {name!r}; known: {', '.join(sorted(HINTS))}")
        return HINTS[name](self.commitment) if self.commitment is not None else []

    def resolve(self, value: Any) -> Any:
        """``value`` with a ``Derived`` replaced by its number; anything else unchanged."""
        if isinstance(value, Derived):
            return value.factor * self.quantity(value.quantity)
        return value
