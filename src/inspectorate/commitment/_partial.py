"""Mergeable partial aggregates: how a keyed or global rule is cleared without its rows.

A rule kind may declare, next to its check function, one ``@mergeable(kind, ...)``
function: ``part(trace, **params) -> DataFrame``, the rule's small state over one part
of the trace (O(groups) or O(violations), never O(records)), with two functions as its
metadata:

- ``merge(frame, **params) -> DataFrame`` combines the parts' states (concatenated)
  exactly: sums of counts, minima, unions of distinct values, first rows by (ws, row);
- ``suspects(merged, **params)`` says what the rule must still see: ``None`` when the
  merged state *proves* the rule yields nothing on the whole trace (the promise the
  engine relies on: exact, never approximate), else ``ALL`` (every record) or a frame of
  the groups (values of the rule's ``keyed`` column) whose records the rule must judge.

An out-of-core engine (``scale/_outcore.py``) merges the parts' states and then runs the
registered rule itself, unchanged, on the records of the suspect groups only: a clean
trace is judged in memory bounded by the states, a flagged group exactly as in memory.
Suspects may be a superset (a conservative ``suspects`` costs memory, never
correctness); a rule without a partial falls back to the engine's bucket path.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

import polars as pl

from inspectorate._plugins import Registry

if TYPE_CHECKING:
    from inspectorate.trace import Trace


class _All:
    """Suspects: every record (the rule runs on the whole trace)."""

    def __repr__(self) -> str:
        return "ALL"

    def __reduce__(self) -> str:
        return "ALL"  # unpickled (on a Dask worker) as this module's one ALL, so ``is ALL`` holds


ALL: Final = _All()
Suspects = pl.DataFrame | _All | None
PartFn = Callable[..., pl.DataFrame]
MergeFn = Callable[..., pl.DataFrame]
SuspectFn = Callable[..., Suspects]


@dataclass(frozen=True)
class Mergeable:
    """One rule kind's partial: ``part`` per part, ``merge`` over parts, ``suspects``."""

    kind: str
    fn: PartFn  # the per-part state
    merge: MergeFn
    suspects: SuspectFn

    def state(self, trace: Trace, params: dict[str, Any]) -> pl.DataFrame:
        return self.fn(trace, **params)

    def fold(self, states: list[pl.DataFrame], params: dict[str, Any]) -> pl.DataFrame:
        """The states merged into one state of the same shape: ``merge`` is an exact,
        associative aggregate (sums, minima, distinct values, runs), so states may be
        folded as parts arrive, in any grouping, and folded again with later ones."""
        frames = [s for s in states if s.height] or states[:1]
        return self.merge(pl.concat(frames, how="vertical_relaxed"), **params)

    def settle(self, states: list[pl.DataFrame], params: dict[str, Any]) -> Suspects:
        """The parts' states merged, and what the rule must still see."""
        return self.suspects(self.fold(states, params), **params)


PARTIALS: Registry[Mergeable] = Registry(
    "mergeable partial",
    "inspectorate.rules",  # a plugin declares its partials in the module that registers its rules
    (),  # the built-in ones register as ``load_plugins`` imports the rule modules
    positional=("trace",),
)


def mergeable(kind: str, *, merge: MergeFn, suspects: SuspectFn) -> Callable[[PartFn], PartFn]:
    """Register ``fn(trace, **params)`` as rule kind ``kind``'s per-part state, with its
    exact ``merge`` and its ``suspects`` (see the module docstring)."""

    def register(fn: PartFn) -> PartFn:
        PARTIALS.check(kind, fn)
        PARTIALS.add(kind, Mergeable(kind, fn, merge, suspects), fn)
        return fn

    return register


def partial_for(kind: str) -> Mergeable | None:
    """The kind's registered partial, or None (the engine's bucket path). The caller has
    run ``load_plugins`` (importing the rule modules registers their partials)."""
    return PARTIALS[kind] if kind in PARTIALS else None
