"""Physics from the sensor stream: is the observed compute what the claimed work costs?
And has anyone edited a chain?

``compute``: the verifier re-runs a small sample of the claimed work itself (declared
model, batch and sequence length; ``_spotcheck``) to measure CPU-seconds per claimed
token on this host, multiplies by the tokens the window records claim, and compares
with the CPU-seconds the sensor saw the workload's process tree burn. Compute beyond the
claim (training hidden in serving or idle, an undeclared job beside an honest one) and
compute far below it (claimed work not done, tokens inflated) are both inconsistent.
An idle claim must leave the tree near zero cores.

``integrity``: a break in the step-record chain inside the phase, or anywhere in the
sensor's own chain, is inconsistent (a rewritten file is not evidence).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from inspectorate.verify._evidence import PhaseEvidence
from inspectorate.verify._hostcal import HostRate, flops_floor_cpu_s, host_rate
from inspectorate.verify._properties import Context, above, below, idle_allowance, idle_score, multi_rank
from inspectorate.verify._registry import (
    CONSISTENT,
    INCONSISTENT,
    UNVERIFIABLE,
    Finding,
    finding,
    prop,
    unverifiable,
)
from inspectorate.verify._relay import relay_evidence
from inspectorate.verify._spotcheck import SpotCheck, Work, checkpoint_cpu_s_per_byte, spot_check


def claimed_work(ev: PhaseEvidence) -> Work | None:
    """The work the claim declares: op, model config, batch and sequence (window records)."""
    w = ev.windows or {}
    if ev.claim.op not in ("training", "inference", "eval") or not ev.claim.model:
        return None
    return Work(
        ev.claim.op,
        ev.claim.model,
        int(w.get("batch_size") or 0),
        int(w.get("sequence_length") or 0),
        ev.model_spec,
    )


@prop("compute")
def compute(ev: PhaseEvidence, ctx: Context) -> Finding:
    """Does the claimed work explain the CPU the sensor saw? observed tree CPU-seconds over
    (spot-check CPU-s per token x claimed tokens) must lie in [1/compute_low,
    compute_high] (tolerances from honest runs); an idle claim must stay under
    ``idle_cores`` per process holding memory (``idle_allowance``). CPU burned in the
    phase by host processes outside the capture that the workload talks to (relay
    peers, ``capture._peers``) beyond ``relay_allowance`` leaves a passing phase
    unverifiable, naming the peer (``_relay``)."""
    return _with_relays(_compute(ev, ctx), relay_evidence(ev, ctx.escapes, ctx.calibration))


def _with_relays(f: Finding, relays: dict[str, Any] | None) -> Finding:
    """``compute``'s finding given the phase's relay peers: unchanged without any; the
    peers added to its evidence when quiet or when it failed anyway; otherwise
    unverifiable, naming the busiest peer (what would settle it: capturing it too)."""
    if relays is None:
        return f
    reason = relays.pop("reason", None)
    evidence = {**f.evidence, **relays}
    if reason is None or f.decision == INCONSISTENT:
        return finding(f.property, f.score, f.decision, f.record_ids, basis=f.basis, **evidence)
    missing = [*evidence.pop("missing_streams", []), "relay_peer"]
    prior = evidence.pop("reason", None)  # compute's own open question stays named
    reason = f"{reason}; {prior}" if prior else reason
    return finding(
        f.property, f.score, UNVERIFIABLE, basis=f.basis, missing_streams=missing, reason=reason, **evidence
    )


def _compute(ev: PhaseEvidence, ctx: Context) -> Finding:
    cal = ctx.calibration
    s = ev.sensor or {}
    if "cpu_s" not in s:
        return unverifiable("compute", ["sensor"])
    evidence: dict[str, Any] = {
        "observed_cpu_s": s["cpu_s"],
        "tree_cores": s["cores"],
        "claimed_op": ev.claim.op,
    }
    if ev.claim.op == "idle":
        allowed = idle_allowance(ev, cal)
        score = idle_score(ev, cal)
        if s.get("cpu_wait_share") is not None:
            evidence.update(cpu_wait_share=s["cpu_wait_share"], idle_wait_share=cal.idle_wait_share)
        else:  # judged on CPU alone: a starved hidden loop could stay under the allowance
            evidence["cpu_wait"] = "not measured (no PSI cpu.pressure for the workload's cgroup)"
        return finding(
            "compute",
            score,
            INCONSISTENT if score >= 0.5 else CONSISTENT,
            basis=["sensor"],
            idle_cores=cal.idle_cores,
            idle_cores_allowed=allowed,
            model_holders=(ev.sensor or {}).get("mem_procs"),
            **evidence,
        )
    tokens = (ev.windows or {}).get("tokens")
    work = claimed_work(ev)
    if not tokens or work is None:
        return unverifiable("compute", ["windows (claimed tokens)", "claimed_model"], **evidence)
    check = spot_check(work, cal.spot_check_s)
    if not isinstance(check, SpotCheck):
        return _rate_floor(ev, float(tokens), check, evidence)
    expected = check.cpu_s_per_token * float(tokens)
    io = checkpoint_io(ev)
    observed = max(s["cpu_s"] - io.get("io_cpu_s", 0.0), 0.0)
    ratio = observed / expected if expected > 0 else float("inf")
    price_hi, priced = _price_hi(work, check, cal.spot_check_s)
    high, band = _high(ev, cal.compute_high, cal.spot_check_s, replace(work, spec=check.work.spec), price_hi)
    if work.op == "training" and band["kind"] == "multi-process":
        # the wide band is a LOHO fit of supervised DDP jobs on the supervised price:
        # it keeps that price (widening it for on-policy tokens would count twice)
        price_hi, priced = check.cpu_s_per_token, None
    ratio_hi = ratio * check.cpu_s_per_token / price_hi if price_hi > 0 else ratio
    # The checkpoint-I/O excuse is an estimate: it may forgive excess CPU, never create a
    # deficit (at 1-2 steps of a 124M model the excuse for 3.5 GB of checkpoints exceeded
    # the training's own CPU, and an honest phase read as work not done).
    ratio_low = s["cpu_s"] / expected if expected > 0 else float("inf")
    score = max(above(ratio_hi, high), below(ratio_low, 1.0 / cal.compute_low))
    timed = {k: band.pop(k) for k in ("training_over_claimed_price",) if k in band}
    if priced:  # what the verifier measured goes with the spot-check (archived under "timings")
        band["priced_up_to"] = priced.pop("priced_up_to")
        timed.update(priced, observed_over_highest_price=ratio_hi)
    return finding(
        "compute",
        score,
        INCONSISTENT if score >= 0.5 else CONSISTENT,
        basis=["sensor", "spot_check"],
        claimed_tokens=tokens,
        expected_cpu_s=expected,
        observed_over_expected=ratio,
        tolerance=[1.0 / cal.compute_low, high],
        band=band,
        spot_check={**check.to_dict(), **timed},
        **io,
        **evidence,
    )


# One busy process: no gradient all-reduce, no second rank's recorder or gloo threads,
# so the spot-check reproduces all of the claimed work but the workload's own
# bookkeeping (data batching, sampling, records). Half of the CPU going to anything but
# the claimed work is the allowance; the wide band (``compute_high``, LOHO on 2-rank
# DDP jobs) holds communication that a single process does not have.
SINGLE_PROCESS_HIGH = 2.0


def _price_hi(work: Work, check: SpotCheck, seconds: float) -> tuple[float, dict[str, Any] | None]:
    """The highest honest price of a claimed token. A claim does not say where its tokens
    come from. Serving may decode with a cache or, for a transformer, re-read the whole
    prefix every token (``_generation_hi``). Eval may score given text (one forward
    pass, the spot-check's ``eval``) or generate answers (decoding: much dearer per
    token for a recurrent model stepped one token at a time): priced up to the dearer
    of the two. Training may be supervised (the spot-check's ``training``) or
    on-policy, each token first generated by the model and then trained on (RL):
    priced up to the sum."""
    if work.op == "inference":
        gen, info = _generation_hi(work, check, seconds)
        if info is None:
            return check.cpu_s_per_token, None
        # named whenever the family is priced this way, whichever price measured higher:
        # the verdict's shape must not depend on timing noise (archived JSON compares it)
        return gen, {**info, "priced_up_to": "generation re-reading the prefix"}
    cached = spot_check(replace(work, op="inference", spec=check.work.spec), seconds)
    if not isinstance(cached, SpotCheck):
        return check.cpu_s_per_token, None
    gen, info = _generation_hi(work, cached, seconds)
    info = {"generation_cpu_s_per_token": cached.cpu_s_per_token, **(info or {})}
    if work.op == "training":
        return check.cpu_s_per_token + gen, {**info, "priced_up_to": "on-policy training"}
    return max(gen, check.cpu_s_per_token), {**info, "priced_up_to": "generative eval"}


# Families whose honest servers may run the whole (cropped) prefix for every new token:
# nanoGPT's ``generate`` and a transformer server with its KV cache off do. A recurrent
# model carries its state and a fixed-window MLP reads one window a token by
# construction, so they are priced as decoded (pricing them as re-read would forgive
# ~seq/2 times the work, room for hidden training).
REREAD_FAMILIES = frozenset({"gpt", "llama"})


def _generation_hi(work: Work, cached: SpotCheck, seconds: float) -> tuple[float, dict[str, Any] | None]:
    """The dearest honest price of a generated token: decoding with a cache (``cached``,
    the spot-check's ``inference``) or, for a transformer, re-reading the prefix (an
    honest nanoGPT-style server measured 3.1x the cached price at 0.8M parameters and
    64 tokens, and was flagged before this allowance)."""
    spec = cached.work.spec
    if spec is None or spec.family not in REREAD_FAMILIES:
        return cached.cpu_s_per_token, None
    reread = spot_check(replace(work, op="recompute", spec=spec), seconds)
    if not isinstance(reread, SpotCheck):
        return cached.cpu_s_per_token, None
    return max(cached.cpu_s_per_token, reread.cpu_s_per_token), {
        "reread_cpu_s_per_token": reread.cpu_s_per_token
    }


def _high(
    ev: PhaseEvidence, wide: float, seconds: float, work: Work, price_hi: float
) -> tuple[float, dict[str, Any]]:
    """Upper tolerance on observed over the claim's highest honest price, and why.
    Several busy processes (as the sensor counts them) or a claimed multi-rank job: the
    wide band. One: ``SINGLE_PROCESS_HIGH``. For a serving or eval claim the band also
    reports what training the same model at the same tokens would cost (the verifier
    times it), for the reader: training's price over the claim's is the factor by
    which CPU would have to exceed the claim to point at training. Not used to decide:
    on a loaded host the spot-check moves ~1.5x run to run, as much as that factor."""
    procs = (ev.sensor or {}).get("busy_procs")
    holders = (ev.sensor or {}).get("mem_procs")
    # A starved rank on a loaded host falls under the sensor's busy threshold but still
    # holds its model copy: the sensor's count of processes holding memory keeps a real
    # multi-rank job on the wide band. The claim's ranks count only where the sensor
    # listed no process (an older sensor): a single process claiming ranks it does not
    # run no longer buys the wide band.
    multi = (holders or 0) >= 2 or (not holders and multi_rank(ev))
    if procs is None or procs >= 2 or multi:
        return wide, {
            "kind": "multi-process",
            "busy_procs": procs,
            "model_holders": holders,
            "claimed_multi_rank": multi_rank(ev),
        }
    band: dict[str, Any] = {
        "kind": "single-process",
        "busy_procs": procs,
        "model_holders": holders,
        "single_process_high": SINGLE_PROCESS_HIGH,
    }
    if work.op != "training":
        train = spot_check(replace(work, op="training"), seconds)
        if isinstance(train, SpotCheck) and price_hi > 0:
            band["training_over_claimed_price"] = train.cpu_s_per_token / price_hi
    return SINGLE_PROCESS_HIGH, band


FLOOR_SLACK = 2.0  # the rate is fp32 at one matrix size: reduced precision or larger GEMMs run faster


def _rate_floor(ev: PhaseEvidence, tokens: float, why: str, evidence: dict[str, Any]) -> Finding:
    """No model to re-run: the host's matrix-product rate still bounds the claim from
    below (``_hostcal``). Fewer CPU-seconds than the claimed FLOPs need at the peak rate
    (with ``FLOOR_SLACK``) is inconsistent; anything above stays unverifiable, because
    without the model's cost per token hidden compute cannot be bounded."""
    n = ev.claim.n_params
    rate = host_rate() if n else "no parameter count claimed"
    if not isinstance(rate, HostRate) or not n or ev.claim.op is None:
        return unverifiable("compute", ["spot_check"], reason=why, **evidence)
    floor = flops_floor_cpu_s(ev.claim.op, n, tokens, rate) / FLOOR_SLACK
    observed = float(evidence["observed_cpu_s"])
    bound: dict[str, Any] = {
        "claimed_tokens": tokens,
        "flops_floor_cpu_s": floor,
        "host_rate": rate.to_dict(),
        "floor_slack": FLOOR_SLACK,
        "basis_note": "physics: 6N/2N FLOPs per token at the host's peak fp32 matrix-product rate",
    }
    if observed < floor:
        score = below(observed, floor)
        return finding("compute", score, INCONSISTENT, basis=["sensor", "host_rate"], **bound, **evidence)
    reason = f"{why}; the sensor's CPU clears the FLOP floor, and hidden compute cannot be bounded without the model"
    return unverifiable("compute", ["spot_check"], reason=reason, **bound, **evidence)


def checkpoint_io(ev: PhaseEvidence) -> dict[str, Any]:
    """CPU the phase spent writing the replay checkpoints it hands over, excused from the
    compute comparison: the bytes the sensor saw the tree write, capped by the bytes of
    checkpoint files in ``claims/<phase>/`` (so writing anything else, or more than was
    handed over, excuses nothing), times the verifier's own cost per checkpoint byte
    (``checkpoint_cpu_s_per_byte``: serialise, hash the file, hash the weights)."""
    written = (ev.sensor or {}).get("write_b")
    if not written or ev.checkpoint_files_b <= 0:
        return {}
    per_byte = checkpoint_cpu_s_per_byte()
    if per_byte is None:
        return {}
    excused = min(float(written), ev.checkpoint_files_b)
    return {"checkpoint_bytes": excused, "io_cpu_s": excused * per_byte}


@prop("integrity", claim=False)
def integrity(ev: PhaseEvidence, ctx: Context) -> Finding:
    """Chains hold: no step- or window-record chain break inside the phase, none in the
    sensor's chain; the sensor still sampling when the phase ends; and no workload
    process seen leaving the capture's cgroup or network
    namespace by the phase's end (its CPU, memory and traffic are then not in the
    evidence: ``capture._escape``). A break or an escape is inconsistent; an intact
    sensor chain is the basis of a pass.
    A chained file that ends in a torn (partial) last line is named under
    ``torn_streams`` in the phase its last complete record falls in."""
    breaks = ev.integrity.get("step_breaks") or []
    window_breaks = ev.integrity.get("window_breaks") or []
    sensor_breaks = int(ev.integrity.get("sensor_breaks") or 0)
    evidence: dict[str, Any] = {
        "step_chain_breaks": breaks[:10],
        "window_chain_breaks": window_breaks[:10],
        "sensor_chain_breaks": sensor_breaks,
    }
    torn = ev.integrity.get("torn_streams") or []
    if torn:  # named, not failed: a killed writer leaves one; the records before it are chained
        evidence["torn_streams"] = torn
    left, watch_broken = _escapes(ev, ctx, evidence)
    stopped = _sensor_stopped(ev, ctx, evidence)
    if breaks or window_breaks or sensor_breaks or left or watch_broken or stopped:
        return finding("integrity", 1.0, INCONSISTENT, **evidence)
    if not ev.streams.get("sensor"):
        return unverifiable("integrity", ["sensor"], **evidence)
    return finding("integrity", 0.0, CONSISTENT, basis=["sensor"], **evidence)


def _escapes(ev: PhaseEvidence, ctx: Context, evidence: dict[str, Any]) -> tuple[list[Any], bool]:
    """Processes the escape watch saw leave by the phase's end (a process that left
    stays outside: every later phase is affected too), and whether the watch's own
    chain is broken; both added to ``evidence``."""
    watch = ctx.escapes
    if not watch:
        return [], False
    left = [e for e in watch["escapes"] if e["t"] <= ev.t1]
    broken = any("chain" in p or "not JSON" in p for p in watch["problems"])
    if left:
        keep = ("t", "pid", "comm", "left", "now_in")
        evidence["escaped_processes"] = [{k: e.get(k) for k in keep} for e in left[:10]]
    if watch["problems"]:
        evidence["escape_watch_problems"] = watch["problems"][:5]
    evidence["escape_watch_fork_events"] = watch["fork_events"]
    return left, broken


# The verifier-owned sensor must still be sampling when a phase ends: the features scale
# a partial span up to the whole phase, so a sensor stopped (or killed by a root
# workload) early in a phase would otherwise vouch for work it never saw. The grace
# covers the last sample's lag, slow adaptive ticks included (0.8 Hz steady rate).
SENSOR_END_GRACE_S = 2.0


def _sensor_stopped(ev: PhaseEvidence, ctx: Context, evidence: dict[str, Any]) -> bool:
    """True when the sensor's stream ended before the phase did (its last record, a
    clean ``stop`` or not, is more than the grace before the phase's end)."""
    seconds, length = (ev.sensor or {}).get("seconds"), ev.t1 - ev.t0
    if seconds is not None and length > 0:
        evidence["sensor_coverage"] = round(float(seconds) / length, 4)
    end = ctx.sensor_end
    if end is None:
        return False
    if not end.get("clean"):
        evidence["sensor_stop_record"] = False  # killed, or crashed: shown, the time decides
    if end["t"] + SENSOR_END_GRACE_S < ev.t1:
        evidence["sensor_ended_at"] = end["t"]
        return True
    return False
