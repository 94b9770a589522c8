"""Tiny models trained once per session from the 16 kB fixture corpus (seconds, 1 thread).

``tests/data/testbed_corpus.txt`` is the first 16,000 bytes of Tiny Shakespeare (see
tests/testbed/conftest.py). The reference and the "other seed" model share the
architecture; they differ only by the training seed.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from inspectorate.difr import ProjectionSpec, SamplingConfig, ServeOptions, save_checkpoint
from inspectorate.models._corpus import load_corpus
from inspectorate.models._gpt import GPTConfig
from inspectorate.replay import TrainSpec, quick_train

CORPUS = Path(__file__).resolve().parents[1] / "data" / "testbed_corpus.txt"


@pytest.fixture(autouse=True)
def _one_thread() -> None:
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def corpus():
    return load_corpus(CORPUS)


def _spec(corpus, seed: int, **kw) -> TrainSpec:
    cfg = GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=64, vocab_size=len(corpus.vocab))
    base = dict(model=cfg.to_dict(), steps=80, batch_size=8, seq_len=32, lr=1e-2, seed=seed)
    return TrainSpec(**{**base, **kw})


@pytest.fixture(scope="session")
def reference(corpus):
    torch.set_num_threads(1)
    return quick_train(corpus.split("pretrain"), _spec(corpus, 0))


@pytest.fixture(scope="session")
def other_seed(corpus):
    torch.set_num_threads(1)
    return quick_train(corpus.split("pretrain"), _spec(corpus, 1))


@pytest.fixture(scope="session")
def ref_ckpt(reference, corpus, tmp_path_factory) -> Path:
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "ref.pt", reference, corpus.vocab.chars)


@pytest.fixture(scope="session")
def prompts(corpus):
    from inspectorate.difr._serve import corpus_prompts

    return corpus_prompts(corpus.split("val"), 8, 8, seed=0)


@pytest.fixture
def options() -> ServeOptions:
    return ServeOptions(
        SamplingConfig(temperature=0.8, top_k=40, seed=1234),
        max_new=24,
        batch_size=4,
        projection=ProjectionSpec(seed=77, layer=1, dim=4),
    )
