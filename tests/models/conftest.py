"""Fixtures for the model layer's tests: the 16 kB fixture corpus (see tests/testbed/conftest.py)
and the shared Tiny Shakespeare when it is present."""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
SHARED_CORPUS = Path(__file__).resolve().parents[3] / "shared" / "data" / "corpora" / "tinyshakespeare.txt"


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    """Two cores are shared with other engineers: torch gets one thread in tests."""
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@pytest.fixture
def corpus_path() -> Path:
    return DATA / "testbed_corpus.txt"


@pytest.fixture
def shared_corpus() -> Path:
    if not SHARED_CORPUS.exists():
        pytest.skip(f"shared corpus not found at {SHARED_CORPUS}")
    return SHARED_CORPUS
