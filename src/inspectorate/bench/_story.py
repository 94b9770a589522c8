"""The demo's second half: a short testbed run -> check + verify -> the bench on the public
suite -> where the report goes. Called by ``inspectorate demo`` (``make demo``).

The testbed needs torch (the ``testbed`` extra) and a corpus: an installed package ships
none, so the demo trains on text it does ship (the embedded READMEs and commitments,
folded to lower-case letters and punctuation: under the char models' 65-symbol limit).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from inspectorate.bench._corpus import demo_corpus

DEMO_PHASES = ("honest_pretrain_tiny", "idle", "adv_train_as_infer", "adv_big_as_small")
# The public suite's slice the demo scores (the whole suite: `inspectorate bench run`).
DEMO_SELECT = ["compliance/*", "model_size/*", "finetune/*", "op_type/r01/*", "op_type/r03/*"]


def run_story(out: Path, console: Any) -> None:
    """Print the story; files go under ``out``."""
    t0 = time.perf_counter()
    run_dir = out / "testbed-run"
    try:
        import torch  # noqa: F401
    except ImportError:
        console.print(
            "[yellow]testbed step skipped: torch is not installed (pip install 'inspectorate[testbed]')[/yellow]"
        )
    else:
        _testbed(run_dir, out, console)
    _bench(out, console)
    console.print(f"[dim]story: {time.perf_counter() - t0:.0f} s[/dim]")


def _testbed(run_dir: Path, out: Path, console: Any) -> None:
    from inspectorate.commitment import check, load_commitment
    from inspectorate.data import commitment_path
    from inspectorate.testbed import run_testbed
    from inspectorate.trace import read_trace
    from inspectorate.verify import verify_run

    console.rule("A short testbed run: real workloads, two of them lying")
    run_testbed(
        "test", "demo", run_dir, phases=list(DEMO_PHASES), corpus=demo_corpus(out), progress=False, threads=1
    )
    verdict = check(read_trace(run_dir), load_commitment(commitment_path("frontier-training-cap")))
    console.print(
        f"check {run_dir} -c frontier-training-cap: "
        f"{'compliant' if verdict.compliant else 'violation ' + str(verdict.triggered_rule_id)}"
        " (the window records are the prover's: they agree with its claims)"
    )
    run = verify_run(run_dir)
    for p in run.phases:
        flagged = sorted({f.property for f in p.findings if f.decision == "inconsistent"})
        console.print(
            f"  verify {p.phase:<22} claimed {p.claimed or '-':<16} -> {p.outcome}"
            + (f" ({', '.join(flagged)})" if flagged else "")
        )


def _bench(out: Path, console: Any) -> None:
    import importlib.util

    from inspectorate.bench import public_suite, run_bench
    from inspectorate.bench._leaderboard import _fmt

    console.rule("The Verifier Challenge: ours vs two baselines on the public suite (a slice)")
    bench_out = out / "bench"
    have_torch = importlib.util.find_spec("torch") is not None  # verify's spot-check re-runs claimed work
    have_sklearn = importlib.util.find_spec("sklearn") is not None  # the forest baseline
    if not (have_torch and have_sklearn):
        console.print(
            "[yellow]compliance track only, no baselines: install 'inspectorate[testbed,calibrate]'[/yellow]"
        )
    select = DEMO_SELECT if have_torch else ["compliance/*"]
    board = run_bench(
        public_suite(),
        bench_out,
        ["ours"],
        select=select,
        baselines=have_sklearn and have_torch,
        reps=300,
        quiet=True,
        force=True,
    )
    for e in board["entries"]:
        for track, m in e["tracks"].items():
            console.print(
                f"  {e['verifier']:<10} {track:<11} caught {_fmt(m['caught'])}  honest FPR "
                f"{_fmt(m['honest_fpr'])}  AUROC {_fmt(m['auroc'])}"
            )
    console.print(f"leaderboard: {bench_out / 'leaderboard.md'}")
    console.print(f"report: inspectorate report {bench_out} --out {out / 'report.html'}")
