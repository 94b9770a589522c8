"""Shared fixtures for the testbed tests.

``tests/data/testbed_corpus.txt`` is the first 16,000 bytes of Tiny Shakespeare
(public domain; made with ``head -c 16000 tinyshakespeare.txt``), so the core tests run
without ../shared. Tests that need the full corpus skip when it is absent.
"""

from __future__ import annotations

from pathlib import Path

import pytest

DATA = Path(__file__).resolve().parents[1] / "data"
FIXTURE_CORPUS = DATA / "testbed_corpus.txt"
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
    return FIXTURE_CORPUS


@pytest.fixture
def shared_corpus() -> Path:
    if not SHARED_CORPUS.exists():
        pytest.skip(f"shared corpus not found at {SHARED_CORPUS}")
    return SHARED_CORPUS
