"""Corpus splits are disjoint and deterministic; fingerprints are stable; batches seeded."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from inspectorate.errors import InputError
from inspectorate.models._corpus import (
    SPLITS,
    BatchSampler,
    CharVocab,
    dataset_fingerprint,
    load_corpus,
    split_range,
)


def test_splits_are_disjoint_cover_the_corpus_and_are_ordered(corpus_path: Path) -> None:
    corpus = load_corpus(corpus_path)
    ranges = [split_range(len(corpus.tokens), s) for s in SPLITS]
    assert ranges[0][0] == 0 and ranges[-1][1] == len(corpus.tokens)
    for (lo_a, hi_a), (lo_b, hi_b) in zip(ranges, ranges[1:]):
        assert hi_a == lo_b and lo_a < hi_a < hi_b  # touching, never overlapping
    assert sum(len(corpus.split(s)) for s in SPLITS) == len(corpus.tokens)


def test_finetune_region_shares_no_offset_with_pretraining(corpus_path: Path) -> None:
    corpus = load_corpus(corpus_path)
    n = len(corpus.tokens)
    pre, fine = set(range(*split_range(n, "pretrain"))), set(range(*split_range(n, "finetune")))
    assert pre.isdisjoint(fine) and fine


def test_fingerprints_are_stable_and_distinct(corpus_path: Path) -> None:
    a, b = load_corpus(corpus_path), load_corpus(corpus_path)
    prints = {s: a.fingerprint(s) for s in SPLITS}
    assert prints == {s: b.fingerprint(s) for s in SPLITS}
    assert len(set(prints.values())) == 3
    assert all(re.fullmatch(r"sha256:[0-9a-f]{16}", p) for p in prints.values())


def test_fingerprint_changes_with_one_token_or_the_vocabulary() -> None:
    vocab = CharVocab.from_text("abcdef")
    tokens = vocab.encode("abcabcdef" * 10)
    base = dataset_fingerprint(tokens, vocab, "pretrain")
    edited = tokens.copy()
    edited[5] = 0 if edited[5] else 1
    assert dataset_fingerprint(edited, vocab, "pretrain") != base
    assert dataset_fingerprint(tokens, CharVocab.from_text("abcdefg"), "pretrain") != base
    assert dataset_fingerprint(tokens, vocab, "val") != base


def test_vocab_round_trip() -> None:
    vocab = CharVocab.from_text("hello world")
    assert vocab.decode(vocab.encode("low herd")) == "low herd"
    with pytest.raises(InputError, match="not in the vocabulary"):
        vocab.encode("z")


def test_batches_are_seeded_per_rank_and_shifted(corpus_path: Path) -> None:
    tokens = load_corpus(corpus_path).split("pretrain")
    x0, y0 = BatchSampler(tokens, 4, 16, seed=1, rank=0).next()
    x0b, _ = BatchSampler(tokens, 4, 16, seed=1, rank=0).next()
    x1, _ = BatchSampler(tokens, 4, 16, seed=1, rank=1).next()
    assert x0.shape == (4, 16) and np.array_equal(x0, x0b) and not np.array_equal(x0, x1)
    assert np.array_equal(x0[:, 1:], y0[:, :-1])


def test_unreadable_or_tiny_corpus_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="cannot read corpus"):
        load_corpus(tmp_path / "missing.txt")
    short = tmp_path / "short.txt"
    short.write_text("too short")
    with pytest.raises(InputError, match="too short"):
        load_corpus(short)


def test_shared_corpus_has_the_65_character_vocabulary(shared_corpus: Path) -> None:
    corpus = load_corpus(shared_corpus)
    assert len(corpus.vocab) == 65 and len(corpus.tokens) > 1_000_000
