"""``inspectorate verify``: the typer command the lead mounts in cli.py.

Mounted by ``inspectorate.cli``. Bad input raises InputError, which the CLI's one
handler turns into exit 2 and one line on stderr.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
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
    quiet: bool = typer.Option(
        False, "--quiet", "-q", help="No progress bar (none is shown off a terminal)."
    ),
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
    from inspectorate.commitment import load_commitment
    from inspectorate.report import progress, render_run_text, report_path, report_run
    from inspectorate.trace import load_run
    from inspectorate.verify._inspector import RunVerdict, verify_run
    from inspectorate.verify._recomputed import read_recomputed
    from inspectorate.verify._registry import Finding

    if (head_log is None) != (keyring is None):
        raise InputError("--head-log and --keyring go together")
    if report is not None:
        report_path(report, run_dir)  # a bad --report path fails before the work, not after
    promised = load_commitment(commitment) if commitment is not None else None
    extra: dict[str, list[Finding]] = {}
    for phase, found in map(read_recomputed, recomputed):
        extra.setdefault(phase, []).append(found)
    run = load_run(run_dir)
    plan = None
    if replay != (corpus is not None):
        raise InputError("--replay and --corpus go together (the verifier's copy of the training text)")
    if replay and corpus is not None:
        from inspectorate.verify._replay_run import ReplayPlan

        plan = ReplayPlan(corpus, draws=replay_draws, seed=replay_seed)
    judge: Callable[..., RunVerdict] = verify_run
    if agent:
        from inspectorate.agent._cli import agent_verify

        judge = agent_verify
    with progress(len(run.phases()), "phases", quiet=quiet) as advance:
        verdict = judge(run, promised, policy=policy.value, on_phase=advance, recomputed=extra, replay=plan)
    if head_log is not None and keyring is not None:
        from inspectorate.verify._signed import attach_signed

        attach_signed(verdict, head_log, keyring, challenge=challenge, state=ledger_state, peers=peer_head)
    typer.echo(verdict.to_json() if format is Format.json else render_run_text(verdict))
    if report is not None:
        report_run(run, verdict, report)
    raise typer.Exit(verdict.exit_code)
