"""``inspectorate replay CLAIM``: parse arguments, call one library function."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from inspectorate._cli_options import Format, FormatOption


def replay(
    claim: Path = typer.Argument(..., help="claim.json (checkpoints next to it)"),
    corpus: Path = typer.Option(..., "--corpus", help="the verifier's copy of the training text"),
    segment: list[int] = typer.Option([], "--segment", help="replay this segment (repeatable); default: all"),
    segments: int | None = typer.Option(None, "--segments", help="replay this many segments drawn at random"),
    seed: int = typer.Option(0, "--seed", help="the verifier's seed for drawing segments"),
    tolerance: Path | None = typer.Option(None, "--tolerance", help="tolerance JSON (default: built-in)"),
    calibrate_out: Path | None = typer.Option(
        None,
        "--calibrate-out",
        help="treat CLAIM as honest: measure the tolerance over thread counts, write it",
    ),
    threads: str = typer.Option(
        "1,2", "--threads", help="with --calibrate-out: torch thread counts to replay under"
    ),
    code_commit: str | None = typer.Option(
        None,
        "--code-commit",
        help="the code this replay runs, as the claim spells it (default: the installed training code's fingerprint)",
    ),
    format: FormatOption = Format.text,
    finding_out: Path | None = typer.Option(
        None, "--finding-out", help="also write the result as a finding for `verify --recomputed PHASE=FILE`"
    ),
) -> None:
    """Reproduce a claimed training run (or segments of it); exit 0 agrees, 1 disagrees, 2 bad input."""
    from inspectorate.errors import InputError
    from inspectorate.models._corpus import load_corpus
    from inspectorate.replay import (
        Tolerance,
        calibrate_tolerance,
        choose_segments,
        read_claim,
        replay_claim,
        replay_finding,
    )

    parsed, text = read_claim(claim), load_corpus(corpus)
    if calibrate_out is not None:
        try:
            counts = tuple(int(t) for t in threads.split(","))
        except ValueError:
            raise InputError(f"--threads must be comma-separated integers, got {threads!r}") from None
        if not counts or min(counts) < 1:
            raise InputError("--threads must be >= 1")
        tol = calibrate_tolerance(parsed, text, threads=counts)
        tol.save(calibrate_out)
        typer.echo(f"wrote {calibrate_out}: weight {tol.weight:.3g}, metric {tol.metric:.3g}")
        return
    n = len(parsed.checkpoints) - 1
    chosen = list(segment) or (choose_segments(n, segments, seed) if segments is not None else None)
    result = replay_claim(
        parsed, text, chosen, Tolerance.load(tolerance) if tolerance else None, code=code_commit
    )
    if finding_out is not None:
        finding_out.write_text(json.dumps(replay_finding(result), indent=1) + "\n", encoding="utf-8")
    if format is Format.json:
        typer.echo(json.dumps(result.to_dict(), indent=2))
    else:
        done = len(result.segments)
        typer.echo(f"{result.decision.upper()}: {done}/{n} segments replayed")
        for s in result.segments:
            typer.echo(
                f"  segment {s.segment} steps {s.start_step}-{s.end_step}: distance {s.distance:.3g} exact={s.exact}"
            )
        if result.metric:
            m = result.metric
            typer.echo(f"  metric reported {m['reported']:.6g}, recomputed {m['recomputed']:.6g}")
        for r in result.reasons:
            typer.echo(f"  - {r}")
    raise typer.Exit(result.exit_code)
