"""P1 op type, P2 model size, P3 fine-tune vs pre-train: telemetry against the claim.

Each property reads one ``PhaseEvidence`` (never the truth or the phase name) and the
run ``Context`` (calibration, layout, fingerprints of the other phases). Scores are
suspicions in [0, 1]; a decision is ``inconsistent`` when the score reaches 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from inspectorate.verify._calibration import DEFAULT, Calibration
from inspectorate.verify._evidence import PhaseEvidence
from inspectorate.verify._registry import CONSISTENT, INCONSISTENT, Finding, finding, indeterminate, prop

MIN_LR_STEPS = 20  # optimizer steps (all ranks) before the lr level says anything (warmup)
DEFAULT_N = 1_000_000  # claimed size unknown (seed H100 labels carry none): 1M params sets the sync floor


@dataclass
class Context:
    """Run-wide facts a property may use besides its own phase."""

    calibration: Calibration = DEFAULT
    layout: str = "flat"
    hashes_before: dict[str, set[str]] = field(default_factory=dict)  # phase -> hashes seen in earlier phases


def decide(score: float) -> str:
    return INCONSISTENT if score >= 0.5 else CONSISTENT


def sync_rate(ev: PhaseEvidence) -> tuple[float | None, str | None]:
    """Gradient-sync bytes per second: the largest any source saw (a trimmed log cannot
    hide what the NIC or loopback counted)."""
    if not ev.sync_bytes:
        return None, None
    source = max(ev.sync_bytes, key=lambda k: ev.sync_bytes[k])
    return ev.sync_bytes[source] / ev.duration, source


def sync_floor(ev: PhaseEvidence, cal: Calibration) -> float:
    """Bytes/s of one claimed-size fp32 gradient every ``sync_period_s`` (physics floor)."""
    n = ev.claim.n_params or DEFAULT_N
    return 4.0 * n / cal.sync_period_s


# ------------------------------------------------------------------------ P1


@prop("p1_op_type")
def p1_op_type(ev: PhaseEvidence, ctx: Context) -> Finding:
    """Is the phase the claimed op type (training / inference / eval / idle)?

    Training shows as gradient-sync traffic (bytes/s over the physics floor of one
    claimed-size gradient per ``sync_period_s``, from netdev, the collective or NCCL log,
    or NVLink counters: the largest wins) *and* optimizer steps in the step records
    (their share of step time). Inference/eval show neither; idle shows no work at all.
    A claimed training phase needs both views; a claimed non-training phase fails on
    either."""
    cal = ctx.calibration
    rate, source = sync_rate(ev)
    share = ev.steps.get("train_time_share") if ev.steps else None
    if rate is None and share is None and ev.gpu_util is None:
        return indeterminate("p1_op_type", ["collectives", "netdev", "nccl", "steps", "nvsmi"])
    floor = sync_floor(ev, cal)
    e_sync = None if rate is None else rate / (rate + floor)
    views = [v for v in (e_sync, share) if v is not None]
    op = ev.claim.op
    evidence: dict[str, Any] = {
        "claimed_op": op,
        "sync_bytes_per_s": rate,
        "sync_source": source,
        "sync_floor_bytes_per_s": floor,
        "train_time_share": share,
        "step_kinds": ev.steps.get("kinds"),
        "gpu_util": ev.gpu_util,
        "gpu_power_w": ev.gpu_power_w,
        "cpu_busy_cores": ev.cpu_busy_cores,
    }
    if op == "training":
        score = 1.0 - min(views) if views else 0.0
    elif op == "idle":
        score = max(views + [_gpu_activity(ev), 1.0 if _step_count(ev) else 0.0])
    else:
        score = max(views) if views else 0.0
    seen = _looks_like(e_sync, share, ev)
    return finding("p1_op_type", score, decide(score), observed_op=seen, **evidence)


def _gpu_activity(ev: PhaseEvidence) -> float:
    """GPU utilization as evidence of work (10% utilization scores one half)."""
    return 0.0 if ev.gpu_util is None else ev.gpu_util / (ev.gpu_util + 10.0)


def _step_count(ev: PhaseEvidence) -> int:
    s = ev.steps or {}
    return int(s.get("train_steps", 0) + s.get("infer_tokens", 0) + s.get("eval_steps", 0))


def _looks_like(e_sync: float | None, share: float | None, ev: PhaseEvidence) -> str:
    """The op type the telemetry points to (for the report)."""
    if (e_sync or 0) >= 0.5 and (share is None or share >= 0.5):
        return "training"
    if (e_sync or 0) >= 0.5 or (share or 0) >= 0.5:
        return "mixed"
    if _step_count(ev) or _gpu_activity(ev) >= 0.5:
        return "eval" if (ev.steps or {}).get("eval_steps") else "inference"
    return "idle"


# ------------------------------------------------------------------------ P2


@prop("p2_model_size")
def p2_model_size(ev: PhaseEvidence, ctx: Context) -> Finding:
    """Is the model no larger than declared? Parameters are counted from the bytes one
    gradient all-reduce step moves (DDP syncs every trainable parameter once per step:
    bytes / dtype size = N_trainable, a lower bound on N). More than ``size_headroom``
    times the claimed count is a size lie (physics threshold). Fewer is P3's business
    (frozen groups). Without gradient traffic (inference) the GPU memory bound is
    reported and the property abstains."""
    cal = ctx.calibration
    n_claimed, n_sync = ev.claim.n_params, ev.n_sync
    evidence: dict[str, Any] = {
        "claimed_n_params": n_claimed,
        "n_params_from_allreduce": n_sync,
        "bytes_per_step": ev.grad_step_bytes,
        "dtype_bytes": ev.grad_dtype_bytes,
        "headroom": cal.size_headroom,
        "gpu_mem_mib": ev.gpu_mem_mib,
    }
    if n_claimed is None:
        return indeterminate("p2_model_size", ["claimed_n_params"], **evidence)
    if n_sync is None:
        return finding(
            "p2_model_size",
            0.0,
            "indeterminate",
            missing_streams=["gradient all-reduces"],
            reason="no gradient sync in this phase: size not measurable from traffic",
            **evidence,
        )
    ratio = n_sync / n_claimed
    score = 1.0 - 1.0 / max(ratio, 1.0)
    decision = INCONSISTENT if ratio > cal.size_headroom else CONSISTENT
    return finding(
        "p2_model_size",
        max(score, 0.5) if decision == INCONSISTENT else min(score, 0.49),
        decision,
        ratio=ratio,
        threshold_source="physics: 4 bytes/param/step fp32 all-reduce",
        **evidence,
    )


# ------------------------------------------------------------------------ P3


@prop("p3_finetune")
def p3_finetune(ev: PhaseEvidence, ctx: Context) -> Finding:
    """Fine-tune or pre-train? Fine-tune signs: all-reduced parameters short of the claimed
    model by more than ``frozen_deficit`` (frozen groups sync no gradient: physics), a
    parameter group with exactly zero gradient or listed frozen in every step, a learning
    rate under ``finetune_lr`` (calibrated), and a first weight fingerprint equal to one
    an earlier phase produced (it starts from an existing checkpoint). A claimed
    pretrain with any sign, or a claimed fine-tune with none, is inconsistent."""
    cal = ctx.calibration
    if ev.claim.op != "training":
        return finding("p3_finetune", 0.0, CONSISTENT, applies=False, claimed_op=ev.claim.op)
    signs = _finetune_signs(ev, ctx)
    values = [v for v in signs.values() if v is not None]
    if not values:
        return indeterminate("p3_finetune", ["collectives", "steps"], signs=signs)
    ft = max(values)
    claimed_ft = ev.claim.activity == "finetune"
    score = 1.0 - ft if claimed_ft else ft
    if ev.claim.activity not in ("pretrain", "finetune"):
        score = 0.0  # a bare "training" claim says nothing about pretrain vs fine-tune
    return finding(
        "p3_finetune",
        score,
        decide(score),
        claimed_activity=ev.claim.activity,
        signs=signs,
        finetune_lr_threshold=cal.finetune_lr,
        frozen_deficit_threshold=cal.frozen_deficit,
        lr_max=ev.steps.get("lr_max"),
        lr_steps=ev.steps.get("lr_steps"),
        lr_rel_range=ev.steps.get("lr_rel_range"),
        loss_first=ev.steps.get("loss_first"),
        zero_grad_groups=ev.steps.get("zero_grad_groups"),
        frozen_groups=ev.steps.get("frozen_groups"),
    )


def _finetune_signs(ev: PhaseEvidence, ctx: Context) -> dict[str, float | None]:
    cal = ctx.calibration
    s = ev.steps or {}
    deficit = None
    if ev.n_sync is not None and ev.claim.n_params:
        deficit = 1.0 - ev.n_sync / ev.claim.n_params
    # A schedule's level needs steps past warmup: the peak (max) lr of >= MIN_LR_STEPS steps.
    lr = s.get("lr_max") if (s.get("lr_steps") or 0) >= MIN_LR_STEPS else None
    hashes = s.get("fingerprint_hashes") or []
    before = ctx.hashes_before.get(ev.name, set())
    return {
        "frozen_params_in_allreduce": None
        if deficit is None
        else min(max(deficit / (2 * cal.frozen_deficit), 0.0), 1.0),
        "frozen_groups_in_steps": None
        if "grad_groups" not in s
        else float(bool(s.get("zero_grad_groups") or s.get("frozen_groups"))),
        "low_learning_rate": None if not lr else 1.0 / (1.0 + (lr / cal.finetune_lr) ** 2),
        "starts_from_existing_weights": None if not hashes else float(hashes[0] in before),
    }
