"""``inspectorate verify-fabric``: the cross-host checks over a fabric directory (mounted
lazily by cli.py)."""

from __future__ import annotations

import enum
from pathlib import Path

import typer

from inspectorate._cli_options import Format, FormatOption


class Scope(str, enum.Enum):
    all = "all"
    host = "host"
    fabric = "fabric"


def verify_fabric(
    fabric: Path = typer.Argument(..., help="A `capture-fabric` directory (fabric.json, hosts/, ledger/)."),
    keyring: Path | None = typer.Option(
        None, "--keyring", help="The verifier's keyring (default FABRIC/verifier/ring.json)."
    ),
    ledger: Path | None = typer.Option(
        None, "--ledger", help="Directory of the hosts' logs (default FABRIC/ledger)."
    ),
    challenge: str | None = typer.Option(
        None, "--challenge", help="The nonce issued (default FABRIC/verifier/challenge.txt)."
    ),
    scope: Scope = typer.Option(
        Scope.all, "--scope", help="host: per-host evidence only; fabric: cross-host only."
    ),
    format: FormatOption = Format.text,
) -> None:
    """Check each host's signed evidence and the cross-host laws (link conservation,
    world size from traffic, all-reduce volume, unlisted signers); exit 0 consistent,
    1 otherwise."""
    from inspectorate.verify._fabric import verify_fabric as run

    verdict = run(
        fabric,
        keyring=keyring,
        ledger=ledger,
        challenge=challenge,
        scope=None if scope is Scope.all else scope.value,
    )
    typer.echo(verdict.to_json() if format is Format.json else verdict.to_text())
    raise typer.Exit(0 if verdict.outcome == "consistent" else 1)
