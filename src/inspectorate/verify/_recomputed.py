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
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inspectorate.decisions import Decision
from inspectorate.errors import InputError
from inspectorate.verify._evidence import Claim
from inspectorate.verify._registry import CONSISTENT, INCONSISTENT, UNVERIFIABLE, Finding

if TYPE_CHECKING:
    from inspectorate.capture._ckpt_watch import WatchLog

SOURCES = {"served_model_identity": "difr", "eval_recompute": "difr", "training_replay": "replay"}
SERVED = ("served_model_identity", "eval_recompute")
SETTLES = {
    "served_model_identity": ("p2_model_size",),
    "eval_recompute": ("p2_model_size",),
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


_BOUND = ("settles", "binding", "start_known", "observed")
TOKEN_SLACK = 1.25  # replayed tokens vs the phase's window tokens (both count every rank's batch)


@dataclass(frozen=True)
class PhaseWatch:
    """What the verifier's checkpoint watcher saw, for one phase's window [t0, t1]
    (``log`` None: the run has no watcher stream, or this view may not read it)."""

    phase: str
    t0: float
    t1: float
    log: WatchLog | None
    hosts: int = 1  # hosts the claimed job spans: its collectives cross this host's NIC only when > 1


WATCH_SLACK_S = 1.0  # label and watcher clocks are read by different processes (seen: 0.31 s early)
# The fewest bits per parameter a relay must send for one checkpoint the host did not
# compute: the sign of each weight's update (an optimizer step moves every weight; the
# magnitudes follow from the schedule only for Adam's first step). Measured encodings of
# real checkpoint deltas need 16-25 bits (docs/verify.md, "What stops the relay").
RELAY_BITS_PER_PARAM = 1.0
WIRE_HEADROOM = 1.10  # framing of collective traffic on the wire beyond its payload


def bind(
    rec: Finding,
    claim: Claim,
    window_tokens: float | None,
    models: set[str],
    nonce: str | None = None,
    watch: PhaseWatch | None = None,
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
    observed: dict[str, Any] = {}
    if watch is not None:
        observed = observe(c, watch)
        problems += observed.get("problems", [])
    if problems:
        evidence = {**rec.evidence, "binding": problems, **({"observed": observed} if observed else {})}
        return replace(rec, decision=INCONSISTENT, score=1.0, evidence=evidence)
    if watch is not None and not observed.get("bound"):
        # a replay shows a real run exists, not that this host ran it: without the
        # watcher's record of the phase's own weights it settles nothing
        return replace(rec, evidence={**rec.evidence, "settles": [], "observed": observed})
    settles = ["p1_op_type", "p2_model_size"]
    start_known = c.get("start") == "seed_init" or c.get("start_weights_sha256") in models
    if c.get("start_checked") and start_known:
        settles.append("p3_finetune")
    extra = {"observed": observed} if observed else {}
    return replace(rec, evidence={**rec.evidence, "settles": settles, "start_known": start_known, **extra})


def bind_phase(
    recs: list[Finding],
    claim: Claim,
    window_tokens: float | None,
    models: set[str],
    nonce: str | None,
    watch: PhaseWatch | None = None,
) -> list[Finding]:
    """``bind`` each finding of one phase, then add the final weights of every replay that
    settled something to ``models``: the lineage later phases' fine-tunes may start from."""
    bound = [
        bind_served(r, claim, window_tokens, nonce, watch.phase if watch else None)
        if r.property in SERVED
        else bind(r, claim, window_tokens, models, nonce, watch)
        for r in recs
    ]
    models.update(
        str(r.evidence["claim"].get("final_weights_sha256"))
        for r in bound
        if r.property == "training_replay" and r.decision == CONSISTENT and r.evidence.get("settles")
    )
    return bound


def bind_served(
    rec: Finding, claim: Claim, window_tokens: float | None, nonce: str | None, phase: str | None
) -> Finding:
    """A served-output or eval re-computation speaks for a phase only if it re-computes
    what the phase claims: the handed-over weights have the claimed parameter count, the
    phase is a serve (or eval) claim, the log or batches account for the tokens the
    phase's windows claim, and, where the sensor issued a challenge, the log's sampling
    seed derives from it (a log computed before the run cannot). A mismatch is the
    prover contradicting itself: inconsistent. A finding without the weights' size (a
    ``difr verify --finding-out`` file of a checkpoint the verifier's user supplied)
    keeps its old reach."""
    if rec.property not in SERVED or rec.decision != CONSISTENT or "n_params" not in rec.evidence:
        return rec
    ev = rec.evidence
    problems = []
    ops = ("inference", "eval") if rec.property == "served_model_identity" else ("eval",)
    if claim.op not in ops:
        problems.append(f"a {rec.property} re-computation attached to a phase claimed as {claim.op}")
    if claim.n_params is not None and ev.get("n_params") != claim.n_params:
        problems.append(
            f"the handed-over weights hold {ev.get('n_params')} parameters; the phase claims {claim.n_params}"
        )
    tokens = ev.get("tokens")
    if window_tokens and isinstance(tokens, (int, float)):
        # generated tokens, or generated plus prefilled prompts (tokens processed)
        prompts = ev.get("prompt_tokens")
        counts = [tokens, tokens + (prompts if isinstance(prompts, (int, float)) else 0)]
        if not any(1 / TOKEN_SLACK <= n / window_tokens <= TOKEN_SLACK for n in counts):
            problems.append(
                f"the handed-over outputs cover {tokens:.0f} tokens; the phase's windows claim {window_tokens:.0f}"
            )
    if nonce is not None and phase is not None and rec.property == "served_model_identity":
        from inspectorate.capture._nonce import derive_seed  # torch-free

        if ev.get("seed") != derive_seed(nonce, f"serve:{phase}"):
            problems.append(
                "the served log's sampling seed is not derived from the verifier's challenge: it may predate the run"
            )
    if problems:
        return replace(rec, decision=INCONSISTENT, score=1.0, evidence={**ev, "binding": problems})
    note = [] if window_tokens else ["the phase claims no token count: the log's coverage is not bound"]
    return replace(rec, evidence={**ev, "settles": list(SETTLES[rec.property]), "binding": note})


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
                    if rec.property in SERVED and f.evidence.get("footprint_room_for_a_second_model"):
                        # the declared model ran; the memory shows room for a larger one beside it
                        note = f"not settled by {rec.property}: the footprint holds a second model's room"
                        out[i] = replace(f, evidence={**f.evidence, "settled": note})
                        continue
                    why = f"settled by {rec.property} (verifier re-computation)"
                    out[i] = replace(
                        f, decision=CONSISTENT, basis=rec.basis, evidence={**f.evidence, "settled": why}
                    )
            if rec.property == "eval_recompute":
                out = [scored_eval_price(f) if f.property == "compute" else f for f in out]
        out.append(rec)
    return out


def scored_eval_price(f: Finding) -> Finding:
    """``compute`` of an eval phase whose handed-over batches re-computed and bound: the
    work is known to be scoring given text (teacher-forced rows, every position one
    forward), so its highest honest price is the forward's, not generation's. Unknown,
    an eval is priced up to generation (``_physics._price_hi``), which forgave a 20x
    larger model evaluating beside a declared-size twin whose batches were handed over
    (10.3x the forward price, 0.40 of generation's)."""
    ev = f.evidence
    ratio, tol = ev.get("observed_over_expected"), ev.get("tolerance")
    band = ev.get("band") or {}
    if f.decision != CONSISTENT or band.get("priced_up_to") != "generative eval":
        return f
    if not isinstance(ratio, (int, float)) or not isinstance(tol, list) or len(tol) != 2:
        return f
    score = float(ratio) / (float(ratio) + float(tol[1]))  # above(ratio, high)
    note = "priced as scoring given text: the handed-over eval batches re-computed and bound"
    # the ratio is timing: it goes with the spot-check (archived under "timings"), as in compute
    timed = {**(ev.get("spot_check") or {}), "observed_over_highest_price": ratio}
    evidence = {**ev, "band": {**band, "priced_up_to": note}, "spot_check": timed}
    return replace(
        f, decision=INCONSISTENT if score >= 0.5 else CONSISTENT, score=max(f.score, score), evidence=evidence
    )


def observe(c: dict[str, Any], watch: PhaseWatch) -> dict[str, Any]:
    """Bind the replayed claim to the weights the watcher saw this host write.

    Every claimed checkpoint's weight fingerprint must have been seen written during
    the phase's window, in step order; weights the phase wrote into its own claim
    directory that the claim does not list contradict it. Returns ``{"bound": bool,
    "problems": [...], ...}``; without a stream ``bound`` is False with the reason."""
    log = watch.log
    if log is None:
        return {
            "bound": False,
            "reason": "no checkpoint watcher stream (sensor_ckpt.jsonl): "
            "the replayed run cannot be tied to weights this host wrote",
        }
    if log.problems:
        return {"bound": False, "problems": [f"checkpoint watcher: {p}" for p in log.problems]}
    ckpts = c.get("checkpoints")
    if not isinstance(ckpts, list) or not ckpts:
        return {"bound": False, "problems": ["the replayed claim lists no checkpoint fingerprints to bind"]}
    lo, hi = watch.t0 - WATCH_SLACK_S, watch.t1 + WATCH_SLACK_S
    never, outside, firsts = [], [], []
    for ck in ckpts:
        sights = [r for r in log.written if r.get("weights_sha256") == ck.get("weights_sha256")]
        times = [float(r["t"]) for r in sights]
        inside = [float(r["t"]) for r in sights if _during(r, lo, hi)]
        if not times:
            never.append(str(ck.get("file")))
        elif not inside:
            outside.append(f"{ck.get('file')} at t={min(times):.1f}")
        else:
            firsts.append(min(inside))
    problems = []
    n = len(ckpts)
    if never:
        problems.append(
            f"{len(never)} of {n} claimed checkpoints were never seen written on this host"
            f" (first: {never[0]}): the claimed run was computed elsewhere"
        )
    if outside:
        problems.append(
            f"{len(outside)} of {n} claimed checkpoints were seen written only outside the phase"
            f" [{watch.t0:.1f}, {watch.t1:.1f}] (first: {outside[0]})"
        )
    if not problems and firsts != sorted(firsts):
        problems.append("the claimed checkpoints were seen written out of step order")
    writer = _writer_check(ckpts, log, lo, hi)
    problems += writer.pop("problems")
    relay = _relay_check(c, watch, max(firsts, default=watch.t1))
    listed = {ck.get("weights_sha256") for ck in ckpts}
    own_dir = f"claims/{watch.phase}/"
    unlisted = {
        r.get("weights_sha256")
        for r in log.written
        if str(r.get("path", "")).startswith(own_dir)
        and r.get("weights_sha256")
        and r["weights_sha256"] not in listed
        and lo <= float(r["t"]) <= hi
    }
    if unlisted:
        problems.append(
            f"the watcher saw {len(unlisted)} other weight files written to {own_dir} during the phase:"
            " the phase trained weights its claim does not list"
        )
    open_ = [r for r in (writer.get("reason"), relay.get("reason")) if r]
    out = {
        "bound": not problems and not open_,
        "problems": problems,
        "checkpoints_seen": len(firsts),
        "checkpoints": n,
        "writers": writer,
        "ingress": relay,
    }
    if open_ and not problems:
        out["reason"] = "; ".join(open_)
    return out


def _during(r: dict[str, Any], lo: float, hi: float) -> bool:
    """The write lies in [queued_after, t] (the watcher read its event at ``t``, having
    last found its queue empty at ``queued_after``): it may have fallen in [lo, hi]."""
    t = float(r["t"])
    after = r.get("queued_after")
    start = float(after) if isinstance(after, (int, float)) and after <= t else t
    return start <= hi and t >= lo


def _writer_check(ckpts: list[dict[str, Any]], log: WatchLog, lo: float, hi: float) -> dict[str, Any]:
    """Who closed each claimed checkpoint: some sighting in the window must have only
    writers in the workload's tree. A writer outside it is the relay's copier
    (inconsistent); a writer that was not seen or had exited leaves the binding open."""
    if log.writers != "fanotify":
        return {"problems": [], "checked": False, "note": f"writer not checked on this host ({log.writers})"}
    outside, unknown = [], []
    for ck in ckpts:
        sights = [
            r
            for r in log.written
            if r.get("weights_sha256") == ck.get("weights_sha256") and _during(r, lo, hi)
        ]
        writers = [r.get("writers") or [] for r in sights]
        if any(w and all(x.get("in_workload") is True for x in w) for w in writers):
            continue
        bad = [x for w in writers for x in w if x.get("in_workload") is False]
        if bad:
            outside.append(f"{ck.get('file')} by pid {bad[0].get('pid')} ({bad[0].get('comm')})")
        elif sights:
            unknown.append(str(ck.get("file")))
    problems = []
    if outside:
        problems.append(
            f"{len(outside)} claimed checkpoints were written by a process outside the workload's tree"
            f" (first: {outside[0]}): they were copied in, not trained here"
        )
    out: dict[str, Any] = {"problems": problems, "checked": True}
    if unknown:
        out["reason"] = (
            f"unverifiable: the writer of {len(unknown)} claimed checkpoints was not seen or had exited"
            f" (first: {unknown[0]})"
        )
    return out


def _relay_check(c: dict[str, Any], watch: PhaseWatch, t_last: float) -> dict[str, Any]:
    """Could the claimed checkpoints have been received rather than computed here?

    A substitute run depends on the challenge the sensor issued at its start, so a relay
    of its checkpoints must enter the host after that start and before the last one is
    written. The host's receive bytes over that span (beyond what the claimed job's own
    collectives bring in when it spans hosts) must stay below what the relay needs: one
    update's worth of bits per parameter for every claimed checkpoint after the start
    (the start, a seed's initialisation or a known model, costs the host nothing)."""
    log = watch.log
    ingress = log.ingress if log is not None else None
    n = c.get("n_params")
    ckpts = [ck for ck in c.get("checkpoints") or [] if int(ck.get("step") or 0) > 0]
    if not isinstance(n, (int, float)):
        return {"reason": "unverifiable: the replayed claim names no parameter count to size a relay by"}
    if ingress is None:
        return {
            "reason": "unverifiable: no receive counters from the sensor, so the checkpoints could have been relayed in"
        }
    need = len(ckpts) * float(n) * RELAY_BITS_PER_PARAM / 8.0
    explained = collective_ingress(c, watch.hosts)
    received = ingress.by(t_last)
    out: dict[str, Any] = {
        "received_b": received,
        "explained_b": explained,
        "relay_needs_b": need,
        "since": ingress.t0,
    }
    if received - explained >= need:
        out["reason"] = (
            f"unverifiable: the checkpoints could have been relayed in (ingress {received - explained:.0f} B"
            f" >= {need:.0f} B)"
        )
    return out


def collective_ingress(c: dict[str, Any], hosts: int) -> float:
    """Bytes the claimed job's gradient all-reduce brings into one host when its ranks
    span ``hosts`` hosts: a ring all-reduce receives 2(W-1)/W of the gradient per rank
    per step; every local rank is counted as if its peers were remote (an upper bound).
    Ranks of one host all-reduce over loopback, which ``Ingress`` does not count: 0."""
    world = int(c.get("world_size") or 1)
    if hosts <= 1 or world <= 1:
        return 0.0
    local = max(world // hosts, 1)
    grad = 4.0 * float(c.get("n_params") or 0)
    return float(c.get("steps") or 0) * local * 2.0 * (world - 1) / world * grad * WIRE_HEADROOM
