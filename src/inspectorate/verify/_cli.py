"""``inspectorate verify``: the typer command the lead mounts in cli.py.

Mounted by ``inspectorate.cli``. Bad input raises InputError, which the CLI's one
handler turns into exit 2 and one line on stderr.
"""

from __future__ import annotations

import enum
from pathlib import Path

import typer

from inspectorate._cli_options import Format, FormatOption, QuietOption, warn
from inspectorate.errors import InputError


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
    replay: bool = typer.Option(
        False,
        "--replay",
        help="Replay every training claim handed over under RUN_DIR/claims/ (segment 0 + a random draw); needs --corpus.",
    ),
    corpus: Path | None = typer.Option(
        None, "--corpus", help="The verifier's copy of the training text (for --replay)."
    ),
    replay_draws: int = typer.Option(
        1, "--replay-draws", min=0, help="Random segments replayed per claim beyond segment 0."
    ),
    replay_seed: int | None = typer.Option(
        None, "--replay-seed", help="Seed of the segment draw (default: fresh entropy; reported)."
    ),
    agent: bool = typer.Option(
        False,
        "--agent",
        help="LLM tier for the commitment's semantic rules no offline judge covers (keys from env).",
    ),
    head_log: Path | None = typer.Option(
        None, "--head-log", help="Transparency log of the sensor's signed heads (needs --keyring)."
    ),
    keyring: Path | None = typer.Option(None, "--keyring", help="The verifier's keyring (enrolled keys)."),
    challenge: str | None = typer.Option(None, "--challenge", help="The nonce issued for this run."),
    ledger_state: Path | None = typer.Option(
        None, "--ledger-state", help="The verifier's memory of each log (monotonic size)."
    ),
    peer_head: list[Path] = typer.Option(
        [], "--peer-head", help="A signed tree head another verifier holds (gossip; repeatable)."
    ),
    report: Path | None = typer.Option(
        None, "--report", help="Also write the verdict as one HTML page with plots (the [report] extra)."
    ),
) -> None:
    """Judge every phase of RUN_DIR from its telemetry; exit 0 certified, 1 not, 2 bad input."""
    from inspectorate._commands import SignedOptions, verify_files
    from inspectorate.report import progress, render_run_text

    if replay != (corpus is not None):
        raise InputError("--replay and --corpus go together (the verifier's copy of the training text)")
    verdict = verify_files(
        run_dir,
        commitment,
        policy=policy.value,
        recomputed=recomputed,
        agent=agent,
        notify=warn,
        progress=lambda total, _large: progress(total, "phases", quiet=quiet),
        replay=None if corpus is None else (corpus, replay_draws, replay_seed),
        signed=SignedOptions(head_log, keyring, challenge, ledger_state, peer_head),
        report=report,
    )
    typer.echo(verdict.to_json() if format is Format.json else render_run_text(verdict))
    raise typer.Exit(verdict.exit_code)
