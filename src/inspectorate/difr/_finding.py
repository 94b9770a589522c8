"""A DiFR report as a verify finding: sensor-grade, because the verifier re-computed it.

The shape matches ``inspectorate.verify.Finding.to_dict()`` (property, decision, score,
evidence) plus ``grade``; the verify package wires it in, this package does not import it.
"""

from __future__ import annotations

from typing import Any

from inspectorate.decisions import Decision

PROPERTY = "served_model_identity"


def difr_finding(report: Any) -> dict[str, Any]:
    """``{"property", "decision", "score", "grade", "evidence"}`` from a DifrReport."""
    data = report.to_dict()
    th = report.thresholds
    worst = 0.0
    for key, limit in (
        ("token_difr", th.token if th else None),
        ("activation_difr", th.activation if th else None),
    ):
        block = data.get(key)
        if block and limit:
            worst = max(worst, block["max_score"] / limit)
    score = (
        1.0
        if Decision.parse(report.decision) is Decision.INCONSISTENT
        else (0.0 if Decision.parse(report.decision) is Decision.UNVERIFIABLE else min(0.49, worst / 2))
    )
    evidence = {k: data[k] for k in data if k != "per_sequence"}
    evidence["flagged_sequences"] = sorted(set(report.flagged_token) | set(report.flagged_activation))
    return {
        "property": PROPERTY,
        "decision": report.decision,
        "score": score,
        "grade": "sensor",
        "evidence": evidence,
    }
