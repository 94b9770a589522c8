"""Competent variants: the prover rewrites every stream it owns to agree with its claim.

A naive adversarial phase leaves its own logs confessing (``train_step`` records in a
phase claimed as inference, a frozen group in a "pretrain", true bucket sizes in the
collective log). A competent prover does what the issue's threat model says: for each
lying phase it rewrites the step records (forged records of the claimed kind, a
pretraining lr schedule, no frozen group, a fresh weight fingerprint), the collective
log (omitted for non-training claims, one all-reduce of the claimed size per forged
step otherwise) and the window records (tokens chosen so that the claimed work explains
the CPU its own processes burned, FLOPs from the claimed model), and rebuilds every hash
chain it touched. It withholds the replay claim (``claims/<phase>/``) of every lying
phase: its true checkpoints contradict the claim, and a claim that agrees would have to
be a real run of the claimed work (the verifier replays it). It never touches a sensor-owned stream (``sensor.jsonl``, ``cpu.csv``,
``netdev.log``, ``nvsmi.csv``): that is the boundary the verifier relies on.

To size its forgery the prover measures what it can measure on its own host: its
processes' CPU time (read here from the sensor file, which holds the same /proc counters
the prover can read; the file is only read) and the cost per token of the claimed work
(the same re-run the verifier does), scaled by the overhead its honest phases show.
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path
from typing import Any

from inspectorate.trace import rechain

HONEST_OVERHEAD = 2.0  # sensor CPU over spot-check cost on honest test-profile phases


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")


def lying_phases(run: Path) -> list[dict[str, Any]]:
    """Start events (with the end time added) of the phases whose truth differs from the claim."""
    starts: dict[str, dict[str, Any]] = {}
    for e in _jsonl(run / "workload_labels.jsonl"):
        if e["event"] == "start":
            starts[e["phase"]] = dict(e)
        elif e["phase"] in starts:
            starts[e["phase"]]["t_end"] = e["t"]
    return [e for e in starts.values() if e.get("truth") != e.get("claimed") and "t_end" in e]


def make_competent(src: Path | str, dst: Path | str) -> Path:
    """Copy run ``src`` to ``dst`` with every lying phase's prover streams forged."""
    src, dst = Path(src), Path(dst)
    shutil.copytree(src, dst)
    roles = json.loads((dst / "provenance.json").read_text()).get("roles", {})
    phases = lying_phases(dst)
    windows = _jsonl(dst / "windows.jsonl")
    for phase in phases:
        own = _phase_windows(windows, phase)
        phase["_batch"] = int(own[0]["batch_size"]) if own else 1
        phase["_seq"] = int(own[0]["sequence_length"]) if own else 1
        tokens = _target_tokens(dst, phase, windows)
        _forge_windows(windows, phase, tokens)
        phase["_tokens"] = tokens
    _write(dst / "windows.jsonl", rechain(windows))
    for phase in phases:
        shutil.rmtree(dst / "claims" / phase["phase"], ignore_errors=True)
    for path in sorted(dst.glob("steps*.jsonl")):
        _forge_steps(path, phases, roles)
    for path in sorted(dst.glob("collectives*.jsonl")):
        _forge_collectives(path, phases)
    return dst


def _phase_windows(windows: list[dict[str, Any]], phase: dict[str, Any]) -> list[dict[str, Any]]:
    return [w for w in windows if w.get("job_id") == phase.get("job_id")]


def _target_tokens(run: Path, phase: dict[str, Any], windows: list[dict[str, Any]]) -> float:
    """Tokens of the claimed work that explain the CPU the phase burned (0 for idle)."""
    from inspectorate.verify._spotcheck import SpotCheck, Work, spot_check

    own = _phase_windows(windows, phase)
    claimed = str(phase.get("claimed"))
    if claimed == "idle" or not own:
        return 0.0
    op = str(phase.get("claimed_op"))
    work = Work(
        op, str(phase.get("claimed_model")), int(own[0]["batch_size"]), int(own[0]["sequence_length"])
    )
    check = spot_check(work)
    cpu = _cpu_seconds(run, phase["t"], phase["t_end"])
    if not isinstance(check, SpotCheck) or cpu is None:
        return float(sum(w["tokens_processed"] for w in own))
    return cpu / (check.cpu_s_per_token * HONEST_OVERHEAD)


def _cpu_seconds(run: Path, t0: float, t1: float) -> float | None:
    path = run / "sensor.jsonl"
    if not path.exists():
        return None
    cpu = [(r["t"], r["cpu_s"]) for r in _jsonl(path) if r.get("kind") == "sample" and t0 <= r["t"] <= t1]
    return cpu[-1][1] - cpu[0][1] if len(cpu) >= 2 else None


def _forge_windows(windows: list[dict[str, Any]], phase: dict[str, Any], tokens: float) -> None:
    own = _phase_windows(windows, phase)
    if not own:
        return
    n = phase.get("claimed_n_params") or 0
    per_token = (
        0.0 if phase.get("claimed") == "idle" else (6.0 if phase.get("claimed_op") == "training" else 2.0) * n
    )
    share = int(round(tokens / len(own)))
    for w in own:
        w["tokens_processed"] = share
        w["flops"] = float(per_token * share)


def _forge_steps(path: Path, phases: list[dict[str, Any]], roles: dict[str, Any]) -> None:
    rows = _jsonl(path)
    if not rows:
        return
    rank = int(rows[0].get("rank", 0))
    names = {p["phase"] for p in phases}
    kept = [r for r in rows if r.get("phase") not in names]
    for phase in phases:
        kept += _forged_records(phase, rank, roles)
    kept.sort(key=lambda r: r.get("t", 0.0))
    for i, r in enumerate(kept):
        r["record_id"] = f"step_r{rank}_{i:08d}"
    _write(path, rechain(kept))


def _forged_records(phase: dict[str, Any], rank: int, roles: dict[str, Any]) -> list[dict[str, Any]]:
    """Step records of the claimed kind, evenly spread over the phase, for one rank."""
    claimed, op = str(phase["claimed"]), str(phase.get("claimed_op"))
    ranks = max(int(phase.get("world_size") or 1), 1)
    t0, t1 = float(phase["t"]), float(phase["t_end"])
    role = roles.get(claimed.partition(":")[2], {})
    batch, seq = max(int(phase["_batch"]), 1), max(int(phase["_seq"]), 1)
    if op == "idle":
        return []
    base = {"schema": "inspectorate.step/1", "phase": phase["phase"], "rank": rank}
    fresh = "sha256:" + hashlib.sha256(f"{phase['phase']}/{t0}".encode()).hexdigest()[:16]
    out = [
        {
            **base,
            "kind": "fingerprint",
            "t": t0 + 1e-3,
            "step": 0,
            "model_hash_prefix": fresh,
            "num_params": phase.get("claimed_n_params"),
        }
    ]
    if op == "training":
        steps = max(int(phase["_tokens"] / ranks / (batch * seq)), 1)
        lr = float(role.get("lr", 1e-3))
        out += [_train_record(base, i, steps, t0, t1, lr, batch * seq) for i in range(steps)]
    else:
        kind = "infer_token" if op == "inference" else "eval_step"
        per = batch if op == "inference" else batch * seq
        count = max(int(phase["_tokens"] / ranks / per), 1)
        dt = (t1 - t0) / count
        out += [
            {
                **base,
                "kind": kind,
                "t": t0 + (i + 1) * dt,
                "step": i,
                "tokens": per,
                "latency_ms": dt * 900.0,
                "step_time_s": dt * 0.9,
            }
            for i in range(count)
        ]
    return out


def _train_record(
    base: dict[str, Any], i: int, steps: int, t0: float, t1: float, peak: float, tokens: int
) -> dict[str, Any]:
    dt = (t1 - t0) / steps
    p = i / steps
    lr = (
        peak * (p + 1e-3) / 0.05
        if p < 0.05
        else peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (p - 0.05) / 0.95)))
    )
    groups = {"embed": 0.3, "blocks": 0.8, "ln": 0.05}
    return {
        **base,
        "kind": "train_step",
        "t": t0 + (i + 1) * dt,
        "step": i,
        "loss": 4.2 * math.exp(-1.5 * p) + 1.0,
        "grad_norm": 1.0,
        "grad_norms_per_group": groups,
        "frozen_groups": [],
        "lr": lr,
        "tokens": tokens,
        "forward_ms": dt * 300,
        "backward_ms": dt * 450,
        "optimizer_ms": dt * 150,
        "step_time_s": dt * 0.9,
        "interval_s": dt,
        "tokens_per_second": tokens / dt,
    }


def _forge_collectives(path: Path, phases: list[dict[str, Any]]) -> None:
    rows = _jsonl(path)
    names = {p["phase"] for p in phases}
    kept = [r for r in rows if r.get("phase") not in names]
    ranks = sorted({int(r.get("rank", 0)) for r in rows}) or [0]
    for phase in phases:
        if phase.get("claimed_op") != "training":
            continue
        world = max(int(phase.get("world_size") or 1), 1)
        n = int(phase.get("claimed_n_params") or 0)
        steps = max(int(phase["_tokens"] / world / max(phase["_batch"] * phase["_seq"], 1)), 1)
        t0, t1 = float(phase["t"]), float(phase["t_end"])
        for rank in ranks:
            kept += [
                {
                    "t": t0 + (i + 1) * (t1 - t0) / steps,
                    "rank": rank,
                    "world_size": world,
                    "op": "allreduce",
                    "bytes": 4 * n,
                    "duration_s": 1e-3,
                    "dtype": "float32",
                    "phase": phase["phase"],
                }
                for i in range(steps)
            ]
    kept.sort(key=lambda r: r.get("t", 0.0))
    _write(path, kept)


def make_substituting(
    src: Path | str,
    dst: Path | str,
    corpus: Path | str,
    *,
    live: bool = False,
    relay: bool = False,
    claims_from: Path | str | None = None,
) -> Path:
    """Copy competent run ``src`` to ``dst`` and hand over, for every lying phase claimed
    as pretraining, a *real* replay claim of the claimed work run elsewhere: the claimed
    model trained on the pretraining split, for as many steps as the phase's forged
    window tokens need, with a warmup-and-cosine schedule. Every check a replay can make
    passes (it is a real run); what it does not show is that the phase ran it.

    Without ``live`` the run uses a fresh seed: one computed before the run (or after),
    which the verifier's challenge rejects. With ``live`` its seed derives from the
    challenge the sensor issued, as a run computed *during* the run on other hardware
    could: the strongest forgery against the replay binding (docs/difr.md, "Binding").

    With ``relay`` (and ``live``) the forger also lands the substitute's checkpoint files
    in ``claims/<phase>/`` during the phase, paced as the claimed steps would fall, and
    writes its own checkpoints outside the watched directory: what the verifier's
    checkpoint watcher then records is simulated by :func:`relayed_watch`.
    ``claims_from``: a substituting copy of the same run whose substitute claims to reuse
    (the same runs, trained once)."""
    from inspectorate.capture._nonce import derive_seed
    from inspectorate.models._corpus import load_corpus
    from inspectorate.models._gpt import preset
    from inspectorate.replay._claim import read_claim, record_run
    from inspectorate.replay._train import TrainSpec
    from inspectorate.verify._sensor_features import issued_nonce

    src, dst = Path(src), Path(dst)
    shutil.copytree(src, dst)
    text = load_corpus(Path(corpus))
    roles = json.loads((dst / "provenance.json").read_text()).get("roles", {})
    windows = _jsonl(dst / "windows.jsonl")
    nonce = issued_nonce(dst) if live else None
    relayed = []
    for k, phase in enumerate(lying_phases(dst)):
        claimed = str(phase.get("claimed"))
        own = _phase_windows(windows, phase)
        if not claimed.startswith("pretrain:") or not own:
            continue
        role = roles[claimed.split(":", 1)[1]]
        batch, seq, world = (
            int(own[0]["batch_size"]),
            int(own[0]["sequence_length"]),
            int(phase["world_size"]),
        )
        tokens = sum(float(w["tokens_processed"]) for w in own)
        steps = max(1, round(tokens / (batch * seq * world)))
        key = f"substitute/{phase['phase']}"
        spec = TrainSpec(
            model=preset(role["preset"]).to_dict(),
            steps=steps,
            batch_size=batch,
            seq_len=seq,
            lr=float(role["lr"]),
            seed=derive_seed(nonce, key) if nonce else 7_000_000 + k,
            world_size=world,
            sampler="stream",
            checkpoint_every=max(1, steps // 4),
        )
        reused = Path(claims_from) / "claims" / phase["phase"] if claims_from is not None else None
        if reused is not None and (reused / "claim.json").is_file():
            shutil.copytree(reused, dst / "claims" / phase["phase"])
            relayed.append((phase, read_claim(dst / "claims" / phase["phase"] / "claim.json")))
            continue
        claim = record_run(spec, text, dst / "claims" / phase["phase"])
        if nonce:
            claim.nonce_key = key
            claim.write()
        relayed.append((phase, claim))
    if relay and nonce:
        relayed_watch(dst, relayed)
    return dst


def relayed_watch(run: Path, relayed: list[tuple[dict[str, Any], Any]]) -> None:
    """Rewrite the sensor's streams as they would have recorded a relay.

    The prover cannot write these streams (the sensor's process does); this stands in for
    the sensor, giving the forger its best case: none of the lying phase's own
    checkpoints were written where the watcher looks; each substitute checkpoint was
    written (closed, hashed) at the time its step falls at the claimed pace, by a process
    in the workload's own tree (so fanotify names a workload writer); and the bytes it
    needed reached the host just before each write, as the best encoding we could build
    (``relay_encoding``): the sensor's receive counters carry them, which the prover
    cannot remove."""
    from inspectorate.capture._ckpt_watch import SCHEMA, STREAM

    path = run / STREAM
    if not path.exists():
        return
    dirs = tuple(f"claims/{phase['phase']}/" for phase, _ in relayed)
    old = _jsonl(path)
    start = next((r for r in old if r.get("kind") == "start"), {})
    writer = next((r["writers"] for r in old if r.get("kind") == "written" and r.get("writers")), None)
    rows = [
        {k: v for k, v in r.items() if k != "prev_record_hash"}
        for r in old
        if not (r.get("kind") == "written" and str(r.get("path", "")).startswith(dirs))
    ]
    arrivals: list[tuple[float, float, int]] = []  # (from, to, bytes) received on the wire
    for phase, claim in relayed:
        t0, t1 = float(phase["t"]), float(phase["t_end"])
        sizes = relay_encoding(claim)
        prev_t = t0
        for ref, size in zip(claim.checkpoints, sizes):
            t = t0 + (0.02 + 0.96 * ref.step / max(claim.spec.steps, 1)) * (t1 - t0)
            row = {
                "schema": SCHEMA,
                "kind": "written",
                "t": t,
                "path": f"claims/{phase['phase']}/{ref.file}",
                "event": "moved_to",
                "size": claim.path_of(ref).stat().st_size,
                "file_sha256": ref.file_sha256,
                "weights_sha256": ref.weights_sha256,
            }
            if start.get("writers") == "fanotify":
                row["writers"] = writer or [{"pid": 0, "comm": "python", "in_workload": True}]
            rows.append(row)
            if size:
                arrivals.append((prev_t, t - 0.05, size))
            prev_t = t
    order = {"start": 0, "stop": 2}
    rows.sort(key=lambda r: (order.get(str(r.get("kind")), 1), float(r.get("t", 0.0))))
    _write(path, rechain(rows))
    _add_ingress(run / "sensor.jsonl", arrivals)


def relay_encoding(claim: Any) -> list[int]:
    """Bytes a relay sends for each claimed checkpoint: nothing for the start (a seed's
    initialisation or a known model, made on the host), then each checkpoint's weights
    as the XOR with the previous one, split into byte planes and LZMA-compressed (sign
    and exponent bytes of a small update barely change; the low mantissa bytes do not
    compress). Measured: 0.52-0.77 of the raw fp32 bytes."""
    import lzma

    import numpy as np
    import torch

    sizes, prev = [], None
    for ref in claim.checkpoints:
        blob = torch.load(claim.path_of(ref), map_location="cpu", weights_only=True)
        state = blob.get("state_dict", blob)
        words = np.concatenate(
            [
                state[k].detach().contiguous().reshape(-1).numpy().view(np.uint8)
                for k in sorted(state)
                if isinstance(state[k], torch.Tensor)
            ]
        )
        if prev is None or prev.size != words.size:
            sizes.append(0 if prev is None else int(words.size))
        else:
            delta = (words ^ prev).reshape(-1, 4).T.copy()  # fp32 byte planes
            sizes.append(len(lzma.compress(delta.tobytes(), preset=1)))
        prev = words
    return sizes


def _add_ingress(path: Path, arrivals: list[tuple[float, float, int]]) -> None:
    """Add the relayed bytes to the host's busiest non-loopback interface, each batch
    spread evenly over the span it was received in, and re-chain the stream."""
    if not path.exists() or not arrivals:
        return
    rows = [{k: v for k, v in r.items() if k != "prev_record_hash"} for r in _jsonl(path)]
    samples = [r for r in rows if r.get("kind") == "sample" and isinstance(r.get("net"), dict)]
    names = [k for k in (samples[0]["net"] if samples else {}) if k != "lo"]
    if not names:
        return
    nic = max(names, key=lambda k: samples[0]["net"][k][0])
    for r in samples:
        got = sum(n * min(max((r["t"] - a) / max(b - a, 1e-6), 0.0), 1.0) for a, b, n in arrivals)
        counters = list(r["net"][nic])
        counters[0] += int(got)
        r["net"] = {**r["net"], nic: counters}
    _write(path, rechain(rows))
