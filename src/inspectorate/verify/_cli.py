"""``inspectorate verify``: the typer command the lead mounts in cli.py.

Mounted by ``inspectorate.cli``. Bad input raises InputError, which the CLI's one
handler turns into exit 2 and one line on stderr.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from pathlib import Path

import typer


class Format(str, enum.Enum):
    text = "text"
    json = "json"


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
    format: Format = typer.Option(Format.text, "--format", "-f"),
    policy: Policy = typer.Option(
        Policy.strict,
        "--policy",
        help="strict: an unverifiable phase is not certified (exit 1); lenient: reported, certified.",
    ),
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="No progress bar (none is shown off a terminal)."
    ),
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
    from inspectorate.commitment import load_commitment
    from inspectorate.report import progress, render_run_text
    from inspectorate.trace import load_run
    from inspectorate.verify._inspector import RunVerdict, verify_run
    from inspectorate.verify._recomputed import read_recomputed
    from inspectorate.verify._registry import Finding

    promised = load_commitment(commitment) if commitment is not None else None
    extra: dict[str, list[Finding]] = {}
    for phase, found in map(read_recomputed, recomputed):
        extra.setdefault(phase, []).append(found)
    run = load_run(run_dir)
    judge: Callable[..., RunVerdict] = verify_run
    if agent:
        from inspectorate.agent._cli import agent_verify

        judge = agent_verify
    with progress(len(run.phases()), "phases", quiet=quiet) as advance:
        verdict = judge(run, promised, policy=policy.value, on_phase=advance, recomputed=extra)
    if format is Format.json:
        from inspectorate.report._archive import verify_document

        typer.echo(verify_document(verdict.to_dict(), run, commitment))
    else:
        typer.echo(render_run_text(verdict))
    raise typer.Exit(verdict.exit_code)
