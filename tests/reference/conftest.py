"""Fixtures for the differential suite: the reference checker and the shared traces.

The reference lives in ``../shared/reference`` (or ``$INSPECTORATE_SHARED/reference``).
CI always has it, so there a missing directory fails the suite; elsewhere it skips.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from parity_harness import (
    Base,
    canonical,
    full_run,
    generated_bases,
    reference_runner,
    shared_bases,
    shared_root,
)

from inspectorate.commitment import load_commitment


def _require(path: Path) -> Path:
    if path.exists():
        return path
    message = f"reference checker or shared data not found at {path} (set INSPECTORATE_SHARED)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def reference():
    _require(shared_root() / "reference" / "inspector" / "consistency_checks.py")
    return reference_runner()


@pytest.fixture(scope="session")
def seed_data() -> Path:
    return _require(shared_root() / "data" / "seed-traces")


@pytest.fixture(scope="session")
def seed_commitment(seed_data: Path) -> dict[str, Any]:
    """The reference's commitment as both checkers read it (see parity_harness)."""
    return canonical(load_commitment(seed_data / "no_frontier_training.yml").to_dict())


@pytest.fixture(scope="session")
def bases(seed_data: Path, seed_commitment: dict[str, Any]) -> dict[str, Base]:
    return {b.name: b for b in shared_bases(seed_data, seed_commitment) + generated_bases(seed_commitment)}


@pytest.fixture(scope="session")
def parity(reference, bases: dict[str, Base]):
    return full_run(reference, bases)
