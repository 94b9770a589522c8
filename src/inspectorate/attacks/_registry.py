"""The attack registry: one decorated, parameterised function per record attack.

An attack is ``fn(records, rng, **params) -> list[dict]``. The registry wraps it so that
(a) the caller's records are never mutated (the function gets a deep copy), and
(b) the output always goes through ``rechain``: the hash chain is never the cheap catch,
because a real prover rewrites its own log before publishing it. Each attack names the
rule kinds it is designed to get past (``targets``) and a small parameter ``space`` the
offline searcher samples from, and carries an intent check saying whether the violation
it hides is still in the mutated trace (``inspectorate.attacks._intent``).
"""

from __future__ import annotations

import copy
import inspect
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from inspectorate._plugins import PluginError, Registry
from inspectorate.attacks._facts import HINTS, Facts
from inspectorate.attacks._intent import IntentCheck, conserves_work
from inspectorate.attacks._util import pinned_victims
from inspectorate.errors import InputError
from inspectorate.trace import rechain

Records = list[dict[str, Any]]
AttackFn = Callable[..., Records]


class AttackFunction(Protocol):
    """What ``@attack`` registers: ``fn(records, rng, **params) -> records``; it may edit
    ``records`` (a deep copy) and the registry re-chains what it returns."""

    def __call__(self, records: Records, rng: random.Random, /, *args: Any, **params: Any) -> Records: ...


AtkFn = TypeVar("AtkFn", bound=AttackFunction)


@dataclass(frozen=True)
class Attack:
    """A registered record attack: the function, what it hides, and how to judge it."""

    name: str
    fn: AttackFn
    intent: str
    targets: tuple[str, ...]
    space: Mapping[str, Sequence[Any]]
    intent_check: IntentCheck
    seed_round: str = ""
    hints: Mapping[str, str] = field(default_factory=dict)  # parameter -> commitment registry (Facts.hint)

    @property
    def doc(self) -> str:
        return inspect.getdoc(self.fn) or ""

    def defaults(self) -> dict[str, Any]:
        sig = inspect.signature(self.fn)
        return {n: p.default for n, p in list(sig.parameters.items())[2:] if p.default is not p.empty}

    def __call__(
        self,
        records: Sequence[Mapping[str, Any]],
        rng: random.Random | int | None = None,
        facts: Facts | None = None,
        **params: Any,
    ) -> Records:
        """Run the attack on a copy of ``records``; the result is re-chained.

        Parameters left at a ``Derived`` default (or given as one) are sized from
        ``facts``, the commitment under attack."""
        gen = rng if isinstance(rng, random.Random) else random.Random(rng)
        return rechain(self.apply([copy.deepcopy(dict(r)) for r in records], gen, facts, **params))

    def apply(
        self, records: Records, rng: random.Random, facts: Facts | None = None, **params: Any
    ) -> Records:
        """Run the attack on ``records`` itself (edited in place), without re-chaining: a
        step of a compound, whose chain is re-built once at the end."""
        defaults = self.defaults()
        unknown = sorted(set(params) - set(defaults))
        if unknown:
            raise InputError(
                f"attack {self.name!r}: unknown parameter(s) {', '.join(unknown)}; "
                f"accepted: {', '.join(defaults) or 'none'}"
            )
        known = facts if facts is not None else Facts()
        values = {k: known.resolve(v) for k, v in {**defaults, **params}.items()}
        return self.fn(records, rng, **values)

    def intent_preserved(
        self, original: Sequence[Mapping[str, Any]], mutated: Sequence[Mapping[str, Any]]
    ) -> bool:
        """Is the violation this attack hides still in ``mutated``?"""
        return bool(self.intent_check(original, mutated))


ATTACKS: Registry[Attack] = Registry(
    "attack",
    "inspectorate.attacks",
    (
        "inspectorate.attacks._label_job_time_attacks",
        "inspectorate.attacks._accounting_provenance_attacks",
        "inspectorate.attacks._evasion_attacks",
        "inspectorate.attacks._compound_attacks",  # last: it composes the others
    ),
    positional=("records", "rng"),
)


def attack(
    name: str,
    *,
    intent: str,
    targets: Sequence[str] = (),
    space: Mapping[str, Sequence[Any]] | None = None,
    intent_check: IntentCheck = conserves_work,
    seed_round: str = "",
    hints: Mapping[str, str] | None = None,
) -> Callable[[AtkFn], AtkFn]:
    """Register ``fn`` as record attack ``name`` (its docstring must say why it exists).

    ``space`` lists values the offline searcher samples per parameter (a ``Derived``
    value is sized from the commitment); ``hints`` names, per parameter, a registry of
    the commitment whose allowed values are added to the choices (``Facts.hint``)."""

    def register(fn: AtkFn) -> AtkFn:
        ATTACKS.check(name, fn)
        _check_metadata(name, fn, intent, targets, space or {}, hints or {})
        entry = Attack(
            name, fn, intent, tuple(targets), dict(space or {}), intent_check, seed_round, dict(hints or {})
        )
        ATTACKS.add(name, entry, fn)
        return fn

    return register


def _check_metadata(
    name: str,
    fn: Callable[..., object],
    intent: object,
    targets: object,
    space: Mapping[str, Sequence[Any]],
    hints: Mapping[str, str],
) -> None:
    """An attack's metadata, checked when it registers: PluginError names what is wrong."""
    where = f"attack {name!r}"
    if not isinstance(intent, str) or not intent.strip():
        raise PluginError(f"{where}: intent must say what the attack hides, got {intent!r}")
    if isinstance(targets, str) or not all(isinstance(t, str) for t in targets):  # type: ignore[attr-defined]
        raise PluginError(f"{where}: targets must be a list of rule kind names, got {targets!r}")
    params = list(inspect.signature(fn).parameters)[2:]
    for param, values in space.items():
        if param not in params:
            raise PluginError(f"{where}: space samples {param!r}, which the function does not take")
        if isinstance(values, str) or not values:
            raise PluginError(f"{where}: space[{param!r}] must be a non-empty list of values")
    for param, hint in hints.items():
        if hint not in HINTS:
            raise PluginError(f"{where}: unknown hint {hint!r} for {param!r}")


def get_attack(name: str) -> Attack:
    """The registered attack called ``name``; InputError lists the known ones."""
    return ATTACKS.get(name)


def attack_names() -> list[str]:
    return ATTACKS.names()


@dataclass(frozen=True)
class Step:
    """One attack with its parameters: a JSON-ready piece of an attack spec."""

    name: str
    params: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"attack": self.name, "params": dict(self.params)}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Step:
        if not isinstance(data, Mapping) or "attack" not in data:
            raise InputError(f"attack step must be a mapping with 'attack', got {data!r}")
        return cls(str(data["attack"]), dict(data.get("params") or {}))


@dataclass(frozen=True)
class Compound:
    """Several attacks applied in sequence (the seed never tested combinations)."""

    steps: tuple[Step, ...]

    @property
    def name(self) -> str:
        return "+".join(step.name for step in self.steps)

    @property
    def attacks(self) -> list[Attack]:
        return [get_attack(step.name) for step in self.steps]

    @property
    def intent(self) -> str:
        return "; ".join(a.intent for a in self.attacks)

    def __call__(
        self,
        records: Sequence[Mapping[str, Any]],
        rng: random.Random | int | None = None,
        facts: Facts | None = None,
    ) -> Records:
        """Apply the steps in order to one private copy, each hiding the same run (the
        victims are pinned before the first step), and re-chain once at the end, as a
        prover that rewrites its log once before publishing it would."""
        gen = rng if isinstance(rng, random.Random) else random.Random(rng)
        out: Records = [copy.deepcopy(dict(r)) for r in records]
        with pinned_victims(out):
            for step in self.steps:
                out = get_attack(step.name).apply(out, gen, facts, **step.params)
        return rechain(out)

    def intent_preserved(
        self, original: Sequence[Mapping[str, Any]], mutated: Sequence[Mapping[str, Any]]
    ) -> bool:
        """Every step's intent check must hold between the original and the final trace."""
        return all(a.intent_preserved(original, mutated) for a in self.attacks)

    def to_dict(self) -> dict[str, Any]:
        return {"compose": [step.to_dict() for step in self.steps]}


def compose(steps: Sequence[str | Step | tuple[str, Mapping[str, Any]]]) -> Compound:
    """A compound attack from names, ``(name, params)`` pairs or Steps, applied in order."""
    built: list[Step] = []
    for item in steps:
        if isinstance(item, Step):
            built.append(item)
        elif isinstance(item, str):
            built.append(Step(item))
        else:
            name, params = item
            built.append(Step(name, dict(params)))
    for step in built:
        get_attack(step.name)
    if not built:
        raise InputError("compose() needs at least one attack")
    return Compound(tuple(built))
