"""``inspectorate agent ...``: the digest, the LLM tier, and rule compilation."""

from __future__ import annotations

import enum
import json
from pathlib import Path

import typer

from inspectorate._paths import FORCE_HELP, output_file

app = typer.Typer(
    no_args_is_help=True, help="The LLM inspector: evidence digest, semantic verdicts, compilation."
)


class Format(str, enum.Enum):
    text = "text"
    json = "json"


class BackendName(str, enum.Enum):
    anthropic = "anthropic"
    openai = "openai"


BACKEND = typer.Option(
    None, "--backend", help="anthropic | openai (default: from keys / INSPECTORATE_AGENT_BACKEND)."
)
MODEL = typer.Option(None, "--model", help="Model name (default per backend or INSPECTORATE_AGENT_MODEL).")
BASE_URL = typer.Option(None, "--base-url", help="OpenAI-compatible endpoint (a local model server).")
BUDGET = typer.Option(None, "--budget-usd", help="Dollar cap per inspection (default 2.0).")
NO_BUDGET = typer.Option(False, "--no-budget", help="No dollar cap (unpriced local models).")
STEPS = typer.Option(None, "--max-steps", help="Model calls per inspection (default 6).")
CACHE = typer.Option(None, "--cache-dir", help="Reply cache (default: XDG cache dir).")
NO_CACHE = typer.Option(False, "--no-cache")
PRICES = typer.Option(None, "--prices", help="Price table override (YAML/JSON).")


def _settings(backend, model, base_url, budget, no_budget, steps, cache_dir, no_cache, prices):
    from inspectorate.agent import AgentSettings

    settings = AgentSettings.from_env(
        backend=backend.value if backend is not None else None,
        model=model,
        base_url=base_url,
        budget_usd=budget,
        max_steps=steps,
        cache_dir=None if cache_dir is None else str(cache_dir),
        prices=None if prices is None else str(prices),
    )
    if no_budget:
        settings.budget_usd = None
    settings.use_cache = not no_cache
    return settings


def _warn(line: str) -> None:
    typer.echo(line, err=True)


def _run_properties(path: Path) -> dict | None:
    """The telemetry verdict of a run directory (its property findings join the digest)."""
    if not path.is_dir():
        return None
    from inspectorate.errors import InputError
    from inspectorate.verify import verify_run

    try:
        return verify_run(path).to_dict()
    except InputError as exc:
        _warn(f"no property findings in the digest: {exc.one_line()}")
        return None


@app.command("digest")
def digest(
    trace: Path = typer.Argument(..., help="Trace file or run directory."),
    commitment: Path | None = typer.Option(None, "--commitment", "-c", help="Include its findings."),
    max_chars: int = typer.Option(60_000, "--max-chars"),
) -> None:
    """Print the evidence digest the inspector reads (JSON)."""
    from inspectorate.agent import build_digest
    from inspectorate.commitment import check, load_commitment
    from inspectorate.trace import read_trace

    loaded = read_trace(trace)
    findings = check(loaded, load_commitment(commitment)).violations if commitment else ()
    digest = build_digest(loaded, findings, max_chars=max_chars, properties=_run_properties(trace))
    typer.echo(json.dumps(digest, indent=1, default=str))


@app.command("judge")
def judge(
    trace: Path = typer.Argument(...),
    commitment: Path = typer.Option(..., "--commitment", "-c"),
    format: Format = typer.Option(Format.text, "--format", "-f"),
    backend: BackendName | None = BACKEND,
    model: str | None = MODEL,
    base_url: str | None = BASE_URL,
    budget: float | None = BUDGET,
    no_budget: bool = NO_BUDGET,
    steps: int | None = STEPS,
    cache_dir: Path | None = CACHE,
    no_cache: bool = NO_CACHE,
    prices: Path | None = PRICES,
) -> None:
    """check, then the LLM tier on the semantic rules no offline judge covers (a run
    directory's telemetry findings join the digest)."""
    from inspectorate.agent import check_with_agent
    from inspectorate.commitment import load_commitment
    from inspectorate.report import verdict_text
    from inspectorate.trace import read_trace

    settings = _settings(backend, model, base_url, budget, no_budget, steps, cache_dir, no_cache, prices)
    verdict = check_with_agent(
        read_trace(trace),
        load_commitment(commitment),
        settings,
        notify=_warn,
        properties=_run_properties(trace),
    )
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
    backend: BackendName | None = BACKEND,
    model: str | None = MODEL,
    base_url: str | None = BASE_URL,
    budget: float | None = BUDGET,
    no_budget: bool = NO_BUDGET,
    steps: int | None = STEPS,
    cache_dir: Path | None = CACHE,
    no_cache: bool = NO_CACHE,
    prices: Path | None = PRICES,
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Compile semantic rules into deterministic ones; exit 0 if every rule compiled, 1 if not."""
    from inspectorate.agent import compile_commitment
    from inspectorate.agent._compile import write_commitment
    from inspectorate.commitment import load_commitment
    from inspectorate.trace import read_trace

    output_file(out, "--out", force)
    settings = _settings(backend, model, base_url, budget, no_budget, steps, cache_dir, no_cache, prices)
    loaded = read_trace(trace) if trace else None
    data, outcomes = compile_commitment(load_commitment(commitment), loaded, settings)
    write_commitment(data, out)
    for o in outcomes:
        rule = f"{o.kind} {o.params}" if o.kind else "-"
        typer.echo(f"{'KEPT    ' if o.kept else 'NOT KEPT'} {o.rule_id}: {o.source} {rule} ({o.reason})")
    typer.echo(f"wrote {out}")
    raise typer.Exit(0 if all(o.kept for o in outcomes) else 1)


def agent_check(trace, commitment, on_rule=None):
    """``check --agent``: check, then the LLM tier configured from the environment."""
    from inspectorate.agent import AgentSettings, check_with_agent

    return check_with_agent(trace, commitment, AgentSettings.from_env(), notify=_warn, on_rule=on_rule)


def agent_verify(run, commitment, **options):
    """``verify --agent``: verify, then the LLM tier configured from the environment."""
    from inspectorate.agent import AgentSettings, verify_with_agent

    return verify_with_agent(run, commitment, AgentSettings.from_env(), notify=_warn, **options)
