"""``inspectorate redteam``: the typer command the lead mounts in cli.py.

Mount with ``from inspectorate.attacks._cli import redteam as redteam_command`` and
``app.command("redteam")(redteam_command)``. Bad input raises InputError (exit 2 there).
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from inspectorate.errors import InputError


def redteam(
    rounds: int = typer.Option(20, "--rounds", min=1, help="Rounds to play."),
    attacker: str = typer.Option("offline", "--attacker", help="offline | anthropic | openai"),
    commitment: Path = typer.Option(..., "--commitment", help="Commitment YAML."),
    baseline: Path = typer.Option(..., "--baseline", help="Clean, compliant trace to inflate and hide."),
    out: Path = typer.Option(Path("rounds.jsonl"), "--out", help="One JSON line per round."),
    seed: int = typer.Option(0, "--seed", help="Seed (offline search and attack randomness)."),
    defend: bool = typer.Option(
        False, "--defend", help="Propose the smallest rule change catching the evasions."
    ),
    unsandboxed: bool = typer.Option(
        False,
        "--unsandboxed",
        help="Run attacker code without the OS sandbox (bwrap + seccomp); warns every round.",
    ),
) -> None:
    """Play the red team against COMMITMENT: each round hides violate(BASELINE); writes OUT."""
    from inspectorate.attacks._loop import redteam as run
    from inspectorate.commitment import load_commitment
    from inspectorate.trace import read_trace

    if attacker not in ("offline", "anthropic", "openai"):
        raise InputError(f"unknown attacker {attacker!r}; accepted: offline, anthropic, openai")
    report = run(
        rounds,
        attacker,
        load_commitment(commitment),
        read_trace(baseline).records,
        out,
        seed=seed,
        defend=defend,
        unsandboxed=unsandboxed,
    )
    typer.echo(report.summary())
    if report.defense:
        patch = out.with_suffix(".defense.json")
        patch.write_text(json.dumps(report.defense, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        typer.echo(f"defense written to {patch}")
