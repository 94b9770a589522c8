"""The options every command shares, defined once (``Annotated`` aliases for typer).

A command declares ``format: FormatOption = Format.text`` and gets the same flag, short
form and help as every other command; the LLM backend flags (``--backend``,
``--model``, ``--base-url``, ...) are one set used by ``check``-side agent commands and
``redteam --defender llm`` alike. Nothing here imports an engine: the CLI mounts every
command without loading torch, polars or an SDK.
"""

from __future__ import annotations

import enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from inspectorate.agent._backends import AgentSettings


class Format(str, enum.Enum):
    """How a command prints its result."""

    text = "text"
    json = "json"


class BackendName(str, enum.Enum):
    """The LLM backends (the ``[agent]`` extra)."""

    anthropic = "anthropic"
    openai = "openai"


FormatOption = Annotated[
    Format, typer.Option("--format", "-f", help="text for people; json: the documented contract.")
]
QuietOption = Annotated[
    bool, typer.Option("--quiet", "-q", help="No progress bar (none is shown off a terminal).")
]

# --- the LLM backend -----------------------------------------------------------------
BackendOption = Annotated[
    BackendName | None,
    typer.Option("--backend", help="anthropic | openai (default: from keys / INSPECTORATE_AGENT_BACKEND)."),
]
ModelOption = Annotated[
    str | None, typer.Option("--model", help="Model name (default per backend or INSPECTORATE_AGENT_MODEL).")
]
BaseUrlOption = Annotated[
    str | None, typer.Option("--base-url", help="OpenAI-compatible endpoint (a local model server).")
]
BudgetOption = Annotated[
    float | None, typer.Option("--budget-usd", help="Dollar cap per inspection (default 2.0).")
]
NoBudgetOption = Annotated[bool, typer.Option("--no-budget", help="No dollar cap (unpriced local models).")]
StepsOption = Annotated[
    int | None, typer.Option("--max-steps", help="Model calls per inspection (default 6).")
]
CacheDirOption = Annotated[
    Path | None, typer.Option("--cache-dir", help="Reply cache (default: XDG cache dir).")
]
NoCacheOption = Annotated[
    bool, typer.Option("--no-cache", help="Ask the model again even for a cached reply.")
]
PricesOption = Annotated[Path | None, typer.Option("--prices", help="Price table override (YAML/JSON).")]


def agent_settings(
    backend: BackendName | None = None,
    model: str | None = None,
    base_url: str | None = None,
    budget: float | None = None,
    no_budget: bool = False,
    steps: int | None = None,
    cache_dir: Path | None = None,
    no_cache: bool = False,
    prices: Path | None = None,
) -> AgentSettings:
    """The backend flags as ``AgentSettings`` (unset flags come from the environment)."""
    from inspectorate.agent._backends import AgentSettings

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


def warn(line: str) -> None:
    """One line on stderr (a skipped tier, a missing stream): never mixed into stdout."""
    typer.echo(line, err=True)
