"""Fixtures: the honest reference traces packaged with inspectorate (never skipped) and a small trace built here."""

from __future__ import annotations

import os

import pytest
from attack_data import REFERENCE_COMMITMENT, SMALL_COMMITMENT

from inspectorate.commitment import load_commitment
from inspectorate.data import seed_path
from inspectorate.trace import read_trace


@pytest.fixture(scope="session")
def reference():
    """The reference commitment and the red team's clean baseline (legit_finetune), as packaged."""
    return load_commitment(REFERENCE_COMMITMENT), read_trace(seed_path("legit_finetune")).records


@pytest.fixture()
def small_commitment():
    return load_commitment(SMALL_COMMITMENT)


@pytest.fixture()
def os_sandbox():
    """Tests of the OS boundary need bwrap + user namespaces + seccomp: skipped locally
    without them, a failure in CI (CI=true), where `make install` provides bwrap."""
    from inspectorate.attacks._sandbox import isolation_problem

    problem = isolation_problem()
    if problem and os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"CI must run the sandbox tests: {problem}")
    if problem:
        pytest.skip(problem)
