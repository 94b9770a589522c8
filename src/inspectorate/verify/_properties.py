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
from inspectorate.verify._registry import (
    CONSISTENT,
    INCONSISTENT,
    UNVERIFIABLE,
    Finding,
    finding,
    prop,
    unverifiable,
)
from inspectorate.verify._stillness import weights_nudged, weights_rewritten
from inspectorate.verify._trust import SYNC_SOURCE_STREAM, trusted

MIN_LR_STEPS = 20  # optimizer steps (all ranks) before the lr level says anything (warmup)
DEFAULT_N = 1_000_000  # claimed size unknown (seed H100 labels carry none): 1M params sets the sync floor


@dataclass
class Context:
    """Run-wide facts a property may use besides its own phase."""

    calibration: Calibration = DEFAULT
    layout: str = "flat"
    hashes_before: dict[str, set[str]] = field(default_factory=dict)  # phase -> hashes seen in earlier phases
    replayed_models: set[str] = field(default_factory=set)  # final weights of earlier bound replays
    nonce: str | None = None  # the sensor's challenge: replayed runs must derive their seeds from it
    ckpt_watch: Any = None  # capture._ckpt_watch.WatchLog: the weights the host was seen writing
    escapes: Any = None  # capture._escape.read_escapes: processes seen leaving the capture
    sensor_end: dict[str, Any] | None = None  # the sensor stream's last record: {"t", "clean"}


def decide(score: float) -> str:
    return INCONSISTENT if score >= 0.5 else CONSISTENT


def above(value: float, limit: float) -> float:
    """Suspicion that ``value`` exceeds ``limit``: 0.5 at the limit, toward 1 far above."""
    return value / (value + limit) if limit > 0 else (1.0 if value > 0 else 0.0)


def below(value: float, limit: float) -> float:
    """Suspicion that ``value`` falls short of ``limit``: 0.5 at the limit, toward 1 far below."""
    return limit / (limit + value) if value > 0 else (1.0 if limit > 0 else 0.0)


def sync_bytes(ev: PhaseEvidence, trusted_only: bool) -> tuple[float | None, str | None]:
    """Gradient-sync bytes of the phase: the largest any source saw (a trimmed log cannot
    hide what the NIC or loopback counted), from sensor sources or prover sources."""
    sources = {
        k: v for k, v in ev.sync_bytes.items() if trusted(SYNC_SOURCE_STREAM.get(k, k)) == trusted_only
    }
    if not sources:
        return None, None
    source = max(sources, key=lambda k: sources[k])
    return sources[source], SYNC_SOURCE_STREAM.get(source, source)


def sync_rate(ev: PhaseEvidence) -> tuple[float | None, str | None]:
    """Bytes/s of the largest sync source, trusted or not (the report's headline number)."""
    if not ev.sync_bytes:
        return None, None
    source = max(ev.sync_bytes, key=lambda k: ev.sync_bytes[k])
    return ev.sync_bytes[source] / ev.duration, source


def sync_floor(ev: PhaseEvidence, cal: Calibration) -> float:
    """Bytes/s of ``min_syncs`` claimed-size fp32 gradients over the phase (physics floor)."""
    n = ev.claim.n_params or DEFAULT_N
    return cal.min_syncs * 4.0 * n / ev.duration


def claimed_rank_steps(ev: PhaseEvidence) -> float | None:
    """Optimizer steps (summed over ranks) the window records claim: tokens / (batch x seq)."""
    w = ev.windows or {}
    batch, seq = w.get("batch_size"), w.get("sequence_length")
    if not w.get("tokens") or not batch or not seq:
        return None
    return float(w["tokens"]) / (batch * seq)


def multi_rank(ev: PhaseEvidence) -> bool:
    return max(ev.claim.world_size or 1, len(ev.claim.chips)) >= 2


# ------------------------------------------------------------------------ P1


@prop("p1_op_type")
def p1_op_type(ev: PhaseEvidence, ctx: Context) -> Finding:
    """Is the phase the claimed op type (training / inference / eval / idle)?

    Sensor views (can pass a claim): gradient-sync bytes the NIC/loopback counters saw
    (sensor stream, netdev, NVLink) against what the claimed training steps need
    (4 B x claimed N per rank-step) or, for non-training claims, against ``min_syncs``
    claimed-size gradients; the workload tree's CPU (idle claims); its memory footprint
    (a single-rank training of the claimed model needs >= 12 B/param more than serving it).
    Prover views (can only fail a claim): the collective/NCCL log and the step records'
    share of optimizer steps."""
    cal = ctx.calibration
    t_bytes, t_src = sync_bytes(ev, trusted_only=True)
    p_bytes, p_src = sync_bytes(ev, trusted_only=False)
    share = ev.steps.get("train_time_share") if ev.steps else None
    cores = ev.sensor.get("cores")
    if t_bytes is None and p_bytes is None and share is None and cores is None and ev.gpu_util is None:
        return unverifiable("p1_op_type", ["sensor", "netdev", "collectives", "steps", "nvsmi"])
    floor_b = sync_floor(ev, cal) * ev.duration
    op = ev.claim.op
    checks: dict[str, float] = {}
    basis: list[str] = []
    notes: dict[str, Any] = {}
    if op == "training":
        _p1_training(ev, cal, t_bytes, t_src, p_bytes, share, checks, basis)
    else:
        for name, value in (("sensor_sync", t_bytes), ("log_sync", p_bytes)):
            if value is not None:
                checks[name] = above(value, floor_b)
        if share is not None:
            checks["steps_show_training"] = share
        if op == "idle":
            _p1_idle(ev, cal, checks, basis, t_bytes, t_src)
        elif t_bytes is not None:
            _p1_serving(ev, cal, checks, basis, t_src, notes)
    score = max(checks.values(), default=0.0)
    decision = decide(score) if checks else UNVERIFIABLE
    rate, source = sync_rate(ev)
    return finding(
        "p1_op_type",
        score,
        decision,
        basis=basis if decision == CONSISTENT else [],
        claimed_op=op,
        checks=checks,
        observed_op=_looks_like(ev, t_bytes, p_bytes, floor_b, share),
        sync_bytes_per_s=rate,
        sync_source=source,
        sensor_sync_bytes=t_bytes,
        log_sync_bytes=p_bytes,
        sync_floor_bytes=floor_b,
        claimed_rank_steps=claimed_rank_steps(ev),
        train_time_share=share,
        step_kinds=ev.steps.get("kinds"),
        tree_cores=cores,
        footprint_b=ev.sensor.get("footprint_b"),
        busy_procs=ev.sensor.get("busy_procs"),
        minflt_per_s=ev.sensor.get("minflt_per_s"),  # temporal signs: reported, decide nothing yet
        ctx_per_s=ev.sensor.get("ctx_per_s"),
        gpu_util=ev.gpu_util,
        cpu_busy_cores=ev.cpu_busy_cores,
        **notes,
        **_traffic_note(ev),
    )


def _traffic_note(ev: PhaseEvidence) -> dict[str, Any]:
    """Why no sensor traffic decided (host-wide counters only), and what they showed."""
    s = ev.sensor or {}
    if "traffic" not in s:
        return {}
    return {"traffic": s["traffic"], "host_net_tx_b": s.get("host_net_tx_b")}


def _p1_training(
    ev: PhaseEvidence,
    cal: Calibration,
    t_bytes: float | None,
    t_src: str | None,
    p_bytes: float | None,
    share: float | None,
    checks: dict[str, float],
    basis: list[str],
) -> None:
    n = ev.claim.n_params or DEFAULT_N
    steps = claimed_rank_steps(ev)
    need = 4.0 * n * steps if steps else cal.min_syncs * 4.0 * n
    if share is not None:
        checks["steps_show_no_training"] = 1.0 - share
    if p_bytes is not None and multi_rank(ev):
        checks["log_short_of_claimed_syncs"] = below(p_bytes, need / cal.traffic_ratio)
    if not multi_rank(ev):
        fp = ev.sensor.get("footprint_b")
        need_mem = (cal.train_bytes_per_param - cal.infer_bytes_per_param) * n
        if fp is not None and need_mem > cal.footprint_slack_b:
            checks["footprint_short_of_training"] = below(fp, need_mem)
            basis.append("sensor")
        return
    if t_bytes is not None:
        checks["sensor_short_of_claimed_syncs"] = below(t_bytes, need / cal.traffic_ratio)
        basis.append(str(t_src))


def idle_allowance(ev: PhaseEvidence, cal: Calibration) -> float:
    """Tree cores an idle claim may show: ``idle_cores`` per process holding memory
    (``mem_procs``, the sensor's count of processes within 80% of the largest peak).
    An idle distributed job keeps every rank's runtime alive (heartbeats, a polled
    stop flag all-reduced by each rank): two honest gloo ranks idling measured 0.058
    cores, over a flat 0.05. Scaling by holders, not by busy processes or claimed
    ranks, means a decoy buys its allowance only by holding a model-sized footprint;
    hidden work under idle stays bounded by ``idle_cores`` per such process."""
    holders = int((ev.sensor or {}).get("mem_procs") or 1)
    return cal.idle_cores * max(holders, 1)


def idle_score(ev: PhaseEvidence, cal: Calibration) -> float:
    """Suspicion that an idle claim's tree worked: its cores over ``idle_allowance``, or
    its share of the phase spent runnable and waiting for a CPU over ``idle_wait_share``
    (a busy host can starve hidden work under the CPU allowance; it cannot make it
    stop asking). The wait share is absent from sensors without PSI: CPU alone then."""
    s = ev.sensor or {}
    score = above(float(s.get("cores") or 0.0), idle_allowance(ev, cal))
    wait = s.get("cpu_wait_share")
    return max(score, above(wait, cal.idle_wait_share)) if wait is not None else score


def _p1_idle(
    ev: PhaseEvidence,
    cal: Calibration,
    checks: dict[str, float],
    basis: list[str],
    t_bytes: float | None,
    t_src: str | None,
) -> None:
    cores = ev.sensor.get("cores")
    if cores is not None:
        checks["tree_cpu_in_idle"] = idle_score(ev, cal)
        basis.append("sensor")
    if ev.gpu_util is not None:
        checks["gpu_activity"] = _gpu_activity(ev)
        basis.append("nvsmi")
    if _step_count(ev):
        checks["step_records_in_idle"] = 1.0
    if t_bytes is not None and cores is None:
        basis.append(str(t_src))


def _p1_serving(
    ev: PhaseEvidence,
    cal: Calibration,
    checks: dict[str, float],
    basis: list[str],
    t_src: str | None,
    notes: dict[str, Any],
) -> None:
    """Inference/eval: sync traffic below the floor excludes data-parallel training; a
    single-rank training of the claimed model is excluded only when its extra memory
    (grads + Adam: 12 B/param) stands above the footprint noise and is not there, or is
    there but untouched (the working set: ``_working_set_excludes_training``). A phase
    that touched a forward's worth of memory but left less than the weights unchanged
    wrote its weights: that fails the claim at any size (``verify._stillness``)."""
    n = ev.claim.n_params or DEFAULT_N
    rewritten = weights_rewritten(ev, n, notes)
    if rewritten is not None and rewritten >= 0.5:  # fails only: a decoy can pass it
        checks["weights_rewritten"] = rewritten
    nudged = weights_nudged(ev, n, notes)
    if nudged is not None and nudged >= 0.5:  # fails only: a copy trained beside the weights
        checks["weights_nudged"] = nudged
    extra = (cal.train_bytes_per_param - cal.infer_bytes_per_param) * n
    fp = ev.sensor.get("footprint_b")
    if fp is None or extra <= cal.footprint_slack_b:
        return  # memory cannot tell: single-rank training stays possible -> no basis
    excluded = _working_set_excludes_training(ev, cal, n, notes)
    if fp < extra or excluded is not None:
        basis += [str(t_src), "sensor"]
    held = _training_state_held(ev, cal, n)
    if excluded is not None:
        checks["working_set_excludes_training"] = excluded
        if held is not None and held >= 0.5:
            notes["footprint_holds_training_state_untouched"] = held  # resident, never used
        return
    if held is not None:
        checks["footprint_holds_training_state"] = held


# Share of the phase the working-set probes must cover (intervals lying inside it) before
# they may speak for the phase: a training step in an uncovered stretch is not seen.
WS_COVERAGE = 0.5


def _working_set_excludes_training(
    ev: PhaseEvidence, cal: Calibration, n: int, notes: dict[str, Any]
) -> float | None:
    """The score (< 0.5) when the tree's working set rules training out, else None.

    A training step reads and writes the weights, the gradients and the optimizer's
    moments: ``train_bytes_per_param`` (16 B/param, AdamW) per model copy, touched in
    every probe interval that holds a step (``capture._workset``: the MMU's accessed
    bits, which the prover cannot clear without not touching the memory). Serving
    touches the weights (4 B/param), its cache and activations. So a phase whose
    largest working set over intervals covering at least ``WS_COVERAGE`` of it stays
    below one AdamW step's state (one copy) holds no such step, whatever it keeps resident: an
    evaluation inside a training run with its optimizer alive, a server that trained
    earlier in the same process. A working set at or above it rules nothing out
    (a large batch's activations can be that large): it never fails a claim. The same
    assumption as the footprint rule: training without optimizer state (plain SGD,
    8 B/param) is not excluded by either, and is below both limits."""
    ws = ev.sensor.get("ws_max_b")
    covered = float(ev.sensor.get("ws_covered_s") or 0.0)
    if ws is None:
        return None
    # One copy, whatever the count of memory holders: a training process touches its
    # state itself, and the working set is summed over the tree, so a decoy process
    # holding memory (which raises the holder count) may not raise this bound. Several
    # honest serving ranks together may exceed it: then nothing is excused.
    bound = cal.train_bytes_per_param * n
    notes.update(working_set_max_b=ws, working_set_bound_b=bound, working_set_covered_s=covered)
    if covered < WS_COVERAGE * ev.duration or ws >= bound:
        return None
    return above(ws, bound)


def _training_state_held(ev: PhaseEvidence, cal: Calibration, n: int) -> float | None:
    """The failing side of the memory separation (only above the separation size, where
    training's extra 12 B/param exceeds the footprint slack). An honest serving or eval
    phase holds per model copy its weights (4 B/param), the declared model's decoding
    cache and the claimed batch's logits twice (scores and softmax), and is allowed one
    more copy of the weights (4 B/param: a loaded state dict kept alive, a second dtype),
    plus ``footprint_slack_b`` once (the measured noise): a footprint past that holds
    more than serving needs, suspicion 0.5 there. AdamW training holds 16 B/param, so the
    failing side starts at slack / 8 B (~34M). Why one copy and not the 6 B/param this
    limit used to allow, nor none: with 6, a stranger's 24.2M Llama trained under a
    serving claim (475 MB against the honest 127 MB) passed at 0.48; with none, an honest
    server that keeps the weights-only state dict it loaded is flagged from slack / 4 B
    (~67M) up. The footprint read is the capped one (above at most a fresh
    interpreter's memory), so weights loaded before the first label count, as this
    limit assumes. A server that keeps a checkpoint *with* its optimizer state holds
    what training holds (16 B/param) and is flagged from ~34M: memory cannot tell it
    from training (docs/verify.md names this false accusation), and
    ``posttrain_resident_state`` calls it post-training too."""
    fp = ev.sensor.get("footprint_b")
    if fp is None:
        return None
    copies = max(int(ev.sensor.get("mem_procs") or 1), 1)
    batch = int((ev.windows or {}).get("batch_size") or 1)
    seq = int((ev.windows or {}).get("sequence_length") or 1)
    spec = ev.model_spec
    cache = spec.cache_bytes(batch, seq) if spec is not None else 0
    vocab = spec.vocab if spec is not None else 0
    per_copy = cal.infer_bytes_per_param * n + cache + 2 * 4 * batch * seq * vocab
    limit = copies * (per_copy + cal.infer_bytes_per_param * n) + cal.footprint_slack_b
    return above(fp, limit)


def _gpu_activity(ev: PhaseEvidence) -> float:
    """GPU utilization as evidence of work (10% utilization scores one half)."""
    return 0.0 if ev.gpu_util is None else ev.gpu_util / (ev.gpu_util + 10.0)


def _step_count(ev: PhaseEvidence) -> int:
    s = ev.steps or {}
    return int(s.get("train_steps", 0) + s.get("infer_tokens", 0) + s.get("eval_steps", 0))


def _looks_like(
    ev: PhaseEvidence, t_bytes: float | None, p_bytes: float | None, floor_b: float, share: float | None
) -> str:
    """The op type the sensor points to (for the report; prover-only signs say so)."""
    if t_bytes is not None and t_bytes >= floor_b:
        return "training"
    if p_bytes is not None and p_bytes >= floor_b:
        return "training (prover logs only)"
    cores = ev.sensor.get("cores")
    if cores is not None and cores < 0.1 and not (ev.gpu_util or 0) >= 10:
        return "idle"
    if (share or 0) >= 0.5:
        return "training (step records)"
    return "work without gradient sync"


# ------------------------------------------------------------------------ P2


@prop("p2_model_size")
def p2_model_size(ev: PhaseEvidence, ctx: Context) -> Finding:
    """Is the model no larger than declared?

    Sensor views: bytes the NIC/loopback counters saw per claimed rank-step over 4 B
    (DDP syncs every trainable parameter once per step) must stay within
    ``traffic_ratio`` x ``size_headroom`` of the claimed count (the claimed step count
    is itself held to the observed compute by the ``compute`` property); the workload's
    memory footprint bounds the size when the bound is tight enough to matter.
    Prover view (can only fail): one all-reduce step's bytes in the collective log."""
    cal = ctx.calibration
    n_claimed, n_sync = ev.claim.n_params, ev.n_sync
    t_bytes, t_src = sync_bytes(ev, trusted_only=True)
    steps = claimed_rank_steps(ev)
    n_net = t_bytes / (4.0 * steps) if t_bytes is not None and steps else None
    evidence: dict[str, Any] = {
        "claimed_n_params": n_claimed,
        "n_params_from_allreduce": n_sync,
        "n_params_from_sensor_traffic": n_net,
        "n_params_bound_from_footprint": _footprint_bound(ev, cal),
        "footprint_room_for_a_second_model": _room_for_second(ev, cal),
        "bytes_per_step": ev.grad_step_bytes,
        "dtype_bytes": ev.grad_dtype_bytes,
        "headroom": cal.size_headroom,
        "gpu_mem_mib": ev.gpu_mem_mib,
        **_traffic_note(ev),
    }
    if ev.claim.op == "idle":
        return finding("p2_model_size", 0.0, CONSISTENT, basis=["claim"], applies=False, **evidence)
    if n_claimed is None:
        return unverifiable("p2_model_size", ["claimed_n_params"], **evidence)
    checks: dict[str, float] = {}
    basis: list[str] = []
    if n_sync is not None:
        ratio = n_sync / n_claimed
        checks["log_allreduce"] = (
            1.0 if ratio > cal.size_headroom else min(above(ratio, cal.size_headroom), 0.49)
        )
    if n_net is not None and ev.claim.op == "training" and multi_rank(ev):
        limit = cal.size_headroom * cal.traffic_ratio
        checks["sensor_traffic"] = above(n_net / n_claimed, limit)
        basis += [str(t_src), "spot_check"]
    bound = evidence["n_params_bound_from_footprint"]
    if bound is not None and bound <= n_claimed * cal.footprint_headroom:
        basis.append("sensor")
    score = max(checks.values(), default=0.0)
    decision = decide(score) if checks or basis else UNVERIFIABLE
    return finding(
        "p2_model_size",
        score,
        decision,
        basis=basis if decision == CONSISTENT else [],
        checks=checks,
        threshold_source="physics: 4 bytes/param/step fp32 all-reduce; 16/4 bytes/param resident",
        **evidence,
    )


def _room_for_second(ev: PhaseEvidence, cal: Calibration) -> bool | None:
    """Does the footprint hold, past the slack, a second model at least the declared
    size beside each declared copy? A served-output re-computation shows the declared
    model ran, not that nothing larger ran beside it (verify/_recomputed.settle)."""
    fp, n = ev.sensor.get("footprint_b"), ev.claim.n_params
    if fp is None or not n or ev.claim.op == "idle":
        return None
    per = cal.train_bytes_per_param if ev.claim.op == "training" else cal.infer_bytes_per_param
    ranks = max(int(ev.sensor.get("mem_procs") or 1), 1)
    return bool(fp > 2 * n * per * ranks + cal.footprint_slack_b)


def _footprint_bound(ev: PhaseEvidence, cal: Calibration) -> float | None:
    """Largest parameter count the observed footprint (plus slack) allows the claimed op."""
    fp = ev.sensor.get("footprint_b")
    if fp is None:
        return None
    per = cal.train_bytes_per_param if ev.claim.op == "training" else cal.infer_bytes_per_param
    # processes that may each hold a copy, by memory (see model_holders); one when the
    # sensor listed none, which gives the loosest bound
    ranks = max(int(ev.sensor.get("mem_procs") or 1), 1)
    return (fp + cal.footprint_slack_b) / (per * ranks)


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
        return finding("p3_finetune", 0.0, CONSISTENT, basis=["claim"], applies=False, claimed_op=ev.claim.op)
    signs = _finetune_signs(ev, ctx)
    values = [v for v in signs.values() if v is not None]
    if not values:
        return unverifiable("p3_finetune", ["collectives", "steps"], signs=signs)
    ft = max(values)
    claimed_ft = ev.claim.activity == "finetune"
    score = 1.0 - ft if claimed_ft else ft
    if ev.claim.activity not in ("pretrain", "finetune"):
        score = 0.0  # a bare "training" claim says nothing about pretrain vs fine-tune
    # No sensor tells a fine-tune from a pretraining run (same compute, memory, traffic):
    # the prover's records can fail the claim, never pass it.
    return finding(
        "p3_finetune",
        score,
        decide(score),
        basis=[],
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
