"""The plugin protocols let a type checker catch a plugin of the wrong shape where it
is decorated (mypy over a small third-party module; slow: mypy reads the package)."""

from __future__ import annotations

import textwrap

import pytest

pytestmark = pytest.mark.slow

PLUGIN = '''
from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path

from inspectorate.plugins import Finding, Violation, attack, prop, rule, rundir_attack
from inspectorate.trace import Trace


@rule("ok_rule", partition="record")
def ok_rule(trace: Trace, threshold: float = 1.0) -> Iterator[Violation]:
    """Fine."""
    yield from ()


@rule("bad_rule", partition="record")
def bad_rule(trace: Trace, threshold: float = 1.0) -> int:
    """Returns a number, not violations."""
    return 1


@prop("bad_prop")
def bad_prop(evidence: int) -> Finding:
    """Takes one argument of the wrong type."""
    raise NotImplementedError


@attack("bad_attack", intent="x")
def bad_attack(records: str, rng: random.Random) -> list[dict]:
    """Records are not a string."""
    return []


@rundir_attack("ok_rundir", intent="x", targets=[])
def ok_rundir(run_dir: Path, rng: random.Random, stream: str = "a") -> None:
    """Fine."""
'''


def test_a_type_checker_flags_plugins_of_the_wrong_shape(tmp_path):
    api = pytest.importorskip("mypy.api")
    (tmp_path / "plug.py").write_text(textwrap.dedent(PLUGIN))
    out, _, _ = api.run(
        [
            "--ignore-missing-imports",
            "--follow-imports=silent",
            "--cache-dir",
            str(tmp_path / ".mypy_cache"),
            str(tmp_path / "plug.py"),
        ]
    )
    flagged = {line.split(":")[1] for line in out.splitlines() if ": error:" in line}
    lines = textwrap.dedent(PLUGIN).splitlines()
    names = {lines[int(n)].split("(")[0] for n in flagged}  # mypy points at the decorator line
    assert names == {"def bad_rule", "def bad_prop", "def bad_attack"}, out
