"""Our verifiers as entrants: ``check`` (track a) and ``verify`` (tracks b-e), one
adapter object ``ours``; the LLM inspector and OpenAI-compatible servers are in
``_llm_entry`` (they need a key or a server URL).

``verify`` judges a whole run; its per-phase findings are cached per evidence directory
so a run's phases cost one ``verify`` between them (the cost is charged to the first case
of the run, and the harness's latency figures say so)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from inspectorate.bench._case import COMPLIANT, CONSISTENT, INCONSISTENT, UNVERIFIABLE, VIOLATION
from inspectorate.bench._verifier import BenchVerdict, CaseView, abstain, verifier
from inspectorate.errors import InputError

# Which verify properties answer each track's question.
TRACK_PROPERTIES: dict[str, tuple[str, ...]] = {
    "op_type": ("p1_op_type",),
    "undeclared_work": ("compute", "p1_op_type", "consistency"),
    "model_size": ("p2_model_size",),
    "finetune": ("p3_finetune",),
}


def track_decision(findings: list[dict[str, Any]], props: tuple[str, ...]) -> BenchVerdict:
    """The track's answer from verify's per-phase findings (``{property, decision, score}``)."""
    relevant = [
        f for f in findings if f["property"] in props and f.get("evidence", {}).get("applies") is not False
    ]
    if not relevant:
        return abstain("no finding of " + ", ".join(props))
    score = max(float(f["score"]) for f in relevant)
    bad = [f for f in relevant if f["decision"] == INCONSISTENT]
    if bad:
        return BenchVerdict(INCONSISTENT, score, {"properties": [f["property"] for f in bad]})
    if any(f["decision"] == CONSISTENT for f in relevant):
        return BenchVerdict(CONSISTENT, score, {"properties": [f["property"] for f in relevant]})
    return BenchVerdict(UNVERIFIABLE, score, {"properties": [f["property"] for f in relevant]})


class Ours:
    """``inspectorate check`` on traces, ``inspectorate verify`` (strict policy) on runs."""

    tracks: tuple[str, ...] = (
        "compliance",
        "op_type",
        "undeclared_work",
        "model_size",
        "finetune",
        "served_identity",
    )

    def __init__(self, name: str = "ours", policy: str = "strict") -> None:
        self.name = name
        self.policy = policy
        self._runs: dict[tuple[str, int, tuple[str, ...]], dict[str, list[dict[str, Any]]]] = {}

    def verify(self, view: CaseView) -> BenchVerdict:
        if not view.evidence.exists():
            raise InputError("evidence not found", view.evidence)
        if view.track == "compliance":
            return self._check(view)
        if view.track == "served_identity":
            return self._difr(view)
        if view.track not in TRACK_PROPERTIES:
            return abstain(f"track {view.track} is not covered by {self.name}")
        phases = self._phases(view.evidence, TRACK_PROPERTIES[view.track])
        if view.case.phase not in phases:
            raise InputError(f"phase {view.case.phase!r} not in the run's labels", view.evidence)
        return track_decision(phases[view.case.phase], TRACK_PROPERTIES[view.track])

    def _check(self, view: CaseView) -> BenchVerdict:
        from inspectorate.commitment import check, load_commitment
        from inspectorate.trace import read_trace

        if view.commitment is None:
            raise InputError("compliance case without a commitment", view.evidence)
        verdict = check(read_trace(view.evidence), load_commitment(view.commitment))
        rules = sorted({v.rule_id for v in verdict.violations})
        if verdict.compliant:
            return BenchVerdict(COMPLIANT, 0.0, {"rules_evaluated": len(verdict.rules_evaluated)})
        return BenchVerdict(VIOLATION, 1.0, {"rules": rules[:10]})

    def _difr(self, view: CaseView) -> BenchVerdict:
        """``difr verify``: re-compute the log with the declared checkpoint (self-calibrated)."""
        from inspectorate.difr import load_checkpoint, read_log, verify_log

        if view.commitment is None:
            raise InputError("served-identity case without a declared checkpoint", view.evidence)
        report = verify_log(read_log(view.evidence), load_checkpoint(view.commitment))
        n = max(len(report.sequences), 1)
        flagged = len(set(report.flagged_token) | set(report.flagged_activation)) / n
        evidence = {"reasons": report.reasons[:5], "flagged_share": round(flagged, 4)}
        if report.decision == INCONSISTENT:
            return BenchVerdict(INCONSISTENT, 0.5 + 0.5 * flagged if flagged else 1.0, evidence)
        if report.decision == CONSISTENT:
            return BenchVerdict(CONSISTENT, 0.49 * flagged, evidence)
        return BenchVerdict(UNVERIFIABLE, 0.5, evidence)

    def _phases(self, run: Path, props: tuple[str, ...]) -> dict[str, list[dict[str, Any]]]:
        """verify's findings per phase, computing only ``props`` (the compute spot-check
        re-runs the claimed work and costs seconds per phase: only the tracks that read
        it pay for it)."""
        from inspectorate.verify import Inspector

        key = (str(run.resolve()), run.stat().st_mtime_ns, props)
        if key not in self._runs:
            verdict = Inspector(properties=props, policy=self.policy).inspect(run)
            self._runs[key] = {
                p.phase: [{**f.to_dict(), "evidence": f.evidence} for f in p.findings] for p in verdict.phases
            }
        return self._runs[key]


@verifier("ours")
def ours(**options: Any) -> Ours:
    """check (commitment rules) + verify (telemetry properties, strict trust policy)."""
    return Ours(**options)


class OursAgent(Ours):
    """``ours`` plus the LLM tier (``check --agent``) on each commitment's semantic rules.

    The backend comes from the environment as for ``check --agent``: ANTHROPIC_API_KEY,
    OPENAI_API_KEY, or any OpenAI-compatible server (a local open-weights model) through
    INSPECTORATE_AGENT_BASE_URL / INSPECTORATE_AGENT_MODEL. Tokens and dollars of every
    verdict are the agent ledger's. Unconfigured, the tier is skipped and the verdict says
    so in its evidence (it then equals ``ours``)."""

    def __init__(self, name: str = "ours-agent", policy: str = "strict", **settings: Any) -> None:
        super().__init__(name, policy)
        self.settings = settings

    def _check(self, view: CaseView) -> BenchVerdict:
        from inspectorate.agent import AgentSettings, check_with_agent
        from inspectorate.commitment import load_commitment
        from inspectorate.trace import read_trace

        if view.commitment is None:
            raise InputError("compliance case without a commitment", view.evidence)
        skipped: list[str] = []
        verdict = check_with_agent(
            read_trace(view.evidence),
            load_commitment(view.commitment),
            AgentSettings.from_env(**self.settings),
            notify=skipped.append,
        )
        accounting = (verdict.agent or {}).get("accounting") or {}
        evidence: dict[str, Any] = {"rules": sorted({v.rule_id for v in verdict.violations})[:10]}
        if skipped:
            evidence["agent"] = skipped[0]
        decision, score = (COMPLIANT, 0.0) if verdict.compliant else (VIOLATION, 1.0)
        if verdict.compliant and verdict.semantic_rules_not_evaluated:
            score = 0.5 * (1.0 - verdict.confidence) if verdict.confidence < 1.0 else 0.0
        return BenchVerdict(
            decision,
            score,
            evidence,
            tokens=int(accounting.get("tokens") or 0),
            dollars=float(accounting.get("cost_usd") or 0.0),
        )


@verifier("ours-agent")
def ours_agent(**options: Any) -> OursAgent:
    """ours + the LLM inspector on semantic rules (Anthropic, OpenAI or any OpenAI-compatible server)."""
    return OursAgent(**options)
