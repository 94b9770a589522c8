"""Out of core, the keyed and global rules that declare a mergeable partial.

Such a rule (``commitment/_partial.py``) never has its rows bucketed or spilled whole:

1. each map task computes the rule's small state over its part (``part_states``);
2. the driver merges the parts' states and asks the rule's ``suspects`` what it must
   still see (``settle``): nothing (the rule is proven to yield nothing), some groups
   of its key column, or every record;
3. only when some rule has suspects, a second pass over the parts writes the records
   of those groups (``gather_part``), and the registered rule runs, unchanged, on them
   (``judge_merged``): exact, because a keyed rule judges each group alone, and a
   global rule that is not cleared sees every record.

So a trace the rules clear is judged in memory bounded by a part plus the states
(O(groups)), whatever its length; a flagged group costs its own records. Rules without
a partial take the bucket path (``_outcore``), and ``rule_paths`` says which did.
"""

from __future__ import annotations

import io
from typing import Any, Protocol

import polars as pl

from inspectorate.commitment._check import run_rule
from inspectorate.commitment._model import RuleSpec
from inspectorate.commitment._partial import ALL, Suspects, partial_for
from inspectorate.commitment._registry import RULES, Violation, load_plugins
from inspectorate.scale._parts import Part, load_part, read_spill, rule_frame, write_spill
from inspectorate.trace import Trace


class Plan(Protocol):
    """What these steps read of ``_outcore.Plan`` (not imported: _outcore imports this)."""

    @property
    def specs(self) -> tuple[RuleSpec, ...]: ...
    @property
    def hows(self) -> tuple[str | None, ...]: ...
    @property
    def spill(self) -> str: ...
    @property
    def merged(self) -> tuple[bool, ...]: ...


_NOT_KEYED = ("record", "chain", "dag", "driver")


def merged_rules(specs: list[RuleSpec], hows: list[str | None]) -> tuple[bool, ...]:
    """Per rule: keyed or global, and its kind declares a partial."""
    load_plugins()
    return tuple(how not in _NOT_KEYED and partial_for(s.kind) is not None for s, how in zip(specs, hows))


def _params(spec: RuleSpec) -> dict[str, Any]:
    load_plugins()
    return RULES[spec.kind].configured(spec.params)


def part_states(trace: Trace, plan_: Plan) -> dict[int, pl.DataFrame]:
    """Each merged rule's state over one part (``trace``: the part's rule frame)."""
    out = {}
    for i, spec in enumerate(plan_.specs):
        if plan_.merged and plan_.merged[i]:
            partial = partial_for(spec.kind)
            assert partial is not None
            out[i] = owned(partial.state(trace, _params(spec)))
    return out


def owned(frame: pl.DataFrame) -> pl.DataFrame:
    """A copy with buffers of its own: a small frame derived from a part can share the
    part's buffers and keep them alive while the driver holds it across parts."""
    buffer = io.BytesIO()
    frame.write_ipc(buffer, compression="uncompressed")
    buffer.seek(0)
    return pl.read_ipc(buffer)


FOLD_EVERY = 16  # parts' states held per rule before they are folded into one


class Folded:
    """The merged rules' states, folded as the parts' results arrive (in any order):
    the driver holds one folded state per rule plus fewer than ``every`` parts' states,
    so its memory is O(groups), not O(parts x groups), however many parts there are."""

    def __init__(self, plan_: Plan, every: int | None = None):
        self.plan, self.every = plan_, max(FOLD_EVERY if every is None else every, 1)
        self.pending: dict[int, list[pl.DataFrame]] = {
            i: [] for i in range(len(plan_.specs)) if plan_.merged and plan_.merged[i]
        }

    def add(self, states: dict[int, pl.DataFrame]) -> None:
        for i, state in states.items():
            held = self.pending[i]
            held.append(state)
            if len(held) >= self.every:
                partial = partial_for(self.plan.specs[i].kind)
                assert partial is not None
                self.pending[i] = [owned(partial.fold(held, _params(self.plan.specs[i])))]

    def settle(self) -> dict[int, Suspects]:
        """Per merged rule with something left to see: its suspects (groups or ``ALL``)."""
        out: dict[int, Suspects] = {}
        for i, held in self.pending.items():
            spec = self.plan.specs[i]
            partial = partial_for(spec.kind)
            assert partial is not None
            found = partial.settle(held, _params(spec))
            if found is not None:
                out[i] = found
        return out


def settle(plan_: Plan, states: list[dict[int, pl.DataFrame]]) -> dict[int, Suspects]:
    """Per merged rule with something left to see, from every part's states at once."""
    folded = Folded(plan_, every=len(states) + 1)
    for part in states:
        folded.add(part)
    return folded.settle()


def _rows_of(rules: pl.DataFrame, how: str | None, found: Suspects) -> pl.DataFrame:
    if found is ALL or how is None:
        return rules
    assert isinstance(found, pl.DataFrame) and how is not None
    values = found[how].cast(pl.Utf8).unique().implode()
    return rules.filter(pl.col(how).cast(pl.Utf8).is_in(values))


def gather_part(part: Part, plan_: Plan, wanted: dict[int, Suspects]) -> int:
    """The second pass over one part: each suspect rule's records of its suspect groups
    to the spill ``suspect/{i}``. Returns the records written."""
    rules = rule_frame(load_part(part))
    written = 0
    for i, found in wanted.items():
        rows = _rows_of(rules, plan_.hows[i], found)
        write_spill(rows, plan_.spill, f"suspect/{i}", part.index)
        written += rows.height
    return written


def judge_merged(
    i: int, spec: RuleSpec, plan_: Plan, suspects: dict[int, Suspects], meta: Trace
) -> list[Violation]:
    """A merged rule's violations: none when cleared, else the rule over its suspects."""
    if i not in suspects:
        return []
    rows = read_spill(plan_.spill, f"suspect/{i}")
    if rows is None:
        return []
    return run_rule(spec, Trace(rows, None, meta.source, meta.head))


def rule_paths(plan_: Plan, suspects: dict[int, Suspects]) -> dict[str, str]:
    """How each keyed or global rule was judged, for the report."""
    out = {}
    for i, (spec, how) in enumerate(zip(plan_.specs, plan_.hows)):
        if how in _NOT_KEYED:
            continue
        if not (plan_.merged and plan_.merged[i]):
            out[spec.id] = "whole trace (no partial)" if how is None else f"buckets by {how} (no partial)"
        elif i not in suspects:
            out[spec.id] = "partial: cleared"
        elif suspects[i] is ALL:
            out[spec.id] = "partial: not cleared, judged on every record"
        else:
            found = suspects[i]
            assert isinstance(found, pl.DataFrame)
            out[spec.id] = f"partial: {found.height} {how} group(s) judged on their records"
    return out
