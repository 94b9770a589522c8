"""A replay result as a verify finding: sensor-grade (the verifier re-ran the training)."""

from __future__ import annotations

from typing import Any

from inspectorate.decisions import Decision

PROPERTY = "training_replay"


def replay_finding(result: Any) -> dict[str, Any]:
    """``{"property", "decision", "score", "grade", "evidence"}`` from a ReplayResult."""
    data = result.to_dict()
    tol = result.tolerance.weight
    worst = max((s.distance / tol for s in result.segments), default=0.0)
    decision = Decision.parse(result.decision)
    if decision is Decision.INCONSISTENT:
        score = 1.0
    elif decision is Decision.UNVERIFIABLE:
        score = 0.0
    else:
        score = min(0.49, worst / 2)
    evidence = {**data, "coverage": len(result.segments) / max(result.n_segments, 1)}
    return {
        "property": PROPERTY,
        "decision": decision,
        "score": score,
        "grade": "sensor",
        "evidence": evidence,
    }
