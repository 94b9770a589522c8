"""Character corpus, its deterministic split, seeded batches and dataset fingerprints.

Why three regions and not the usual two: fine-tuning must run on text the pretraining
never saw (the seed fine-tuned on a different corpus), so the corpus is cut, in file
order, into ``pretrain`` [0, 80%), ``finetune`` [80%, 90%) and ``val`` [90%, 100%).
The regions are disjoint by construction and the cut depends only on the text, so the
same corpus gives the same splits and the same fingerprints on every host. No torch
here: batches are numpy arrays the workloads convert.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from inspectorate.errors import InputError

SPLITS = ("pretrain", "finetune", "val")
SPLIT_BOUNDS = {"pretrain": (0.0, 0.8), "finetune": (0.8, 0.9), "val": (0.9, 1.0)}
CORPUS_TAG = "corpus:tiny-shakespeare"


@dataclass(frozen=True)
class CharVocab:
    """Sorted distinct characters of the corpus; id = position in that order."""

    chars: str

    @classmethod
    def from_text(cls, text: str) -> CharVocab:
        return cls("".join(sorted(set(text))))

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> np.ndarray:
        lookup = {ch: i for i, ch in enumerate(self.chars)}
        try:
            return np.fromiter((lookup[ch] for ch in text), dtype=np.int64, count=len(text))
        except KeyError as exc:
            raise InputError(f"character {exc.args[0]!r} is not in the vocabulary") from None

    def decode(self, ids: np.ndarray | list[int]) -> str:
        return "".join(self.chars[int(i)] if int(i) < len(self.chars) else "?" for i in ids)


@dataclass(frozen=True)
class Corpus:
    """Encoded text plus its split regions; ``name`` becomes the data-source tag."""

    vocab: CharVocab
    tokens: np.ndarray = field(repr=False)
    name: str = CORPUS_TAG

    def split(self, name: str) -> np.ndarray:
        """Token ids of one region (a view, not a copy)."""
        lo, hi = split_range(len(self.tokens), name)
        return self.tokens[lo:hi]

    def fingerprint(self, name: str) -> str:
        return dataset_fingerprint(self.split(name), self.vocab, name)


def split_range(n_tokens: int, name: str) -> tuple[int, int]:
    """[lo, hi) token offsets of a split; cuts are rounded down, so regions never overlap."""
    if name not in SPLIT_BOUNDS:
        raise InputError(f"unknown split {name!r}; known: {', '.join(SPLITS)}")
    lo, hi = SPLIT_BOUNDS[name]
    return int(n_tokens * lo), int(n_tokens * hi)


def load_corpus(path: Path | str | None, *, name: str = CORPUS_TAG) -> Corpus:
    """Read and encode a UTF-8 text file (the testbed trains on Tiny Shakespeare,
    ``shared/data/corpora/tinyshakespeare.txt`` in the project's data; any text works).
    There is no default: an installed package has no corpus of its own to fall back on."""
    if path is None:
        raise InputError("a training corpus is required (--corpus FILE, a UTF-8 text file of >= 1000 chars)")
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read corpus ({exc})", path) from None
    if len(text) < 1000:
        raise InputError(f"corpus too short ({len(text)} chars; need >= 1000)", path)
    vocab = CharVocab.from_text(text)
    return Corpus(vocab=vocab, tokens=vocab.encode(text), name=name)


def dataset_fingerprint(tokens: np.ndarray, vocab: CharVocab, split: str) -> str:
    """``sha256:<16 hex>`` over the split name, the vocabulary and the token ids (int64 LE).

    The vocabulary is hashed in because the same ids under another vocabulary are other text.
    """
    digest = hashlib.sha256()
    digest.update(f"inspectorate.char/1|{split}|".encode())
    digest.update(vocab.chars.encode("utf-8"))
    digest.update(b"|")
    digest.update(np.ascontiguousarray(tokens, dtype="<i8").tobytes())
    return f"sha256:{digest.hexdigest()[:16]}"


class BatchSampler:
    """Random contiguous windows of a split: ``(x, y)`` with ``y`` shifted by one token.

    Seeded per (seed, rank), so two data-parallel ranks read different windows and a
    rerun with the same seed reads the same ones.
    """

    def __init__(
        self, tokens: np.ndarray, batch_size: int, seq_len: int, *, seed: int = 0, rank: int = 0
    ) -> None:
        if len(tokens) <= seq_len + 1:
            raise InputError(f"split of {len(tokens)} tokens is too short for sequences of {seq_len}")
        self.tokens = tokens
        self.batch_size = batch_size
        self.seq_len = seq_len
        self.rng = np.random.default_rng([seed, rank])

    def next(self) -> tuple[np.ndarray, np.ndarray]:
        starts = self.rng.integers(0, len(self.tokens) - self.seq_len - 1, size=self.batch_size)
        rows = starts[:, None] + np.arange(self.seq_len + 1)[None, :]
        window = self.tokens[rows]
        return np.ascontiguousarray(window[:, :-1]), np.ascontiguousarray(window[:, 1:])

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        while True:
            yield self.next()
