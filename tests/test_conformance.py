"""Conformance batteries raise ConformanceError (not assert, which ``python -O`` strips)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from builders import base, chained
from inspectorate._plugins import ConformanceError
from inspectorate.commitment import RULES, check_rule, rule, violation


@pytest.fixture()
def lazy_rule():
    @rule("test_never_fires")
    def never_fires(trace, limit: int = 1):
        """Test only: a rule that never fires."""
        return iter(())

    yield "test_never_fires"
    RULES._entries.pop("test_never_fires")


def test_check_rule_names_a_rule_that_never_fires(lazy_rule):
    with pytest.raises(ConformanceError, match="did not fire on the firing trace"):
        check_rule(lazy_rule, chained(base()), chained(base()))


def test_check_rule_passes_a_rule_that_behaves():
    @rule("test_big_flops")
    def big_flops(trace, limit: float = 1e30):
        """Test only: flops above ``limit``."""
        bad = trace.frame.filter(trace.frame["flops"] > limit)
        if bad.height:
            yield violation("flops above limit", bad["record_id"], limit=limit)

    try:
        firing = base()
        firing[0]["flops"] = 2e30
        check_rule("test_big_flops", chained(firing), chained(base()))
    finally:
        RULES._entries.pop("test_big_flops")


def test_the_battery_still_fails_under_python_O():
    code = (
        "from builders import base, chained\n"
        "from inspectorate.commitment import check_rule\n"
        "check_rule('idle_must_be_zero', chained(base()), chained(base()))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-O", "-c", code],
        capture_output=True,
        text=True,
        cwd=__import__("pathlib").Path(__file__).parent,
    )
    assert proc.returncode != 0 and "ConformanceError" in proc.stderr and "did not fire" in proc.stderr
