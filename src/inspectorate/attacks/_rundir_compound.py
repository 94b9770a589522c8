"""Run-directory compounds: record attacks on windows.jsonl AND run-dir attacks on telemetry.

A prover that lies in its window records (relabel, under-report, rotate) also owns the
labels, step log and collective log it hands over with them, and a competent one makes
them agree. ``compose_rundir`` copies a run dir once, applies a record compound to its
windows.jsonl (victims pinned, chain re-built once), then the run-dir attacks in order
on the same copy (each re-chains what it rewrites). The source is never touched and the
destination is never overwritten.
"""

from __future__ import annotations

import random
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspectorate.attacks._facts import Facts
from inspectorate.attacks._registry import Compound, Step, compose
from inspectorate.attacks._rundir_attacks import get_rundir_attack, read_jsonl, write_jsonl
from inspectorate.errors import InputError

StepSpec = str | Step | tuple[str, Mapping[str, Any]]


@dataclass(frozen=True)
class RundirCompound:
    """Record attacks on windows.jsonl, then run-dir attacks, on one copy of a run dir."""

    records: Compound | None
    rundir: tuple[Step, ...]

    @property
    def name(self) -> str:
        parts = ([self.records.name] if self.records else []) + [s.name for s in self.rundir]
        return "+".join(parts)

    @property
    def intent(self) -> str:
        parts = ([self.records.intent] if self.records else []) + [
            get_rundir_attack(s.name).intent for s in self.rundir
        ]
        return "; ".join(parts)

    def __call__(
        self,
        src: str | Path,
        dst: str | Path,
        rng: random.Random | int | None = None,
        facts: Facts | None = None,
    ) -> Path:
        src, dst = Path(src), Path(dst)
        if not src.is_dir() or not (src / "workload_labels.jsonl").exists():
            raise InputError("not a run directory (no workload_labels.jsonl)", src)
        if self.records is not None and not (src / "windows.jsonl").exists():
            raise InputError("record attacks need the run's windows.jsonl, which is missing", src)
        if dst.exists():
            raise InputError("destination already exists; attacks never overwrite", dst)
        gen = rng if isinstance(rng, random.Random) else random.Random(rng)
        shutil.copytree(src, dst)
        if self.records is not None:
            windows = read_jsonl(dst / "windows.jsonl")
            write_jsonl(dst / "windows.jsonl", self.records(windows, gen, facts), chained=True)
        for step in self.rundir:
            get_rundir_attack(step.name).fn(dst, gen, **step.params)
        return dst

    def intent_preserved(self, src: str | Path, dst: str | Path) -> bool:
        """The record part still accounts for the windows' work (run-dir attacks hide
        labels and telemetry; they have no record-level intent to lose)."""
        if self.records is None:
            return True
        before = read_jsonl(Path(src) / "windows.jsonl")
        return self.records.intent_preserved(before, read_jsonl(Path(dst) / "windows.jsonl"))

    def to_dict(self) -> dict[str, Any]:
        return {
            "compose": [s.to_dict() for s in self.records.steps] if self.records else [],
            "rundir": [s.to_dict() for s in self.rundir],
        }


def _step(item: StepSpec) -> Step:
    if isinstance(item, Step):
        return item
    if isinstance(item, str):
        return Step(item)
    name, params = item
    return Step(name, dict(params))


def compose_rundir(records: Sequence[StepSpec] = (), rundir: Sequence[StepSpec] = ()) -> RundirCompound:
    """A run-dir compound: ``records`` (record attacks, applied to windows.jsonl first)
    and ``rundir`` (run-dir attacks, applied after, in order); at least one attack."""
    steps = tuple(_step(s) for s in rundir)
    for step in steps:
        get_rundir_attack(step.name)
    if not records and not steps:
        raise InputError("compose_rundir() needs at least one attack")
    return RundirCompound(compose(list(records)) if records else None, steps)
