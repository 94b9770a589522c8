"""Plain-text rendering of a RunVerdict, for the verifier's own operators."""

from __future__ import annotations

from typing import Any

from inspectorate.verify._inspector import RunVerdict
from inspectorate.verify._registry import INCONSISTENT, UNVERIFIABLE
from inspectorate.verify._settle import would_settle


def render_run_text(verdict: RunVerdict) -> str:
    """One line per phase, then the reason of every inconsistent finding."""
    head = "CERTIFIED" if verdict.verdict == 1 else "NOT CERTIFIED"
    lines = [
        f"{verdict.run}: {head}, {verdict.outcome} under policy {verdict.policy} "
        f"(confidence {verdict.confidence:.2f})"
    ]
    lines += [f"  reason: {r}" for r in verdict.reasons]
    if verdict.missing_streams:
        lines.append(f"  missing streams: {', '.join(verdict.missing_streams)}")
    for p in verdict.phases:
        mark = {"consistent": "ok  ", "unverifiable": "open", "inconsistent": "FLAG"}[p.outcome]
        bad = [f.property for f in p.findings if f.decision == INCONSISTENT]
        idle = [f.property for f in p.findings if f.decision == UNVERIFIABLE]
        lines.append(
            f"  {mark} {p.phase} (claimed {p.claimed}) confidence {p.confidence:.2f}"
            + (f"  flagged by: {', '.join(bad)}" if bad else "")
            + (f"  [unverifiable: {', '.join(idle)}]" if idle else "")
            + (f"  basis: {', '.join(p.basis)}" if p.basis else "")
        )
        for f in p.findings:
            if f.decision == INCONSISTENT:
                lines.append(f"       {f.property}: {_brief(f.evidence)}")
            elif f.decision == UNVERIFIABLE and p.outcome != INCONSISTENT:
                lines.append(f"       {f.property} {would_settle(f)}")
    if verdict.agent is not None:
        lines += _agent_lines(verdict.agent)
    return "\n".join(lines)


def _agent_lines(agent: dict[str, Any]) -> list[str]:
    """The LLM tier (``verify --agent``): how each semantic rule was judged, which were
    not and why, and what the calls cost."""
    lines = []
    if agent.get("skipped"):
        lines.append(f"  agent: {agent['skipped']}")
    for rid, how in agent.get("semantic_rules_judged", {}).items():
        lines.append(f"  semantic rule {rid}: {how}")
    for rid, why in agent.get("unjudged", {}).items():
        why = "the tier was skipped" if why == agent.get("skipped") else why
        lines.append(f"  semantic rule {rid}: NOT judged ({why})")
    accounting = agent.get("accounting")
    if accounting:
        cost = accounting["cost_usd"]
        lines.append(
            f"  agent {agent['backend']}:{agent['model']}: {len(accounting['calls'])} call(s), "
            f"{accounting['tokens']} tokens, {'cost unknown' if cost is None else f'${cost:.4f}'}"
        )
    return lines


def _brief(evidence: dict) -> str:
    keys = [k for k in evidence if k not in ("checks",)][:6]
    return ", ".join(f"{k}={evidence[k]}" for k in keys)
