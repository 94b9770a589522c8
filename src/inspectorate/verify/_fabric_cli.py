"""``inspectorate verify-fabric``: the cross-host checks over a fabric directory (mounted
lazily by cli.py)."""

from __future__ import annotations

import enum
import json
from pathlib import Path

import typer


class Scope(str, enum.Enum):
    all = "all"
    host = "host"
    fabric = "fabric"


def verify_fabric(
    fabric: Path = typer.Argument(..., help="A `capture-fabric` directory (fabric.json, hosts/, ledger/)."),
    keyring: Path | None = typer.Option(None, "--keyring", help="The verifier's keyring (default FABRIC/verifier/ring.json)."),
    ledger: Path | None = typer.Option(None, "--ledger", help="Directory of the hosts' logs (default FABRIC/ledger)."),
    challenge: str | None = typer.Option(None, "--challenge", help="The nonce issued (default FABRIC/verifier/challenge.txt)."),
    scope: Scope = typer.Option(Scope.all, "--scope", help="host: per-host evidence only; fabric: cross-host only."),
    json_out: bool = typer.Option(False, "--json", help="Print the verdict as JSON."),
) -> None:
    """Check each host's signed evidence and the cross-host laws (link conservation,
    world size from traffic, all-reduce volume, unlisted signers); exit 0 consistent,
    1 otherwise."""
    from inspectorate.verify._fabric import verify_fabric as run

    verdict = run(fabric, keyring=keyring, ledger=ledger, challenge=challenge, scope=None if scope is Scope.all else scope.value)
    if json_out:
        typer.echo(json.dumps(verdict.to_dict(), indent=2, sort_keys=True))
    else:
        for check, found in verdict.findings:
            problems = found.evidence.get("problems") or []
            typer.echo(f"{found.decision:>12}  {check.scope:<6} {check.name}" + (f": {problems[0]}" if problems else ""))
            for extra in problems[1:4]:
                typer.echo(f"{'':>20} {extra}")
        typer.echo(f"fabric {verdict.outcome}")
    raise typer.Exit(0 if verdict.outcome == "consistent" else 1)
