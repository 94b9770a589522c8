"""Run the phase schedule on one host into a flat run directory; sweep several hosts.

The parent process only watches: it writes ``provenance.json``, runs the sensors
(``cpu.csv``, ``netdev.log``, ``nvsmi.csv`` on GPUs) for the whole run, spawns the ranks
(:mod:`inspectorate.testbed._worker`) and shows progress from the labels they write.
Keeping the parent free of torch compute also keeps it safe to fork helpers later.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from inspectorate._paths import output_dir
from inspectorate.errors import InputError
from inspectorate.models._corpus import load_corpus
from inspectorate.testbed.phases import PhaseSpec, select_phases
from inspectorate.testbed.profiles import Profile, get_profile
from inspectorate.testbed.windows import iso_z

HOST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def code_commit() -> str:
    """``git:inspectorate@<short sha>`` of the checkout this module lives in, or ``@unknown``."""
    try:
        sha = subprocess.run(
            ["git", "-C", str(Path(__file__).resolve().parent), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        sha = ""
    return f"git:inspectorate@{sha or 'unknown'}"


def free_port() -> int:
    """A TCP port on loopback that was free a moment ago (the rendezvous port)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def clock_sample() -> dict[str, float]:
    """Wall clock minus monotonic clock, sampled back to back.

    Without NTP access we cannot measure the offset to true time; what we can record is
    how the wall clock moved against the monotonic clock during the run (a step or slew
    of the system clock shows up as drift), which is what aligning two hosts' streams
    needs: each host's timestamps are trusted only up to its drift.
    """
    mono = time.monotonic()
    wall = time.time()
    return {"wall_s": wall, "wall_minus_monotonic_s": wall - mono}


def gpu_info() -> list[dict[str, Any]]:
    """Name, memory and capability of each visible CUDA device (empty without one)."""
    import torch

    if not torch.cuda.is_available():
        return []
    out = []
    for i in range(torch.cuda.device_count()):
        props = torch.cuda.get_device_properties(i)
        out.append(
            {
                "index": i,
                "name": props.name,
                "memory_total_mb": props.total_memory // 2**20,
                "capability": f"{props.major}.{props.minor}",
                "uuid": str(getattr(props, "uuid", "")),
            }
        )
    return out


def provenance(
    profile: Profile,
    host_id: str,
    *,
    seed: int,
    threads: int,
    phases: Sequence[PhaseSpec],
    budgets: Sequence[float],
    scale: float,
    corpus_path: Path | None,
) -> dict[str, Any]:
    """Host, software, hardware and run settings, written before any phase starts."""
    import psutil
    import torch

    corpus = load_corpus(corpus_path)
    _check_vocab(profile, len(corpus.vocab), corpus_path)
    start = clock_sample()
    return {
        "schema": "inspectorate.provenance/1",
        "host_id": host_id,
        "hostname": platform.node(),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "gpus": gpu_info(),
        "cpu_count_logical": os.cpu_count(),
        "cpu_count_physical": psutil.cpu_count(logical=False),
        "ram_total_gb": round(psutil.virtual_memory().total / 2**30, 2),
        "code_commit": code_commit(),
        "start_time": iso_z(start["wall_s"]),
        "clock": {"start": start, "method": (clock_sample.__doc__ or "").split("\n\n")[1].strip()},
        "profile": profile.name,
        "device": profile.device,
        "seed": seed,
        "threads_per_rank": threads,
        "world_size": profile.world_size,
        "window_s": profile.window_s,
        "sensor_hz": profile.sensor_hz,
        "scale": scale,
        "roles": {k: vars(v) for k, v in profile.roles.items()},
        "batch_size": {k: v.batch_size for k, v in profile.roles.items()},
        "phases": [{"phase": p.name, "budget_s": b} for p, b in zip(phases, budgets)],
        "corpus": {
            "path": str(corpus_path) if corpus_path else "default",
            "tag": corpus.name,
            "chars": int(len(corpus.tokens)),
            "vocab": len(corpus.vocab),
            "fingerprints": {s: corpus.fingerprint(s) for s in ("pretrain", "finetune", "val")},
        },
    }


def _write_json(path: Path, obj: Any) -> None:
    import json

    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _check_vocab(profile: Profile, vocab: int, corpus_path: Path | None) -> None:
    """A character outside the model's embedding table would crash a rank mid-run."""
    from inspectorate.models._gpt import preset

    smallest = min(preset(role.preset).vocab_size for role in profile.roles.values())
    if vocab > smallest:
        raise InputError(
            f"corpus has {vocab} distinct characters; the models take at most {smallest}", corpus_path
        )


def _check_inputs(profile: Profile, host_id: str, out: Path) -> None:
    if not HOST_ID.match(host_id):
        raise InputError(f"host id {host_id!r} must be letters, digits, '.', '_' or '-' (max 64)")
    output_dir(out, "--out")  # a run directory is evidence: always a new (or empty) one
    if profile.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InputError(f"profile {profile.name!r} needs CUDA, and no CUDA device is visible")


def run_testbed(
    profile: str,
    host_id: str,
    out: Path | str,
    *,
    phases: str | Sequence[str] | None = None,
    seed: int = 0,
    threads: int | None = None,
    batch_size: int | None = None,
    batch_scale: float = 1.0,
    scale: float = 1.0,
    progress: bool = True,
    corpus: Path | str | None = None,
    max_steps: int | None = None,
    keep_checkpoints: bool = False,
    replay_claims: bool = False,
) -> Path:
    """Run ``phases`` (default: all 15) of ``profile`` as ``host_id``; return the run dir.

    ``batch_size`` sets every role's training batch, ``batch_scale`` multiplies them;
    ``scale`` multiplies every phase's duration; ``max_steps`` caps steps per phase too.
    Checkpoints go to ``out/checkpoints`` only when ``keep_checkpoints`` (the 124M one is
    half a gigabyte). ``replay_claims``: every training job also writes a replay claim
    with weights + AdamW checkpoints to ``out/claims/<phase>/`` (``testbed.claims``; 12
    bytes a parameter per checkpoint, O(log steps) checkpoints a job).
    """
    import torch.multiprocessing as mp

    from inspectorate.testbed._worker import WorkerPlan, worker_main

    prof = _scaled_batches(get_profile(profile).with_batch_size(batch_size), batch_scale)
    selected = select_phases(list(phases) if phases is not None and not isinstance(phases, str) else phases)
    budgets = tuple(prof.duration(p, scale) for p in selected)
    out = Path(out)
    corpus_path = Path(corpus) if corpus is not None else None
    _check_inputs(prof, host_id, out)
    threads = threads or max(1, (os.cpu_count() or 1) // prof.world_size)
    prov = provenance(  # reads the corpus: a bad one is refused before anything is written
        prof,
        host_id,
        seed=seed,
        threads=threads,
        phases=selected,
        budgets=budgets,
        scale=scale,
        corpus_path=corpus_path,
    )
    out.mkdir(parents=True, exist_ok=True)
    _write_json(out / "provenance.json", prov)
    scratch = Path(tempfile.mkdtemp(prefix="inspectorate-testbed-"))
    plan = WorkerPlan(
        out=out,
        scratch=scratch,
        checkpoints=out / "checkpoints" if keep_checkpoints else scratch,
        host_id=host_id,
        profile=prof,
        phases=tuple(selected),
        budgets=budgets,
        seed=seed,
        threads=threads,
        corpus_path=corpus_path,
        port=free_port(),
        grid_t0=time.time(),
        code_commit=prov["code_commit"],
        max_steps=max_steps,
        replay_claims=replay_claims,
    )
    # OpenMP threads that spin while waiting burn CPU-seconds that measure nothing; passive
    # waiting keeps the sensor's CPU time a measure of work (the compute spot-check needs it).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    # ranks in a cgroup and network namespace of their own where the rights exist, so the
    # sensor's CPU and traffic are theirs (capture._isolate); else the parent's tree, whose
    # traffic verify then never reads (host-wide counters)
    from inspectorate.capture._isolate import Isolation

    isolation = Isolation.create_if_permitted()
    try:
        sensor = start_sensor(out, os.getpid(), target=isolation.sensor_target if isolation else None)
    except BaseException:
        if isolation is not None:
            isolation.close()
        raise
    if isolation is not None:
        plan = replace(plan, isolation=isolation.membership)
    if replay_claims:  # claims derive their seeds from the challenge the sensor issued
        from inspectorate.verify._sensor_features import issued_nonce

        plan = replace(plan, nonce=issued_nonce(out))  # received once, as over the wire
    try:
        from inspectorate.capture import Sensors

        with Sensors(out, hz=prof.sensor_hz, gpu=None if prof.device == "cuda" else False):
            procs = mp.spawn(worker_main, args=(plan,), nprocs=prof.world_size, join=False)
            _wait(procs, out, selected, budgets, progress)
    finally:
        stop_sensor(sensor)
        if isolation is not None:
            isolation.close()
        shutil.rmtree(scratch, ignore_errors=True)
    end = clock_sample()
    prov["clock"].update(
        end=end, drift_s=end["wall_minus_monotonic_s"] - prov["clock"]["start"]["wall_minus_monotonic_s"]
    )
    prov["end_time"] = iso_z(end["wall_s"])
    _write_json(out / "provenance.json", prov)
    return out


def start_sensor(
    out: Path, pid: int, hz: float = 10.0, timeout_s: float = 30.0, target: list[str] | None = None
) -> subprocess.Popen[bytes]:
    """``inspectorate sensor --pid PID`` (or ``target``, e.g. ``--cgroup DIR``) as a separate
    process (it excludes itself from the tree it samples); returns once its first sample is
    on disk, so no phase runs unseen."""
    cmd = [
        sys.executable,
        "-m",
        "inspectorate.cli",
        "sensor",
        *(target or ["--pid", str(pid)]),
        "--out",
        str(out),
    ]
    if sys.platform.startswith("linux"):  # the checkpoint watcher: what weights the run wrote
        cmd += ["--watch", str(out / "claims")]
    # A fixed rate: the testbed's phases are seconds long and its checks (a policy saved at
    # a phase's end, a burst of training) sit at phase edges, which the adaptive cadence's
    # ~1.25 s steady gaps blur; the testbed is the reference run, not the lean one.
    cmd += ["--hz", str(hz), "--min-hz", str(hz)]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
    path, deadline = out / "sensor.jsonl", time.monotonic() + timeout_s
    while time.monotonic() < deadline and proc.poll() is None:
        if path.exists() and path.read_bytes().count(b"\n") >= 2:
            return proc
        time.sleep(0.05)
    proc.kill()
    raise InputError(f"the sensor process did not start (exit code {proc.poll()})", out)


def stop_sensor(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM: the sensor writes its last sample and a ``stop`` record, then exits."""
    proc.terminate()
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _scaled_batches(profile: Profile, factor: float) -> Profile:
    if factor == 1.0:
        return profile
    roles = {k: replace(v, batch_size=max(1, round(v.batch_size * factor))) for k, v in profile.roles.items()}
    return replace(profile, roles=roles)


def _current_phase(labels: Path) -> tuple[int, float | None]:
    """(phases finished, start time of the running one) from the labels written so far."""
    import json

    if not labels.exists():
        return 0, None
    done, started = 0, None
    for line in labels.read_text(encoding="utf-8").splitlines():
        event = json.loads(line)
        if event["event"] == "end":
            done, started = done + 1, None
        else:
            started = event["t"]
    return done, started


def _wait(procs: Any, out: Path, phases: Sequence[PhaseSpec], budgets: Sequence[float], show: bool) -> None:
    """Join the ranks, drawing a progress bar (phase name, budget used) when ``show``."""
    if not show:
        while not procs.join(timeout=1.0):
            pass
        return
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    total = sum(budgets)
    columns = (
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        TextColumn("{task.percentage:>3.0f}%"),
        TimeElapsedColumn(),
    )
    with Progress(*columns, transient=False) as bar:
        task = bar.add_task("starting ranks", total=total)
        while not procs.join(timeout=0.5):
            done, started = _current_phase(out / "workload_labels.jsonl")
            finished = sum(budgets[:done])
            if done < len(phases) and started is not None:
                running = min(time.time() - started, budgets[done])
                bar.update(
                    task,
                    completed=finished + running,
                    description=f"{done + 1}/{len(phases)} {phases[done].name}",
                )
            else:
                bar.update(task, completed=finished)
        bar.update(task, completed=total, description="done")


def sweep(
    hosts: int,
    out: Path | str,
    profile: str = "laptop",
    *,
    scale: float = 1.0,
    progress: bool = True,
    phases: str | Sequence[str] | None = None,
    corpus: Path | str | None = None,
    replay_claims: bool = False,
) -> list[Path]:
    """Run ``host0..host<N-1>`` one after another into ``out/<host>``, varying per host the
    threads per rank (1, 2), the batch size (x1, x0.5, x1.5) and the seed (= host index),
    so a leave-one-host-out evaluation sees hosts that differ the way real ones do.
    Each host also gets ``out/<host>-competent``: the same run with every lying phase's
    prover-owned streams forged to agree with its claim (``testbed.competent``)."""
    from inspectorate.testbed.competent import make_competent

    if hosts < 1:
        raise InputError("--hosts must be >= 1")
    runs = []
    for i in range(hosts):
        runs.append(
            run_testbed(
                profile,
                f"host{i}",
                Path(out) / f"host{i}",
                phases=phases,
                seed=i,
                threads=(1, 2)[i % 2],
                batch_scale=(1.0, 0.5, 1.5)[i % 3],
                scale=scale,
                progress=progress,
                corpus=corpus,
                replay_claims=replay_claims,
            )
        )
        runs.append(make_competent(runs[-1], Path(out) / f"host{i}-competent"))
    return runs
