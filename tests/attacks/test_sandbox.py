"""The escape corpus: every item is contained, with and without the Python layer.

Each file in ``escapes/`` names, in its header, the containment it must meet:
``# expect: KIND... | reason`` with every layer on, ``# os-only: KIND... | reason`` with
the Python layer (syntax filter, restricted builtins, audit hook) switched off, so the
OS boundary (bwrap namespaces, seccomp, rlimits, the parent's payload checks) stands
alone. ``os-only: ok`` marks probes of the Python layer itself: without it they run to
completion and reach nothing but the interpreter's own objects. After every run: no
secret (a host file and a parent environment variable) in anything returned, no canary
file written outside, no process of the run still alive.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest
from attack_data import small_trace

from inspectorate.attacks import Limits, SandboxError, run_mutation, run_sandboxed

ESCAPES = sorted((Path(__file__).parent / "escapes").glob("*.py"))
FAST = {"timeout_s": 15, "cpu_s": 1, "memory_mb": 256, "output_mb": 1, "scratch_mb": 4}
SECRET_FILE = Path("/tmp/inspectorate_secret_canary.txt")
CANARIES = [
    Path("/tmp/inspectorate_escape_canary.txt"),
    Path("/tmp/inspectorate_escape_canary3"),
    Path("/tmp/inspectorate_escape_canary5"),
    Path("/inspectorate_escape_canary4"),
    Path("/usr/lib/canary"),
]
CHILD_MARK = b"/sandbox/_sandbox_child.py"  # the child's path exists only inside a sandbox


def header(path: Path, key: str) -> tuple[list[str], str]:
    """The kinds and the reason substring a corpus file declares for ``key``."""
    for line in path.read_text().splitlines()[:4]:
        if line.startswith(f"# {key}:"):
            kinds, _, reason = line.split(":", 1)[1].partition("|")
            return kinds.split(), reason.strip()
    return [], ""


def sandbox_processes() -> list[int]:
    """Host pids whose command line is the sandboxed child's."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            if entry.name.isdigit() and CHILD_MARK in (entry / "cmdline").read_bytes():
                found.append(int(entry.name))
        except OSError:
            continue
    return found


@pytest.fixture()
def secret(monkeypatch):
    token = "TOPSECRET-" + secrets.token_hex(8)
    SECRET_FILE.write_text(token)
    monkeypatch.setenv("INSPECTORATE_SECRET_CANARY", token)
    for canary in CANARIES:
        canary.unlink(missing_ok=True)
    yield token
    SECRET_FILE.unlink(missing_ok=True)


def assert_contained(result, path: Path, key: str, token: str) -> None:
    kinds, reason = header(path, key)
    assert kinds, f"{path.name} declares no '{key}' containment"
    if kinds == ["ok"]:
        assert result.ok, (result.kind, result.error)
    else:
        assert not result.ok
        assert result.kind in kinds, (result.kind, result.error)
        assert reason in result.error, (reason, result.error)
    everything = result.error + json.dumps(result.records) + json.dumps(result.blocked)
    assert token not in everything and "root:x:0" not in everything
    assert not [c for c in CANARIES if c.exists()]
    assert sandbox_processes() == []


def test_corpus_is_broad():
    assert len(ESCAPES) >= 60
    assert all(header(p, "expect")[0] and header(p, "os-only")[0] for p in ESCAPES)


@pytest.mark.parametrize("path", ESCAPES, ids=lambda p: p.stem)
def test_escape_is_contained(path, secret, os_sandbox):
    result = run_sandboxed(path.read_text(), small_trace()[:3], Limits(**FAST))
    assert_contained(result, path, "expect", secret)


@pytest.mark.parametrize("path", ESCAPES, ids=lambda p: p.stem)
def test_os_boundary_alone_contains(path, secret, os_sandbox):
    """The Python layer off: namespaces, seccomp, rlimits and payload checks alone."""
    result = run_sandboxed(path.read_text(), small_trace()[:3], Limits(python_layer=False, **FAST))
    assert_contained(result, path, "os-only", secret)


@pytest.mark.parametrize(
    "path", [p for p in ESCAPES if header(p, "without-syntax-filter")[0]], ids=lambda p: p.stem
)
def test_audit_hook_holds_without_the_syntax_filter(path, secret, os_sandbox):
    """Defence in depth inside the Python layer: the syntax filter off, the hook refuses."""
    result = run_sandboxed(path.read_text(), small_trace()[:3], Limits(syntax_filter=False, **FAST))
    assert not result.ok and result.kind in header(path, "without-syntax-filter")[0], result.error
    assert not [c for c in CANARIES if c.exists()]


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
    print("debug output goes to stderr, not into the result")
    return out
"""


@pytest.mark.parametrize("layer", [True, False], ids=["python-layer", "os-only"])
def test_valid_mutation_runs_and_returns_records(layer, os_sandbox):
    records = small_trace()
    out = run_mutation(GOOD, records, Limits(python_layer=layer, **FAST))
    assert len(out) == len(records)
    assert {r["op_type"] for r in out} == {"eval"}
    assert out[0]["flops"] == records[0]["flops"] / 2
    assert records[0]["op_type"] == "training"  # the caller's copy is untouched


def test_failure_raises_sandbox_error_with_kind(os_sandbox):
    with pytest.raises(SandboxError) as info:
        run_mutation("def mutate(records):\n    return 3\n", small_trace(), Limits(**FAST))
    assert info.value.kind == "invalid" and "list of records" in str(info.value)


def test_wall_clock_timeout_kills(os_sandbox):
    code = "def mutate(records):\n    while True:\n        pass\n"
    result = run_sandboxed(code, small_trace()[:2], Limits(timeout_s=0.5, cpu_s=30))
    assert result.kind == "timeout" and "0.5s" in result.error
    assert sandbox_processes() == []


def test_scratch_cap_is_total_not_per_file(os_sandbox):
    """Two files, each under the cap, together over it: the second write fails."""
    code = (
        "def mutate(records):\n"
        "    for name in ('a', 'b'):\n"
        "        with open(name, 'w') as fh:\n"
        "            fh.write('x' * (3 * 2**20))\n"
        "    return records\n"
    )
    result = run_sandboxed(code, small_trace()[:2], Limits(**{**FAST, "scratch_mb": 4}))
    assert result.kind == "denied" and "No space left on device" in result.error


@pytest.mark.parametrize(
    "layer,fork_reason,forged_reason",
    [(True, "sandbox (blocked)", "sandbox (blocked)"), (False, "sandbox (denied)", "sandbox (invalid)")],
    ids=["python-layer", "os-only"],
)
def test_redteam_scores_legit_code_and_reports_escapes(
    layer, fork_reason, forged_reason, small_commitment, os_sandbox
):
    """Through the loop: escape rounds become errors with the containment reason; the
    others are judged; nothing raises."""
    from inspectorate.attacks import Proposal, redteam

    scripts = [
        GOOD,
        (ESCAPES[0].parent / "fork_survivor.py").read_text(),
        (ESCAPES[0].parent / "forged_result_file.py").read_text(),
    ]

    class Coder:
        name = "coder"

        def prepare(self, commitment, baseline):
            self.n = 0

        def propose(self, history):
            self.n += 1
            return Proposal(f"script{self.n}", "", "", code=scripts[(self.n - 1) % len(scripts)])

    limits = Limits(python_layer=layer, **FAST)
    report = redteam(3, Coder(), small_commitment, small_trace(), None, limits=limits)
    good, fork, forged = report.rounds
    assert good["error"] is None and good["mutated_record_count"] == len(small_trace())
    assert fork["error"].startswith(fork_reason)
    assert forged["error"].startswith(forged_reason)
    assert sandbox_processes() == []
