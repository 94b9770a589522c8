"""The options every command shares, defined once (``Annotated`` aliases for typer).

A command declares ``format: FormatOption = Format.text`` and gets the same flag, short
form and help as every other command; the LLM backend flags (``--backend``,
``--model``, ``--base-url``, ...) are one set used by ``check``-side agent commands and
``redteam --defender llm`` alike. Nothing here imports an engine: the CLI mounts every
command without loading torch, polars or an SDK.
"""

from __future__ import annotations

import enum
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.core
import typer.main

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


# name -> (module, attribute, help) of the commands that live with their packages: each
# is imported when it is run or listed, so `--version` and `check --help` load none of
# them (torch, polars and the SDKs load only when their command runs).
LAZY_COMMANDS: dict[str, tuple[str, str, str | None]] = {
    "redteam": ("inspectorate.attacks._cli", "redteam", None),
    "verify": ("inspectorate.verify._cli", "verify", None),
    "sensor": ("inspectorate.capture._sensor_cli", "sensor", None),
    "capture": ("inspectorate.capture._capture_cli", "capture", None),
    "capture-fabric": ("inspectorate.capture._fabric_cli", "capture_fabric", None),
    "verify-fabric": ("inspectorate.verify._fabric_cli", "verify_fabric", None),
    "testbed": ("inspectorate.testbed._cli", "app", "Run real workloads and record hash-chained evidence."),
    "agent": ("inspectorate.agent._cli", "app", None),
    "ledger": ("inspectorate.ledger._cli", "app", None),
    "bench": ("inspectorate.bench._cli", "app", None),
    "difr": ("inspectorate.difr._cli", "app", None),
    "replay": ("inspectorate.replay._cli", "replay", None),
}


class LightGroup(typer.core.TyperGroup):
    """A command group whose parsing imports no pydantic (``cls=`` of the CLI's groups)."""

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)
        if option is not None and option.default is None:
            # unset, a group's --help goes through a pydantic adapter: importing pydantic
            # was a third of `check --help`; a bool default is taken as it is
            option.default = False
        return option


class LazyGroup(LightGroup):
    """The root group: the commands in ``LAZY_COMMANDS`` are built on first use."""

    def list_commands(self, ctx: Any) -> list[str]:
        return [*super().list_commands(ctx), *(n for n in LAZY_COMMANDS if n not in self.commands)]

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        if cmd_name not in self.commands and cmd_name in LAZY_COMMANDS:
            self.add_command(_load(cmd_name), cmd_name)
        return super().get_command(ctx, cmd_name)


def _load(name: str) -> Any:
    """One lazy command as click sees it, built by typer exactly as an eager mount would."""
    module, attribute, help_text = LAZY_COMMANDS[name]
    target = getattr(import_module(module), attribute)
    holder = typer.Typer(rich_markup_mode=None)  # plain help, as the root's
    if isinstance(target, typer.Typer):
        if help_text:  # a help given here overrides the sub-app's own
            holder.add_typer(target, name=name, help=help_text)
        else:
            holder.add_typer(target, name=name)
    else:
        holder.command(name)(target)
    return typer.main.get_group(holder).commands[name]
