"""``inspectorate capture-fabric``: one data-parallel job across N namespace "hosts" (mounted
lazily by cli.py)."""

from __future__ import annotations

from pathlib import Path

import typer


def capture_fabric(
    cmd: list[str] = typer.Argument(None, help="The command each host runs as its rank, after '--'."),
    hosts: int = typer.Option(2, "--hosts", help="Hosts (network namespaces, one rank each), 2..16."),
    claims: Path = typer.Option(..., "--claims", help="Claims file (YAML/JSON), as for `capture`."),
    out: Path = typer.Option(..., "--out", help="Fabric directory to write (must be new or empty)."),
    hz: float = typer.Option(10.0, "--hz", help="Sensor samples per second per host (>= 10)."),
    sign_every: float = typer.Option(1.0, "--sign-every", help="Seconds between signed chain heads."),
    challenge: str | None = typer.Option(None, "--challenge", help="The verifier's nonce (random if unset)."),
    port: int = typer.Option(29500, "--port", help="MASTER_PORT on host 0."),
    force: bool = typer.Option(False, "--force", help="Replace an earlier fabric in --out."),
) -> None:
    """Run CMD once per host with RANK/WORLD_SIZE/MASTER_ADDR set, each host in its own
    namespace and cgroup on a veth mesh, under its own signing sensor; write one run
    directory per host, the hosts' logs, the verifier's keyring and fabric.json."""
    from inspectorate.capture._fabric import capture_fabric as run
    from inspectorate.errors import InputError

    if hz < 10.0:
        raise InputError("--hz must be >= 10")
    if sign_every <= 0:
        raise InputError("--sign-every must be > 0")
    result = run(
        cmd or [],
        claims,
        out,
        hosts=hosts,
        hz=hz,
        sign_every=sign_every,
        challenge=challenge,
        port=port,
        force=force,
    )
    typer.echo(
        f"captured fabric {result.out} ({len(result.exit_codes)} hosts; sensor samples "
        f"{result.samples}; exit codes {result.exit_codes})",
        err=True,
    )
    raise typer.Exit(result.exit_code)
