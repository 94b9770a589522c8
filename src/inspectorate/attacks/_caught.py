"""Caught rates of single and compound attacks side by side, and the gaps between them.

The goal the issue sets is "compound attacks caught at the same rate as their parts".
``score`` plays one attack spec (a single attack or a composition) against a commitment
on the violating baseline, several seeds; ``side_by_side`` scores every single attack and
every combination asked for, and ``gaps`` lists the combinations that evade while each
of their parts alone is caught: exactly what a new or tighter rule must close.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from inspectorate.attacks._facts import Facts
from inspectorate.attacks._registry import Step, attack_names, compose
from inspectorate.commitment import Commitment, check
from inspectorate.errors import InputError

Records = list[dict[str, Any]]


@dataclass
class Score:
    """One attack spec over ``seeds`` rounds: how often it was caught, by what."""

    name: str
    parts: tuple[str, ...]  # the single attacks it is made of (registered compounds expanded)
    rounds: int = 0
    caught: int = 0
    hollow: int = 0  # the violation was removed rather than hidden (caught or not)
    errors: int = 0
    fired: set[str] = field(default_factory=set)

    @property
    def evasions(self) -> int:
        return self.rounds - self.caught - self.hollow - self.errors

    @property
    def hides(self) -> bool:
        """Did any round keep the violation (intent preserved), caught or not?"""
        return self.rounds - self.hollow - self.errors > 0

    @property
    def rate(self) -> float | None:
        """Caught / rounds that kept the violation (None: it never kept it)."""
        kept = self.rounds - self.hollow - self.errors
        return self.caught / kept if kept else None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "parts": list(self.parts),
            "rounds": self.rounds,
            "caught": self.caught,
            "evasions": self.evasions,
            "hollow": self.hollow,
            "errors": self.errors,
            "rate": self.rate,
            "fired": sorted(self.fired),
        }


def score(
    steps: Sequence[str | Step], baseline: Records, commitment: Commitment, seeds: Iterable[int] = (0, 1, 2)
) -> Score:
    """Apply ``compose(steps)`` to ``baseline`` once per seed and judge each result."""
    from inspectorate.attacks._compound_attacks import PARTS

    attack = compose(list(steps))
    atoms = tuple(a for s in attack.steps for a in PARTS.get(s.name, (s.name,)))
    out = Score(attack.name, tuple(dict.fromkeys(atoms)))
    facts = Facts(commitment)
    for seed in seeds:
        out.rounds += 1
        try:
            mutated = attack(baseline, random.Random(seed), facts)
            verdict = check(mutated, commitment)
        except InputError:
            out.errors += 1
            continue
        if not attack.intent_preserved(baseline, mutated):
            out.hollow += 1  # the violation is gone: neither an evasion nor a catch to count
        elif not verdict.compliant:
            out.caught += 1
            out.fired |= {v.rule_id for v in verdict.violations}
    return out


def side_by_side(
    baseline: Records,
    commitment: Commitment,
    combos: Sequence[Sequence[str]] | None = None,
    *,
    singles: Sequence[str] | None = None,
    size: int = 2,
    seeds: Iterable[int] = (0, 1, 2),
) -> tuple[list[Score], list[Score]]:
    """Score every single attack, then ``combos`` (default: every ``size``-combination of
    the singles that hide the violation, in library order)."""
    seeds = tuple(seeds)
    names = list(singles) if singles is not None else attack_names()
    single = [score([n], baseline, commitment, seeds) for n in names]
    if combos is None:
        hiding = [s.name for s in single if s.hides]
        combos = list(itertools.combinations(hiding, size))
    return single, [score(list(c), baseline, commitment, seeds) for c in combos]


def gaps(single: Sequence[Score], compound: Sequence[Score]) -> list[Score]:
    """Compounds that evade at least once while every single attack in them was always
    caught alone (a part that evades alone is a single-attack gap, not a compound one)."""
    alone = {s.name: s for s in single}
    out = []
    for c in compound:
        parts = [alone.get(p) for p in c.parts]
        if c.evasions and all(p is not None and p.rate == 1.0 for p in parts):
            out.append(c)
    return out


def rate(scores: Sequence[Score]) -> tuple[int, int]:
    """(caught, rounds that kept the violation) over ``scores``."""
    kept = sum(s.rounds - s.hollow - s.errors for s in scores)
    return sum(s.caught for s in scores), kept
