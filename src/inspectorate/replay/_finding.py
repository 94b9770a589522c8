"""A replay result as a verify finding: sensor-grade (the verifier re-ran the training)."""

from __future__ import annotations

from typing import Any

PROPERTY = "training_replay"


def replay_finding(result: Any) -> dict[str, Any]:
    """``{"property", "decision", "score", "grade", "evidence"}`` from a ReplayResult."""
    data = result.to_dict()
    tol = result.tolerance.weight
    worst = max((s.distance / tol for s in result.segments), default=0.0)
    if result.decision == "inconsistent":
        score = 1.0
    elif result.decision == "indeterminate":
        score = 0.0
    else:
        score = min(0.49, worst / 2)
    evidence = {**data, "coverage": len(result.segments) / max(result.n_segments, 1)}
    return {
        "property": PROPERTY,
        "decision": result.decision,
        "score": score,
        "grade": "sensor",
        "evidence": evidence,
    }
