"""``inspectorate verify``: the typer command the lead mounts in cli.py.

Mounted by ``inspectorate.cli``. Bad input raises InputError, which the CLI's one
handler turns into exit 2 and one line on stderr.
"""

from __future__ import annotations

import enum
from pathlib import Path

import typer

from inspectorate._cli_options import Format, FormatOption, QuietOption, warn


class Policy(str, enum.Enum):
    strict = "strict"
    lenient = "lenient"


def verify(
    run_dir: Path = typer.Argument(
        ..., help="Run directory (testbed flat layout or the seed's phases/ layout)."
    ),
    commitment: Path | None = typer.Option(
        None, "--commitment", "-c", help="Commitment YAML checked over windows.jsonl."
    ),
    format: FormatOption = Format.text,
    policy: Policy = typer.Option(
        Policy.strict,
        "--policy",
        help="strict: an unverifiable phase is not certified (exit 1); lenient: reported, certified.",
    ),
    quiet: QuietOption = False,
    recomputed: list[str] = typer.Option(
        [],
        "--recomputed",
        help="PHASE=FILE: a `difr verify` or `replay` finding for that phase (repeatable).",
    ),
    agent: bool = typer.Option(
        False,
        "--agent",
        help="LLM tier for the commitment's semantic rules no offline judge covers (keys from env).",
    ),
) -> None:
    """Judge every phase of RUN_DIR from its telemetry; exit 0 certified, 1 not, 2 bad input."""
    from inspectorate._commands import verify_files
    from inspectorate.report import progress, render_run_text

    verdict = verify_files(
        run_dir,
        commitment,
        policy=policy.value,
        recomputed=recomputed,
        agent=agent,
        notify=warn,
        progress=lambda total, _large: progress(total, "phases", quiet=quiet),
    )
    typer.echo(verdict.to_json() if format is Format.json else render_run_text(verdict))
    raise typer.Exit(verdict.exit_code)
