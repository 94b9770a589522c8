"""The Inspector: every property on every phase, plus the commitment rules, into one verdict.

A phase is consistent with its claim (verdict 1) when no property finds it inconsistent
and no commitment rule flags one of its window records. Confidence is calibrated: the
phase's suspicion (largest score of the properties that could judge) goes through the
isotonic map fitted on held-out hosts (``Calibration.probability``), and is then shrunk
toward 0.5 for each stream or property that could not judge, because a verdict on
partial evidence deserves less trust; the absent streams are named in the output.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspectorate.commitment import Commitment, Verdict, check
from inspectorate.errors import InputError
from inspectorate.trace import RunDir, load_run
from inspectorate.verify._calibration import DEFAULT, Calibration
from inspectorate.verify._evidence import PhaseEvidence, collect
from inspectorate.verify._properties import Context
from inspectorate.verify._registry import (
    INCONSISTENT,
    INDETERMINATE,
    PROPERTIES,
    Finding,
    finding,
    load_plugins,
)

BUILTIN = ("p1_op_type", "p2_model_size", "p3_finetune", "flops", "consistency")
# Streams whose absence weakens a phase verdict: one of each group is needed.
EVIDENCE_GROUPS = {
    "sync": ("collectives", "nccl", "dcgm"),
    "traffic": ("netdev",),
    "steps": ("steps",),
    "windows": ("windows",),
    "activity": ("cpu", "nvsmi"),
}
MISSING_PENALTY = 0.15


@dataclass
class PhaseVerdict:
    phase: str
    claimed: str | None
    verdict: int
    confidence: float
    suspicion: float
    findings: list[Finding] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "claimed": self.claimed,
            "verdict": self.verdict,
            "confidence": round(self.confidence, 4),
            "findings": [_finding_dict(f) for f in self.findings],
        }


def _finding_dict(f: Finding) -> dict[str, Any]:
    evidence = {"score": round(f.score, 4), **f.evidence}
    if f.record_ids:
        evidence["flagged_record_ids"] = list(f.record_ids)
    return {"property": f.property, "decision": f.decision, "evidence": evidence}


@dataclass
class RunVerdict:
    run: str
    verdict: int
    confidence: float
    phases: list[PhaseVerdict]
    missing_streams: list[str]
    commitment: Verdict | None = None

    @property
    def exit_code(self) -> int:
        return 0 if self.verdict == 1 else 1

    def to_dict(self) -> dict[str, Any]:
        """The ``verify`` JSON contract of docs/DESIGN.md."""
        return {
            "run": self.run,
            "verdict": self.verdict,
            "confidence": round(self.confidence, 4),
            "phases": [p.to_dict() for p in self.phases],
            "missing_streams": self.missing_streams,
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)


class Inspector:
    """Judge run directories with a set of properties and a calibration."""

    def __init__(self, properties: Iterable[str] | None = None, calibration: Calibration = DEFAULT) -> None:
        load_plugins()
        self.properties = list(properties) if properties is not None else list(BUILTIN)
        unknown = [p for p in self.properties if p not in PROPERTIES]
        if unknown:
            raise InputError(f"unknown properties {unknown}; known: {', '.join(sorted(PROPERTIES))}")
        self.calibration = calibration

    def inspect(self, run: RunDir | Path | str, commitment: Commitment | None = None) -> RunVerdict:
        """Verdict for every phase of ``run`` and for the run as a whole."""
        run = run if isinstance(run, RunDir) else load_run(run)
        evidence = collect(run)
        if not evidence:
            raise InputError("run has no labelled phases (workload_labels.jsonl missing or empty)", run.path)
        ctx = self.context(run, evidence)
        rules = _commitment(run, commitment)
        phases = [self.judge(ev, ctx, rules) for ev in evidence]
        return _combine(str(run.path), phases, run.missing_streams, rules)

    def context(self, run: RunDir, evidence: list[PhaseEvidence]) -> Context:
        """Run-wide context: layout and, per phase, the weight hashes earlier phases produced."""
        seen: set[str] = set()
        before: dict[str, set[str]] = {}
        for ev in evidence:
            before[ev.name] = set(seen)
            seen.update(ev.steps.get("fingerprint_hashes") or [])
        return Context(self.calibration, run.layout, before)

    def findings(self, ev: PhaseEvidence, ctx: Context) -> list[Finding]:
        return [PROPERTIES[name].fn(ev, ctx) for name in self.properties]

    def judge(self, ev: PhaseEvidence, ctx: Context, rules: Verdict | None = None) -> PhaseVerdict:
        found = self.findings(ev, ctx)
        found += _rule_findings(ev, rules)
        judged = [f for f in found if f.decision != INDETERMINATE]
        suspicion = max((f.score for f in judged), default=0.0)
        verdict = 0 if any(f.decision == INCONSISTENT for f in found) else 1
        missing = _missing(ev)
        p_false = self.calibration.probability(suspicion)
        conf = p_false if verdict == 0 else 1.0 - p_false
        if any(f.property == "commitment" and f.decision == INCONSISTENT for f in found):
            conf = 1.0  # deterministic rules either hold or not
        undecided = len(found) - len(judged)
        shrink = max(1.0 - MISSING_PENALTY * (len(missing) + undecided), 0.2)
        conf = 0.5 + (max(conf, 0.5) - 0.5) * shrink if conf < 1.0 else conf
        return PhaseVerdict(ev.name, ev.claim.label, verdict, conf, suspicion, found, missing)


def _missing(ev: PhaseEvidence) -> list[str]:
    return [
        group for group, streams in EVIDENCE_GROUPS.items() if not any(ev.streams.get(s) for s in streams)
    ]


def _commitment(run: RunDir, commitment: Commitment | None) -> Verdict | None:
    if commitment is None:
        return None
    if run.windows is None or len(run.windows) == 0:
        raise InputError("a commitment needs window records (windows.jsonl), and this run has none", run.path)
    return check(run.windows, commitment)


def _rule_findings(ev: PhaseEvidence, rules: Verdict | None) -> list[Finding]:
    """Commitment violations whose records fall in this phase (deterministic: score 1)."""
    if rules is None:
        return []
    ids = set((ev.windows or {}).get("record_ids", []))
    hits = [v for v in rules.violations if ids & set(v.record_ids)]
    if not hits:
        return [
            finding(
                "commitment",
                0.0,
                "consistent",
                commitment_id=rules.commitment_id,
                rules_evaluated=len(rules.rules_evaluated),
            )
        ]
    flagged = sorted({r for v in hits for r in v.record_ids if r in ids})
    return [
        finding(
            "commitment",
            1.0,
            INCONSISTENT,
            flagged,
            commitment_id=rules.commitment_id,
            violations=[{"rule_id": v.rule_id, "kind": v.kind, "message": v.message} for v in hits],
        )
    ]


def _combine(path: str, phases: list[PhaseVerdict], missing: list[str], rules: Verdict | None) -> RunVerdict:
    """Run verdict: 1 only if every phase is consistent and the commitment holds; its
    confidence is the surest flagged phase (or 1.0 for a broken rule), else the least
    sure consistent phase."""
    bad = [p for p in phases if p.verdict == 0]
    unplaced = (
        rules is not None
        and not rules.compliant
        and not any(
            f.property == "commitment" and f.decision == INCONSISTENT for p in phases for f in p.findings
        )
    )
    if unplaced or (rules is not None and not rules.compliant):
        return RunVerdict(path, 0, 1.0, phases, missing, rules)
    if bad:
        return RunVerdict(path, 0, max(p.confidence for p in bad), phases, missing, rules)
    return RunVerdict(path, 1, min(p.confidence for p in phases), phases, missing, rules)


def verify_run(
    run: RunDir | Path | str, commitment: Commitment | None = None, calibration: Calibration = DEFAULT
) -> RunVerdict:
    """One call: load ``run``, judge it with the built-in properties."""
    return Inspector(calibration=calibration).inspect(run, commitment)
