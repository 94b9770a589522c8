"""``inspectorate bench build-suite|run|compare|catalogue|list``: parse, call one function.

Mounted by the main CLI with ``app.add_typer(bench_app, name="bench")``."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from inspectorate._cli_options import QuietOption

app = typer.Typer(
    help="The Verifier Challenge: build suites, score verifiers, rank them.", no_args_is_help=True
)


@app.command("build-suite")
def build_suite_cmd(
    out: Path = typer.Option(..., "--out", help="suite folder to create"),
    seed: int = typer.Option(0, "--seed", help="builder seed (a private suite uses a secret one)"),
    tracks: str | None = typer.Option(
        None, "--tracks", help="comma-separated tracks (default: all but served_identity)"
    ),
    size: str = typer.Option("small", "--size", help="small | full"),
    runs: Path | None = typer.Option(None, "--runs", help="testbed sweep folder to take run-dir cases from"),
    corpus: Path | None = typer.Option(
        None, "--corpus", help="corpus for the testbed sweep (without --runs)"
    ),
    name: str | None = typer.Option(None, "--name", help="suite name (default suite-SIZE-seedN)"),
    version: str = typer.Option("1", "--version", help="suite version"),
    force: bool = typer.Option(False, "--force", help="replace a non-empty --out"),
) -> None:
    """Build a versioned, content-addressed suite (cases, evidence, answers, manifest)."""
    from inspectorate.bench import build_suite

    chosen = [t.strip() for t in tracks.split(",") if t.strip()] if tracks else None
    manifest = build_suite(out, seed, chosen, size, runs, corpus, name, version, force)
    typer.echo(
        f"suite {manifest['name']} v{manifest['version']}: {sum(manifest['counts'].values())} cases "
        f"{manifest['counts']}; sha256 {manifest['sha256']}"
    )
    typer.echo(f"answers in {out / 'answers.jsonl'}: move them out before publishing a private suite")


@app.command()
def run(
    suite: Path | None = typer.Option(
        None, "--suite", help="suite folder (default: the shipped public suite)"
    ),
    verifier: list[str] = typer.Option([], "--verifier", help="registered verifier name (repeatable)"),
    cmd: str | None = typer.Option(
        None, "--cmd", help="external command following the check/verify contract"
    ),
    out: Path = typer.Option(..., "--out", help="results folder to create"),
    reference: Path | None = typer.Option(
        None, "--reference", help="the write-up's reference checker folder (track a)"
    ),
    answers: Path | None = typer.Option(
        None, "--answers", help="answers file (also writes the truth into results)"
    ),
    subset: str = typer.Option("full", "--subset", help="evidence subset: full | sensor | realistic"),
    ablate: bool = typer.Option(
        False, "--ablate", help="also score the first entry with each stream removed"
    ),
    no_baselines: bool = typer.Option(
        False, "--no-baselines", help="skip the threshold and forest baselines"
    ),
    timeout: float = typer.Option(120.0, "--timeout", help="seconds per verdict (per call for --cmd)"),
    seed: int = typer.Option(0, "--seed", help="bootstrap seed"),
    reps: int = typer.Option(1000, "--reps", help="bootstrap draws"),
    select: list[str] = typer.Option(
        [], "--select", help="case-id glob to keep (repeatable), e.g. 'op_type/*'"
    ),
    quiet: QuietOption = False,
    force: bool = typer.Option(False, "--force", help="replace a non-empty --out"),
) -> None:
    """Score entries (and the baselines) on a suite: results.jsonl, leaderboard.md/.json."""
    from inspectorate.bench import public_suite, run_bench
    from inspectorate.bench._command import Command, reference_entrant
    from inspectorate.errors import InputError

    entrants: list = list(verifier)
    if cmd is not None:
        entrants.append(Command(cmd, timeout=timeout, logs=out / "logs"))
    if reference is not None:
        entrants.append(reference_entrant(reference, timeout=timeout, logs=out / "logs"))
    if not entrants:
        raise InputError('give --verifier NAME or --cmd "..."')
    board = run_bench(
        suite or public_suite(),
        out,
        entrants,
        subset=subset,
        answers_path=answers,
        baselines=not no_baselines,
        ablate=ablate,
        timeout=timeout,
        seed=seed,
        reps=reps,
        select=select or None,
        quiet=quiet,
        force=force,
    )
    if board.get("leaderboard", True) is None:
        typer.echo(f"results: {out / 'results.jsonl'} (no answers: not scored)")
        return
    typer.echo((out / "leaderboard.md").read_text())
    typer.echo(f"results: {out / 'results.jsonl'}; leaderboard: {out / 'leaderboard.json'}")


@app.command()
def compare(dirs: list[Path] = typer.Argument(..., help="bench result folders")) -> None:
    """Rank the entries of several bench runs of one suite."""
    from inspectorate.bench import compare as do_compare

    typer.echo(do_compare(dirs))


@app.command()
def catalogue(
    results: list[Path] = typer.Option(
        [], "--results", help="bench result folder (repeatable: one per subset)"
    ),
    out: Path = typer.Option(Path("docs/properties.md"), "--out", help="markdown file to write"),
    verifier: str = typer.Option("ours", "--verifier", help="whose measured status to report"),
) -> None:
    """Regenerate the property catalogue (docs/properties.md) from a bench run."""
    from inspectorate.bench._catalogue import write_catalogue

    write_catalogue(out, results, verifier)
    typer.echo(f"wrote {out}")


@app.command("list")
def list_cmd() -> None:
    """Tracks and registered verifiers."""
    from inspectorate.bench import TRACKS, VERIFIERS

    for t in TRACKS.values():
        typer.echo(f"track {t.name}: {t.title}: {t.question}")
    for name in VERIFIERS.names():
        typer.echo(f"verifier {name}: {(VERIFIERS.get(name).__doc__ or '').strip().splitlines()[0]}")


def _json(obj: object) -> str:
    return json.dumps(obj, indent=1)
