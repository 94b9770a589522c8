"""The options every command shares, defined once (``Annotated`` aliases for typer).

A command declares ``format: FormatOption = Format.text`` and gets the same flag, short
form and help as every other command; the LLM backend flags (``--backend``,
``--model``, ``--base-url``, ...) are one set used by ``check``-side agent commands and
``redteam --defender llm`` alike. Nothing here imports an engine: the CLI mounts every
command without loading torch, polars or an SDK.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
import typer.core
import typer.main
from typer._click.exceptions import BadParameter
from typer._coercion import RuntimeParam, build_runtime_param
from typer._param_types import coerce_cli_choice, coerce_cli_path

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


@dataclass(frozen=True)
class _LightParam(RuntimeParam):
    """typer's own coercion of a str, bool, Path or Enum value without its pydantic adapter:
    building the adapters of one command imported pydantic and cost about 0.1 CPU s of
    every ``check``. The same typer functions judge the value and a failure reads as
    typer's; any other value (bytes, a parser, flags) goes to typer's adapter."""

    def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
        kind, info = self.annotation, self.parameter_info
        try:
            if isinstance(kind, type) and issubclass(kind, enum.Enum):
                return coerce_cli_choice(
                    value, choices=list(kind), case_sensitive=info.case_sensitive, ctx=ctx
                )
            if (kind is str and isinstance(value, str)) or (kind is bool and isinstance(value, bool)):
                return value
            path_type = info.path_type or kind
            if (
                isinstance(path_type, type)
                and issubclass(path_type, Path)
                and isinstance(value, str)
                and value
            ):
                # pydantic's lax Path from a str is Path(str), made here: typer then checks it
                return coerce_cli_path(path_type(value), info, path_type=path_type, param=param, ctx=ctx)
        except ValueError as exc:  # pydantic's wording of a validator's ValueError
            raise BadParameter(f"Value error, {exc}", ctx=ctx, param=param) from exc
        typed = build_runtime_param(param.type_descriptor)
        return typed._coerce_value(value, param=param, ctx=ctx)


def _lighten(command: Any, ctx: Any) -> Any:
    """Give ``command``'s plain str, bool, Path and Enum parameters (its --help too) the
    light coercion."""
    params = command.get_params(ctx) if ctx is not None else getattr(command, "params", ())
    for param in params:
        found = getattr(param, "type_descriptor", None)
        if found is None or getattr(param, "_runtime_param", True) is not None:
            continue
        kind, info = found.annotation, found.parameter_info
        simple = kind in (str, bool) or (isinstance(kind, type) and issubclass(kind, (Path, enum.Enum)))
        if simple and found.file_annotation is None and info.parser is None:
            param._runtime_param = _LightParam(parameter_info=info, annotation=kind)
    return command


class LightGroup(typer.core.TyperGroup):
    """A command group whose parsing imports no pydantic (``cls=`` of the CLI's groups)."""

    def get_command(self, ctx: Any, cmd_name: str) -> Any:
        command = super().get_command(ctx, cmd_name)
        return command if command is None else _lighten(command, ctx)

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
