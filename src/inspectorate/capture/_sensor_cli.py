"""``inspectorate sensor``: the verifier-owned sampler as a command (mounted in cli.py).

``python -m inspectorate.capture._sensor_cli --pid PID --out DIR`` runs it standalone
(the testbed starts it that way, as a separate process, for every run).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

from inspectorate.errors import InputError


def sensor(
    pid: int | None = typer.Option(None, "--pid", help="Root of the workload's process tree."),
    cgroup: Path | None = typer.Option(None, "--cgroup", help="cgroup v2 directory of the workload."),
    out: Path = typer.Option(..., "--out", help="Directory for sensor.jsonl (hash-chained)."),
    hz: float = typer.Option(10.0, "--hz", help="Samples per second (>= 10)."),
    duration: float | None = typer.Option(None, "--duration", help="Stop after this many seconds."),
) -> None:
    """Sample a workload's process tree from /proc until it exits (or SIGTERM)."""
    from inspectorate.capture._proc_sensor import MIN_HZ, PROC, run_sensor

    if (pid is None) == (cgroup is None):
        raise InputError("give exactly one of --pid or --cgroup")
    if hz < MIN_HZ:
        raise InputError(f"--hz must be >= {MIN_HZ:g}")
    if pid is not None and not (PROC / str(pid)).exists():
        raise InputError(f"no process with pid {pid}")
    if cgroup is not None and not (cgroup / "cgroup.procs").exists():
        raise InputError("not a cgroup v2 directory (no cgroup.procs)", cgroup)
    run_sensor(out, pid=pid, cgroup=cgroup, hz=hz, duration=duration)


def main() -> None:
    app = typer.Typer(add_completion=False)
    app.command()(sensor)
    try:
        app(standalone_mode=False)
    except InputError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
