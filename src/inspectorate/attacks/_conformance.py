"""``check_attack``: the conformance battery for record-attack plugins (cf. ``check_rule``).

An attack author runs it on a trace the attack should change; it raises
ConformanceError naming the first property that fails.
"""

from __future__ import annotations

import copy
import random
from collections.abc import Mapping, Sequence
from typing import Any

from inspectorate._plugins import require
from inspectorate.attacks._facts import Facts
from inspectorate.attacks._registry import ATTACKS
from inspectorate.trace import canonical_json, validate_record, verify_chain
from inspectorate.trace._schema import RecordError


def check_attack(
    name: str, records: Sequence[Mapping[str, Any]], facts: Facts | None = None, **params: Any
) -> list[dict[str, Any]]:
    """Check that attack ``name`` is registered and documented, samples only its own
    parameters, leaves its input untouched, is deterministic given the rng, returns valid
    window records with an intact re-built chain, and answers its intent check with a
    bool. Returns the mutated records."""
    require(name in ATTACKS, f"{name!r} is not registered")
    attack = ATTACKS[name]
    require(attack.doc.strip() and attack.intent, f"{name!r} needs a docstring and an intent")
    for param, values in attack.space.items():
        require(param in attack.defaults(), f"{name!r} samples {param!r}, which it does not take")
        require(values, f"{name!r} has an empty choice list for {param!r}")
    pristine = [canonical_json(r) for r in records]
    out = attack(copy.deepcopy(list(records)), random.Random(5), facts, **params)
    again = attack(copy.deepcopy(list(records)), random.Random(5), facts, **params)
    require([canonical_json(r) for r in records] == pristine, f"{name!r} mutated its input")
    require(out == again, f"{name!r} is not deterministic given the rng")
    require(verify_chain(out) == [], f"{name!r} left a broken hash chain")
    for record in out:
        try:
            validate_record(record)
        except RecordError as exc:
            require(False, f"{name!r} produced an invalid record: {exc}")
    require(isinstance(attack.intent_preserved(records, out), bool), f"{name!r}'s intent check is not a bool")
    return out
