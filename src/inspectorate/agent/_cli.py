"""``inspectorate agent ...``: the digest, the LLM tier, and rule compilation.

Each command parses its arguments and calls one function of ``agent/_files.py``; the
backend flags are the shared ones of ``inspectorate._cli_options``.
"""

from __future__ import annotations

import json
from pathlib import Path

import typer

from inspectorate._cli_options import (
    BackendOption,
    BaseUrlOption,
    BudgetOption,
    CacheDirOption,
    Format,
    FormatOption,
    ModelOption,
    NoBudgetOption,
    NoCacheOption,
    PricesOption,
    StepsOption,
    agent_settings,
    warn,
)

app = typer.Typer(
    no_args_is_help=True, help="The LLM inspector: evidence digest, semantic verdicts, compilation."
)


@app.command("digest")
def digest(
    trace: Path = typer.Argument(..., help="Trace file or run directory."),
    commitment: Path | None = typer.Option(None, "--commitment", "-c", help="Include its findings."),
    max_chars: int = typer.Option(60_000, "--max-chars"),
) -> None:
    """Print the evidence digest the inspector reads (JSON)."""
    from inspectorate.agent._files import digest_files

    typer.echo(json.dumps(digest_files(trace, commitment, max_chars, notify=warn), indent=1, default=str))


@app.command("judge")
def judge(
    trace: Path = typer.Argument(...),
    commitment: Path = typer.Option(..., "--commitment", "-c"),
    format: FormatOption = Format.text,
    backend: BackendOption = None,
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
    budget: BudgetOption = None,
    no_budget: NoBudgetOption = False,
    steps: StepsOption = None,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
    prices: PricesOption = None,
) -> None:
    """check, then the LLM tier on the semantic rules no offline judge covers (a run
    directory's telemetry findings join the digest)."""
    from inspectorate.agent._files import judge_files
    from inspectorate.report import verdict_text

    settings = agent_settings(backend, model, base_url, budget, no_budget, steps, cache_dir, no_cache, prices)
    verdict = judge_files(trace, commitment, settings, notify=warn)
    typer.echo(
        json.dumps(verdict.to_dict(), indent=2)
        if format is Format.json
        else verdict_text(verdict, str(trace))
    )
    raise typer.Exit(verdict.exit_code)


@app.command("compile")
def compile_(
    commitment: Path = typer.Argument(..., help="Commitment YAML to strengthen."),
    out: Path = typer.Option(..., "--out", "-o", help="Where to write the strengthened commitment."),
    trace: Path | None = typer.Option(
        None, "--trace", help="Evidence the agent judges (rules with no fallback)."
    ),
    backend: BackendOption = None,
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
    budget: BudgetOption = None,
    no_budget: NoBudgetOption = False,
    steps: StepsOption = None,
    cache_dir: CacheDirOption = None,
    no_cache: NoCacheOption = False,
    prices: PricesOption = None,
) -> None:
    """Compile semantic rules into deterministic ones; exit 0 if every rule compiled, 1 if not."""
    from inspectorate.agent._files import compile_files

    settings = agent_settings(backend, model, base_url, budget, no_budget, steps, cache_dir, no_cache, prices)
    outcomes = compile_files(commitment, out, trace, settings)
    for o in outcomes:
        rule = f"{o.kind} {o.params}" if o.kind else "-"
        typer.echo(f"{'KEPT    ' if o.kept else 'NOT KEPT'} {o.rule_id}: {o.source} {rule} ({o.reason})")
    typer.echo(f"wrote {out}")
    raise typer.Exit(0 if all(o.kept for o in outcomes) else 1)
