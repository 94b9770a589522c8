"""Plain-text rendering of a RunVerdict, for the verifier's own operators."""

from __future__ import annotations

from inspectorate.verify._inspector import RunVerdict
from inspectorate.verify._registry import INCONSISTENT, INDETERMINATE


def render_text(verdict: RunVerdict) -> str:
    """One line per phase, then the reason of every inconsistent finding."""
    head = "CONSISTENT" if verdict.verdict == 1 else "NOT CONSISTENT"
    lines = [f"{verdict.run}: {head} (confidence {verdict.confidence:.2f})"]
    if verdict.missing_streams:
        lines.append(f"  missing streams: {', '.join(verdict.missing_streams)}")
    for p in verdict.phases:
        mark = "ok  " if p.verdict == 1 else "FLAG"
        bad = [f.property for f in p.findings if f.decision == INCONSISTENT]
        idle = [f.property for f in p.findings if f.decision == INDETERMINATE]
        lines.append(
            f"  {mark} {p.phase} (claimed {p.claimed}) confidence {p.confidence:.2f}"
            + (f"  flagged by: {', '.join(bad)}" if bad else "")
            + (f"  [undecided: {', '.join(idle)}]" if idle else "")
        )
        for f in p.findings:
            if f.decision == INCONSISTENT:
                lines.append(f"       {f.property}: {_brief(f.evidence)}")
    return "\n".join(lines)


def _brief(evidence: dict) -> str:
    keys = [k for k in evidence if k not in ("checks",)][:6]
    return ", ".join(f"{k}={evidence[k]}" for k in keys)
