"""``inspectorate verify``: the typer command the lead mounts in cli.py.

Mount with ``from inspectorate.verify._cli import verify as verify_command`` and
``app.command("verify")(verify_command)``. Bad input raises InputError, which the main
CLI turns into exit 2 and one line on stderr; ``python -m inspectorate.verify._cli``
runs the command standalone with the same contract.
"""

from __future__ import annotations

import enum
import sys
from pathlib import Path

import typer

from inspectorate.errors import InputError


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
) -> None:
    """Judge every phase of RUN_DIR from its telemetry; exit 0 certified, 1 not, 2 bad input."""
    from inspectorate.commitment import load_commitment
    from inspectorate.verify._inspector import verify_run
    from inspectorate.verify._text import render_text

    promised = load_commitment(commitment) if commitment is not None else None
    verdict = verify_run(run_dir, promised, policy=policy.value)
    typer.echo(verdict.to_json() if format is Format.json else render_text(verdict))
    raise typer.Exit(verdict.exit_code)


def main() -> None:
    """Standalone entry: same exit codes as the main CLI (2 + one line for bad input)."""
    app = typer.Typer(add_completion=False)
    app.command()(verify)
    try:
        app(standalone_mode=False)
    except InputError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        sys.exit(2)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()
