"""Registered compound attacks: several families at once, as one library attack.

The seed's write-up names the realistic threat as op_type relabel + under-reporting +
fingerprint rotation *simultaneously*, and none of its 60 rounds tried a combination.
``compound_attack`` registers a fixed sequence of record attacks under one name, so it
is an ordinary ``Attack``: it has a docstring and an intent, passes ``check_attack``,
and the offline search samples its parameters. Parameters are the parts' parameters
prefixed with the part's name (``relabel_op_type__to``). Every part hides the same run
(victims pinned before the first step), the chain is re-built once at the end (the
registry re-chains), and the intent check is every part's check on the final trace.
"""

from __future__ import annotations

import inspect
import random
from collections.abc import Mapping, Sequence
from typing import Any

from inspectorate._plugins import PluginError
from inspectorate.attacks._registry import ATTACKS, Attack, Records, get_attack
from inspectorate.attacks._util import pinned_victims

SEP = "__"
PARTS: dict[str, tuple[str, ...]] = {}  # registered compound -> its single attacks


def _parts(steps: Sequence[str]) -> list[Attack]:
    """The registered attacks named by ``steps``; a compound may not repeat one."""
    if len(steps) < 2 or len(set(steps)) != len(steps):
        raise PluginError(f"a compound needs two or more distinct attacks, got {list(steps)}")
    return [get_attack(name) for name in steps]


def _signature(parts: list[Attack]) -> inspect.Signature:
    params = [
        inspect.Parameter("records", inspect.Parameter.POSITIONAL_OR_KEYWORD),
        inspect.Parameter("rng", inspect.Parameter.POSITIONAL_OR_KEYWORD),
    ]
    for part in parts:
        for name, default in part.defaults().items():
            params.append(
                inspect.Parameter(f"{part.name}{SEP}{name}", inspect.Parameter.KEYWORD_ONLY, default=default)
            )
    return inspect.Signature(params)


def compound_attack(name: str, steps: Sequence[str], *, doc: str, seed_round: str = "") -> Attack:
    """Register the record attacks ``steps`` (applied in that order) as attack ``name``."""
    parts = _parts(steps)

    def run(records: Records, rng: random.Random, **params: Any) -> Records:
        with pinned_victims(records):
            for part in parts:
                mine = {k.split(SEP, 1)[1]: v for k, v in params.items() if k.split(SEP, 1)[0] == part.name}
                records = part.apply(records, rng, None, **mine)  # values arrive resolved
        return records

    run.__doc__ = doc
    run.__name__ = name
    run.__signature__ = _signature(parts)  # type: ignore[attr-defined]

    def intent_check(original: Sequence[Mapping[str, Any]], mutated: Sequence[Mapping[str, Any]]) -> bool:
        return all(part.intent_preserved(original, mutated) for part in parts)

    entry = Attack(
        name,
        run,
        "; ".join(p.intent for p in parts),
        tuple(dict.fromkeys(t for p in parts for t in p.targets)),
        {f"{p.name}{SEP}{k}": v for p in parts for k, v in p.space.items()},
        intent_check,
        seed_round,
        {f"{p.name}{SEP}{k}": v for p in parts for k, v in p.hints.items()},
    )
    ATTACKS.add(name, entry, run)
    PARTS[name] = tuple(a for p in parts for a in PARTS.get(p.name, (p.name,)))
    return entry


compound_attack(
    "relabel_deflate_rotate",
    ["relabel_op_type", "deflate_flops", "rotate_model_hash"],
    doc="The write-up's realistic threat, all at once: part of the run booked as "
    "inference/eval, its FLOPs under-reported (tokens kept), and the model hash rotated "
    "mid-run so per-model rules see several models.",
    seed_round="10 + 19 + 9 (never combined)",
)
compound_attack(
    "relabel_deflate_rotate_split",
    ["relabel_op_type", "deflate_flops", "rotate_model_hash", "split_jobs"],
    doc="The triad plus job fragmentation: each fragment is its own job_id, so every "
    "per-job cap sees a share of the (under-reported, partly relabelled) run.",
    seed_round="10 + 19 + 9 + 24",
)
compound_attack(
    "relabel_inflate_split",
    ["relabel_op_type", "inflate_tokens", "split_jobs"],
    doc="Eval-masquerade with an inference-shaped FLOP/token (tokens over-reported) and "
    "the run cut into jobs: round 23 and round 24 together.",
    seed_round="23 + 24",
)
compound_attack(
    "split_rotate_identity",
    ["split_operators", "rotate_code_commit", "rotate_config"],
    doc="Fragments with their own job and operator, and code commit and config hash "
    "rotated across the run: every identity keyed rule sees a different run per part.",
    seed_round="31 + 29 + 15",
)
compound_attack(
    "ghost_relabel_deflate",
    ["ghost_chips", "relabel_op_type", "deflate_flops"],
    doc="Work moved onto invented chips, part of it relabelled and its FLOPs "
    "under-reported: per-chip rates, per-op caps and the FLOP total all fall.",
    seed_round="1 + 10 + 19",
)
