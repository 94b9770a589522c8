"""One honest recorded run (and a donor run) per session, from the 16 kB fixture corpus."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inspectorate.models._corpus import load_corpus
from inspectorate.models._gpt import GPTConfig
from inspectorate.replay import TrainSpec, record_run

CORPUS = Path(__file__).resolve().parents[1] / "data" / "testbed_corpus.txt"


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def corpus():
    return load_corpus(CORPUS)


@pytest.fixture(scope="session")
def spec(corpus) -> TrainSpec:
    cfg = GPTConfig(n_layer=1, n_head=2, n_embd=32, block_size=32, vocab_size=len(corpus.vocab))
    return TrainSpec(model=cfg.to_dict(), steps=40, batch_size=8, seq_len=32, lr=1e-2, checkpoint_every=10)


@pytest.fixture(scope="session")
def honest(spec, corpus, tmp_path_factory):
    torch.set_num_threads(1)
    return record_run(spec, corpus, tmp_path_factory.mktemp("honest"))


@pytest.fixture(scope="session")
def donor(spec, corpus, tmp_path_factory):
    torch.set_num_threads(1)
    from dataclasses import replace

    return record_run(replace(spec, seed=1), corpus, tmp_path_factory.mktemp("donor"))
