"""Shared fixtures: the shipped public suite, and one bench run of three entries on a
slice of it (two hosts' naive runs, three tracks), scored once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
EXTERNAL = HERE / "external_verifier.py"
# two hosts (r01 = host0, r03 = host1, naive provers) so the forest trains leave-one-host-out
# (op_type and undeclared_work run verify's compute spot-check, ~20-45 s a run here: the
# whole suite is the slow test in test_run.py)
SLICE = ["compliance/*", "finetune/r01/*", "finetune/r03/*", "model_size/r01/*", "model_size/r03/*"]


@pytest.fixture(scope="session")
def public():
    from inspectorate.bench import load_suite, public_suite

    return load_suite(public_suite())


@pytest.fixture(scope="session")
def three_entries(tmp_path_factory: pytest.TempPathFactory):
    pytest.importorskip("sklearn")
    pytest.importorskip("torch")  # verify's spot-check re-runs the claimed work
    from inspectorate.bench import public_suite, run_bench

    out = tmp_path_factory.mktemp("bench") / "ours"
    board = run_bench(public_suite(), out, ["ours"], select=SLICE, reps=200, quiet=True)
    return out, board
