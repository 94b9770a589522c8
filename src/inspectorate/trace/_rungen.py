"""Synthetic run directories at scale: N hosts x H hours of an honest multi-phase schedule.

Why: the verifier's memory and time must be measured on a day of 10 Hz sensor samples
per host (864k a host, 6.9 M for 8 hosts), which no test machine can capture for real.
Each host gets a flat run dir written the way the real writers write it: ``sensor.jsonl``
(start record, then one hash-chained sample per tick, canonical JSON per line),
``windows.jsonl`` (chained window records per chip), ``steps.jsonl`` /
``steps_rank1.jsonl`` (chained step records), ``workload_labels.jsonl`` (start/end
events with the claim fields) and ``provenance.json``. What the sensor shows agrees with
the claims: training moves 4 B x N per rank-step over the workload's own namespace and
holds 16 B x N a rank; inference holds 4 B x N; idle burns ~nothing. Deterministic for a
seed; written line by line (bounded memory).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

from inspectorate.errors import InputError
from inspectorate.trace._canonical import GENESIS, PREV_FIELD, canonical_json

T0 = 1_790_000_000.0
N_PARAMS = 3_208_960  # the testbed's "laptop" preset, as the claim declares it
BATCH, SEQ = 2, 64
BASE_MEM = 300 * 2**20
# (claimed label, op, seconds, tree cores, ranks, steps a second per rank)
SCHEDULE: tuple[tuple[str, str, float, float, int, float], ...] = (
    ("pretrain:small", "training", 1200.0, 1.9, 2, 0.5),
    ("inference", "inference", 600.0, 0.9, 1, 0.2),
    ("eval", "eval", 300.0, 0.8, 1, 0.2),
    ("idle", "idle", 300.0, 0.002, 0, 0.0),
)
GAP_S = 3.0  # between phases: model build / teardown, a little CPU


@dataclass(frozen=True)
class RunSpec:
    hosts: int = 8
    hours: float = 24.0
    hz: float = 10.0
    seed: int = 0


@dataclass
class _Chain:
    """A JSONL writer that chains records as the capture writers do (one canonical line each)."""

    handle: IO[str]
    prefix: str
    count: int = 0
    prev: str = GENESIS

    def append(self, record: dict[str, Any]) -> None:
        record["record_id"] = f"{self.prefix}_{self.count:08d}"
        record[PREV_FIELD] = self.prev
        text = canonical_json(record)
        self.prev = hashlib.sha256(text.encode()).hexdigest()
        self.handle.write(text + "\n")
        self.count += 1


def phases_of(spec: RunSpec) -> list[tuple[int, float, float, tuple[str, str, float, float, int, float]]]:
    """(index, t0, t1, schedule row) of every phase that fits in ``spec.hours``."""
    out: list[tuple[int, float, float, tuple[str, str, float, float, int, float]]] = []
    t, end, i = T0 + GAP_S, T0 + spec.hours * 3600.0, 0
    while True:
        row = SCHEDULE[i % len(SCHEDULE)]
        if t + row[2] > end:
            return out
        out.append((i, t, t + row[2], row))
        t, i = t + row[2] + GAP_S, i + 1


def generate_run(out: Path | str, spec: RunSpec, force: bool = False) -> dict[str, Any]:
    """Write ``out/host00 .. host{N-1}``, one flat run dir a host; returns a summary."""
    out = Path(out)
    if out.exists() and any(out.iterdir()) and not force:
        raise InputError("exists and is not empty (pass --force to overwrite)", out)
    phases = phases_of(spec)
    if not phases:
        raise InputError(f"--hours {spec.hours} is too short for one phase of the schedule")
    samples = 0
    for h in range(spec.hosts):
        host = out / f"host{h:02d}"
        host.mkdir(parents=True, exist_ok=True)
        _labels(host, h, phases)
        _provenance(host, h, spec)
        _windows_and_steps(host, h, phases)
        samples += _sensor(host, h, phases, spec)
    return {
        "hosts": spec.hosts,
        "hours": spec.hours,
        "phases_per_host": len(phases),
        "sensor_samples": samples,
    }


def _labels(host: Path, h: int, phases: list[Any]) -> None:
    with (host / "workload_labels.jsonl").open("w", encoding="utf-8") as f:
        for i, t0, t1, (claimed, op, _, _, ranks, _) in phases:
            fields: dict[str, Any] = {"phase": f"p{i:04d}", "claimed": claimed, "claimed_op": op}
            if op != "idle":
                fields["claimed_n_params"] = N_PARAMS
                fields["chips"] = [f"host{h:02d}-cpu{r}" for r in range(max(ranks, 1))]
                fields["world_size"] = max(ranks, 1)
            for event, t in (("start", t0), ("end", t1)):
                f.write(json.dumps({**fields, "event": event, "t": t}, sort_keys=True) + "\n")


def _provenance(host: Path, h: int, spec: RunSpec) -> None:
    doc = {
        "host": f"host{h:02d}",
        "cpu_count_logical": 16,
        "device": "cpu",
        "gpus": [],
        "generator": "inspectorate.trace._rungen",
        "seed": spec.seed,
    }
    (host / "provenance.json").write_text(json.dumps(doc, indent=1, sort_keys=True), encoding="utf-8")


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _windows_and_steps(host: Path, h: int, phases: list[Any]) -> None:
    """A window record per chip per 10 s of work; a step record per rank per step."""
    name = f"host{h:02d}"
    with (
        (host / "windows.jsonl").open("w", encoding="utf-8") as wf,
        (host / "steps.jsonl").open("w", encoding="utf-8") as s0,
        (host / "steps_rank1.jsonl").open("w", encoding="utf-8") as s1,
    ):
        windows = _Chain(wf, f"{name}-rec")
        steps = [_Chain(s0, "step_r0"), _Chain(s1, "step_r1")]
        for _, t0, t1, (_, op, _, _, ranks, rate) in phases:
            if op == "idle":
                continue
            per = 6.0 if op == "training" else 2.0  # flops per param per token
            for w0 in _ticks(t0, t1, 10.0):
                w1 = min(w0 + 10.0, t1)
                n_steps = int((w1 - w0) * rate)
                tokens = n_steps * BATCH * SEQ
                for r in range(max(ranks, 1)):
                    windows.append(_window(name, r, op, w0, w1, tokens, per))
            kind = {"training": "train_step", "inference": "infer_token", "eval": "eval_step"}[op]
            for r in range(max(ranks, 1)):
                for k, t in enumerate(_ticks(t0 + 0.5, t1, 1.0 / rate)):
                    steps[r].append(_step(kind, r, k, t, 1.0 / rate))


def _window(name: str, r: int, op: str, w0: float, w1: float, tokens: int, per: float) -> dict[str, Any]:
    return {
        "batch_size": BATCH,
        "chip_id": f"{name}-cpu{r}",
        "cluster_region": "local-cpu",
        "code_commit": "git:inspectorate-rungen",
        "config_hash": "sha256:" + hashlib.sha256(op.encode()).hexdigest()[:16],
        "data_source_tags": ["corpus:synthetic"],
        "dataset_fingerprint": "sha256:" + hashlib.sha256(b"rungen").hexdigest()[:16],
        "model_hash_prefix": "sha256:" + hashlib.sha256(name.encode()).hexdigest()[:16],
        "flops": per * N_PARAMS * tokens,
        "job_id": f"job-{name}",
        "op_type": op,
        "operator": "inspectorate-rungen",
        "sequence_length": SEQ,
        "tokens_processed": tokens,
        "upstream_refs": [],
        "window_end": _iso(w1),
        "window_start": _iso(w0),
    }


def _step(kind: str, rank: int, k: int, t: float, dt: float) -> dict[str, Any]:
    rec: dict[str, Any] = {"schema": "inspectorate.step/1", "kind": kind, "rank": rank, "step": k, "t": t}
    if kind == "train_step":
        rec.update({"step_time_s": dt, "tokens": BATCH * SEQ, "lr": 3e-4, "loss": 4.0 / (1 + k / 500)})
    elif kind == "eval_step":
        rec.update({"step_time_s": dt, "tokens": BATCH * SEQ})
    else:
        rec.update({"latency_ms": dt * 1000.0, "tokens": BATCH * SEQ})  # batch x (prefill + generated)
    return rec


def _ticks(t0: float, t1: float, step: float) -> list[float]:
    n = int((t1 - t0) / step)
    return [t0 + k * step for k in range(n)]


def _sensor(host: Path, h: int, phases: list[Any], spec: RunSpec) -> int:
    """One sample per tick over the whole run; what each tick shows follows the phase."""
    rng = random.Random(f"{spec.seed}/{h}")
    state = {"cpu": 0.0, "host_cpu": 1000.0, "tx": 0.0, "htx": 0.0, "minflt": 0.0, "ctx": 0.0, "write": 0.0}
    pid_cpu = [0.0, 0.0]
    end, dt = T0 + spec.hours * 3600.0, 1.0 / spec.hz
    with (host / "sensor.jsonl").open("w", encoding="utf-8") as f:
        chain = _Chain(f, "sensor")
        chain.append(
            {
                "schema": "inspectorate.sensor/1",
                "kind": "start",
                "t": T0,
                "hz": spec.hz,
                "nonce": f"{spec.seed:032x}",
            }
        )
        k, p = 0, 0
        while (t := T0 + k * dt) <= end:
            while p < len(phases) and phases[p][2] < t:
                p += 1
            row = phases[p][3] if p < len(phases) and phases[p][1] <= t else None
            chain.append(_sample(t, row, state, pid_cpu, dt, rng))
            k += 1
    return k


def _sample(
    t: float, row: Any, s: dict[str, float], pid_cpu: list[float], dt: float, rng: random.Random
) -> dict[str, Any]:
    _, op, _, cores, ranks, rate = row if row is not None else ("", "gap", 0.0, 0.3, 1, 0.0)
    busy = cores * (0.9 + 0.2 * rng.random())
    s["cpu"] += busy * dt
    s["host_cpu"] += (busy + 0.05) * dt
    tx = 4.0 * N_PARAMS * rate * ranks * dt if op == "training" else 200.0 * dt
    s["tx"] += tx
    s["htx"] += tx + 500.0 * dt
    s["minflt"] += 50 * busy
    s["ctx"] += 20 * busy
    s["write"] += 100.0 * dt
    n = max(ranks, 1)
    for r in range(n):
        pid_cpu[r] += busy / n * dt
    per_byte = {"training": 16.0 * ranks, "inference": 4.0, "eval": 4.0}.get(op, 0.0)
    mem = BASE_MEM + per_byte * N_PARAMS + rng.randrange(0, 4 << 20)
    procs = [[4000 + r, round(pid_cpu[r], 2), int(mem / n), 4] for r in range(n)]
    return {
        "schema": "inspectorate.sensor/1",
        "kind": "sample",
        "t": round(t, 3),
        "procs": n,
        "threads": 4 * n,
        "cpu_s": round(s["cpu"], 2),
        "rss_b": int(mem * 1.4),
        "pss_b": int(mem),
        "minflt": int(s["minflt"]),
        "majflt": 0,
        "ctx_vol": int(s["ctx"]),
        "ctx_invol": int(s["ctx"] / 10),
        "write_b": int(s["write"]),
        "per_proc": procs,
        "host_cpu_s": round(s["host_cpu"], 2),
        "host_ncpu": 16,
        "net": {"eth0": [int(s["htx"]), int(s["htx"]), 0, 0]},
        "net_scope": "netns",
        "wl_net": {"veth0": [int(s["tx"]), int(s["tx"]), 0, 0]},
    }
