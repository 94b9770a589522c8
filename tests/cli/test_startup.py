"""The CLI imports only what the command needs: `--version` and `check --help` load no
engine (polars, numpy, pyarrow, torch), no help renderer (rich, pygments) and no
pydantic, and no other package's commands. The start-up time itself is a benchmark
(bench/jsonl_e2e.py prints it); this checks the property behind it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

HEAVY = ("polars", "numpy", "pyarrow", "torch", "rich", "pygments", "pydantic", "yaml")
PACKAGES = ("attacks", "verify", "capture", "testbed", "agent", "ledger", "bench", "difr", "replay")


def _loaded(argv: list[str] | None) -> tuple[int, str, set[str]]:
    """Exit code, stdout and sys.modules of a fresh process that runs ``argv`` (None:
    only imports the CLI)."""
    code = (
        "import contextlib, io, json, sys\n"
        "from inspectorate.cli import invoke\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        f"    rc = invoke({argv!r}) if {argv!r} is not None else 0\n"
        "print(json.dumps([rc, out.getvalue(), sorted(sys.modules)]))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    rc, text, modules = json.loads(run.stdout.splitlines()[-1])
    return rc, text, set(modules)


@pytest.mark.parametrize("argv", [None, ["--version"], ["check", "--help"], ["trace", "generate", "--help"]])
def test_start_up_imports_no_engine(argv):
    rc, text, modules = _loaded(argv)
    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    assert heavy == []
    assert not [m for m in modules if m.split(".")[:2] in [["inspectorate", p] for p in PACKAGES]]
    if argv:
        assert rc == 0 and text


def test_lazy_commands_are_listed_and_run():
    rc, text, modules = _loaded(["--help"])
    assert rc == 0
    for name in ("check", "verify", "redteam", "testbed", "ledger", "bench", "difr", "replay"):
        assert f"  {name} " in text
    rc, text, modules = _loaded(["ledger", "--help"])
    assert rc == 0 and "Usage:" in text and "inspectorate.ledger._cli" in modules
    assert "inspectorate.bench._cli" not in modules  # only the command asked for is imported


def test_version_and_unknown_command():
    rc, text, _ = _loaded(["--version"])
    assert (rc, text.split()[0]) == (0, "inspectorate")
    run = subprocess.run(
        [sys.executable, "-m", "inspectorate.cli", "no-such-command"], capture_output=True, text=True
    )
    assert run.returncode == 2 and "No such command" in run.stderr


def test_check_of_a_jsonl_trace_imports_no_parquet_or_torch():
    """`check` on JSONL imports what it needs (polars, numpy, pyarrow's core) and not the
    Parquet stack (pyarrow.parquet with its file systems and ssl: half of pyarrow's
    import), Arrow's JSON reader (the compiled scanner reads), torch or the verifier."""
    from inspectorate.data import commitment_path, seed_path

    argv = [
        "check",
        str(seed_path("legit_finetune")),
        "-c",
        str(commitment_path("frontier-training-cap")),
        "-q",
    ]
    rc, _, modules = _loaded(argv)
    assert rc in (0, 1)
    assert "polars" in modules and "inspectorate.trace._jsonl" in modules
    unwanted = ["pyarrow.parquet", "pyarrow.fs", "torch", "inspectorate.verify", "pydantic"]
    if "inspectorate.trace._cjsonl" in modules:  # without it Arrow's JSON reader parses
        unwanted.append("pyarrow.json")
    assert sorted(m for m in modules if m in unwanted) == []


def test_options_are_parsed_without_pydantic_and_judged_as_typer_judges_them(tmp_path):
    """`check`'s str, bool, Path and Enum options are coerced by typer's own functions, not
    its pydantic adapters (0.1 CPU s of every check): a bad choice still reads as typer's
    usage error (exit 2, the choices named), a Path is a Path, an enum an enum."""
    rc, _, modules = _loaded(["check", str(tmp_path / "none.jsonl"), "-c", str(tmp_path / "c.yml")])
    assert rc == 2 and "pydantic" not in modules
    run = subprocess.run(
        [sys.executable, "-m", "inspectorate.cli", "check", "t.jsonl", "-c", "c.yml", "--engine", "spark"],
        capture_output=True,
        text=True,
    )
    assert run.returncode == 2
    assert "Invalid value for '--engine': Value error, 'spark' is not one of 'local', 'dask'." in run.stderr
    import typer.main

    from inspectorate.cli import Engine, app

    group = typer.main.get_group(app)
    ctx = group.make_context("inspectorate", ["check", "t.jsonl", "-c", "c.yml", "--engine", "dask"])
    command = group.get_command(ctx, "check")
    sub = command.make_context(
        "check", ["t.jsonl", "-c", "c.yml", "--engine", "dask", "--head", "ab"], parent=ctx
    )
    assert sub.params["trace"] == Path("t.jsonl") and isinstance(sub.params["commitment"], Path)
    assert sub.params["engine"] is Engine.dask and sub.params["head"] == "ab" and sub.params["quiet"] is False


def _check_env(argv: list[str], env: dict[str, str]) -> dict[str, str]:
    """The allocator and BLAS settings a fresh `check` process runs with, seen after it."""
    import os

    code = (
        "import contextlib, io, json, os\n"
        "from inspectorate.cli import invoke\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    invoke({argv!r})\n"
        "import polars\n"  # loaded by the check, or here: Polars' own default then applies
        "print(json.dumps({k: os.environ.get(k, '') for k in ('_RJEM_MALLOC_CONF', 'OPENBLAS_NUM_THREADS')}))\n"
    )
    keep = {k: v for k, v in os.environ.items() if k not in ("_RJEM_MALLOC_CONF", "OPENBLAS_NUM_THREADS")}
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=keep | env
    )
    return json.loads(run.stdout.splitlines()[-1])


def test_a_short_jsonl_check_keeps_freed_pages_and_one_blas_thread(tmp_path):
    """`check` of a JSONL file under 1 GiB keeps Polars' own allocator decay (handing
    every freed page back cost 44k page faults at 300k records); any other trace keeps
    the return-at-once setting (peak RSS at 10^7), and a user's own settings win."""
    from inspectorate.cli import RETURN_AT_ONCE
    from inspectorate.data import commitment_path, seed_path

    jsonl, parquet = seed_path("legit_finetune"), tmp_path / "t.parquet"
    parquet.write_bytes(b"not parquet")
    rules = str(commitment_path("frontier-training-cap"))
    short = _check_env(["check", str(jsonl), "-c", rules, "-q"], {})
    assert (
        short["_RJEM_MALLOC_CONF"] != RETURN_AT_ONCE and "dirty_decay_ms:0" not in short["_RJEM_MALLOC_CONF"]
    )
    assert short["OPENBLAS_NUM_THREADS"] == "1"
    assert _check_env(["--version"], {})["_RJEM_MALLOC_CONF"].endswith(RETURN_AT_ONCE)  # the package's own
    other = _check_env(["check", str(parquet), "-c", rules, "-q"], {})
    assert RETURN_AT_ONCE in other["_RJEM_MALLOC_CONF"]
    mine = _check_env(
        ["check", str(jsonl), "-c", rules, "-q"],
        {"_RJEM_MALLOC_CONF": "dirty_decay_ms:7", "OPENBLAS_NUM_THREADS": "2"},
    )
    assert "dirty_decay_ms:7" in mine["_RJEM_MALLOC_CONF"] and mine["OPENBLAS_NUM_THREADS"] == "2"
