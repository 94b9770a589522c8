"""FLOP accounting and cross-stream consistency.

FLOP accounting compares three numbers per phase: the *claimed* FLOPs (window records),
a *step-record* estimate (6·N·D for optimizer steps, 2·N·D for inference/eval tokens,
with N the larger of the claimed count and the count measured from all-reduce bytes) and
an independent *telemetry* estimate (GPU utilization × peak × time, or busy CPU cores ×
a FLOP/s-per-busy-core figure calibrated on honest training phases of other hosts).

Consistency asks whether the streams tell one story: the collective log against the
bytes the NIC/loopback counted, one gradient sync per optimizer step, window-record
tokens against step-record tokens, window op types against the claimed op, and declared
chips against the chips/ranks the streams show.
"""

from __future__ import annotations

import math
from typing import Any

from inspectorate.verify._evidence import PhaseEvidence
from inspectorate.verify._properties import Context, sync_floor
from inspectorate.verify._registry import CONSISTENT, INCONSISTENT, Finding, finding, prop, unverifiable


def step_flops(ev: PhaseEvidence) -> tuple[float | None, float | None]:
    """(6·N·D + 2·N·D_infer from step records, the N used); None without step records."""
    s = ev.steps or {}
    if not s or s.get("infer_token_count", 0.0) is None:
        return None, None  # inference tokens not recorded: 2ND cannot be counted
    if not (s.get("train_tokens") or s.get("infer_token_count") or s.get("eval_tokens")):
        return None, None
    n = max(v for v in (ev.claim.n_params, ev.n_sync, 0) if v is not None)
    if not n:
        return None, None
    infer = s.get("infer_token_count", 0.0) + s.get("eval_tokens", 0.0)
    return 6.0 * n * s.get("train_tokens", 0.0) + 2.0 * n * infer, float(n)


def telemetry_flops(ev: PhaseEvidence, ctx: Context) -> tuple[float | None, str]:
    """Independent FLOP estimate from utilization (GPU) or busy cores (CPU, calibrated)."""
    cal = ctx.calibration
    if ev.gpu_util is not None and ev.gpus_seen:
        return ev.gpu_util / 100.0 * cal.gpu_peak_flops * ev.gpus_seen * ev.duration, "gpu_util x peak"
    if ev.cpu_busy_cores is not None and cal.flops_per_busy_core:
        return (
            ev.cpu_busy_cores * cal.flops_per_busy_core * ev.duration,
            "busy cores x calibrated FLOP/s/core",
        )
    return None, "none"


def _log_ratio(a: float | None, b: float | None) -> float | None:
    if a is None or b is None or a <= 0 or b <= 0:
        return None
    return abs(math.log(a / b))


@prop("flops", claim=False)
def flops(ev: PhaseEvidence, ctx: Context) -> Finding:
    """Do claimed FLOPs (window records) match 6·N·D / 2·N·D from the step records within
    ``flop_tolerance`` (physics: the accounting convention is exact up to attention)?
    The telemetry estimate is reported beside them as an independent check."""
    cal = ctx.calibration
    claimed = (ev.windows or {}).get("flops")
    est, n_used = step_flops(ev)
    tele, method = telemetry_flops(ev, ctx)
    evidence: dict[str, Any] = {
        "claimed_flops": claimed,
        "step_record_flops": est,
        "n_used": n_used,
        "telemetry_flops": tele,
        "telemetry_method": method,
        "tolerance": cal.flop_tolerance,
    }
    if claimed is None or (est is None and tele is None):
        return unverifiable(
            "flops", [s for s, v in (("windows", claimed), ("steps", est)) if v is None], **evidence
        )
    if est is None:
        return finding("flops", 0.0, "unverifiable", reason="no step records to count 6ND", **evidence)
    if claimed == 0 and est == 0:
        return finding("flops", 0.0, CONSISTENT, **evidence)
    gap = _log_ratio(claimed, est)
    gap = math.inf if gap is None else gap
    if ev.claim.n_params is None and claimed > est:
        gap = 0.0  # N from all-reduce bytes is only a lower bound: over-claiming proves nothing
    score = min(gap / (2 * math.log(cal.flop_tolerance)), 1.0)
    decision = INCONSISTENT if gap > math.log(cal.flop_tolerance) else CONSISTENT
    ids = (ev.windows or {}).get("record_ids", []) if decision == INCONSISTENT else []
    return finding(
        "flops",
        score,
        decision,
        ids,
        claimed_over_steps=claimed / est if est else None,
        telemetry_over_steps=tele / est if tele and est else None,
        **evidence,
    )


# ------------------------------------------------------------------------ consistency


@prop("consistency", claim=False)
def consistency(ev: PhaseEvidence, ctx: Context) -> Finding:
    """Do the streams agree with each other? Checks (each named in the evidence): the
    collective log's bytes vs the bytes loopback/NIC counters saw (flat layout: gloo
    rides loopback; within ``traffic_ratio``), gradient syncs per optimizer step (within
    ``sync_per_step``), window tokens vs step tokens (within ``token_ratio``), window op
    types vs the claimed op, declared chips vs chips and ranks seen."""
    checks = {
        "log_vs_netdev": _log_vs_netdev(ev, ctx),
        "syncs_per_step": _syncs_per_step(ev, ctx),
        "window_vs_step_tokens": _tokens(ev, ctx),
        "window_op_vs_claim": _window_op(ev),
        "declared_vs_seen_chips": _chips(ev),
    }
    ran = {k: v for k, v in checks.items() if v is not None}
    if not ran:
        return unverifiable("consistency", ["collectives", "netdev", "steps", "windows"])
    score = max(v["score"] for v in ran.values())
    failed = sorted(k for k, v in ran.items() if v["score"] >= 0.5)
    ids = (
        (ev.windows or {}).get("record_ids", [])
        if {"window_vs_step_tokens", "window_op_vs_claim"} & set(failed)
        else []
    )
    return finding(
        "consistency",
        score,
        INCONSISTENT if failed else CONSISTENT,
        ids,
        failed=failed,
        checks=ran,
        skipped=sorted(set(checks) - set(ran)),
    )


def _ratio_score(ratio: float, tolerance: float) -> float:
    """0 at ratio 1, 0.5 at the tolerance (either direction), 1 at its square."""
    return min(abs(math.log(ratio)) / (2 * math.log(tolerance)), 1.0)


def _log_vs_netdev(ev: PhaseEvidence, ctx: Context) -> dict[str, Any] | None:
    log = ev.sync_bytes.get("collectives_log", ev.sync_bytes.get("nccl_log"))
    net = ev.sync_bytes.get("netdev", ev.sync_bytes.get("sensor_net"))
    if log is None or net is None or ctx.layout != "flat":
        return None  # NVLink/NCCL traffic never crosses the NIC on one host: nothing to compare
    floor = sync_floor(ev, ctx.calibration) * ev.duration
    if max(log, net) < floor:
        return {"score": 0.0, "log_bytes": log, "netdev_bytes": net, "floor_bytes": floor}
    ratio = max(net, 1.0) / max(log, 1.0)
    return {
        "score": _ratio_score(ratio, ctx.calibration.traffic_ratio),
        "log_bytes": log,
        "netdev_bytes": net,
        "netdev_over_log": ratio,
        "tolerance": ctx.calibration.traffic_ratio,
    }


def _syncs_per_step(ev: PhaseEvidence, ctx: Context) -> dict[str, Any] | None:
    s = ev.steps or {}
    if not s or "collectives" not in [k for k, v in ev.streams.items() if v] or not ev.steps.get("ranks"):
        return None
    ranks = max(int(s.get("ranks") or 1), 1)
    steps = s.get("train_steps", 0) / ranks
    syncs = (ev.log_collectives / max(ev.ranks_seen or ranks, 1)) / _buckets(ev)
    if steps < 1 and syncs < 2:
        return {"score": 0.0, "optimizer_steps_per_rank": steps, "gradient_syncs_per_rank": syncs}
    if ranks < 2 and (ev.claim.world_size or 1) < 2:
        return None  # one rank needs no gradient sync
    ratio = max(syncs, 0.5) / max(steps, 0.5)
    return {
        "score": _ratio_score(ratio, ctx.calibration.sync_per_step),
        "optimizer_steps_per_rank": steps,
        "gradient_syncs_per_rank": syncs,
        "syncs_over_steps": ratio,
        "tolerance": ctx.calibration.sync_per_step,
    }


def _buckets(ev: PhaseEvidence) -> float:
    """All-reduces per step: the step's bytes over the mean all-reduce size."""
    total = ev.sync_bytes.get("collectives_log") or 0.0
    if not ev.grad_step_bytes or not ev.log_collectives or not total:
        return 1.0
    return max(ev.grad_step_bytes / (total / ev.log_collectives), 1.0)


def _tokens(ev: PhaseEvidence, ctx: Context) -> dict[str, Any] | None:
    w, s = ev.windows or {}, ev.steps or {}
    if not w.get("records") or not s or s.get("infer_token_count", 0.0) is None:
        return None
    step_tokens = s.get("train_tokens", 0.0) + s.get("infer_token_count", 0.0) + s.get("eval_tokens", 0.0)
    win = w.get("tokens", 0.0)
    if win == 0 and step_tokens == 0:
        return {"score": 0.0, "window_tokens": 0, "step_tokens": 0}
    ratio = max(win, 1.0) / max(step_tokens, 1.0)
    return {
        "score": _ratio_score(ratio, ctx.calibration.token_ratio),
        "window_tokens": win,
        "step_tokens": step_tokens,
        "window_over_steps": ratio,
        "tolerance": ctx.calibration.token_ratio,
    }


def _window_op(ev: PhaseEvidence) -> dict[str, Any] | None:
    ops = (ev.windows or {}).get("op_types")
    if not ops or not ev.claim.op:
        return None
    bad = [op for op in ops if op != ev.claim.op]
    return {"score": 1.0 if bad else 0.0, "window_op_types": ops, "claimed_op": ev.claim.op}


def _chips(ev: PhaseEvidence) -> dict[str, Any] | None:
    declared = ev.claim.chips
    if not declared:
        return None
    seen_w = (ev.windows or {}).get("chips") or []
    seen_ranks = max((ev.steps or {}).get("ranks") or 0, ev.ranks_seen or 0)
    seen_gpus = ev.gpus_seen or 0
    extra = sorted(set(seen_w) - set(declared))
    too_many = max(seen_ranks, seen_gpus) > len(declared)
    return {
        "score": 1.0 if extra or too_many else 0.0,
        "declared": declared,
        "window_chips": seen_w,
        "ranks_seen": seen_ranks,
        "gpus_seen": seen_gpus,
        "undeclared": extra,
    }
