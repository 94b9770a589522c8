"""The escape corpus: every item is contained; valid code still works."""

from __future__ import annotations

from pathlib import Path

import pytest

from conftest import small_trace
from inspectorate.attacks import Limits, SandboxError, network_isolated, run_mutation, run_sandboxed

ESCAPES = sorted((Path(__file__).parent / "escapes").glob("*.py"))
FAST = Limits(timeout_s=5, cpu_s=1, memory_mb=256, output_mb=1)
CANARIES = [
    Path("/tmp/inspectorate_escape_canary.txt"),
    Path("/tmp/inspectorate_escape_canary3"),
    Path("/tmp/inspectorate_escape_canary5"),
]


def header(path: Path, key: str) -> list[str]:
    for line in path.read_text().splitlines()[:3]:
        if line.startswith(f"# {key}:"):
            return line.split(":", 1)[1].split()
    return []


def test_corpus_is_broad():
    assert len(ESCAPES) >= 30
    assert all(header(p, "expect") for p in ESCAPES)


@pytest.mark.parametrize("path", ESCAPES, ids=lambda p: p.stem)
def test_escape_is_contained(path):
    for canary in CANARIES:
        canary.unlink(missing_ok=True)
    result = run_sandboxed(path.read_text(), small_trace()[:3], FAST)
    assert not result.ok
    assert result.kind in header(path, "expect"), (result.kind, result.error)
    assert "root:" not in result.error
    assert not any(c.exists() for c in CANARIES)


@pytest.mark.parametrize(
    "path", [p for p in ESCAPES if header(p, "without-syntax-filter")], ids=lambda p: p.stem
)
def test_audit_hook_holds_without_the_syntax_filter(path):
    """Defence in depth: with layer 2 switched off, the runtime layers still refuse."""
    limits = Limits(timeout_s=5, cpu_s=1, memory_mb=256, output_mb=1, syntax_filter=False)
    result = run_sandboxed(path.read_text(), small_trace()[:3], limits)
    assert not result.ok and result.kind in header(path, "without-syntax-filter"), (result.kind, result.error)
    assert not any(c.exists() for c in CANARIES)


GOOD = """
import copy, math, random, json, hashlib, datetime, statistics, collections, itertools, functools, re
def mutate(records):
    out = copy.deepcopy(records)
    for r in out:
        r["op_type"] = "eval"
        r["flops"] = r["flops"] / 2
    datetime.datetime.strptime("2026-04-24", "%Y-%m-%d")
    with open("notes.txt", "w") as fh:   # the scratch dir is writable
        fh.write(hashlib.sha256(json.dumps(out).encode()).hexdigest())
    return out
"""


def test_valid_mutation_runs_and_returns_records():
    records = small_trace()
    out = run_mutation(GOOD, records, FAST)
    assert len(out) == len(records)
    assert {r["op_type"] for r in out} == {"eval"}
    assert out[0]["flops"] == records[0]["flops"] / 2
    assert records[0]["op_type"] == "training"  # the caller's copy is untouched


def test_failure_raises_sandbox_error_with_kind():
    with pytest.raises(SandboxError) as info:
        run_mutation("def mutate(records):\n    return 3\n", small_trace(), FAST)
    assert info.value.kind == "invalid" and "list of records" in str(info.value)


def test_wall_clock_timeout_kills():
    code = "def mutate(records):\n    while True:\n        pass\n"
    result = run_sandboxed(code, small_trace()[:2], Limits(timeout_s=0.5, cpu_s=30))
    assert result.kind == "timeout" and result.seconds < 5


@pytest.mark.skipif(not network_isolated(), reason="unshare -rn not available here")
def test_network_namespace_used_when_available():
    assert network_isolated()
