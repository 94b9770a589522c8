"""The text the demo and the served-identity cases train on: an installed package ships no
corpus, so this folds text it does ship (the embedded READMEs and commitments) to lower-case
letters and punctuation, under the char models' 65-symbol limit."""

from __future__ import annotations

import re
from pathlib import Path


def demo_corpus(out: Path) -> Path:
    from importlib.resources import files

    root = files("inspectorate.data")
    parts = [root / "seed" / "README.md", root / "commitments" / "README.md"]
    parts += sorted(
        (p for p in (root / "commitments").iterdir() if p.name.endswith(".yml")), key=lambda p: p.name
    )
    text = "\n".join(p.read_text(encoding="utf-8") for p in parts).lower()
    text = re.sub(r"[^a-z .,:\n]", " ", text)
    path = out / "demo_corpus.txt"
    path.write_text((text + "\n") * 3, encoding="utf-8")
    return path
