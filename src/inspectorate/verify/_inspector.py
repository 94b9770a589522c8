"""The Inspector: every property on every phase, plus the commitment rules, into one verdict.

Three outcomes per phase: *inconsistent* when any property (or a commitment rule on one
of its window records) finds it so; *unverifiable* when a claim property could not be
decided from sensor or verifier evidence (a consistent finding whose basis names no
such stream is turned into ``unverifiable`` here: prover streams never pass a claim);
*consistent* otherwise. Under ``policy="strict"`` (the default) only consistent phases
are certified (verdict 1); ``lenient`` also certifies unverifiable ones. Unlabelled
stretches between phases are judged from the sensor (work there is unexplained).
Confidence is calibrated: the
phase's suspicion (largest score of the properties that could judge) goes through the
isotonic map fitted on held-out hosts (``Calibration.probability``), and is then shrunk
toward 0.5 for each stream or property that could not judge, because a verdict on
partial evidence deserves less trust; the absent streams are named in the output.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from inspectorate.capture._ckpt_watch import read_watch
from inspectorate.capture._escape import read_escapes
from inspectorate.commitment import Commitment, Verdict, check
from inspectorate.errors import InputError
from inspectorate.trace import RunDir, load_run
from inspectorate.verify._calibration import DEFAULT, Calibration
from inspectorate.verify._evidence import PhaseEvidence, collect, gaps, restrict
from inspectorate.verify._physics import claimed_work
from inspectorate.verify._properties import Context
from inspectorate.verify._recomputed import PhaseWatch, bind_phase, settle
from inspectorate.verify._registry import (
    CONSISTENT,
    INCONSISTENT,
    PROPERTIES,
    UNVERIFIABLE,
    Finding,
    finding,
    load_plugins,
)
from inspectorate.verify._replay_run import ReplayPlan, replay_run
from inspectorate.verify._sensor_features import issued_nonce
from inspectorate.verify._settle import would_settle
from inspectorate.verify._spotcheck import SpotCheck, spot_check
from inspectorate.verify._trust import trusted_only

BUILTIN = (
    "p1_op_type",
    "p2_model_size",
    "p3_finetune",
    "compute",
    "flops",
    "consistency",
    "integrity",
    # post-training disguised as serving (verify/_posttrain.py): cross-checks that judge
    # serving phases handing over a served-output log, unverifiable without one
    "posttrain_resident_state",
    "posttrain_backward_share",
    "posttrain_weight_writes",
    "posttrain_served_drift",
)
POLICIES = ("strict", "lenient")
# Streams whose absence weakens a phase verdict: one of each group is needed.
EVIDENCE_GROUPS = {
    "sensor": ("sensor",),
    "sync": ("collectives", "nccl", "dcgm"),
    "traffic": ("netdev", "sensor"),
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
    outcome: str = CONSISTENT
    basis: list[str] = field(default_factory=list)
    unverifiable: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "claimed": self.claimed,
            "verdict": self.verdict,
            "confidence": round(self.confidence, 4),
            "findings": [_finding_dict(f) for f in self.findings],
            "outcome": self.outcome,
            "basis": self.basis,
            "unverifiable": self.unverifiable,
        }


def _finding_dict(f: Finding) -> dict[str, Any]:
    evidence = {"score": round(f.score, 4), **f.evidence}
    if f.record_ids:
        evidence["flagged_record_ids"] = list(f.record_ids)
    out = {"property": f.property, "decision": f.decision, "evidence": evidence, "basis": list(f.basis)}
    settle = would_settle(f)
    if settle is not None:
        out["would_settle"] = settle
    return out


@dataclass
class RunVerdict:
    run: str
    verdict: int
    confidence: float
    phases: list[PhaseVerdict]
    missing_streams: list[str]
    commitment: Verdict | None = None
    policy: str = "strict"
    outcome: str = CONSISTENT
    reasons: list[str] = field(default_factory=list)
    gaps: list[dict[str, Any]] = field(default_factory=list)
    agent: dict[str, Any] | None = None  # the LLM tier's report (``verify --agent``)
    signed: dict[str, Any] | None = None  # signed-evidence report (``verify --head-log``)
    # streams the run's hardware cannot produce (GPU streams on a CPU-only host), with why:
    # reported apart from missing_streams so an absence that is expected does not read
    # like a failure (the confidence penalty for absent evidence is unchanged)
    not_applicable: dict[str, str] = field(default_factory=dict)
    seconds: dict[str, Any] | None = None  # wall time of each stage and phase (``_seconds``)

    @property
    def exit_code(self) -> int:
        return 0 if self.verdict == 1 else 1

    def to_dict(self, timed: bool = False) -> dict[str, Any]:
        """The ``verify`` JSON contract of docs/DESIGN.md (plus policy, outcome, reasons,
        gaps, and ``agent`` when the LLM tier ran); ``timed`` adds the wall seconds of the
        inspection under ``timings`` (the archived document's run-to-run part)."""
        out = {
            "run": self.run,
            "verdict": self.verdict,
            "confidence": round(self.confidence, 4),
            "phases": [p.to_dict() for p in self.phases],
            "missing_streams": self.missing_streams,
            "streams_not_applicable": self.not_applicable,
            "policy": self.policy,
            "outcome": self.outcome,
            "reasons": self.reasons,
            "gaps": self.gaps,
        }
        if self.agent is not None:
            out["agent"] = self.agent
        if self.signed is not None:
            out["signed"] = self.signed
        if timed and self.seconds is not None:
            out["timings"] = {"seconds": self.seconds}
        return out

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=False)


class Inspector:
    """Judge run directories with a set of properties and a calibration."""

    def __init__(
        self,
        properties: Iterable[str] | None = None,
        calibration: Calibration = DEFAULT,
        policy: str = "strict",
        subset: str = "full",
    ) -> None:
        load_plugins()
        if policy not in POLICIES:
            raise InputError(f"unknown policy {policy!r}; known: {', '.join(POLICIES)}")
        self.policy, self.subset = policy, subset
        self.properties = list(properties) if properties is not None else list(BUILTIN)
        unknown = [p for p in self.properties if p not in PROPERTIES]
        if unknown:
            raise InputError(f"unknown properties {unknown}; known: {', '.join(sorted(PROPERTIES))}")
        self.calibration = calibration

    def inspect(
        self,
        run: RunDir | Path | str,
        commitment: Commitment | None = None,
        on_phase: Callable[[str], None] | None = None,
        recomputed: dict[str, list[Finding]] | None = None,
    ) -> RunVerdict:
        """Verdict for every phase of ``run`` and for the run as a whole (``on_phase(name)``
        is called as each phase is judged, for progress display)."""
        started = time.perf_counter()
        run = run if isinstance(run, RunDir) else load_run(run)
        clock: dict[str, Any] = {"load_s": time.perf_counter() - started}
        evidence = collect(run, self.subset, clock)
        if not evidence:
            raise InputError("run has no labelled phases (workload_labels.jsonl missing or empty)", run.path)
        ctx = self.context(run, evidence)
        rules = _commitment(run, commitment)
        extra = recomputed or {}
        unknown = sorted(set(extra) - {ev.name for ev in evidence})
        if unknown:
            raise InputError(
                f"--recomputed names phase(s) the run does not have: {', '.join(unknown)}", run.path
            )
        phases = []
        for ev, timed in zip(evidence, clock["by_phase"], strict=True):
            t0 = time.perf_counter()
            phases.append(self.judge(ev, ctx, rules, extra.get(ev.name, [])))
            timed["judge_s"] = time.perf_counter() - t0
            if on_phase is not None:
                on_phase(ev.name)
        seen = restrict(run, self.subset).missing_streams
        missing = list(seen) + ([] if evidence[0].streams.get("sensor") else ["sensor"])
        not_applicable = _not_applicable(run)
        missing = [m for m in missing if m not in not_applicable]
        verdict = _combine(str(run.path), phases, missing, rules, self.policy)
        verdict.not_applicable = not_applicable
        by_name = {ev.name: ev for ev in evidence}
        verdict.gaps = [self.judge_gap(g, by_name.get(g["before"])) for g in gaps(run, self.subset)]
        _apply_gaps(verdict)
        verdict.seconds = _seconds(clock, time.perf_counter() - started)
        return verdict

    def judge_gap(self, gap: dict[str, Any], following: PhaseEvidence | None = None) -> dict[str, Any]:
        """Unlabelled time: CPU-seconds of the workload tree beyond the allowance is
        unexplained work (inconsistent); without the sensor the gap is unverifiable.
        The allowance is ``gap_cpu_s`` plus building the following phase's declared model
        on each of its ranks, as the verifier's spot-check measured it (a job builds its
        model before it starts: 124M parameters take seconds, 28k nothing)."""
        s = gap.get("sensor") or {}
        if "cpu_s" not in s:
            return {**gap, "decision": UNVERIFIABLE}
        allowed = self.calibration.gap_cpu_s + self._build_cpu_s(following)
        bad = s["cpu_s"] > allowed
        return {**gap, "decision": INCONSISTENT if bad else CONSISTENT, "allowed_cpu_s": allowed}

    def _build_cpu_s(self, ev: PhaseEvidence | None) -> float:
        work = claimed_work(ev) if ev is not None else None
        if ev is None or work is None:
            return 0.0
        check = spot_check(work, self.calibration.spot_check_s)
        return check.build_cpu_s * (ev.claim.world_size or 1) if isinstance(check, SpotCheck) else 0.0

    def context(self, run: RunDir, evidence: list[PhaseEvidence]) -> Context:
        """Run-wide context: layout and, per phase, the weight hashes earlier phases produced."""
        seen: set[str] = set()
        before: dict[str, set[str]] = {}
        for ev in evidence:
            before[ev.name] = set(seen)
            seen.update(ev.steps.get("fingerprint_hashes") or [])
        nonce = issued_nonce(run.path) if self.subset != "prover" else None
        watch = read_watch(run.path) if self.subset != "prover" else None
        escapes = read_escapes(run.path) if self.subset != "prover" else None
        end = sensor_end(run.path / "sensor.jsonl") if self.subset != "prover" else None
        return Context(
            self.calibration,
            run.layout,
            before,
            nonce=nonce,
            ckpt_watch=watch,
            escapes=escapes,
            sensor_end=end,
        )

    def findings(self, ev: PhaseEvidence, ctx: Context) -> list[Finding]:
        return [_trust_rule(PROPERTIES[name].fn(ev, ctx)) for name in self.properties]

    def judge(
        self,
        ev: PhaseEvidence,
        ctx: Context,
        rules: Verdict | None = None,
        recomputed: list[Finding] | None = None,
    ) -> PhaseVerdict:
        window_tokens = (ev.windows or {}).get("tokens")
        watch = PhaseWatch(ev.name, ev.t0, ev.t1, ctx.ckpt_watch)
        bound = bind_phase(recomputed or [], ev.claim, window_tokens, ctx.replayed_models, ctx.nonce, watch)
        found = settle(self.findings(ev, ctx), bound)
        found += _rule_findings(ev, rules)
        judged = [f for f in found if f.decision != UNVERIFIABLE]
        suspicion = max((f.score for f in judged), default=0.0)
        open_ = [
            f.property
            for f in found
            if f.decision == UNVERIFIABLE and f.property in PROPERTIES and PROPERTIES[f.property].claim
        ]
        if any(f.decision == INCONSISTENT for f in found):
            outcome = INCONSISTENT
        else:
            outcome = UNVERIFIABLE if open_ else CONSISTENT
        verdict = int(outcome == CONSISTENT or (outcome == UNVERIFIABLE and self.policy == "lenient"))
        basis = sorted({b for f in found if f.decision == CONSISTENT for b in trusted_only(f.basis)})
        missing = _missing(ev)
        p_false = self.calibration.probability(suspicion)
        conf = p_false if verdict == 0 else 1.0 - p_false
        if any(f.property == "commitment" and f.decision == INCONSISTENT for f in found):
            conf = 1.0  # deterministic rules either hold or not
        undecided = len(open_)  # claim properties that could not decide (cross-checks excluded)
        shrink = max(1.0 - MISSING_PENALTY * (len(missing) + undecided), 0.2)
        conf = 0.5 + (max(conf, 0.5) - 0.5) * shrink if conf < 1.0 else conf
        return PhaseVerdict(
            ev.name, ev.claim.label, verdict, conf, suspicion, found, missing, outcome, basis, open_
        )


def _trust_rule(f: Finding) -> Finding:
    """A consistent finding with no sensor/verifier basis is unverifiable: prover streams
    can fail a claim, never pass it (findings that do not apply to the claim excepted)."""
    if f.decision != CONSISTENT or f.evidence.get("applies") is False or trusted_only(list(f.basis)):
        return f
    reason = "no sensor or verifier evidence behind this pass (prover streams only)"
    return replace(f, decision=UNVERIFIABLE, evidence={**f.evidence, "unverifiable_reason": reason})


GPU_STREAMS = ("nvsmi", "dcgm", "nccl")


def _not_applicable(run: RunDir) -> dict[str, str]:
    """GPU streams a CPU-only run cannot have: every host's provenance declares no GPU
    (``device: cpu`` or an empty/zero ``gpus``). Only absent streams are listed."""
    hosts = list(run.provenance_by_host.values())
    if not hosts or not all(_cpu_only(p) for p in hosts):
        return {}
    why = "not applicable: CPU-only host (provenance declares no GPU)"
    return {s: why for s in GPU_STREAMS if run.stream(s) is None}


def _cpu_only(provenance: dict[str, Any]) -> bool:
    gpus = provenance.get("gpus")
    if provenance.get("device") == "cpu":
        return True
    return "gpus" in provenance and not gpus  # [] or 0


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


def _combine(
    path: str, phases: list[PhaseVerdict], missing: list[str], rules: Verdict | None, policy: str = "strict"
) -> RunVerdict:
    """Run verdict: 1 only if every phase is certified and the commitment holds; its
    confidence is the surest flagged phase (or 1.0 for a broken rule), else the least
    sure certified phase. ``reasons`` name each inconsistent and unverifiable phase."""
    verdict = _combine_bits(path, phases, missing, rules)
    verdict.policy = policy
    verdict.reasons = [
        f"inconsistent: {p.phase} ({', '.join(f.property for f in p.findings if f.decision == INCONSISTENT)})"
        for p in phases
        if p.outcome == INCONSISTENT
    ] + [
        f"unverifiable: {p.phase} ({', '.join(p.unverifiable)})" for p in phases if p.outcome == UNVERIFIABLE
    ]
    outcomes = {p.outcome for p in phases}
    verdict.outcome = next(o for o in (INCONSISTENT, UNVERIFIABLE, CONSISTENT) if o in outcomes)
    if rules is not None and not rules.compliant:
        verdict.outcome = INCONSISTENT
        verdict.reasons.insert(0, f"inconsistent: commitment {rules.commitment_id} violated")
    if verdict.verdict == 1 and any(p.verdict == 0 for p in phases):
        verdict.verdict = 0
    if policy == "strict" and verdict.outcome == UNVERIFIABLE:
        verdict.verdict = 0
    return verdict


def _apply_gaps(verdict: RunVerdict) -> None:
    for g in verdict.gaps:
        if g["decision"] == INCONSISTENT:
            verdict.reasons.append(f"inconsistent: unexplained work between {g['after']} and {g['before']}")
            verdict.verdict, verdict.outcome = 0, INCONSISTENT
        elif g["decision"] == UNVERIFIABLE and verdict.policy == "strict" and verdict.outcome == CONSISTENT:
            verdict.reasons.append(f"unverifiable: time between {g['after']} and {g['before']} (no sensor)")
            verdict.verdict, verdict.outcome = 0, UNVERIFIABLE


def _combine_bits(
    path: str, phases: list[PhaseVerdict], missing: list[str], rules: Verdict | None
) -> RunVerdict:
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


def _seconds(clock: dict[str, Any], total: float) -> dict[str, Any]:
    """Where an inspection's wall time went: loading, the run-wide stream passes, each
    phase's evidence and judgement, and the total per phase (what grows with a run)."""
    phases = clock.pop("by_phase")
    out = {k: round(v, 4) for k, v in clock.items()}
    out.update({"total_s": round(total, 4), "phases": len(phases)})
    out["per_phase_s"] = round(total / max(len(phases), 1), 4)
    out["by_phase"] = [{k: round(v, 4) if isinstance(v, float) else v for k, v in p.items()} for p in phases]
    return out


def verify_run(
    run: RunDir | Path | str,
    commitment: Commitment | None = None,
    calibration: Calibration = DEFAULT,
    policy: str = "strict",
    subset: str = "full",
    on_phase: Callable[[str], None] | None = None,
    recomputed: dict[str, list[Finding]] | None = None,
    replay: ReplayPlan | None = None,
) -> RunVerdict:
    """One call: load ``run``, judge it with the built-in properties under ``policy``;
    ``recomputed`` maps phase names to DiFR / replay findings (``_recomputed``);
    ``replay`` has the verifier replay every training claim the run hands over
    (``_replay_run``) and adds those findings."""
    inspector = Inspector(calibration=calibration, policy=policy, subset=subset)
    if replay is not None:
        run = run if isinstance(run, RunDir) else load_run(run)
        extra = {k: list(v) for k, v in (recomputed or {}).items()}
        for phase, found in replay_run(run, replay).items():
            extra.setdefault(phase, []).extend(found)
        recomputed = extra
    run = run if isinstance(run, RunDir) else load_run(run)
    recomputed = _with_served(run, recomputed)
    return inspector.inspect(run, commitment, on_phase, recomputed)


def _with_served(run: RunDir, recomputed: dict[str, list[Finding]] | None) -> dict[str, list[Finding]]:
    """``recomputed`` plus the verifier's re-computation of every served log and eval
    claim the run hands over (``_served_run``: automatic whenever one is present)."""
    from inspectorate.verify._served_run import handed_over_served, served_run

    extra = {k: list(v) for k, v in (recomputed or {}).items()}
    if handed_over_served(run):
        for phase, found in served_run(run).items():
            extra.setdefault(phase, []).extend(found)
    return extra


def sensor_end(path: Path) -> dict[str, Any] | None:
    """The last record of a sensor stream: its time, whether it is the sensor's own
    ``stop`` (a killed sensor leaves none) and the chain hash it links to (``head``: fixed
    only once the run is over, so checks that sample the prover's files draw from it).
    Reads only the file's tail."""
    try:
        with open(path, "rb") as fh:
            size = fh.seek(0, 2)
            fh.seek(max(size - 65536, 0))
            tail = fh.read().splitlines()
    except OSError:
        return None
    for raw in reversed(tail):
        try:
            rec = json.loads(raw)
        except ValueError:
            continue  # a torn last line: the one before it
        if isinstance(rec, dict) and isinstance(rec.get("t"), (int, float)):
            head = rec.get("prev_record_hash")
            return {
                "t": float(rec["t"]),
                "clean": rec.get("kind") == "stop",
                "head": head if isinstance(head, str) else None,
            }
    return None
