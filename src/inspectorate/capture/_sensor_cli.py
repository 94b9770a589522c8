"""``inspectorate sensor``: the verifier-owned sampler as a command (mounted in cli.py).

The testbed starts it as ``python -m inspectorate.cli sensor --pid PID --out DIR``, a
separate process outside the workload's tree, for every run.
"""

from __future__ import annotations

from pathlib import Path

import typer

from inspectorate._paths import output_dir
from inspectorate.errors import InputError

# The escape watch's membership audit: ~60 us each, so 4 a second cost ~0.25 ms of CPU a
# second (at 20 a second it doubled the adaptive sensor's ~1 ms/s floor). New processes
# are tracked from fork events at once, whatever the audit rate.
AUDIT_PERIOD_S = 0.25


def sensor(
    pid: int | None = typer.Option(None, "--pid", help="Root of the workload's process tree."),
    cgroup: Path | None = typer.Option(
        None, "--cgroup", help="The workload's cgroup directory (v2, or v1 in any hierarchy)."
    ),
    out: Path = typer.Option(..., "--out", help="Directory for sensor.jsonl (hash-chained)."),
    hz: float = typer.Option(10.0, "--hz", help="Samples per second while anything moves (>= 10)."),
    min_hz: float | None = typer.Option(
        None,
        "--min-hz",
        help="Slowest rate while the workload is steady (default 0.8 with --cgroup; --hz with --pid; "
        "equal to --hz: a fixed rate).",
    ),
    duration: float | None = typer.Option(None, "--duration", help="Stop after this many seconds."),
    key: Path | None = typer.Option(None, "--key", help="Host key: sign the chain head every window."),
    log: Path | None = typer.Option(None, "--log", help="Transparency log directory the signed heads go to."),
    log_key: Path | None = typer.Option(None, "--log-key", help="The log operator's key (signs tree heads)."),
    sign_every: float = typer.Option(
        5.0, "--sign-every", help="Seconds per signed window (the first and last record are always signed)."
    ),
    challenge: str | None = typer.Option(None, "--challenge", help="The verifier's nonce for this run."),
    control: Path | None = typer.Option(
        None,
        "--control",
        help="A unix socket path to listen on: `probe` asks for a sample now (capture's phase edges).",
    ),
    watch: list[Path] = typer.Option(
        [],
        "--watch",
        help="Checkpoint directory to watch (repeatable): sensor_ckpt.jsonl records what is written.",
    ),
    escapes: bool = typer.Option(
        False,
        "--escapes",
        help="With --cgroup: record processes that leave the cgroup or its network namespace "
        "(sensor_escape.jsonl).",
    ),
) -> None:
    """Sample a workload's process tree from /proc until it exits (or SIGTERM)."""
    from inspectorate.capture._proc_sensor import MIN_HZ, PROC, run_sensor

    if (pid is None) == (cgroup is None):
        raise InputError("give exactly one of --pid or --cgroup")
    if hz < MIN_HZ:
        raise InputError(f"--hz must be >= {MIN_HZ:g}")
    if min_hz is not None and not 0 < min_hz <= hz:
        raise InputError("--min-hz must be above 0 and at most --hz")
    if pid is not None and not (PROC / str(pid)).exists():
        raise InputError(f"no process with pid {pid}")
    if cgroup is not None and not (cgroup / "cgroup.procs").exists():
        raise InputError("not a cgroup directory (no cgroup.procs)", cgroup)
    output_dir(out, "--out", force=True)  # a sensor resumes its own chain in an existing directory
    signer = None
    if (key, log, log_key).count(None) not in (0, 3):
        raise InputError("--key, --log and --log-key go together")
    if key is not None and log is not None and log_key is not None:
        from inspectorate.ledger._heads import open_signer

        signer = open_signer(key, log, log_key, window_s=sign_every)
    watcher = None
    if watch:  # checkpoint writes, hashed in this process (outside the workload's tree)
        from inspectorate.capture._ckpt_watch import CheckpointWatcher, WatchError

        try:
            target = {"pid": pid} if pid is not None else {"cgroup": str(cgroup)}
            watcher = CheckpointWatcher(out, list(watch), workload=target).start()
        except WatchError as exc:
            raise InputError(f"cannot watch checkpoints ({exc})", watch[0]) from None
    if escapes and cgroup is None:
        raise InputError("--escapes needs --cgroup (a process tree has no membership to leave)")
    guard = None
    if escapes and cgroup is not None:  # a thread here, outside the workload's tree
        from inspectorate.capture._escape import EscapeWatch

        guard = EscapeWatch(out, [cgroup], period_s=AUDIT_PERIOD_S).start()
    try:
        run_sensor(
            out,
            pid=pid,
            cgroup=cgroup,
            hz=hz,
            duration=duration,
            signer=signer,
            challenge=challenge,
            min_hz=min_hz,
            control=control,
        )
    finally:
        if watcher is not None:
            watcher.stop()
        if guard is not None:
            guard.stop()
