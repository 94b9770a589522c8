"""The offline attacker: a seeded search over library attacks, their parameters and compositions.

Why a search and not a list: the seed's loop found its evasions by reacting to what
caught the previous round. This attacker does the same without a model. It first tries
every library attack once (exploration), then exploits: it takes the best near-miss so
far (intent preserved, fewest rules fired; an evasion if any) and either re-samples one
parameter or appends an attack whose ``targets`` name a rule kind that fired on it.
Values sized from the commitment (caps, thresholds: ``Derived``) and values from its
registries (allowed op types, dataset fingerprints: the attack's declared ``hints``) are
read from the commitment, as a real prover would. Deterministic given the seed.

``strategy="beam"`` searches combinations systematically under the round budget: after
the singles, it keeps the ``beam`` closest caught, intent-preserving combinations seen
so far (fewest rules fired, then fewest records flagged: the distance to a clean
verdict) that still have room to grow and extends each, best first, by up to ``branch`` more families (attacks that
target a rule kind that fired on it first), up to ``depth`` parts: pairs, then triples. Families whose single
round removed the violation (drops, truncation) are never added: a compound's intent
check is every part's.
"""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from inspectorate.attacks._compound_attacks import PARTS
from inspectorate.attacks._facts import Facts
from inspectorate.attacks._registry import ATTACKS, Attack, Step, attack_names, get_attack
from inspectorate.errors import InputError

MAX_STEPS = 4
STRATEGIES = ("greedy", "beam")
_UNSIZED = object()


@dataclass(frozen=True)
class Proposal:
    """What an attacker submits for one round: a library spec or mutation code."""

    name: str
    intent: str
    rationale: str
    spec: dict[str, Any] | None = None
    code: str | None = None
    cost_usd: float = 0.0


@dataclass
class OfflineAttacker:
    """Seeded search over the attack library (see module docstring)."""

    seed: int = 0
    explore_first: bool = True
    name: str = "offline"
    strategy: str = "greedy"
    beam: int = 4
    depth: int = 3
    branch: int = 8
    rng: random.Random = field(init=False)
    tried: set[str] = field(default_factory=set)
    facts: Facts = field(default_factory=Facts)
    queue: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise InputError(f"unknown search strategy {self.strategy!r}; accepted: {', '.join(STRATEGIES)}")
        if self.beam < 1 or self.branch < 1 or not 1 <= self.depth <= MAX_STEPS:
            raise InputError(
                f"beam and branch must be >= 1 and depth 1..{MAX_STEPS}, "
                f"got {self.beam}, {self.branch}, {self.depth}"
            )
        self.rng = random.Random(self.seed)
        # single families first (seeded order), the registered compounds after them:
        # the queue pops from the end, so compounds go in front, in library order
        names = attack_names()
        atoms = [n for n in names if n not in PARTS]
        self.rng.shuffle(atoms)
        self.queue = [n for n in names if n in PARTS][::-1] + atoms

    def prepare(self, commitment: Any, baseline: Sequence[dict[str, Any]]) -> None:
        """Read caps, thresholds and registries out of the commitment under attack."""
        self.facts = Facts(commitment)

    def propose(self, history: Sequence[dict[str, Any]]) -> Proposal:
        if self.explore_first:
            while self.queue:
                steps = [self._sample_step(get_attack(self.queue.pop()))]
                if self._fresh(steps):
                    return self._proposal(steps, f"explore: first try of {steps[0].name}")
        if self.strategy == "beam":
            found = self._beam(history)
            if found is not None:
                return self._proposal(*found)
        for _ in range(50):
            steps, why = self._exploit(history)
            if self._fresh(steps):
                return self._proposal(steps, why)
        steps = [self._sample_step(get_attack(self.rng.choice(attack_names())))]
        self._fresh(steps)
        return self._proposal(steps, "random restart: the neighbourhood of the best rounds is exhausted")

    def _exploit(self, history: Sequence[dict[str, Any]]) -> tuple[list[Step], str]:
        base = _best(history, self.rng)
        if base is None:
            step = self._sample_step(get_attack(self.rng.choice(attack_names())))
            return [step], "random: no informative round yet"
        steps = [Step.from_dict(s) for s in base["attack_spec"]["compose"]]
        fired = list(base.get("fired_kinds") or [])
        if fired and len(steps) < MAX_STEPS and self.rng.random() < 0.7:
            kind = self.rng.choice(fired)
            helpers = [
                a for a in ATTACKS.values() if kind in a.targets and a.name not in {s.name for s in steps}
            ]
            if helpers:
                extra = self._sample_step(self.rng.choice(helpers))
                return steps + [extra], (
                    f"exploit round {base['round']}: caught by {kind}; adding {extra.name}, "
                    f"which targets {kind}"
                )
        i = self.rng.randrange(len(steps))
        steps[i] = self._sample_step(get_attack(steps[i].name))
        return steps, f"exploit round {base['round']}: re-sampling the parameters of {steps[i].name}"

    def _beam(self, history: Sequence[dict[str, Any]]) -> tuple[list[Step], str] | None:
        """The first fresh extension of the best combinations so far (None: beam exhausted)."""
        hollow = _hollow_families(history)
        alone = {
            r["attack_spec"]["compose"][0]["attack"]
            for r in history
            if r.get("evasion") and len((r.get("attack_spec") or {}).get("compose") or []) == 1
        }
        open_rows = [
            r
            for r in _beam_rows(history)
            if len(r["attack_spec"]["compose"]) < self.depth and _children(history, r) < self.branch
        ]
        for base in open_rows[: self.beam]:
            steps = [Step.from_dict(s) for s in base["attack_spec"]["compose"]]
            have = {s.name for s in steps}
            fired = set(base.get("fired_kinds") or [])
            names = [n for n in attack_names() if n not in have and n not in hollow]
            self.rng.shuffle(names)
            # a family that evades alone makes any near miss an evasion: a variant of a
            # known class, so it comes last; families aimed at what fired come first
            names.sort(key=lambda n: (n in alone, not (fired & set(get_attack(n).targets))))
            for name in names:
                extended = steps + [self._sample_step(get_attack(name))]
                if self._fresh(extended):
                    return extended, (
                        f"beam round {base['round']} ({len(base.get('fired_rules') or [])} rule(s) fired): "
                        f"adding {name}"
                    )
        return None

    def _sample_step(self, attack: Attack) -> Step:
        """Sample each parameter; commitment-sized values are resolved to numbers here, so
        the spec in the round's row replays exactly."""
        params = {}
        for name, values in attack.space.items():
            hint = attack.hints.get(name)
            choices = [*values, *(self.facts.hint(hint) if hint else [])]
            sized = [v for v in (self._sized(c) for c in choices) if v is not _UNSIZED]
            if sized:
                params[name] = self.rng.choice(sized)
        return Step(attack.name, params)

    def _sized(self, value: Any) -> Any:
        try:
            return self.facts.resolve(value)
        except InputError:  # the commitment has no such cap: that value is not an option
            return _UNSIZED

    def _fresh(self, steps: list[Step]) -> bool:
        key = json.dumps([s.to_dict() for s in steps], sort_keys=True)
        if key in self.tried:
            return False
        self.tried.add(key)
        return True

    def _proposal(self, steps: list[Step], why: str) -> Proposal:
        attacks = [get_attack(s.name) for s in steps]
        return Proposal(
            name="+".join(s.name for s in steps),
            intent="; ".join(a.intent for a in attacks),
            rationale=why,
            spec={"compose": [s.to_dict() for s in steps]},
        )


def _best(history: Sequence[dict[str, Any]], rng: random.Random) -> dict[str, Any] | None:
    """A round worth building on: intent kept, spec-based, fewest rules fired; usually a caught
    near miss (to find new evasion classes), sometimes an evasion (to vary it)."""
    usable = [r for r in history if r.get("intent_preserved") and r.get("attack_spec") and not r.get("error")]
    near_misses = [r for r in usable if r.get("caught")]
    if near_misses and rng.random() < 0.7:  # mostly look for new classes rather than variants of a known one
        usable = near_misses
    if not usable:
        return None
    usable.sort(key=lambda r: (len(r.get("fired_rules") or []), len(r["attack_spec"]["compose"]), r["round"]))
    top = usable[: max(1, min(5, len(usable)))]
    return rng.choice(top)


def distance(row: dict[str, Any]) -> tuple[int, int]:
    """How far a round's trace is from a clean verdict: rules fired, then records flagged."""
    return len(row.get("fired_rules") or []), int(row.get("flagged_records") or 0)


def _children(history: Sequence[dict[str, Any]], base: dict[str, Any]) -> int:
    """How many rounds so far extended ``base``'s combination by one attack."""
    spec = base["attack_spec"]["compose"]
    return sum(1 for r in history if (r.get("attack_spec") or {}).get("compose", [])[:-1] == spec)


def _beam_rows(history: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The caught, intent-preserving combinations, closest first (one row per set of
    families). An evasion is not extended: it already wins; near misses are where one
    more family can turn a catch into an evasion."""
    rows = [
        r
        for r in history
        if r.get("intent_preserved") and r.get("caught") and r.get("attack_spec") and not r.get("error")
    ]
    rows.sort(key=lambda r: (distance(r), len(r["attack_spec"]["compose"]), r["round"]))
    best: dict[frozenset[str], dict[str, Any]] = {}
    for r in rows:
        best.setdefault(frozenset(s["attack"] for s in r["attack_spec"]["compose"]), r)
    return list(best.values())


def _hollow_families(history: Sequence[dict[str, Any]]) -> set[str]:
    """Attacks whose every single-attack round removed the violation instead of hiding it
    (or failed: deleting the whole job leaves no trace to judge)."""
    seen: dict[str, bool] = {}
    for r in history:
        spec = (r.get("attack_spec") or {}).get("compose") or []
        if len(spec) == 1:
            name = spec[0]["attack"]
            kept = bool(r.get("intent_preserved")) and not r.get("error")
            seen[name] = seen.get(name, False) or kept
    return {name for name, kept in seen.items() if not kept}
