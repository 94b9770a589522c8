"""The demo's hint reproduces its table: the commitment it judged by is written next to
its traces, and the printed command says violation for the over-cap trace."""

from __future__ import annotations

import io
import re
import subprocess
import sys

from rich.console import Console

from inspectorate.data import commitment_path
from inspectorate.demo import DEMO_COMMITMENT, run_demo


def test_demo_hint_names_the_commitment_it_used_and_says_violation(tmp_path):
    buffer = io.StringIO()
    assert run_demo(tmp_path, Console(file=buffer, width=400)) == 0
    text = buffer.getvalue()
    assert re.search(r"over_cap\s+│\s+960\s+│\s+violation", text), text
    hint = re.search(r"try: inspectorate (check \S+ -c \S+ --format json)", text)
    assert hint, text
    args = hint.group(1).split()
    promise = tmp_path / f"{DEMO_COMMITMENT}.yml"
    assert args[3] == str(promise) and promise.read_bytes() == commitment_path(DEMO_COMMITMENT).read_bytes()
    run = subprocess.run([sys.executable, "-m", "inspectorate.cli", *args], capture_output=True, text=True)
    assert run.returncode == 1, run.stdout + run.stderr  # before: COMPLIANT under frontier-training-cap
    assert '"verdict": 0' in run.stdout
