"""``inspectorate redteam``: the typer command the lead mounts in cli.py.

Mounted by ``inspectorate.cli``; bad input raises InputError, which the CLI's one
handler turns into exit 2 and one line on stderr.
"""

from __future__ import annotations

import enum
import json
from pathlib import Path

import typer

from inspectorate._cli_options import BackendOption, BaseUrlOption, ModelOption, QuietOption
from inspectorate._paths import FORCE_HELP, output_file
from inspectorate.errors import InputError


class AttackerName(str, enum.Enum):
    offline = "offline"
    anthropic = "anthropic"
    openai = "openai"


class Strategy(str, enum.Enum):
    greedy = "greedy"
    beam = "beam"


class DefenderName(str, enum.Enum):
    search = "search"
    llm = "llm"


def redteam(
    rounds: int = typer.Option(20, "--rounds", min=1, help="Rounds to play."),
    attacker: AttackerName = typer.Option(AttackerName.offline, "--attacker", help="Who proposes attacks."),
    commitment: Path = typer.Option(..., "--commitment", help="Commitment YAML."),
    baseline: Path = typer.Option(..., "--baseline", help="Clean, compliant trace to inflate and hide."),
    out: Path = typer.Option(
        ...,
        "--out",
        help="One JSON line per round; --defend also writes OUT with its suffix replaced by .defense.json (rounds.jsonl -> rounds.defense.json).",
    ),
    seed: int = typer.Option(0, "--seed", help="Seed (offline search and attack randomness)."),
    strategy: Strategy = typer.Option(
        Strategy.greedy,
        "--strategy",
        help="Offline search: greedy (near misses) or beam (pairs and triples of attack families).",
    ),
    defend: bool = typer.Option(
        False, "--defend", help="Propose the smallest rule change catching the evasions."
    ),
    defender: DefenderName = typer.Option(
        DefenderName.search,
        "--defender",
        help="Who proposes the rules: search (offline candidates) or llm (a model; keys as for the agent).",
    ),
    backend: BackendOption = None,  # the backend flags configure --defender llm
    model: ModelOption = None,
    base_url: BaseUrlOption = None,
    quiet: QuietOption = False,
    unsandboxed: bool = typer.Option(
        False,
        "--unsandboxed",
        help="Run attacker code without the OS sandbox (bwrap + seccomp); warns every round.",
    ),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Play the red team against COMMITMENT: each round hides violate(BASELINE); writes OUT."""
    from inspectorate.attacks._loop import redteam as run
    from inspectorate.commitment import load_commitment
    from inspectorate.report import progress
    from inspectorate.trace import read_trace

    output_file(out, "--out", force, companions=[out.with_suffix(".defense.json")] if defend else [])
    settings = None
    if defender is DefenderName.llm:
        from inspectorate._cli_options import agent_settings

        settings = agent_settings(backend, model, base_url)
    elif backend or model or base_url:
        raise InputError("--backend, --model and --base-url configure --defender llm")
    if strategy is not Strategy.greedy and attacker is not AttackerName.offline:
        raise InputError("--strategy configures --attacker offline")
    promise, clean = load_commitment(commitment), read_trace(baseline).records
    with progress(rounds, "red team", quiet=quiet) as advance:
        report = run(
            rounds,
            attacker.value,
            promise,
            clean,
            out,
            seed=seed,
            strategy=strategy.value,
            defend=defend,
            unsandboxed=unsandboxed,
            defender=defender.value,
            defender_settings=settings,
            on_round=lambda row: advance(f"round {row['round']} {'caught' if row['caught'] else 'evaded'}"),
        )
    typer.echo(report.summary())
    if report.defense:
        patch = out.with_suffix(".defense.json")
        patch.write_text(json.dumps(report.defense, indent=1, sort_keys=True) + "\n", encoding="utf-8")
        typer.echo(f"defense written to {patch}")
