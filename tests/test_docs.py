"""Runs every fenced command block in README.md and docs/*.md that is marked runnable.

The marker is the fence's info string ``bash runnable``::

    ```bash runnable
    inspectorate trace generate --out t.jsonl
    ```

A marked block runs as one bash script with ``set -euo pipefail`` (so every line must
succeed; a line that is meant to fail says so, e.g. ``... || test $? -eq 1``), in a
fresh temporary directory that mirrors the repository's top-level entries by symlink
(``commitments/...`` and ``tests/data/...`` resolve; outputs land in the temp dir), with
``inspectorate`` on PATH running this checkout. Mark a block runnable only when it is
quick (each command well under 20 s, the whole set under ~30 s, or mark this test slow)
and self-contained: no network, no GPU, no ``../shared`` data (a block that names it is
skipped where that folder is absent).
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import inspectorate

ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```bash runnable[ \t]*\n(.*?)^```[ \t]*$", re.M | re.S)
BLOCK_TIMEOUT_S = 120


def runnable_blocks() -> list[tuple[str, str]]:
    """(``file:line``, script) for every marked block."""
    out = []
    for doc in DOCS:
        text = doc.read_text(encoding="utf-8")
        for match in FENCE.finditer(text):
            line = text.count("\n", 0, match.start()) + 1
            out.append((f"{doc.relative_to(ROOT)}:{line}", match.group(1)))
    return out


BLOCKS = runnable_blocks()


def test_the_docs_mark_some_blocks_runnable():
    """A renamed marker would otherwise turn this file into a test of nothing."""
    assert any(where.startswith("README.md") for where, _ in BLOCKS)


@pytest.fixture
def sandbox(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    work = tmp_path / "repo"
    work.mkdir()
    for entry in ROOT.iterdir():
        if entry.name not in (".git", ".venv") and not entry.name.startswith("."):
            (work / entry.name).symlink_to(entry)
    shared = ROOT.parent / "shared"
    if shared.exists():
        (tmp_path / "shared").symlink_to(shared)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    shim = bin_dir / "inspectorate"
    shim.write_text(f'#!/bin/sh\nexec "{sys.executable}" -m inspectorate.cli "$@"\n')
    shim.chmod(shim.stat().st_mode | stat.S_IXUSR)
    env = {
        **os.environ,
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(Path(inspectorate.__file__).resolve().parents[1]),
    }
    return work, env


@pytest.mark.parametrize("where,script", BLOCKS, ids=[w for w, _ in BLOCKS])
def test_runnable_block(sandbox, where, script):
    work, env = sandbox
    if "../shared" in script and not (work.parent / "shared").exists():
        pytest.skip("the block reads ../shared, which is absent here")
    proc = subprocess.run(
        ["bash", "-c", "set -euo pipefail\n" + script],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=BLOCK_TIMEOUT_S,
    )
    assert proc.returncode == 0, f"{where} failed (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
