"""One rank of a testbed run: joins the process group once, then runs every phase.

Why one long-lived process per rank instead of a spawn per phase: starting Python and
torch costs seconds per process, and a real cluster's ranks also live across jobs.
Rank 0 is the prover's bookkeeper: it writes the phase labels and, after a barrier at
each phase end, the window records for all ranks (from per-rank tally files), so one
process owns each hash chain. Each rank writes its own step chain and appends its
collectives to the shared ``collectives.jsonl`` (one ``write`` per line).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist

from inspectorate.capture import ChainWriter, CollectiveLog, LabelWriter, StepRecorder
from inspectorate.capture._nonce import derive_seed
from inspectorate.models._corpus import Corpus, load_corpus
from inspectorate.models._gpt import GPT, count_params, flops_per_token, preset
from inspectorate.replay._code import code_fingerprint
from inspectorate.testbed.claims import ClaimWriter
from inspectorate.testbed.handover import Handover, merge
from inspectorate.testbed.phases import ACTIVITY_SPLIT, Label, PhaseSpec
from inspectorate.testbed.posttrain import workload_fn
from inspectorate.testbed.profiles import Profile
from inspectorate.testbed.windows import WindowClaim, WindowTally, append_windows, short_hash, window_records
from inspectorate.testbed.workloads import WorkContext, generation_length, warm_up

ZERO_HASH = "sha256:" + "0" * 16


@dataclass(frozen=True)
class WorkerPlan:
    """What the parent tells every rank (pickled once by torch.multiprocessing.spawn)."""

    out: Path
    scratch: Path
    checkpoints: Path
    host_id: str
    profile: Profile
    phases: tuple[PhaseSpec, ...]
    budgets: tuple[float, ...]
    seed: int
    threads: int
    corpus_path: Path | None
    port: int
    grid_t0: float
    code_commit: str
    max_steps: int | None = None
    replay_claims: bool = False
    nonce: str | None = None  # the verifier's challenge (sensor start record), with replay claims
    isolation: Any = None  # capture._isolate.Membership: the ranks' own cgroup + network namespace


@dataclass
class RankState:
    """Per-rank objects that live for the whole run."""

    rank: int
    plan: WorkerPlan
    device: torch.device
    corpus: Corpus
    recorder: StepRecorder
    collectives: CollectiveLog
    labels: LabelWriter | None = None
    windows: ChainWriter | None = None
    model_hashes: dict[str, str] = field(default_factory=dict)  # size role -> hash prefix


def loopback_interface() -> str:
    """Name of the interface holding 127.0.0.1 (``lo`` on Linux, ``lo0`` on macOS)."""
    import psutil

    for name, addrs in psutil.net_if_addrs().items():
        if any(getattr(a, "address", None) == "127.0.0.1" for a in addrs):
            return name
    return "lo"


def device_for(rank: int, profile: Profile) -> torch.device:
    if profile.device == "cuda":
        return torch.device("cuda", rank % torch.cuda.device_count())
    return torch.device("cpu")


def chip_ids(host_id: str, profile: Profile) -> list[str]:
    """``<host>-cpu<r>``, or ``<host>-gpu<i>`` (``-gpu<i>-r<r>`` when ranks share a GPU)."""
    n = profile.world_size
    if profile.device != "cuda":
        return [f"{host_id}-cpu{r}" for r in range(n)]
    count = max(torch.cuda.device_count(), 1)
    if count >= n:
        return [f"{host_id}-gpu{r}" for r in range(n)]
    return [f"{host_id}-gpu{r % count}-r{r}" for r in range(n)]


def _init_group(rank: int, plan: WorkerPlan) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(plan.port))
    os.environ.setdefault("GLOO_SOCKET_IFNAME", loopback_interface())
    size = plan.profile.world_size
    nccl = plan.profile.device == "cuda" and torch.cuda.device_count() >= size
    dist.init_process_group(
        "nccl" if nccl else "gloo", rank=rank, world_size=size, timeout=timedelta(seconds=600)
    )


def worker_main(rank: int, plan: WorkerPlan) -> None:
    """Entry point for ``torch.multiprocessing.spawn``: run every phase, then leave."""
    if plan.isolation is not None:  # before any socket or thread: the sensor's counters are ours
        plan.isolation.join()
    torch.set_num_threads(plan.threads)
    fix_mmap_threshold()
    _init_group(rank, plan)
    steps_name = "steps.jsonl" if rank == 0 else f"steps_rank{rank}.jsonl"
    state = RankState(
        rank=rank,
        plan=plan,
        device=device_for(rank, plan.profile),
        corpus=load_corpus(plan.corpus_path),
        recorder=StepRecorder(
            plan.out / steps_name, phase="setup", rank=rank, fingerprint_every=plan.profile.fingerprint_every
        ),
        collectives=CollectiveLog(plan.out / "collectives.jsonl", rank, plan.profile.world_size),
    )
    warm_up(state.device)
    if rank == 0:
        state.labels = LabelWriter(plan.out / "workload_labels.jsonl")
        state.windows = ChainWriter(plan.out / "windows.jsonl")
    try:
        for index, (phase, budget) in enumerate(zip(plan.phases, plan.budgets)):
            run_phase(state, index, phase, budget)
        dist.barrier()
    finally:
        for closer in (state.recorder, state.collectives, state.labels, state.windows):
            if closer is not None:
                closer.close()
        dist.destroy_process_group()


MMAP_THRESHOLD_B = 1 << 20


def fix_mmap_threshold() -> None:
    """Serve every allocation of 1 MiB or more (each tensor worth counting) from its own
    mapping, returned to the OS when freed.

    glibc raises its mmap threshold to the largest block freed (up to 32 MiB): after one
    training phase a 124M model's weights, checkpoint loads and activations all come from
    the heap, and what they free stays resident. Measured in one rank (train 2 steps,
    then load the checkpoint and serve): 1120 MB resident after the load by default,
    793 MB with the threshold fixed, 793 MB being the fresh model alone. A long-lived
    honest server can do the same; the sensor cannot see inside an allocator."""
    import ctypes

    m_mmap_threshold = -3  # <malloc.h>; setting it also turns the dynamic threshold off
    try:
        ctypes.CDLL("libc.so.6").mallopt(m_mmap_threshold, MMAP_THRESHOLD_B)
    except (OSError, AttributeError):  # not glibc
        pass


def release_memory() -> None:
    """Hand the last phase's freed memory back to the OS before the next one starts.

    The ranks live across phases; without this, glibc keeps the heap a training phase
    freed (optimizer state, gradients: 2.6 GB at 124M after 2-3 steps) and the next
    phase's resident memory looks like training to the sensor's footprint check. A
    serving process that did not just train would not hold it, and an honest prover
    sharing a process between jobs can release it like this."""
    import ctypes
    import gc

    gc.collect()
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: nothing to trim this way
        pass


def build_model(state: RankState, phase: PhaseSpec, index: int) -> GPT | None:
    """The truly-run model: a role's checkpoint when the phase starts from one, else a
    fresh init seeded identically on every rank."""
    if phase.truth.size is None:
        return None
    role = state.plan.profile.role(phase.truth.size)
    torch.manual_seed(phase_seed(state.plan, index, phase))
    model = GPT(preset(role.preset))
    if phase.init_from is not None:
        path = _role_path(state, phase.init_from)
        if path.exists():
            model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
            state.recorder.event("checkpoint_loaded", role=phase.init_from, file=path.name)
        else:
            state.recorder.event("checkpoint_missing", role=phase.init_from, detail="fresh init used")
    return model.to(state.device)


def label_fields(state: RankState, phase: PhaseSpec, job_id: str) -> dict[str, Any]:
    """Extra fields of both label events: op classes, models and their sizes."""
    profile = state.plan.profile

    def model_of(label: Label) -> tuple[str | None, int | None]:
        if label.size is None:
            return None, None
        name = profile.role(label.size).preset
        return name, count_params(preset(name))

    model, n = model_of(phase.truth)
    claimed_model, claimed_n = model_of(phase.claimed)
    return {
        "truth_op": phase.truth.op_type,
        "claimed_op": phase.claimed.op_type,
        "model": model,
        "claimed_model": claimed_model,
        "n_params": n,
        "claimed_n_params": claimed_n,
        "world_size": profile.world_size,
        "chips": chip_ids(state.plan.host_id, profile),
        "job_id": job_id,
        "profile": profile.name,
    }


def run_phase(state: RankState, index: int, phase: PhaseSpec, budget: float) -> None:
    """Labels, the workload, a checkpoint if asked, and (rank 0) the phase's windows."""
    plan, rank = state.plan, state.rank
    state.recorder.set_phase(phase.name)
    state.collectives.set_phase(phase.name)
    release_memory()
    model = build_model(state, phase, index)
    release_memory()  # the checkpoint's state dict, copied into the model and dropped
    job_id = "job-" + short_hash([plan.host_id, plan.seed, phase.name, plan.grid_t0])[7:19]
    extra = label_fields(state, phase, job_id)
    dist.barrier()
    t_start = time.time()
    if state.labels is not None:
        state.labels.start(
            phase.name,
            claimed=str(phase.claimed),
            truth=str(phase.truth),
            **extra,
            truth_note=phase.note,
            budget_s=budget,
        )
    actual_hash = ZERO_HASH
    if model is not None:
        actual_hash = state.recorder.fingerprint(0, model)["model_hash_prefix"]
        state.model_hashes.setdefault(phase.truth.size or "", actual_hash)
    tally = WindowTally(plan.grid_t0, plan.profile.window_s)
    role = plan.profile.role(phase.truth.size) if phase.truth.size else plan.profile.role("tiny")
    ctx = WorkContext(
        rank=rank,
        world_size=plan.profile.world_size,
        device=state.device,
        phase=phase,
        profile=plan.profile,
        role=role,
        model=model,  # type: ignore[arg-type]  # None only for idle, whose workload never reads it
        corpus=state.corpus,
        recorder=state.recorder,
        collectives=state.collectives,
        tally=tally,
        budget_s=budget,
        seed=phase_seed(plan, index, phase),
        max_steps=plan.max_steps,
        claims=claim_writer(state, index, phase, model),
        out=plan.out,
        handover=handover_of(state, phase),
    )
    result = workload_fn(phase.workload)(ctx)
    if ctx.claims is not None:
        ctx.claims.finish()
    if ctx.handover is not None:
        ctx.handover.finish()
    t_end = time.time()
    state.recorder.event(
        "phase_done", steps=result.steps, tokens=result.tokens, seconds=t_end - t_start, **result.extra
    )
    tally.save(plan.scratch / f"tally_{index:02d}_r{rank}.json")
    if model is not None and phase.save_as is not None and rank == 0:
        _save_checkpoint(state, model, phase.save_as, result.steps)
    if state.labels is not None:
        state.labels.end(phase.name, claimed=str(phase.claimed), truth=str(phase.truth), **extra)
    dist.barrier()
    if ctx.handover is not None and rank == 0:
        merge(plan.out, plan.scratch, phase.name, plan.profile.world_size, ctx.handover.seed)
    if state.windows is not None:
        claim = window_claim(state, phase, job_id, actual_hash)
        tallies = [
            WindowTally.load(
                plan.scratch / f"tally_{index:02d}_r{r}.json", plan.grid_t0, plan.profile.window_s
            )
            for r in range(plan.profile.world_size)
        ]
        records = window_records(
            claim,
            chip_ids(plan.host_id, plan.profile),
            tallies,
            t_start,
            t_end,
            grid_t0=plan.grid_t0,
            window_s=plan.profile.window_s,
        )
        append_windows(state.windows, records, id_prefix=f"{plan.host_id}-rec_")


def claim_writer(state: RankState, index: int, phase: PhaseSpec, model: GPT | None) -> ClaimWriter | None:
    """Rank 0 of a phase with a model records any training it runs as a replay claim
    (``claims/<phase>/``); a fine-tune names the checkpoint it started from, and the
    code is named by the fingerprint a verifier's replay compares (``replay._code``)."""
    if state.rank != 0 or model is None or not state.plan.replay_claims:
        return None
    start = (
        phase.init_from
        if phase.init_from is not None and _role_path(state, phase.init_from).exists()
        else None
    )
    key = nonce_key(state.plan, index, phase) if state.plan.nonce else None
    return ClaimWriter(state.plan.out / "claims" / phase.name, state.corpus, code_fingerprint(), start, key)


def handover_of(state: RankState, phase: PhaseSpec) -> Handover | None:
    """With ``--replay-claims`` a phase claimed as serving or eval hands over what it
    serves or evaluates (``testbed.handover``), whatever it truly runs: a workload that
    never serves writes nothing."""
    plan = state.plan
    if not plan.replay_claims or phase.claimed.activity not in ("inference", "eval"):
        return None
    return Handover(plan.out, plan.scratch, phase.name, state.rank, plan.profile.world_size, plan.nonce)


def nonce_key(plan: WorkerPlan, index: int, phase: PhaseSpec) -> str:
    return f"{plan.host_id}/{plan.seed}/{index}/{phase.name}"


def phase_seed(plan: WorkerPlan, index: int, phase: PhaseSpec) -> int:
    """The seed of a phase's initial weights and batch streams: from the run's seed, or,
    under the verifier's challenge, derived from it (``replay.derive_seed``) so the
    training runs could not have been computed before the run began."""
    if plan.nonce:
        return derive_seed(plan.nonce, nonce_key(plan, index, phase))
    return plan.seed * 1000 + index


def _role_path(state: RankState, role: str) -> Path:
    return state.plan.checkpoints / f"{role}.pt"


def _save_checkpoint(state: RankState, model: GPT, role: str, step: int) -> None:
    """state_dict only (weights_only loads), written atomically; remembers its hash."""
    path = _role_path(state, role)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    torch.save(model.state_dict(), tmp)
    os.replace(tmp, path)
    prefix = state.recorder.fingerprint(step, model)["model_hash_prefix"]
    state.model_hashes[role] = prefix
    state.recorder.event("checkpoint_saved", role=role, file=path.name, model_hash_prefix=prefix)


def window_claim(state: RankState, phase: PhaseSpec, job_id: str, actual_hash: str) -> WindowClaim:
    """What the prover asserts for this phase's windows: everything about the CLAIMED work."""
    plan, claimed = state.plan, phase.claimed
    profile = plan.profile
    if claimed.size is None:
        cfg: dict[str, Any] = {"activity": "idle"}
        fpt, batch, seq, model_hash, dataset = 0.0, 0, 0, ZERO_HASH, ZERO_HASH
    else:
        role = profile.role(claimed.size)
        config = preset(role.preset)
        fpt = flops_per_token(config, training=claimed.training)
        if claimed.activity == "inference":
            batch, seq = role.infer_batch, generation_length(config.block_size, role)
        else:
            batch, seq = role.batch_size, role.seq_len
        model_hash = (
            actual_hash if not phase.adversarial else state.model_hashes.get(claimed.size, actual_hash)
        )
        dataset = state.corpus.fingerprint(ACTIVITY_SPLIT[claimed.activity])
        cfg = {
            "activity": claimed.activity,
            "model": config.to_dict(),
            "batch_size": batch,
            "sequence_length": seq,
            "world_size": profile.world_size,
        }
    region = "local-cuda" if profile.device == "cuda" else "local-cpu"
    return WindowClaim(
        job_id=job_id,
        operator="inspectorate-testbed",
        cluster_region=region,
        op_type=claimed.op_type,
        flops_per_token=fpt,
        batch_size=batch,
        sequence_length=seq,
        model_hash_prefix=model_hash,
        dataset_fingerprint=dataset,
        data_source_tags=(state.corpus.name,),
        code_commit=plan.code_commit,
        config_hash=short_hash(cfg),
    )
