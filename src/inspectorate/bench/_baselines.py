"""Baselines measured in every bench run: telemetry only, no prover stream.

- ``threshold``: a fixed-threshold classifier in the style of the WorkloadTruth tool:
  utilisation, memory slope and power (or CPU where no GPU exists) against thresholds
  written down before any suite existed (below), never fitted to one.
- ``forest``: a random forest (scikit-learn, the ``calibrate`` extra) over per-phase
  telemetry features, one per track, trained by the harness leave-one-host-out (the style
  of recent NVML-telemetry work): it never sees the host it is scored on.

Both read the same per-phase features (``phase_features``): CPU/GPU utilisation, the
memory slope and footprint of the workload, NIC bytes per second, page-fault rate, busy
processes and threads, GPU power; each missing stream is -1 (the realistic subset has no
process sensor).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from inspectorate.bench._case import CONSISTENT, INCONSISTENT, Answer
from inspectorate.bench._verifier import BenchVerdict, CaseView, abstain, verifier
from inspectorate.errors import InputError

RUN_TRACKS = ("op_type", "undeclared_work", "model_size", "finetune")
FEATURES = (
    "util",
    "util_std",
    "mem_slope_mb_s",
    "footprint_mb",
    "net_mb_s",
    "log_minflt_s",
    "busy_procs",
    "threads_max",
    "gpu_power_w",
)
# Fixed thresholds (chosen from the seed write-up's H100 figures and first principles, not
# from any suite): idle sits at the power/utilisation floor, training pins utilisation,
# serving grows its KV cache; 16 B/param is fp32 weights + grads + Adam's two moments.
IDLE_UTIL = 0.15
TRAIN_UTIL = 0.80
FLAT_MEM_MB_S = 5.0
BYTES_PER_PARAM_TRAIN = 16
BYTES_PER_PARAM_INFER = 4
FOOTPRINT_SLACK_MB = 256.0


def _slope(t: np.ndarray, y: np.ndarray) -> float:
    if len(t) < 3 or float(np.ptp(t)) <= 0:
        return 0.0
    return float(np.polyfit(t - t[0], y, 1)[0])


def phase_features(run_dir: Path) -> dict[str, dict[str, float]]:
    """Telemetry features of every labelled phase of ``run_dir`` (sensor streams only)."""
    from inspectorate.trace import load_run
    from inspectorate.verify._evidence import collect

    run = load_run(run_dir)
    out: dict[str, dict[str, float]] = {}
    cpu = run.cpu
    for ev in collect(run, "sensor"):
        s = ev.sensor
        feats = dict.fromkeys(FEATURES, -1.0)
        cores = float(s.get("host_cores") or 0.0) or None
        util = ev.gpu_util / 100.0 if ev.gpu_util is not None else None
        if util is None and ev.cpu_busy_cores is not None:
            util = ev.cpu_busy_cores / max(_ncores(run_dir), 1)
        if util is None and cores is not None:
            util = cores / max(_ncores(run_dir), 1)
        feats["util"] = -1.0 if util is None else min(util, 1.5)
        feats["util_std"], feats["mem_slope_mb_s"] = _cpu_shape(cpu, ev.t0, ev.t1)
        if s.get("footprint_b") is not None:
            feats["footprint_mb"] = float(s["footprint_b"]) / 2**20
        elif ev.gpu_mem_mib is not None:
            feats["footprint_mb"] = float(ev.gpu_mem_mib)
        net = s.get("net_tx_b") if s.get("net_tx_b") is not None else ev.sync_bytes.get("netdev")
        if net is not None:
            feats["net_mb_s"] = float(net) / 2**20 / ev.duration
        if s.get("minflt_per_s") is not None:
            feats["log_minflt_s"] = math.log10(1.0 + float(s["minflt_per_s"]))
        for key in ("busy_procs", "threads_max"):
            if s.get(key) is not None:
                feats[key] = float(s[key])
        power = ev.gpu_power_w if ev.gpu_power_w is not None else s.get("gpu_power_w")
        if power is not None:
            feats["gpu_power_w"] = float(power)
        out[ev.name] = feats
    return out


def _ncores(run_dir: Path) -> int:
    import json

    try:
        prov = json.loads((run_dir / "provenance.json").read_text())
        return int(prov.get("cpu_count_logical") or 2)
    except (OSError, ValueError):
        return 2  # provenance is the prover's: absent in the sensor views


def _cpu_shape(cpu: Any, t0: float, t1: float) -> tuple[float, float]:
    """(std of CPU utilisation, slope of process RSS in MB/s) from ``cpu.csv`` in [t0, t1]."""
    if cpu is None:
        return -1.0, -1.0
    import polars as pl

    tcol = "timestamp" if "timestamp" in cpu.columns else cpu.columns[0]
    f = cpu.filter((pl.col(tcol) >= t0) & (pl.col(tcol) <= t1))
    if f.height < 3:
        return -1.0, -1.0
    std = float(f["cpu_percent"].std() or 0.0) / 100.0 if "cpu_percent" in f.columns else -1.0
    mem = "proc_rss_mb" if "proc_rss_mb" in f.columns else None
    slope = _slope(f[tcol].to_numpy(), f[mem].to_numpy()) if mem else -1.0
    return std, slope


class _FeatureCache:
    def __init__(self) -> None:
        self._cache: dict[tuple[str, int], dict[str, dict[str, float]]] = {}

    def get(self, view: CaseView) -> dict[str, float]:
        if not view.evidence.is_dir():
            raise InputError("run directory not found", view.evidence)
        key = (str(view.evidence.resolve()), view.evidence.stat().st_mtime_ns)
        if key not in self._cache:
            self._cache[key] = phase_features(view.evidence)
        feats = self._cache[key].get(view.case.phase or "")
        if feats is None:
            raise InputError(f"phase {view.case.phase!r} not in the run's labels", view.evidence)
        return feats


def _claimed_op(view: CaseView) -> str:
    op = str(view.case.claim.get("claimed_op") or "")
    return op or str(view.case.claim.get("claimed", "")).partition(":")[0]


class Threshold:
    """Fixed thresholds on utilisation / memory slope / footprint; no fitting."""

    tracks: tuple[str, ...] = RUN_TRACKS

    def __init__(self, name: str = "threshold") -> None:
        self.name = name
        self._features = _FeatureCache()

    def predict_op(self, f: dict[str, float]) -> str:
        if f["util"] < 0:
            return "unknown"
        if f["util"] < IDLE_UTIL:
            return "idle"
        if f["util"] >= TRAIN_UTIL and (f["mem_slope_mb_s"] < 0 or abs(f["mem_slope_mb_s"]) <= FLAT_MEM_MB_S):
            return "training"
        return "inference"

    def verify(self, view: CaseView) -> BenchVerdict:
        if view.track not in RUN_TRACKS:
            return abstain(f"{self.name} reads telemetry only; track {view.track} has none")
        f = self._features.get(view)
        claimed = _claimed_op(view)
        claimed = "inference" if claimed == "eval" else claimed
        if view.track == "finetune":
            return abstain("no telemetry threshold separates fine-tuning from pre-training")
        if view.track == "model_size":
            return self._size(view, f)
        op = self.predict_op(f)
        if op == "unknown":
            return abstain("no utilisation stream")
        if view.track == "undeclared_work" and claimed == "idle":
            score = min(max(f["util"] / (2 * IDLE_UTIL), 0.0), 1.0)
        else:
            score = (
                min(max(f["util"], 0.0), 1.0)
                if claimed != "training"
                else 1.0 - min(max(f["util"], 0.0), 1.0)
            )
        bad = op != claimed and not (
            view.track == "undeclared_work" and claimed == "inference" and op == "idle"
        )
        return BenchVerdict(INCONSISTENT if bad else CONSISTENT, score, {"predicted_op": op, **f})

    def _size(self, view: CaseView, f: dict[str, float]) -> BenchVerdict:
        n = view.case.claim.get("claimed_n_params")
        if not isinstance(n, (int, float)) or f["footprint_mb"] < 0:
            return abstain("no claimed size or no memory footprint")
        per = BYTES_PER_PARAM_TRAIN if _claimed_op(view) == "training" else BYTES_PER_PARAM_INFER
        bound = n * per / 2**20 + FOOTPRINT_SLACK_MB
        ratio = f["footprint_mb"] / bound
        return BenchVerdict(
            INCONSISTENT if ratio > 1.0 else CONSISTENT, min(ratio / 2.0, 1.0), {"bound_mb": bound, **f}
        )


class Forest:
    """A random forest per track over ``FEATURES`` + the claim; trained by ``fit``."""

    tracks: tuple[str, ...] = RUN_TRACKS

    def __init__(self, name: str = "forest", seed: int = 0, trees: int = 100) -> None:
        self.name = name
        self.seed, self.trees = seed, trees
        self._features = _FeatureCache()
        self._models: dict[str, Any] = {}

    def _row(self, view: CaseView) -> list[float]:
        f = self._features.get(view)
        op = _claimed_op(view)
        n = view.case.claim.get("claimed_n_params")
        claim = [float(op == k) for k in ("training", "inference", "eval", "idle")]
        return (
            [f[k] for k in FEATURES]
            + claim
            + [math.log10(n) if isinstance(n, (int, float)) and n > 0 else -1.0]
        )

    def fit(self, views: list[CaseView], answers: list[Answer]) -> None:
        from sklearn.ensemble import RandomForestClassifier

        self._models = {}
        for track in RUN_TRACKS:
            pairs = [(v, a) for v, a in zip(views, answers) if v.track == track]
            ys = [int(a.adversarial) for _, a in pairs]
            if len(set(ys)) < 2:
                continue  # one class only: nothing to learn, the forest abstains on this track
            model = RandomForestClassifier(
                n_estimators=self.trees, random_state=self.seed, min_samples_leaf=1
            )
            model.fit(np.array([self._row(v) for v, _ in pairs]), np.array(ys))
            self._models[track] = model

    def verify(self, view: CaseView) -> BenchVerdict:
        if view.track not in RUN_TRACKS:
            return abstain(f"{self.name} reads telemetry only; track {view.track} has none")
        row = self._row(view)
        model = self._models.get(view.track)
        if model is None:
            return abstain(f"no training data with both classes for track {view.track}")
        p = float(model.predict_proba(np.array([row]))[0][1])
        return BenchVerdict(INCONSISTENT if p >= 0.5 else CONSISTENT, p, {"p_false": p})


@verifier("threshold")
def threshold(**options: Any) -> Threshold:
    """Fixed thresholds on utilisation, memory slope and footprint (WorkloadTruth style)."""
    return Threshold(**options)


@verifier("forest")
def forest(**options: Any) -> Forest:
    """Random forest over per-phase telemetry features, trained leave-one-host-out."""
    return Forest(**options)
