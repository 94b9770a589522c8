"""``verify --agent``: the LLM tier over a run directory.

``verify`` judges every phase from telemetry and checks the commitment's deterministic
rules on the run's window records. The semantic rules no offline fallback covers are
then handed to the same inspector as ``check --agent`` (``inspect_semantic``), whose
digest here also carries the verify findings: each phase's outcome, the properties that
decided it, and the run's reasons. The judgements fold into the run verdict:

* a rule judged violated makes the run not certified (``inconsistent: semantic rule X``);
* a rule left undetermined (the model could not tell, invalid replies, budget, or no
  key at all) follows the policy: ``strict`` does not certify
  (``unverifiable: semantic rule X``), ``lenient`` reports it under ``agent.unjudged``.
  A rule nobody judged is evidence that cannot tell, never a pass.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from inspectorate.agent._backends import AgentSettings, Backend
from inspectorate.agent._inspector import AgentReport, inspect_semantic, merge_agent
from inspectorate.commitment import Commitment, Verdict
from inspectorate.errors import InputError
from inspectorate.trace import RunDir, load_run
from inspectorate.verify import CONSISTENT, INCONSISTENT, UNVERIFIABLE, RunVerdict, verify_run
from inspectorate.verify._registry import Finding
from inspectorate.verify._replay_run import ReplayPlan

NOTHING_LEFT = "no semantic rule is left for the LLM tier (every one is judged offline or compiled)"


def verify_with_agent(
    run: RunDir | Path | str,
    commitment: Commitment | None,
    settings: AgentSettings | None = None,
    *,
    policy: str = "strict",
    notify: Callable[[str], None] | None = None,
    backend: Backend | str | None = None,
    on_phase: Callable[[str], None] | None = None,
    recomputed: dict[str, list[Finding]] | None = None,
    replay: ReplayPlan | None = None,
) -> RunVerdict:
    """``verify_run`` on ``run``, then the LLM tier on the commitment's semantic rules
    left unjudged, over the run's window records and the verify findings. A skipped tier
    is one line to ``notify``; the verdict's ``agent.unjudged`` names the rules."""
    if commitment is None:
        raise InputError("--agent judges a commitment's semantic rules: give --commitment")
    loaded = run if isinstance(run, RunDir) else load_run(run)
    verdict = verify_run(
        loaded, commitment, policy=policy, on_phase=on_phase, recomputed=recomputed, replay=replay
    )
    rules = verdict.commitment
    assert rules is not None and loaded.windows is not None  # verify_run raises without windows
    pending = list(rules.semantic_rules_not_evaluated)
    if not pending:
        return fold_agent(verdict, rules, AgentReport({}, skipped=NOTHING_LEFT))
    report = inspect_semantic(
        loaded.windows, commitment, pending, settings, rules.violations, backend, verdict.to_dict()
    )
    if report.skipped and notify:
        notify(f"{report.skipped}; semantic rules not judged: {', '.join(pending)}")
    return fold_agent(verdict, merge_agent(rules, report), report)


def fold_agent(verdict: RunVerdict, merged: Verdict, report: AgentReport) -> RunVerdict:
    """``verdict`` with the agent's judgements applied under its policy (``merged``: the
    commitment verdict with the judgements folded in by ``merge_agent``)."""
    verdict.commitment = merged
    reasons = merged.semantic_unjudged_reasons
    unjudged = {rid: reasons.get(rid, "not judged") for rid in merged.semantic_rules_not_evaluated}
    violated = {rid: j for rid, j in report.judgements.items() if j.verdict == "violation"}
    compliant = [j.confidence for j in report.judgements.values() if j.verdict == "compliant"]
    if violated:
        _violated(verdict, report, violated)
    elif compliant and verdict.verdict == 1:
        verdict.confidence = min([verdict.confidence, *compliant])
    if verdict.policy == "strict":
        for rid, why in unjudged.items():
            verdict.reasons.append(f"unverifiable: semantic rule {rid} ({why})")
            verdict.verdict = 0
            if verdict.outcome == CONSISTENT:
                verdict.outcome = UNVERIFIABLE
    verdict.agent = report.to_dict() | {
        "semantic_rules_judged": dict(merged.semantic_rules_judged),
        "unjudged": unjudged,
    }
    return verdict


def _violated(verdict: RunVerdict, report: AgentReport, violated: dict[str, Any]) -> None:
    """Not certified; confidence: the surest agent violation, unless already not certified
    with more certainty (a broken deterministic rule is 1.0)."""
    surest = max(j.confidence for j in violated.values())
    verdict.confidence = surest if verdict.verdict == 1 else max(verdict.confidence, surest)
    verdict.verdict, verdict.outcome = 0, INCONSISTENT
    who = f"agent {report.backend}:{report.model}"
    for index, (rid, j) in enumerate(violated.items()):
        verdict.reasons.insert(
            index, f"inconsistent: semantic rule {rid} violated ({who}, confidence {j.confidence:.2f})"
        )
