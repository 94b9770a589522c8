"""``check_property``: a conformance battery for property plugins (cf. ``check_rule``).

A plugin author runs it on a run whose claims some phase contradicts (``firing``) and
an honest one (``quiet``); it raises ConformanceError naming the first thing that fails.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

from inspectorate._plugins import require
from inspectorate.trace import RunDir, load_run
from inspectorate.verify._evidence import collect
from inspectorate.verify._registry import DECISIONS, INCONSISTENT, PROPERTIES, load_plugins


def check_property(name: str, firing: RunDir | Path | str, quiet: RunDir | Path | str) -> None:
    """Assert that property ``name`` is registered and documented, deterministic, leaves
    its evidence untouched, returns JSON-ready evidence and a known decision, flags some
    phase of ``firing`` and no phase of ``quiet``."""
    load_plugins()
    require(name in PROPERTIES, f"{name!r} is not registered")
    require(PROPERTIES[name].doc.strip(), f"{name!r} has no docstring stating what it checks")
    from inspectorate.verify._inspector import Inspector

    inspector = Inspector([name])
    fired = _decisions(inspector, firing, name)
    require(INCONSISTENT in fired, f"{name!r} flagged no phase of the firing run")
    require(
        INCONSISTENT not in _decisions(inspector, quiet, name), f"{name!r} flagged a phase of the quiet run"
    )


def _decisions(inspector: object, run: RunDir | Path | str, name: str) -> list[str]:
    run = run if isinstance(run, RunDir) else load_run(run)
    evidence = collect(run)
    require(evidence, "the run has no labelled phases")
    ctx = inspector.context(run, evidence)  # type: ignore[attr-defined]
    out = []
    for ev in evidence:
        before = copy.deepcopy(ev)
        first, second = PROPERTIES[name].fn(ev, ctx), PROPERTIES[name].fn(ev, ctx)
        require(first == second, f"{name!r} is not deterministic")
        require(ev == before, f"{name!r} mutated its evidence")
        require(first.property == name, f"{name!r} returned a finding named {first.property!r}")
        require(first.decision in DECISIONS, f"{name!r} returned decision {first.decision!r}")
        require(0.0 <= first.score <= 1.0, f"{name!r} returned score {first.score} outside [0, 1]")
        require(first.evidence, f"{name!r} returned no evidence")
        json.dumps(first.evidence)
        out.append(first.decision)
    return out
