"""``inspectorate capture``: run a command isolated under the sensor (mounted in cli.py)."""

from __future__ import annotations

from pathlib import Path

import typer


def capture(
    cmd: list[str] = typer.Argument(None, help="The command and its arguments, after '--'."),
    claims: Path = typer.Option(
        ..., "--claims", help="Claims file (YAML/JSON): phase schedule and defaults."
    ),
    out: Path = typer.Option(..., "--out", help="Run directory to write (must be new or empty)."),
    shared_host: bool = typer.Option(
        False, "--shared-host", help="Run without cgroup/namespace (traffic is then never attributable)."
    ),
    hz: float = typer.Option(10.0, "--hz", help="Sensor samples per second (>= 10)."),
    force: bool = typer.Option(False, "--force", help="Replace a previous capture's files in --out."),
    user: str = typer.Option(
        None,
        "--user",
        help="Run CMD as this user (name, uid, or 'sudo' for the user behind sudo). "
        "A root workload can kill the sensor and rewrite the run directory.",
    ),
) -> None:
    """Run CMD in its own cgroup and network namespace under the verifier-owned sensor and
    write a run directory `inspectorate verify` reads; exits with CMD's exit code."""
    from inspectorate.capture._capture import capture as run_capture
    from inspectorate.errors import InputError

    if hz < 10.0:
        raise InputError("--hz must be >= 10")
    result = run_capture(cmd or [], claims, out, shared_host=shared_host, hz=hz, force=force, user=user)
    typer.echo(
        f"captured {result.run_dir} ({'isolated' if result.isolated else 'shared host: traffic not attributable'}; "
        f"{result.sensor_samples} sensor samples; exit {result.exit_code})",
        err=True,
    )
    raise typer.Exit(result.exit_code)
