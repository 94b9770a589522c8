"""Re-computation results as verify findings: DiFR (served-model identity) and replayed
training segments, both computed by the verifier itself, so they are verifier evidence.

``difr verify --finding-out F`` and ``replay --finding-out F`` write a finding; ``verify
RUN_DIR --recomputed PHASE=F`` attaches it to a phase. An inconsistent result fails the
phase. A consistent one settles the claim properties it answers that the sensors left
unverifiable (never overriding an inconsistent one): a replay that reproduces the claimed
weights from the committed start checkpoint shows training happened (P1), of the declared
model (P2), from that start (P3, which no sensor can tell); a DiFR match shows the served
outputs come from the declared model (P2).
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from inspectorate.errors import InputError
from inspectorate.verify._registry import CONSISTENT, INCONSISTENT, UNVERIFIABLE, Finding

SOURCES = {"served_model_identity": "difr", "training_replay": "replay"}
SETTLES = {
    "served_model_identity": ("p2_model_size",),
    "training_replay": ("p1_op_type", "p2_model_size", "p3_finetune"),
}
_DECISIONS = {"consistent": CONSISTENT, "inconsistent": INCONSISTENT, "indeterminate": UNVERIFIABLE}


def read_recomputed(spec: str) -> tuple[str, Finding]:
    """``PHASE=FILE`` -> (phase, finding); any problem is an InputError naming the file."""
    phase, sep, name = spec.partition("=")
    if not sep or not phase or not name:
        raise InputError(f"--recomputed takes PHASE=FILE, got {spec!r}")
    path = Path(name)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read a re-computation finding ({exc})", path) from None
    return phase, _finding(data, path)


def _finding(data: Any, path: Path) -> Finding:
    if not isinstance(data, dict) or data.get("property") not in SOURCES:
        raise InputError(f"not a re-computation finding (property one of {sorted(SOURCES)})", path)
    decision = _DECISIONS.get(str(data.get("decision")))
    score = data.get("score")
    if decision is None or not isinstance(score, (int, float)) or not math.isfinite(score):
        raise InputError("finding needs a decision (consistent|inconsistent|indeterminate) and a score", path)
    raw = data.get("evidence")
    evidence: dict[str, Any] = raw if isinstance(raw, dict) else {}
    prop = str(data["property"])
    return Finding(prop, min(max(float(score), 0.0), 1.0), decision, evidence, basis=(SOURCES[prop],))


def settle(found: list[Finding], extra: list[Finding]) -> list[Finding]:
    """``found`` plus the re-computation findings, with the claim properties a consistent
    one answers upgraded from unverifiable to consistent on its basis."""
    out = list(found)
    for rec in extra:
        if rec.decision == CONSISTENT:
            for i, f in enumerate(out):
                if f.property in SETTLES[rec.property] and f.decision == UNVERIFIABLE:
                    why = f"settled by {rec.property} (verifier re-computation)"
                    out[i] = replace(
                        f, decision=CONSISTENT, basis=rec.basis, evidence={**f.evidence, "settled": why}
                    )
        out.append(rec)
    return out
