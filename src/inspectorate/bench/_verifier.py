"""The entrant's side: the ``Verifier`` protocol, its verdict, a registry, conformance.

A verifier takes one ``CaseView`` (the case plus absolute paths to its evidence, already
restricted to the evidence subset being scored) and returns a ``BenchVerdict``: a
decision string of the case's track, a score in [0, 1] (higher = more likely the claim
is false / the commitment broken: the ranking AUROC and TPR-at-FPR are computed from),
evidence, and what the verdict cost. ``unverifiable`` is an allowed answer, scored as an
abstention. Verifiers that learn (the forest baseline) also implement ``fit``; the
harness trains them leave-one-host-out and never on the case being scored.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from inspectorate._plugins import Registry
from inspectorate.bench._case import TRACKS, UNVERIFIABLE, Answer, Case, get_track
from inspectorate.errors import InputError


@dataclass(frozen=True)
class CaseView:
    """A case as the verifier sees it: paths resolved, evidence restricted to ``subset``."""

    case: Case
    evidence: Path
    commitment: Path | None = None
    subset: str = "full"

    @property
    def track(self) -> str:
        return self.case.track


@dataclass
class BenchVerdict:
    decision: str
    score: float
    evidence: dict[str, Any] = field(default_factory=dict)
    tokens: int = 0
    dollars: float = 0.0

    def validate(self, track: str) -> BenchVerdict:
        """Raise InputError when the decision or score is not what the track accepts."""
        allowed = get_track(track).decisions
        if self.decision not in allowed:
            raise InputError(f"decision {self.decision!r} is not one of {', '.join(allowed)} (track {track})")
        if not isinstance(self.score, (int, float)) or math.isnan(self.score) or not 0.0 <= self.score <= 1.0:
            raise InputError(f"score {self.score!r} is not in [0, 1]")
        if not isinstance(self.evidence, dict):
            raise InputError("evidence must be a dict")
        return self


@runtime_checkable
class Verifier(Protocol):
    """What an entrant implements (one object may cover several tracks)."""

    @property
    def name(self) -> str: ...

    @property
    def tracks(self) -> tuple[str, ...]: ...

    def verify(self, view: CaseView) -> BenchVerdict: ...


@runtime_checkable
class Trainable(Protocol):
    def fit(self, views: list[CaseView], answers: list[Answer]) -> None: ...


VERIFIERS: Registry[Callable[..., Verifier]] = Registry(
    "verifier", "inspectorate.verifiers", ("inspectorate.bench._ours", "inspectorate.bench._baselines")
)


def verifier(name: str) -> Callable[[Callable[..., Verifier]], Callable[..., Verifier]]:
    """Register a verifier factory under ``name`` (``bench run --verifier NAME``)."""

    def register(factory: Callable[..., Verifier]) -> Callable[..., Verifier]:
        VERIFIERS.add(name, factory, factory)
        return factory

    return register


def make_verifier(name: str, **options: Any) -> Verifier:
    return VERIFIERS.get(name)(**options)


def abstain(reason: str, **evidence: Any) -> BenchVerdict:
    return BenchVerdict(UNVERIFIABLE, 0.5, {"reason": reason, **evidence})


def check_verifier(v: Verifier, views: list[CaseView]) -> list[str]:
    """Conformance battery (scikit-learn's ``check_estimator`` idea); returns the problems
    found, empty when ``v`` conforms: declares known tracks; returns a valid verdict on
    each case of its tracks; the same verdict twice (deterministic); leaves the case
    untouched; and raises ``InputError`` (not anything else) on evidence that is not there."""
    problems: list[str] = []
    if not isinstance(v, Verifier):
        return ["does not implement the Verifier protocol (name, tracks, verify)"]
    unknown = [t for t in v.tracks if t not in TRACKS]
    if unknown:
        problems.append(f"unknown tracks {unknown}")
    for view in [w for w in views if w.track in v.tracks]:
        before = copy.deepcopy(view)
        snapshot = _files(view.evidence)
        try:
            first = v.verify(view).validate(view.track)
            second = v.verify(view).validate(view.track)
        except Exception as e:
            problems.append(f"{view.case.id}: {type(e).__name__}: {e}")
            continue
        if (first.decision, round(first.score, 9)) != (second.decision, round(second.score, 9)):
            problems.append(f"{view.case.id}: not deterministic ({first.decision} vs {second.decision})")
        if view != before or _files(view.evidence) != snapshot:
            problems.append(f"{view.case.id}: mutated its input")
    probe = next((w for w in views if w.track in v.tracks), None)
    if probe is not None:
        bad = CaseView(probe.case, probe.evidence.parent / "does-not-exist", probe.commitment, probe.subset)
        try:
            v.verify(bad)
            problems.append("accepted evidence that does not exist (expected InputError)")
        except InputError:
            pass
        except Exception as e:
            problems.append(f"bad input raised {type(e).__name__}, not InputError: {e}")
    return problems


def _files(path: Path) -> dict[str, tuple[int, int]]:
    """(size, mtime_ns) of every file under ``path``: cheap mutation detection."""
    if path.is_file():
        st = path.stat()
        return {path.name: (st.st_size, st.st_mtime_ns)}
    if not path.is_dir():
        return {}
    return {
        str(f.relative_to(path)): (f.stat().st_size, f.stat().st_mtime_ns)
        for f in path.rglob("*")
        if f.is_file()
    }
