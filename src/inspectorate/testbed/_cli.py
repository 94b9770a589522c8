"""``inspectorate testbed run|sweep``: parse arguments, call one library function.

Mounted by the main CLI with ``app.add_typer(testbed_app, name="testbed")`` after
``from inspectorate.testbed._cli import app as testbed_app``. torch is imported only
when a command runs, so ``inspectorate --help`` works without the [testbed] extra.
"""

from __future__ import annotations

from enum import Enum
from pathlib import Path

import typer

from inspectorate._cli_options import QuietOption

app = typer.Typer(
    help="Run honest and adversarial workloads and record them as a run directory.", no_args_is_help=True
)


class ProfileName(str, Enum):
    laptop = "laptop"
    gpu = "gpu"
    test = "test"


CLAIMS_HELP = "training jobs also write replay claims (RUN_DIR/claims/<phase>/; 12 B/param per checkpoint)"


@app.command()
def run(
    profile: ProfileName = typer.Option(
        ProfileName.laptop, help="laptop (2 CPU ranks), gpu (CUDA), test (micro)"
    ),
    host_id: str = typer.Option("host0", "--host-id", help="host name used in chip ids and record ids"),
    out: Path = typer.Option(..., "--out", help="run directory to create (must be new or empty)"),
    seed: int = typer.Option(0, help="seed for init, data order and sampling"),
    threads: int | None = typer.Option(None, help="torch threads per rank (default: cores / ranks)"),
    batch_size: int | None = typer.Option(None, "--batch-size", help="training batch for every role"),
    scale: float = typer.Option(1.0, help="multiply every phase duration"),
    phases: str | None = typer.Option(None, help="comma-separated phase names (default: all 15)"),
    corpus: Path = typer.Option(..., help="UTF-8 text corpus to train on (e.g. tinyshakespeare.txt)"),
    keep_checkpoints: bool = typer.Option(False, "--keep-checkpoints", help="keep RUN_DIR/checkpoints/*.pt"),
    replay_claims: bool = typer.Option(False, "--replay-claims", help=CLAIMS_HELP),
    quiet: QuietOption = False,
) -> None:
    """Run the phase schedule on this host and write RUN_DIR."""
    from inspectorate.testbed.run import run_testbed
    from inspectorate.testbed.summary import format_summary, summarize_run

    out_dir = run_testbed(
        profile.value,
        host_id,
        out,
        phases=phases,
        seed=seed,
        threads=threads,
        batch_size=batch_size,
        scale=scale,
        progress=not quiet,
        corpus=corpus,
        keep_checkpoints=keep_checkpoints,
        replay_claims=replay_claims,
    )
    typer.echo(format_summary(summarize_run(out_dir)))
    typer.echo(f"run directory: {out_dir}")


@app.command()
def sweep(
    hosts: int = typer.Option(3, help="number of hosts host0..hostN-1, run one after another"),
    out: Path = typer.Option(..., "--out", help="parent directory; each host gets OUT/<host>"),
    profile: ProfileName = typer.Option(ProfileName.laptop),
    scale: float = typer.Option(1.0, help="multiply every phase duration"),
    phases: str | None = typer.Option(None, help="comma-separated phase names (default: all 15)"),
    corpus: Path = typer.Option(..., help="UTF-8 text corpus to train on (e.g. tinyshakespeare.txt)"),
    replay_claims: bool = typer.Option(False, "--replay-claims", help=CLAIMS_HELP),
    quiet: QuietOption = False,
) -> None:
    """Run several hosts varying threads, batch size and seed (for leave-one-host-out)."""
    from inspectorate.testbed.run import sweep as run_sweep

    runs = run_sweep(
        hosts,
        out,
        profile.value,
        scale=scale,
        progress=not quiet,
        phases=phases,
        corpus=corpus,
        replay_claims=replay_claims,
    )
    for path in runs:
        typer.echo(str(path))
