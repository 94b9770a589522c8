"""A thin CLI: the shared options are defined once and mean the same everywhere, and
the ``_cli.py`` modules hold commands only (their logic is a library function)."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import typer.main

import inspectorate
from inspectorate.cli import app, invoke
from inspectorate.data import seed_path

SRC = Path(inspectorate.__file__).parent
CLI_MODULES = sorted([SRC / "cli.py", *SRC.glob("*/_cli.py"), *SRC.glob("*/_*_cli.py")])
SHARED = (
    "--format",
    "--quiet",
    "--backend",
    "--model",
    "--base-url",
    "--budget-usd",
    "--cache-dir",
    "--prices",
)
# `difr serve --model` names a checkpoint file, not an LLM: the backend flags are checked
# on the commands that take --backend
SPELLED_ONCE = tuple(flag for flag in SHARED if flag != "--model")


def _commands(group: Any, prefix: str = "") -> dict[str, Any]:
    """Every leaf command, the lazily mounted ones included (typer's vendored click groups
    are not ``click.Group``s: a group is what lists commands)."""
    out: dict[str, Any] = {}
    for name in group.list_commands(None):
        cmd = group.get_command(None, name)
        if hasattr(cmd, "list_commands"):
            out.update(_commands(cmd, f"{prefix}{name} "))
        else:
            out[f"{prefix}{name}"] = cmd
    return out


def test_shared_options_are_spelled_only_in_the_options_module():
    for path in CLI_MODULES:
        text = path.read_text(encoding="utf-8")
        spelled = [flag for flag in SPELLED_ONCE if f'"{flag}"' in text]
        assert spelled == [], f"{path.relative_to(SRC)} defines {spelled}: use inspectorate._cli_options"


def test_a_shared_option_reads_the_same_in_every_command():
    seen: dict[str, set[tuple]] = {}
    for cmd in _commands(typer.main.get_command(app)).values():  # type: ignore[arg-type]
        llm = any("--backend" in param.opts for param in cmd.params)
        for param in cmd.params:
            if "--model" in param.opts and not llm:
                continue
            flag = next((o for o in param.opts if o in SHARED), None)
            if flag is not None:
                seen.setdefault(flag, set()).add((tuple(param.opts), getattr(param, "help", None)))
    assert {"--format", "--quiet", "--backend", "--model", "--base-url"} <= set(seen)
    assert {flag: len(forms) for flag, forms in seen.items()} == {flag: 1 for flag in seen}


def _is_command(fn: ast.FunctionDef, decorated: set[str]) -> bool:
    """A typer command: decorated with ``.command``, or every parameter an option/argument."""
    if any("command" in ast.unparse(d) for d in fn.decorator_list) or fn.name in decorated:
        return True
    args = fn.args.args + fn.args.kwonlyargs
    defaults = fn.args.defaults + [d for d in fn.args.kw_defaults if d is not None]
    return (
        bool(args)
        and len(defaults) == len(args)
        and all(
            "typer." in ast.unparse(d)
            or "Option" in ast.unparse(a.annotation or d)
            or "Argument" in ast.unparse(d)
            for a, d in zip(args[-len(defaults) :], defaults)
        )
    )


def test_cli_modules_hold_commands_not_library_functions():
    mounted = set()
    for node in ast.walk(ast.parse((SRC / "cli.py").read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.endswith("_cli"):
            mounted |= {a.name for a in node.names}
    library = []
    for path in CLI_MODULES:
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            if isinstance(node, ast.FunctionDef) and not node.name.startswith("_"):
                if node.name in ("main", "invoke", "mount"):  # the entry point, the error boundary, mounting
                    continue
                if not _is_command(node, mounted):
                    library.append(f"{path.relative_to(SRC)}:{node.name}")
    assert library == [], "move these into the library: " + ", ".join(library)


def test_check_command_and_its_library_function_agree(capsys):
    from inspectorate._commands import check_files

    trace, commitment = seed_path("legit_finetune"), seed_path("no_frontier_training.yml")
    verdict = check_files(trace, commitment)
    assert invoke(["check", str(trace), "-c", str(commitment), "-f", "json"]) == verdict.exit_code
    printed = json.loads(capsys.readouterr().out)
    archive = {"schema_version", "tool", "trace", "commitment"}  # what the archived document adds
    assert {k: v for k, v in printed.items() if k not in archive} == json.loads(json.dumps(verdict.to_dict()))
