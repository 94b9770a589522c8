"""The ``inspectorate`` command: a thin doorway; each command calls one library function.

Exit codes: 0 compliant, 1 violation, 2 bad input (one line on stderr, never a
traceback), 3 internal error (set INSPECTORATE_DEBUG=1 for the traceback).
"""

from __future__ import annotations

import atexit
import enum
import gc
import os
import sys
import threading
from pathlib import Path

import typer

from inspectorate._cli_options import Format, FormatOption, LazyGroup, LightGroup, QuietOption, warn
from inspectorate._paths import FORCE_HELP, hex_digest, output_dir, output_file
from inspectorate.errors import InputError, missing_extra
from inspectorate.trace._scenarios import SCENARIOS

app = typer.Typer(
    cls=LazyGroup,  # the commands of other packages are imported when run (LAZY_COMMANDS)
    rich_markup_mode=None,  # plain help: rich and pygments cost 0.3 s of start-up
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Automated verification of AI compute.",
)
trace_app = typer.Typer(
    cls=LightGroup,
    rich_markup_mode=None,
    no_args_is_help=True,
    help="Generate and inspect window-record traces.",
)
app.add_typer(trace_app, name="trace")


def _show_version(value: bool) -> None:
    if value:
        from inspectorate import __version__

        typer.echo(f"inspectorate {__version__}")
        raise typer.Exit(0)


@app.callback()
def _root(
    version: bool = typer.Option(
        False, "--version", callback=_show_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Automated verification of AI compute. Exit codes: 0 compliant, 1 violation, 2 bad
    input, 3 internal error. In JSON, "verdict": 1 means compliant (the opposite of exit code 1)."""


class Engine(str, enum.Enum):
    local = "local"
    dask = "dask"


Scenario = enum.Enum("Scenario", [(name, name) for name in SCENARIOS], type=str)  # type: ignore[misc]


SHORT_JSONL_BYTES = 1 << 30  # about 1.5 M records as the reference spells them
RETURN_AT_ONCE = "dirty_decay_ms:0,muzzy_decay_ms:0"  # what inspectorate/__init__ sets


def _keep_freed_pages(trace: Path) -> None:
    """Polars' allocator is told to hand freed pages back at once (inspectorate/__init__:
    peak RSS at 10^7 records). A JSONL file under 1 GiB is read into one frame, and each
    page handed back is faulted in again by the next query: at 300k records 126k page
    faults instead of 82k, ~0.1 CPU s of the check, for a peak of 509 MB instead of 527.
    For such a file Polars keeps its own decay (freed pages kept about a second); not
    when the user set the allocator or Polars is already loaded."""
    if "polars" in sys.modules or os.environ.get("_RJEM_MALLOC_CONF") != RETURN_AT_ONCE:
        return
    try:
        short = trace.suffix == ".jsonl" and trace.stat().st_size < SHORT_JSONL_BYTES
    except OSError:  # the reader names the problem
        return
    if short:
        del os.environ["_RJEM_MALLOC_CONF"]


def _one_blas_thread() -> None:
    """OpenBLAS starts a thread per core as numpy loads, and they spin waiting for work:
    ~0.05 CPU s of every check, which does no linear algebra (the rules are Polars
    queries). One thread, unless numpy is already loaded or the user chose a count."""
    if "numpy" not in sys.modules:
        os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")


@app.command()
def check(
    trace: Path = typer.Argument(..., help="Trace: .jsonl, .jsonl.gz, .parquet or a run directory."),
    commitment: Path = typer.Option(..., "--commitment", "-c", help="Commitment YAML."),
    format: FormatOption = Format.text,
    head: str | None = typer.Option(
        None, "--head", help="Published chain head (hex) to pin the last record."
    ),
    quiet: QuietOption = False,
    agent: bool = typer.Option(
        False, "--agent", help="LLM tier for semantic rules no offline judge covers (keys from env)."
    ),
    engine: Engine = typer.Option(Engine.local, "--engine", help="local, or dask (the [scale] extra)."),
    scheduler: str | None = typer.Option(
        None, "--scheduler", help="Dask scheduler address (default: a local cluster)."
    ),
    out_of_core: bool = typer.Option(
        False,
        "--out-of-core",
        help="Parquet file or layout: every rule over on-disk parts (docs/scaling.md).",
    ),
    head_log: Path | None = typer.Option(
        None,
        "--head-log",
        help="Transparency log of the trace's signed heads (pins --head; needs --keyring).",
    ),
    keyring: Path | None = typer.Option(None, "--keyring", help="The verifier's keyring (enrolled keys)."),
    report: Path | None = typer.Option(
        None, "--report", help="Also write the verdict as one HTML page with plots (the [report] extra)."
    ),
) -> None:
    """Judge TRACE against COMMITMENT; exit 0 compliant, 1 violation, 2 bad input."""
    _one_blas_thread()
    _keep_freed_pages(trace)
    from inspectorate._commands import check_command
    from inspectorate.report import progress, verdict_text

    checked = check_command(
        trace,
        commitment,
        head=hex_digest(head, "--head"),
        engine=engine.value,
        scheduler=scheduler,
        out_of_core=out_of_core,
        agent=agent,
        notify=warn,
        progress=lambda total, large: progress(total, "rules", quiet=quiet or not large),
        head_log=head_log,
        keyring=keyring,
        report=report,
    )
    if format is Format.json:
        typer.echo(checked.to_json(trace, commitment))
    else:
        typer.echo(verdict_text(checked.verdict, str(trace)))
        for line in checked.signed.reasons() if checked.signed is not None else []:
            typer.echo(line)
    raise typer.Exit(checked.exit_code)


@app.command()
def rules(kind: str | None = typer.Argument(None, help="Show one kind in full.")) -> None:
    """List the rule kinds a commitment can use, with their parameters and semantics."""
    from inspectorate.commitment import describe_kind, known_kinds

    for name in [kind] if kind else known_kinds():
        text = describe_kind(name)
        typer.echo(text if kind else text.split("\n")[0] + "\n    " + text.split("\n")[1].strip())


class Layout(str, enum.Enum):
    single = "single"
    partitioned = "partitioned"


@trace_app.command("generate")
def trace_generate(
    out: Path = typer.Option(..., "--out", "-o", help="Output .jsonl, .jsonl.gz or .parquet."),
    chips: int = typer.Option(8, "--chips"),
    hours: float = typer.Option(1.0, "--hours"),
    scenario: Scenario = typer.Option(
        Scenario.training,  # type: ignore[attr-defined]
        "--scenario",
        help="Honest: training, inference, mixed; the others inject one violation.",
    ),
    window_seconds: int = typer.Option(60, "--window-seconds"),
    seed: int = typer.Option(0, "--seed"),
    layout: Layout = typer.Option(
        Layout.single,
        "--layout",
        help="single: one chained file; partitioned: straight into the partitioned layout (--out is a new directory).",
    ),
    partition_seconds: int = typer.Option(
        3600, "--partition-seconds", help="Partitioned: seconds per window file."
    ),
    chip_groups: int = typer.Option(16, "--chip-groups", help="Partitioned: chip groups per window."),
    cap: float | None = typer.Option(
        None, "--cap", help="over_cap: a per-job FLOP cap the run must cross (default: twice its compute)."
    ),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Write a synthetic hash-chained cluster trace. Each injected scenario violates a
    shipped commitment at 8 chips x 2 h (commitments/README.md pairs them). An existing
    --out is refused without --force."""
    from inspectorate._commands import generate_file
    from inspectorate.trace import GenSpec

    if chips < 1 or hours <= 0 or window_seconds < 1:
        raise InputError("--chips and --window-seconds must be >= 1 and --hours > 0")
    spec = GenSpec(
        chips=chips, hours=hours, scenario=scenario.value, window_seconds=window_seconds, seed=seed, cap=cap
    )
    partitioned = layout is Layout.partitioned
    count = generate_file(
        spec, out, force=force, partitioned=(partition_seconds, chip_groups) if partitioned else None
    )
    typer.echo(f"wrote {count} records ({scenario.value}) to {out}")


@trace_app.command("generate-run")
def trace_generate_run(
    out: Path = typer.Option(
        ..., "--out", "-o", help="New directory: one flat run dir a host (host00, ...)."
    ),
    hosts: int = typer.Option(8, "--hosts"),
    hours: float = typer.Option(24.0, "--hours"),
    hz: float = typer.Option(10.0, "--hz", help="Sensor samples a second."),
    seed: int = typer.Option(0, "--seed"),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Write run dirs of an honest multi-phase schedule (sensor, windows, steps, labels)
    for verify at scale (bench/verify_scale.py). An existing --out is refused without --force."""
    from inspectorate.trace._rungen import RunSpec, generate_run

    if hosts < 1 or hours <= 0 or hz <= 0:
        raise InputError("--hosts must be >= 1, --hours and --hz > 0")
    done = generate_run(out, RunSpec(hosts=hosts, hours=hours, hz=hz, seed=seed), force=force)
    typer.echo(
        f"wrote {done['hosts']} hosts x {done['phases_per_host']} phases, {done['sensor_samples']} sensor samples to {out}"
    )


@trace_app.command("verify-chain")
def trace_verify_chain(
    trace: Path,
    head: str | None = typer.Option(None, "--head"),
    root: str | None = typer.Option(None, "--root", help="Published Merkle root (partitioned layout)."),
) -> None:
    """Check only the hash chain(s); exit 0 intact, 1 broken, 2 bad input. A partitioned
    directory (manifest.json) is checked per chip, window roots and root included."""
    from inspectorate._commands import verify_chain_file

    lines, intact = verify_chain_file(trace, hex_digest(head, "--head"), hex_digest(root, "--root"))
    for line in lines:
        typer.echo(line)
    raise typer.Exit(0 if intact else 1)


@trace_app.command("convert")
def trace_convert(
    source: Path,
    out: Path,
    window_seconds: int = typer.Option(3600, "--window-seconds"),
    chip_groups: int = typer.Option(16, "--chip-groups"),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
) -> None:
    """Single-chain trace <-> partitioned layout (per-chip chains, Merkle root per window)."""
    from inspectorate.scale import convert

    if (source / "manifest.json").exists():  # to one file (and its head sidecar)
        output_file(out, "OUT", force, companions=[out.with_name(out.name + ".head.json")])
    else:
        output_dir(out, "OUT", forceable=False)  # a new layout never lands on top of another

    typer.echo(convert(source, out, window_seconds=window_seconds, chip_groups=chip_groups))


@app.command("report")
def report_command(
    source: Path = typer.Argument(..., help="Run directory, trace file, or bench output directory."),
    out: Path = typer.Option(..., "--out", "-o", help="The HTML file to write."),
    commitment: Path | None = typer.Option(None, "--commitment", "-c", help="Commitment YAML to judge by."),
    verdict: Path | None = typer.Option(
        None, "--verdict", help="A saved `check`/`verify --format json` verdict, drawn without judging again."
    ),
    force: bool = typer.Option(False, "--force", help="Overwrite OUT even if this tool did not write it."),
) -> None:
    """Write one self-contained HTML page: verdict, telemetry plots, rule hits, leaderboard."""
    from inspectorate.report import write_report

    written = write_report(source, out, commitment=commitment, verdict=verdict, force=force)
    typer.echo(f"wrote {written}")


@app.command()
def demo(
    out: Path | None = typer.Option(
        None, "--out", help="Where the demo writes its files (default: a new temporary directory)."
    ),
    force: bool = typer.Option(False, "--force", help=FORCE_HELP),
    story: bool = typer.Option(
        True, "--story/--no-story", help="Also run the testbed -> verify -> bench story (minutes)."
    ),
) -> None:
    """End to end on the embedded data: shared traces, a generated trace, an injected violation."""
    import tempfile

    from inspectorate.demo import run_demo

    if out is not None:
        output_dir(out, "--out", force)
    raise typer.Exit(
        run_demo(out if out is not None else Path(tempfile.mkdtemp(prefix="inspectorate-demo-")), story=story)
    )


def invoke(argv: list[str] | None = None) -> int:
    """Run the CLI on ``argv`` and return its exit code: the one place where errors become
    exit codes. 2 + one line on stderr for anything the user can fix (InputError, usage
    errors), 3 for internal errors (traceback only with INSPECTORATE_DEBUG=1)."""
    try:
        code = app(args=argv, standalone_mode=False)
    except InputError as exc:
        print(f"error: {exc.one_line()}", file=sys.stderr)
        return 2
    except typer.Exit as exc:
        return int(exc.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        print("aborted", file=sys.stderr)
        return 130
    except typer.TyperException as exc:  # usage errors: unknown option, bad choice, missing argument
        show = getattr(exc, "show", None)
        show() if callable(show) else print(f"error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        missing = missing_extra(exc) if isinstance(exc, ModuleNotFoundError) else None
        if missing is not None:  # an optional dependency, not a bug: name the extra to install
            print(f"error: {missing.one_line()}", file=sys.stderr)
            return 2
        if os.environ.get("INSPECTORATE_DEBUG"):
            raise
        print(f"internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 3
    return code if isinstance(code, int) else 0


def main() -> None:
    """The console script: runs one command and ends the process (os._exit, see _exit).
    Call invoke() to run a command inside a process that goes on."""
    # The command line runs one command: the young generation is collected every 10,000
    # net allocations, not 700, so a check's imports trigger no full collection (each
    # walked every module object: ~0.03 CPU s); a long command (sensor, testbed) still
    # gets full collections, 14x less often. No teardown of what it built (see _exit).
    gc.set_threshold(10_000, 20, 10)
    _exit(invoke())


def _exit(code: int) -> None:
    """Leave with ``code`` once atexit handlers have run, without the interpreter freeing
    every object one by one (a 300k-record check's frames and modules: ~0.1 CPU s); a
    live thread other than this one gets the ordinary exit, which waits for it."""
    if threading.active_count() > 1:
        sys.exit(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: the output is gone either way
            code = code or 120  # what the interpreter answers when its final flush fails
    os._exit(code)


if __name__ == "__main__":
    main()
