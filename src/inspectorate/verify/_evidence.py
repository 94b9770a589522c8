"""Per-phase evidence: every number a property needs, read once from a RunDir.

Why a separate, property-free layer: properties stay short pure functions of one
``PhaseEvidence``, the benchmark can cache and re-score features without re-reading
streams, and the honesty rule is enforced in one place. Nothing here reads ``truth``,
``truth_op``, ``model``, ``n_params`` or any ``phase`` field inside a stream; phases
are sliced by their labelled time range (flat layout) or per-phase directory (seed H100
layout), and the claim comes from a whitelist of label fields (``CLAIM_FIELDS``).
"""

from __future__ import annotations

import json
import math
import os
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, cast

import numpy as np
import polars as pl

from inspectorate.errors import InputError
from inspectorate.models import ModelSpec, resolve_model
from inspectorate.trace import Phase, RunDir
from inspectorate.trace.streams import netdev_rates
from inspectorate.verify._sensor_features import SensorView, sensor_pass_view
from inspectorate.verify._step_features import StepView, step_view
from inspectorate.verify._trust import SUBSETS
from inspectorate.verify._window_features import WindowView, window_view

# The only label fields a verifier may read (the prover's claims, never the truth).
CLAIM_FIELDS = ("claimed", "claimed_op", "claimed_model", "claimed_n_params", "chips", "world_size")
ACTIVITY_OP = {
    "pretrain": "training",
    "finetune": "training",
    "training": "training",
    "inference": "inference",
    "eval": "eval",
    "idle": "idle",
}
DTYPE_BYTES = {
    "float32": 4,
    "float": 4,
    "fp32": 4,
    "float16": 2,
    "half": 2,
    "bfloat16": 2,
    "bf16": 2,
    "float64": 8,
    "double": 8,
    "int8": 1,
    "uint8": 1,
    "int32": 4,
    "int64": 8,
}


@dataclass
class Claim:
    """What the prover says a phase is (label string plus the structured claim fields)."""

    label: str | None
    activity: str | None
    op: str | None
    size: str | None
    n_params: int | None
    chips: list[str] = field(default_factory=list)
    world_size: int | None = None
    model: str | None = None  # the declared model config (a name the spot-check can build)


@dataclass
class PhaseEvidence:
    """Features of one phase, each None when the stream behind it is absent."""

    name: str
    claim: Claim
    t0: float
    t1: float
    streams: dict[str, bool] = field(default_factory=dict)
    cpu_busy_cores: float | None = None
    gpu_util: float | None = None
    gpu_power_w: float | None = None
    gpu_mem_mib: float | None = None
    gpus_seen: int | None = None
    sync_bytes: dict[str, float] = field(default_factory=dict)  # source -> bytes in the phase
    log_collectives: int = 0
    grad_step_bytes: float | None = None  # bytes of one gradient all-reduce step, per rank
    grad_dtype_bytes: int = 4
    ranks_seen: int | None = None
    steps: dict[str, Any] = field(default_factory=dict)
    windows: dict[str, Any] = field(default_factory=dict)
    sensor: dict[str, Any] = field(default_factory=dict)  # verifier-owned sensor features
    integrity: dict[str, Any] = field(default_factory=dict)  # chain breaks inside the phase
    checkpoint_files_b: float = 0.0  # bytes of the replay checkpoints handed over (claims/<phase>/)
    model_spec: ModelSpec | None = None  # the declared model, when the verifier can build it
    run_path: Path | None = None  # where per-phase files live (served-output logs, claims)

    @property
    def duration(self) -> float:
        return max(self.t1 - self.t0, 1e-9)

    @property
    def n_sync(self) -> float | None:
        """Parameters whose gradients were all-reduced in one step (bytes / dtype size)."""
        return None if self.grad_step_bytes is None else self.grad_step_bytes / self.grad_dtype_bytes


# ------------------------------------------------------------------------ claims


def parse_claim(label: str | None, extra: dict[str, Any]) -> Claim:
    """``pretrain:tiny`` / ``idle`` / a bare op name, plus the whitelisted claim fields."""
    head, _, size = (label or "").partition(":")
    activity = head or None
    op = extra.get("claimed_op") or ACTIVITY_OP.get(activity or "")
    n = extra.get("claimed_n_params")
    listed = extra.get("chips")
    chips = listed if isinstance(listed, list) else []
    ws = extra.get("world_size")
    model = extra.get("claimed_model")
    return Claim(
        label,
        activity,
        op,
        size or None,
        int(n) if isinstance(n, (int, float)) else None,
        [str(c) for c in chips],
        int(ws) if isinstance(ws, (int, float)) else None,
        str(model) if isinstance(model, str) else None,
    )


def claim_fields(run: RunDir) -> dict[str, dict[str, Any]]:
    """phase -> whitelisted claim fields, from every workload_labels.jsonl of the run."""
    paths = [run.path / "workload_labels.jsonl", *sorted(run.path.glob("*/workload_labels.jsonl"))]
    out: dict[str, dict[str, Any]] = {}
    for path in paths:
        for obj in _jsonl(path):
            if "phase" in obj:
                entry = out.setdefault(str(obj["phase"]), {})
                entry.update({k: obj[k] for k in CLAIM_FIELDS if k in obj and k not in entry})
    return out


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            obj = json.loads(line)
        except ValueError:
            continue  # the loader already validated the file; a torn line carries no claim
        if isinstance(obj, dict):
            rows.append(obj)
    return rows


# ------------------------------------------------------------------------ extraction


def collect(run: RunDir, subset: str = "full", clock: dict[str, Any] | None = None) -> list[PhaseEvidence]:
    """Evidence for every labelled phase of ``run``, in time order, from the streams of
    ``subset`` (``full``, ``sensor``: no prover stream but the claim, ``prover``: no
    verifier-owned sensor; see ``_trust.SUBSETS``). ``clock`` receives the seconds of
    the run-wide passes and, under ``by_phase``, of each phase's evidence."""
    clock = {} if clock is None else clock
    run = restrict(run, subset)
    claims = claim_fields(run)
    cores = _cpu_cores(run)
    rates = netdev_rates(run.netdev) if run.netdev is not None and run.layout == "flat" else None
    phases = run.phases()
    _VIEWS.clear()  # read afresh for every inspection; ``gaps`` then reuses this pass
    _STEPS.clear()
    t0 = time.perf_counter()
    steps = steps_of(run)
    t1 = time.perf_counter()
    sensor = sensor_view(run, subset)
    t2 = time.perf_counter()
    windows = window_view(run, [(p.t0, _end(run, p)) for p in phases])
    clock.update(
        {"steps_pass_s": t1 - t0, "sensor_pass_s": t2 - t1, "windows_pass_s": time.perf_counter() - t2}
    )
    torn = _torn_tails(steps, sensor)
    out = []
    clock["by_phase"] = []
    for index, phase in enumerate(phases):
        t0 = time.perf_counter()
        extra = claims.get(phase.name, {})
        ev = PhaseEvidence(phase.name, parse_claim(phase.claimed, extra), phase.t0, _end(run, phase))
        ev.run_path = run.path
        ev.model_spec = resolve_model(ev.claim.model, run.path)
        if ev.model_spec is not None and ev.claim.n_params is None:  # the description counts them
            ev.claim = replace(ev.claim, n_params=ev.model_spec.n_params())
        ev.streams = {
            s: run.stream(s) is not None for s in ("cpu", "nvsmi", "dcgm", "nccl", "netdev", "collectives")
        }
        ev.streams["steps"] = steps.present
        ev.streams["windows"] = run.window_file is not None
        ev.streams["sensor"] = sensor is not None
        _activity(run, phase, ev, cores)
        if sensor is not None:
            ev.sensor = dict(sensor.phases[index])
            ev.integrity["sensor_breaks"] = sensor.breaks
        _sync(run, phase, ev, rates)
        ev.steps = steps.phases[index]
        ev.windows = windows.phases[index]
        ev.integrity.update(_breaks_in(ev, windows, steps))
        mine = [t for t in torn if _phase_of(phases, t["after_t"]) == index]
        if mine:
            ev.integrity["torn_streams"] = [{k: v for k, v in t.items() if k != "after_t"} for t in mine]
        if subset != "sensor":  # prover files: only ever a cap on what the sensor saw written
            ev.checkpoint_files_b = _checkpoint_bytes(run.path, phase.name)
        out.append(ev)
        clock["by_phase"].append({"phase": phase.name, "evidence_s": time.perf_counter() - t0})
    return out


def _checkpoint_bytes(root: Path, phase: str) -> float:
    """Bytes of the checkpoint files the phase's claim names (files in the folder that
    the claim does not name, which no replay would ever read, count for nothing), plus
    the weights file its served log or eval claim names (what ``_served_run`` loads)."""
    folder = root / "claims" / phase
    return _replay_bytes(folder) + _served_weights_bytes(folder)


def _served_weights_bytes(folder: Path) -> float:
    name = None
    try:
        if (folder / "eval.json").is_file():
            name = str(json.loads((folder / "eval.json").read_text(encoding="utf-8"))["weights"])
        elif (folder / "served.jsonl").is_file():
            with (folder / "served.jsonl").open(encoding="utf-8") as fh:
                name = str((json.loads(fh.readline()).get("server") or {}).get("weights", "weights.pt"))
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return 0.0
    if name is None or Path(name).name != name or not (folder / name).is_file():
        return 0.0
    return float((folder / name).stat().st_size)


def _replay_bytes(folder: Path) -> float:
    try:
        refs = json.loads((folder / "claim.json").read_text(encoding="utf-8"))["checkpoints"]
        names = {str(r["file"]) for r in refs}
    except (OSError, ValueError, KeyError, TypeError):
        return 0.0
    files = [folder / n for n in names if Path(n).name == n]  # no path out of the folder
    return float(sum(f.stat().st_size for f in files if f.is_file()))


def restrict(run: RunDir, subset: str) -> RunDir:
    """A shallow copy of ``run`` without the streams ``subset`` excludes."""
    if subset not in SUBSETS:
        raise InputError(f"unknown evidence subset {subset!r}; known: {', '.join(SUBSETS)}")
    keep = set(SUBSETS[subset])
    drop: dict[str, Any] = {
        s: None for s in ("nvsmi", "dcgm", "nccl", "netdev", "cpu", "collectives", "steps", "windows")
    }
    drop = {s: v for s, v in drop.items() if s not in keep}
    if "nccl" in drop:
        drop["nccl_inits"] = None
    if "windows" in drop:  # window records are read from their file: drop the file
        drop["window_file"] = drop.pop("windows")
    if "steps" in drop:  # step records are read from their files: drop the files
        del drop["steps"]
        return replace(run, step_files={}, **drop)
    return replace(run, **drop)


def _span(phases: list[Phase]) -> tuple[float, float] | None:
    """Where the memory baseline is read: first start to last end of ``phases``."""
    ends = [p.t1 for p in phases if p.t1 is not None]
    return (phases[0].t0, max(ends)) if ends else None


_VIEWS: dict[tuple[Any, ...], SensorView | None] = {}  # the last run's view: collect then gaps


def sensor_view(run: RunDir, subset: str = "full") -> SensorView | None:
    """Sensor features of the run's phases and gaps, streamed once through
    ``sensor.jsonl`` (bounded memory) or, with ``INSPECTORATE_SENSOR_LOADER=frame`` or
    samples out of time order, from the whole stream loaded as a frame."""
    phases = run.phases()
    if "sensor" not in SUBSETS[subset] or run.layout != "flat" or not phases:
        return None
    path = run.path / "sensor.jsonl"
    if not path.is_file():
        return None
    mine = restrict(run, subset)
    wins = [(p.t0, _end(mine, p)) for p in phases]
    done = [p for p in phases if p.t1 is not None]
    holes = [(a.t1, b.t0) for a, b in zip(done, done[1:]) if a.t1 is not None]
    mode = os.environ.get("INSPECTORATE_SENSOR_LOADER", "stream")
    stat = path.stat()
    key = (str(path), stat.st_size, stat.st_mtime_ns, mode, tuple(wins), tuple(holes), _span(phases))
    if key not in _VIEWS:
        _VIEWS.clear()
        _VIEWS[key] = sensor_pass_view(path, wins, holes, _span(phases), _span(done), mode)
    return _VIEWS[key]


_STEPS: dict[tuple[Any, ...], StepView] = {}  # the last run's step view: collect, then gaps


def steps_of(run: RunDir) -> StepView:
    """The step records' view of the run's phases, from one pass over its step files
    (kept for the inspection's later questions: ``gaps`` asks where a phase cut short
    ends)."""
    wins = [(p.t0, p.t1 if p.t1 is not None else math.inf) for p in run.phases()]
    stats = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in run.step_files.values())
    key = (stats, tuple(wins), os.environ.get("INSPECTORATE_STEPS_LOADER", "stream"))
    if key not in _STEPS:
        _STEPS.clear()
        _STEPS[key] = step_view(run, wins)
    return _STEPS[key]


def _torn_tails(steps: StepView, sensor: SensorView | None) -> list[dict[str, Any]]:
    """Chained files that end in a partial line (a writer killed mid-record, or a tail
    cut by hand), each with the time of its last complete record: the phase holding that
    time is the one whose evidence stops early (the last phase when no phase holds it)."""
    files: list[tuple[str, int, float | None]] = list(steps.torn)
    if sensor is not None and sensor.torn is not None:
        files.append(sensor.torn)
    return [
        {
            "file": name,
            "complete_records": count,
            "problem": "last line torn (partial record dropped)",
            "after_t": last if last is not None else float("-inf"),
        }
        for name, count, last in files
    ]


def _phase_of(phases: list[Phase], t: float) -> int:
    """The phase whose span holds time ``t``; the last phase when none does."""
    for index, phase in enumerate(phases):
        if phase.t0 <= t <= (phase.t1 if phase.t1 is not None else math.inf):
            return index
    return len(phases) - 1


def _breaks_in(ev: PhaseEvidence, windows: WindowView, steps: StepView) -> dict[str, Any]:
    """Step- and window-record chain breaks whose record lies in this phase (by time:
    a window record's start)."""
    out: dict[str, Any] = {}
    for w in windows.breaks:
        if ev.t0 <= w["ws"] <= ev.t1:
            out.setdefault("window_breaks", []).append({"index": w["index"], "record_id": w["record_id"]})
    for b in steps.breaks:
        if b["t"] is not None and ev.t0 <= b["t"] <= ev.t1:
            out.setdefault("step_breaks", []).append({k: b[k] for k in ("file", "index", "record_id")})
    return out


def gaps(run: RunDir, subset: str = "full", min_s: float = 0.5) -> list[dict[str, Any]]:
    """Unlabelled stretches between consecutive phases longer than ``min_s``, with the
    sensor's view of them (work there is unexplained by any claim)."""
    phases = [p for p in run.phases() if p.t1 is not None]
    sensor = sensor_view(run, subset)
    out = []
    for index, (prev, nxt) in enumerate(zip(phases, phases[1:])):
        if prev.t1 is not None and nxt.t0 - prev.t1 >= min_s:
            feats = dict(sensor.gaps[index]) if sensor is not None else {}
            out.append({"after": prev.name, "before": nxt.name, "t0": prev.t1, "t1": nxt.t0, "sensor": feats})
    return out


def _end(run: RunDir, phase: Phase) -> float:
    """A phase cut short has no end event: use the last sample any stream has in it."""
    if phase.t1 is not None:
        return phase.t1
    maxima: list[Any] = [f["t"].max() for f in (run.cpu, run.nvsmi) if f is not None and "t" in f.columns]
    maxima.append(steps_of(run).last_t if run.step_files else None)
    last = [float(t) for t in maxima if t is not None and float(t) >= phase.t0]
    return max(last) if last else phase.t0 + 1.0


def _cpu_cores(run: RunDir) -> int:
    prov = run.provenance or {}
    hosts = prov.get("hosts", {"": prov}) if isinstance(prov, dict) else {}
    counts = [h.get("cpu_count_logical") for h in hosts.values() if isinstance(h, dict)]
    return int(next((c for c in counts if isinstance(c, int) and c > 0), 1))


def _activity(run: RunDir, phase: Phase, ev: PhaseEvidence, cores: int) -> None:
    cpu = run.slice("cpu", phase) if run.cpu is not None else None
    if cpu is not None and cpu.height and "cpu_percent" in cpu.columns:
        ev.cpu_busy_cores = float(cast(float, cpu["cpu_percent"].mean()) or 0.0) / 100.0 * cores
    gpu = run.slice("nvsmi", phase) if run.nvsmi is not None else None
    if gpu is not None and gpu.height:
        ev.gpu_util = _mean(gpu, "utilization_gpu")
        ev.gpu_power_w = _mean(gpu, "power_draw_w")
        ev.gpu_mem_mib = _mean(gpu, "memory_used_mib")
        keys = [c for c in ("host", "index") if c in gpu.columns]
        ev.gpus_seen = gpu.select(keys).unique().height


def _mean(frame: pl.DataFrame, col: str) -> float | None:
    if col not in frame.columns:
        return None
    value = frame[col].cast(pl.Float64, strict=False).mean()
    return None if value is None else float(value)  # type: ignore[arg-type]


# ------------------------------------------------------------------------ sync traffic


def _sync(run: RunDir, phase: Phase, ev: PhaseEvidence, rates: pl.DataFrame | None) -> None:
    """Bytes of gradient-sync traffic each independent source saw during the phase."""
    col = run.slice("collectives", phase) if run.collectives is not None else None
    if col is not None:
        ev.sync_bytes["collectives_log"] = float(col["bytes"].sum() or 0) if col.height else 0.0
        ev.log_collectives = col.height
        _grad_step(ev, col, "rank", "bytes", "dtype")
    nccl = run.slice("nccl", phase) if run.nccl is not None else None
    if nccl is not None:
        ev.sync_bytes["nccl_log"] = float(nccl["bytes"].sum() or 0) if nccl.height else 0.0
        if ev.grad_step_bytes is None and nccl.height:
            keys = nccl.with_columns(
                pl.concat_str(
                    [
                        pl.col(c).cast(pl.Utf8).fill_null("")
                        for c in ("host", "pid", "rank")
                        if c in nccl.columns
                    ],
                    separator="/",
                ).alias("_rk")
            )
            _grad_step(ev, keys, "_rk", "bytes", "datatype")
    net = _netdev_bytes(run, phase, rates)
    if net is not None and ev.streams.get("sensor"):
        # netdev.log is host-wide (/proc/net/dev of whoever wrote it): with a sensor that
        # scopes traffic to the workload's namespace, it is shown and never decides
        ev.sensor["host_netdev_b"] = net
    elif net is not None:
        ev.sync_bytes["netdev"] = net  # layouts without a sensor (seed capture): all there is
    if "net_tx_b" in ev.sensor:
        ev.sync_bytes["sensor_net"] = ev.sensor["net_tx_b"]
    dcgm = run.slice("dcgm", phase) if run.dcgm is not None else None
    if dcgm is not None and dcgm.height and dcgm["nvlink_tx_bytes"].null_count() < dcgm.height:
        ev.sync_bytes["dcgm_nvlink"] = (
            float(cast(float, dcgm["nvlink_tx_bytes"].cast(pl.Float64).mean()) or 0) * ev.duration
        )


def _grad_step(ev: PhaseEvidence, frame: pl.DataFrame, rank: str, nbytes: str, dtype: str) -> None:
    """One step's all-reduce bytes per rank: the period of the bucket-size sequence (DDP
    all-reduces the same buckets in the same order every step, however many there are);
    without a clean period, the sequence cut at its long time gaps (``step_sums``)."""
    per_rank = []
    for _, group in frame.sort("t").group_by(rank, maintain_order=True):
        group = group.filter(pl.col(nbytes).is_not_null())
        sizes = np.asarray(group[nbytes].to_numpy(), dtype=float)
        times = group["t"].to_numpy() if "t" in group.columns and group["t"].null_count() == 0 else None
        step = period_sum(sizes, fallback=False)
        if step is None and times is not None:
            sums = step_sums(sizes, np.asarray(times, dtype=float))
            step = float(np.median(sums)) if sums else None
        step = step if step is not None else period_sum(sizes)
        if step is not None:
            per_rank.append(step)
        dt = group[dtype].drop_nulls() if dtype in group.columns else None
        if dt is not None and dt.len():
            ev.grad_dtype_bytes = DTYPE_BYTES.get(str(dt.mode()[0]).lower(), 4)
    ev.ranks_seen = frame[rank].n_unique() if frame.height else ev.ranks_seen
    ev.grad_step_bytes = float(np.median(per_rank)) if per_rank else None


def step_sums(sizes: np.ndarray, times: np.ndarray, min_ratio: float = 4.0) -> list[float] | None:
    """Bytes per step from all-reduce times: gaps split into two groups at the largest
    jump of their sorted logarithms; when the long group is ``min_ratio`` times the short
    one, long gaps are step boundaries. The first segment (DDP's first step syncs every
    parameter as one bucket, before its buckets are rebuilt) and the last (maybe cut off
    by the phase end) are dropped when there are enough others. None: no step structure
    (one all-reduce per step, or too few)."""
    if len(sizes) < 4:
        return None
    gaps = np.diff(times)
    logs = np.sort(np.log(np.maximum(gaps, 1e-7)))
    jump = int(np.argmax(np.diff(logs)))
    short, long_ = logs[: jump + 1], logs[jump + 1 :]
    if not len(long_) or np.exp(long_.mean() - short.mean()) < min_ratio or len(long_) < 2:
        return None
    cut = np.exp(logs[jump + 1])
    bounds = [0, *(np.nonzero(gaps >= cut)[0] + 1).tolist(), len(sizes)]
    sums = [float(sizes[a:b].sum()) for a, b in zip(bounds, bounds[1:])]
    return sums[1:-1] if len(sums) >= 4 else sums


def period_sum(
    sizes: np.ndarray, max_period: int | None = None, agree: float = 0.95, fallback: bool = True
) -> float | None:
    """Sum of one period of a repeating bucket-size sequence: the smallest period that
    repeats at least twice on ``agree`` of its positions (up to ``max_period``, default
    min(n/2, 512) buckets per step), skipping up to two leading entries (DDP's first step
    syncs all parameters as one bucket before it rebuilds its buckets). ``agree`` is high
    because the blocks of a transformer repeat inside one step (a sub-period matching
    ~80% of positions). With no period: the largest single all-reduce (that first
    bucket), or None when ``fallback`` is False."""
    n = len(sizes)
    if n == 0:
        return None
    for p in range(1, (max_period or min(n // 2, 512)) + 1):
        for skip in range(0, 3):
            seq = sizes[skip:]
            if len(seq) >= 2 * p and float(np.mean(seq[p:] == seq[:-p])) >= agree:
                return float(np.median(np.convolve(seq, np.ones(p), mode="valid")))
    return float(sizes.max()) if fallback else None


def _netdev_bytes(run: RunDir, phase: Phase, rates: pl.DataFrame | None) -> float | None:
    """TX bytes over all interfaces during the phase (gloo rides loopback, NCCL the NIC)."""
    if run.netdev is None:
        return None
    if rates is None:
        sliced = run.slice("netdev", phase)
        if sliced is None or sliced.height == 0:
            return None
        rates = netdev_rates(sliced)
        inside = rates
    else:
        # Intervals whose midpoint lies in the phase, except one that began before it:
        # that interval carries the previous phase's tail (a training tail inside a short
        # idle phase looked like training).
        mid = (pl.col("t0") + pl.col("t1")) / 2
        inside = rates.filter(
            (mid >= phase.t0) & (mid <= (phase.t1 or math.inf)) & (pl.col("t0") >= phase.t0)
        )
    if inside.height == 0:
        return None
    return float((inside["tx_bytes_per_s"].fill_null(0.0) * inside["dt"]).sum())
