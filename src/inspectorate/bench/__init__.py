"""The Verifier Challenge: tracks, suites, the ``Verifier`` protocol, scoring, leaderboard.

    from inspectorate.bench import build_suite, run_bench, public_suite
    run_bench(public_suite(), Path("out"), ["ours"])     # + the threshold and forest baselines

A third party enters by registering a factory (``@verifier("mine")`` or the
``inspectorate.verifiers`` entry-point group) or with any program following the
``check`` / ``verify`` CLI contract (``bench run --cmd "..."``). docs/bench.md.
"""

from inspectorate.bench._case import TRACKS, Answer, Case, Track, get_track
from inspectorate.bench._leaderboard import compare
from inspectorate.bench._run import run_bench, views_for
from inspectorate.bench._score import auroc, tpr_at_fpr, with_intervals
from inspectorate.bench._suite import Suite, build_suite, load_suite, public_suite
from inspectorate.bench._verifier import (
    VERIFIERS,
    BenchVerdict,
    CaseView,
    Trainable,
    Verifier,
    check_verifier,
    make_verifier,
    verifier,
)

__all__ = [
    "TRACKS",
    "VERIFIERS",
    "Answer",
    "BenchVerdict",
    "Case",
    "CaseView",
    "Suite",
    "Track",
    "Trainable",
    "Verifier",
    "auroc",
    "build_suite",
    "check_verifier",
    "compare",
    "get_track",
    "load_suite",
    "make_verifier",
    "public_suite",
    "run_bench",
    "tpr_at_fpr",
    "verifier",
    "views_for",
    "with_intervals",
]
