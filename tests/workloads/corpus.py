"""Characters of the shared corpus as integer tensors (no download: the file on disk, or
a generated text when it is absent)."""

from __future__ import annotations

from pathlib import Path

CORPUS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "corpora" / "tinyshakespeare.txt"


def chars(limit: int = 200_000) -> tuple[list[int], int]:
    full = CORPUS.read_text(encoding="utf-8") if CORPUS.is_file() else _generated(limit)
    text = full[:limit]
    vocab = sorted(set(full))  # the whole file's characters: the ids a verifier's corpus gives them
    index = {c: i for i, c in enumerate(vocab)}
    return [index[c] for c in text], len(vocab)


def _generated(limit: int) -> str:
    words = ["the", "king", "shall", "not", "speak", "of", "love", "and", "war", "to", "me"]
    out, i = [], 0
    while sum(len(w) + 1 for w in out) < limit:
        out.append(words[(i * 7 + i // 3) % len(words)])
        i += 1
    return " ".join(out)
