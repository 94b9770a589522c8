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

from inspectorate.decisions import Decision
from inspectorate.errors import InputError
from inspectorate.verify._evidence import Claim
from inspectorate.verify._registry import CONSISTENT, INCONSISTENT, UNVERIFIABLE, Finding

SOURCES = {"served_model_identity": "difr", "training_replay": "replay"}
SETTLES = {
    "served_model_identity": ("p2_model_size",),
    "training_replay": ("p1_op_type", "p2_model_size", "p3_finetune"),
}


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
    decision = Decision.parse(data.get("decision"), str(path))  # old files' words too
    score = data.get("score")
    if not isinstance(score, (int, float)) or not math.isfinite(score):
        raise InputError("finding needs a decision (consistent|inconsistent|unverifiable) and a score", path)
    raw = data.get("evidence")
    evidence: dict[str, Any] = raw if isinstance(raw, dict) else {}
    evidence = {k: v for k, v in evidence.items() if k not in _BOUND}  # decided by bind(), not the file
    prop = str(data["property"])
    return Finding(prop, min(max(float(score), 0.0), 1.0), decision, evidence, basis=(SOURCES[prop],))


_BOUND = ("settles", "binding", "start_known")
TOKEN_SLACK = 1.25  # replayed tokens vs the phase's window tokens (both count every rank's batch)


def bind(
    rec: Finding, claim: Claim, window_tokens: float | None, models: set[str], nonce: str | None = None
) -> Finding:
    """A replay speaks for a phase only if it replays what the phase claims.

    The claim file is the prover's, so a consistent replay of *some* run proves nothing
    about this phase until its model size, its start and its tokens match the phase's
    claim; a mismatch is the prover contradicting itself (inconsistent). P3 is settled
    only when the replay checked step 0: a pretraining claim must start from the seed's
    initialisation, a fine-tune from a model the verifier has itself replayed earlier in
    the run (``models``: final weights of earlier bound replays) or no model it knows of,
    in which case P3 stays open. The properties settled are decided here, never read
    from the file. Where the sensor issued a challenge (``nonce``), the replayed run's
    seed must derive from it: a run computed before the challenge cannot have that seed.
    """
    if rec.property != "training_replay" or rec.decision != CONSISTENT:
        return rec
    c = rec.evidence.get("claim")
    if not isinstance(c, dict):
        return replace(rec, evidence={**rec.evidence, "settles": [], "binding": ["no claim summary to bind"]})
    problems = _mismatches(c, claim, window_tokens)
    if c.get("final_weights_sha256") in models:
        problems.append("the same replayed run was already handed over for an earlier phase")
    if nonce is not None and not _fresh(c, nonce):
        problems.append(
            "the replayed run's seed is not derived from the verifier's challenge: it may predate the run"
        )
    if problems:
        return replace(rec, decision=INCONSISTENT, score=1.0, evidence={**rec.evidence, "binding": problems})
    settles = ["p1_op_type", "p2_model_size"]
    start_known = c.get("start") == "seed_init" or c.get("start_weights_sha256") in models
    if c.get("start_checked") and start_known:
        settles.append("p3_finetune")
    return replace(rec, evidence={**rec.evidence, "settles": settles, "start_known": start_known})


def bind_phase(
    recs: list[Finding], claim: Claim, window_tokens: float | None, models: set[str], nonce: str | None
) -> list[Finding]:
    """``bind`` each finding of one phase, then add the final weights of every replay that
    settled something to ``models``: the lineage later phases' fine-tunes may start from."""
    bound = [bind(r, claim, window_tokens, models, nonce) for r in recs]
    models.update(
        str(r.evidence["claim"].get("final_weights_sha256"))
        for r in bound
        if r.property == "training_replay" and r.decision == CONSISTENT and r.evidence.get("settles")
    )
    return bound


def _fresh(c: dict[str, Any], nonce: str) -> bool:
    from inspectorate.capture._nonce import derive_seed  # torch-free

    key = c.get("nonce_key")
    return isinstance(key, str) and c.get("seed") == derive_seed(nonce, key)


def _mismatches(c: dict[str, Any], claim: Claim, window_tokens: float | None) -> list[str]:
    out = []
    if claim.op != "training":
        out.append(f"a training replay attached to a phase claimed as {claim.op}")
    if claim.n_params is not None and c.get("n_params") != claim.n_params:
        out.append(
            f"the replayed run trains {c.get('n_params')} parameters; the phase claims {claim.n_params}"
        )
    start = {"pretrain": "seed_init", "finetune": "model"}.get(claim.activity or "")
    if start is not None and c.get("start") != start:
        out.append(f"the phase claims {claim.activity}; the replayed run starts from {c.get('start')}")
    tokens = c.get("tokens")
    if window_tokens and isinstance(tokens, (int, float)):
        ratio = tokens / window_tokens
        if not 1 / TOKEN_SLACK <= ratio <= TOKEN_SLACK:
            out.append(
                f"the replayed run covers {tokens:.0f} tokens; the phase's windows claim {window_tokens:.0f}"
            )
    return out


def settle(found: list[Finding], extra: list[Finding]) -> list[Finding]:
    """``found`` plus the re-computation findings, with the claim properties a consistent
    one answers upgraded from unverifiable to consistent on its basis."""
    out = list(found)
    for rec in extra:
        if rec.decision == CONSISTENT:
            # a training replay settles what ``bind`` found it answers, nothing unbound
            answers = (
                rec.evidence.get("settles", ())
                if rec.property == "training_replay"
                else SETTLES[rec.property]
            )
            for i, f in enumerate(out):
                if f.property in answers and f.decision == UNVERIFIABLE:
                    why = f"settled by {rec.property} (verifier re-computation)"
                    out[i] = replace(
                        f, decision=CONSISTENT, basis=rec.basis, evidence={**f.evidence, "settled": why}
                    )
        out.append(rec)
    return out
