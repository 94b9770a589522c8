"""Run untrusted ``mutate(records)`` code (from an LLM attacker) in a separate process.

Why a process and not ``exec`` with restricted globals: restricted Python alone has a
long history of escapes (subclass walks to ``os``, frames to real builtins). Here the
code runs in ``python -I -S`` (no site, no environment, stdlib only) under OS limits,
a syntax filter, restricted builtins and an audit hook (see ``_sandbox_child``), with a
wall-clock kill from this side, an empty environment (no API keys), stdin closed, a
fresh temp dir as cwd, and, where ``unshare -rn`` works, a network namespace with no
interfaces. Records travel as JSON both ways, never pickle, and the result is validated
here as window records before anyone uses it.

Limits (documented in docs/redteam.md): this is defence in depth for model-written
code, not a jail for a determined human adversary. It relies on CPython's audit hooks
and on the syntax filter; a bug in a C extension reachable from the whitelisted
modules, or a kernel bug, is out of its reach. Use a VM or container for hostile code.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

from inspectorate.trace import validate_record

CHILD = Path(__file__).with_name("_sandbox_child.py")


class SandboxError(RuntimeError):
    """The code did not produce valid records; ``kind`` says why (timeout, cpu, memory,
    output, blocked, invalid, error, crashed)."""

    def __init__(self, kind: str, message: str, blocked: Sequence[str] = ()):
        self.kind = kind
        self.blocked = list(blocked)
        super().__init__(f"sandbox ({kind}): {message}")


@dataclass(frozen=True)
class Limits:
    """Resource limits for one run."""

    timeout_s: float = 10.0
    cpu_s: int = 5
    memory_mb: int = 512
    output_mb: float = 32.0
    nofile: int = 32
    isolate_network: bool = True
    syntax_filter: bool = True  # off only in tests proving the audit hook holds on its own

    def child(self) -> dict[str, int]:
        return {
            "cpu_s": self.cpu_s,
            "memory_bytes": self.memory_mb * 2**20,
            "output_bytes": int(self.output_mb * 2**20),
            "nofile": self.nofile,
            "syntax_filter": int(self.syntax_filter),
        }


@dataclass
class SandboxResult:
    """What a run produced: records (when ``ok``), else the failure kind and message."""

    ok: bool
    records: list[dict[str, Any]] = field(default_factory=list)
    kind: str = "ok"
    error: str = ""
    blocked: list[str] = field(default_factory=list)
    seconds: float = 0.0
    returncode: int | None = None


@lru_cache(maxsize=1)
def _unshare_prefix() -> tuple[str, ...]:
    """``unshare -rn`` when the kernel lets this user make a network namespace."""
    tool = shutil.which("unshare")
    if not tool:
        return ()
    try:
        ok = subprocess.run([tool, "-rn", "true"], capture_output=True, timeout=5).returncode == 0
    except (OSError, subprocess.SubprocessError):
        ok = False
    return (tool, "-rn") if ok else ()


def network_isolated() -> bool:
    """Whether runs get an empty network namespace on this host (else only in-process blocks)."""
    return bool(_unshare_prefix())


def run_sandboxed(
    code: str, records: Sequence[dict[str, Any]], limits: Limits | None = None
) -> SandboxResult:
    """Run ``code`` (defining ``mutate(records)``) on a JSON copy of ``records``; never raises
    for anything the code does: the failure is in the result."""
    limits = limits or Limits()
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="inspectorate-sandbox-") as tmp:
        work = Path(tmp)
        (work / "scratch").mkdir()
        (work / "job.json").write_text(json.dumps({"code": code, "limits": limits.child()}), encoding="utf-8")
        (work / "input.json").write_text(json.dumps(list(records)), encoding="utf-8")
        rc, timed_out = _spawn(work, limits)
        result = _collect(work, rc, timed_out, limits)
    result.seconds = time.perf_counter() - started
    result.returncode = rc
    return result


def _spawn(work: Path, limits: Limits) -> tuple[int | None, bool]:
    prefix = _unshare_prefix() if limits.isolate_network else ()
    argv = [*prefix, sys.executable, "-I", "-S", "-B", str(CHILD), str(work)]
    env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"}
    with open(work / "stderr.txt", "wb") as err:
        proc = subprocess.Popen(
            argv,
            cwd=work / "scratch",
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=err,
            start_new_session=True,
        )
        try:
            return proc.wait(timeout=limits.timeout_s), False
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            return proc.returncode, True


def _kill_group(proc: subprocess.Popen) -> None:
    """Kill the child's whole session (anything it managed to start goes too)."""
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()
    proc.wait()


def _collect(work: Path, rc: int | None, timed_out: bool, limits: Limits) -> SandboxResult:
    if timed_out:
        return SandboxResult(
            False, kind="timeout", error=f"wall-clock limit of {limits.timeout_s:g}s exceeded"
        )
    path = work / "result.json"
    size = path.stat().st_size if path.exists() else 0
    if size == 0:
        return _crash(work, rc, limits)
    if size > limits.output_mb * 2**20 + 4096:
        return SandboxResult(False, kind="output", error="output exceeds the size limit")
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        return SandboxResult(False, kind="invalid", error=f"unreadable result: {exc}")
    blocked = [str(b) for b in payload.get("blocked", [])][:50]
    if not payload.get("ok"):
        return SandboxResult(
            False,
            kind=str(payload.get("kind", "error")),
            error=str(payload.get("error", "")),
            blocked=blocked,
        )
    problem = validate_output(payload.get("records"))
    if problem:
        return SandboxResult(False, kind="invalid", error=problem, blocked=blocked)
    return SandboxResult(True, records=payload["records"], blocked=blocked)


def _crash(work: Path, rc: int | None, limits: Limits) -> SandboxResult:
    signals = {
        -signal.SIGXCPU: ("cpu", f"CPU limit of {limits.cpu_s}s exceeded"),
        -signal.SIGKILL: ("cpu", "killed (CPU hard limit or out of memory)"),
        -signal.SIGXFSZ: ("output", "output file size limit exceeded"),
        -signal.SIGSEGV: ("memory", "crashed (segfault, likely the memory limit)"),
    }
    kind, message = signals.get(rc or 0, ("crashed", f"child exited with code {rc} and no result"))
    tail = (
        (work / "stderr.txt").read_text(encoding="utf-8", errors="replace")[-300:]
        if (work / "stderr.txt").exists()
        else ""
    )
    return SandboxResult(
        False, kind=kind, error=message + (f"; stderr: {tail.strip()}" if tail.strip() else "")
    )


def validate_output(value: Any) -> str:
    """Empty string when ``value`` is a non-empty list of valid window records, else why not."""
    if not isinstance(value, list):
        return f"mutate() must return a list of records, got {type(value).__name__}"
    if not value:
        return "mutate() returned an empty list"
    for index, record in enumerate(value):
        try:
            validate_record(record)
        except ValueError as exc:
            return f"record {index}: {exc}"
    return ""


def run_mutation(
    code: str, records: Sequence[dict[str, Any]], limits: Limits | None = None
) -> list[dict[str, Any]]:
    """The mutated records, or SandboxError saying what the code did wrong."""
    result = run_sandboxed(code, records, limits)
    if not result.ok:
        raise SandboxError(result.kind, result.error, result.blocked)
    return result.records
