"""Properties: one registered function per question a verifier asks of a phase.

A property is ``fn(evidence: PhaseEvidence, context: Context) -> Finding``. It returns a
suspicion ``score`` in [0, 1] (0: telemetry agrees with the claim, 1: it contradicts it;
the benchmark ranks phases by it for AUROC), a ``decision`` (``consistent``,
``inconsistent`` or ``unverifiable`` when the evidence that could tell is missing,
prover-only or contradictory), the ``basis`` (sensor or verifier streams a
``consistent`` decision rests on; the Inspector turns a consistent finding without one
into ``unverifiable``) and ``evidence`` naming the signals, values and thresholds.
A *claim* property decides part of the claim (its ``unverifiable`` makes the phase
unverifiable); a *cross-check* (``claim=False``) compares prover streams with each other
and can only fail a claim. Third parties register
theirs by exposing a module under the ``inspectorate.properties`` entry-point group;
importing the module runs its ``@prop`` decorators.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from inspectorate._plugins import Registry
from inspectorate.decisions import LEGACY, Decision
from inspectorate.errors import PluginError

if TYPE_CHECKING:
    from inspectorate.verify._evidence import PhaseEvidence
    from inspectorate.verify._properties import Context

CONSISTENT, INCONSISTENT, UNVERIFIABLE = Decision.CONSISTENT, Decision.INCONSISTENT, Decision.UNVERIFIABLE
INDETERMINATE = UNVERIFIABLE  # the old name of the third outcome
DECISIONS = tuple(Decision)


@dataclass(frozen=True)
class Finding:
    """One property's answer for one phase."""

    property: str
    score: float
    decision: str
    evidence: dict[str, Any] = field(default_factory=dict)
    record_ids: tuple[str, ...] = ()
    basis: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "property": self.property,
            "decision": self.decision,
            "score": round(self.score, 6),
            "basis": list(self.basis),
            "evidence": plain(self.evidence),
        }


def finding(
    name: str,
    score: float,
    decision: str,
    record_ids: list[str] | tuple[str, ...] = (),
    *,
    basis: list[str] | tuple[str, ...] = (),
    **evidence: Any,
) -> Finding:
    """Build a Finding, clipping the score and checking the decision word; ``basis`` names
    the streams (sensor or verifier, see ``_trust``) a consistent decision rests on."""
    if LEGACY.get(decision, decision) not in DECISIONS:  # a property's bug, not the user's input
        raise ValueError(f"decision must be one of {[str(d) for d in DECISIONS]}, got {decision!r}")
    decision = Decision(LEGACY.get(decision, decision))
    score = 0.0 if not math.isfinite(score) else min(max(float(score), 0.0), 1.0)
    return Finding(
        name, score, decision, plain(evidence), tuple(record_ids[:50]), tuple(dict.fromkeys(basis))
    )


def unverifiable(name: str, missing: list[str], **evidence: Any) -> Finding:
    """The property cannot judge: the streams that could tell are absent (named)."""
    return finding(name, 0.0, UNVERIFIABLE, missing_streams=missing, **evidence)


indeterminate = unverifiable  # the old name


def plain(value: Any) -> Any:
    """Evidence as JSON-ready builtins, floats rounded to 6 significant digits."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set)):
        return [plain(v) for v in value]
    if hasattr(value, "item") and callable(value.item):
        value = value.item()
    if isinstance(value, float):
        return float(f"{value:.6g}") if math.isfinite(value) else str(value)
    return value


@dataclass(frozen=True)
class PropertyKind:
    name: str
    fn: Callable[..., Finding]
    claim: bool = True  # False: a cross-check of prover streams that can only fail a claim

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.fn) or ""


class PropertyFunction(Protocol):
    """What ``@prop`` registers: ``fn(evidence, context) -> Finding`` for one phase."""

    def __call__(self, evidence: PhaseEvidence, context: Context, /) -> Finding: ...


PropFn = TypeVar("PropFn", bound=PropertyFunction)

PROPERTIES: Registry[PropertyKind] = Registry(
    "property",
    "inspectorate.properties",
    (
        "inspectorate.verify._accounting",
        "inspectorate.verify._physics",
        "inspectorate.verify._properties",
        "inspectorate.verify._posttrain",
    ),
    positional=("evidence", "context"),
)


def prop(name: str, *, claim: bool = True) -> Callable[[PropFn], PropFn]:
    """Register ``fn(evidence, context) -> Finding`` as property ``name`` (``claim=False``
    for a cross-check of prover streams that can only fail a claim)."""

    def register(fn: PropFn) -> PropFn:
        PROPERTIES.check(name, fn)
        if not isinstance(claim, bool):
            raise PluginError(f"property {name!r}: claim must be True or False, got {claim!r}")
        PROPERTIES.add(name, PropertyKind(name, fn, claim), fn)
        return fn

    return register


def load_plugins() -> None:
    """Import built-ins, then every module of the ``inspectorate.properties`` entry-point group."""
    PROPERTIES.load()


def known_properties() -> list[str]:
    return PROPERTIES.names()
