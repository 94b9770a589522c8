"""Run untrusted ``mutate(records)`` code (from an LLM attacker) behind an OS boundary.

The boundary is the operating system, not Python: each run is a ``bwrap`` sandbox (new
user, PID, network, IPC, UTS and cgroup namespaces, uid 65534, a read-only view of only
the Python runtime, a size-capped tmpfs as the only writable place, no ``/proc``, a
fixed environment) with a seccomp filter denying process creation, exec, ptrace,
sockets and mount/namespace calls (``_sandbox_isolation``, ``_sandbox_seccomp``). The
Python-level filter of ``_sandbox_child`` (syntax filter, restricted builtins, audit
hook) stays as a second layer that reports *what* was tried. When the boundary cannot
be set up, ``run_sandboxed`` refuses (``SandboxUnavailable``, an ``InputError``) unless
``Limits(unsandboxed=True)`` says the caller accepts running without it.

Whatever the child does, the parent reads at most a bounded number of bytes from a pipe,
kills the whole PID namespace at the wall-clock limit, and accepts a result only from a
child that exited 0 with exactly one well-formed payload (``_sandbox_payload``); every
other outcome is a ``SandboxResult`` with ``ok=False`` and a reason, never an exception.
Limits (docs/redteam.md): a kernel exploit reachable through the allowed syscalls breaks
any sandbox of this kind; use a VM for adversaries who have one.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from inspectorate.attacks import _sandbox_isolation as isolation
from inspectorate.attacks._sandbox_isolation import CHILD, SandboxUnavailable
from inspectorate.attacks._sandbox_payload import PayloadError, parse, validate_output
from inspectorate.errors import InputError, SandboxError

STDERR_KEEP = 2000


@dataclass(frozen=True)
class Limits:
    """Resource limits and layers for one run.

    ``python_layer=False`` and ``syntax_filter=False`` exist for tests that prove the
    other layers hold alone. ``unsandboxed=True`` runs without bwrap (Python layer,
    rlimits and, where the kernel allows, seccomp only): the CLI's ``--unsandboxed``.
    """

    timeout_s: float = 10.0
    cpu_s: int = 5
    memory_mb: int = 512
    output_mb: float = 32.0
    scratch_mb: int = 16
    nofile: int = 32
    syntax_filter: bool = True
    python_layer: bool = True
    unsandboxed: bool = False

    def child(self) -> dict[str, int]:
        output = int(self.output_mb * 2**20)
        return {
            "cpu_s": self.cpu_s,
            "memory_bytes": self.memory_mb * 2**20,
            "output_bytes": output,
            "file_bytes": self.scratch_mb * 2**20,
            "nofile": self.nofile,
            "syntax_filter": int(self.syntax_filter),
            "python_layer": int(self.python_layer),
            "require_seccomp": int(not self.unsandboxed),
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


@dataclass
class Outcome:
    """What the parent observed of one child process."""

    returncode: int | None
    stdout: bytes
    stderr: bytes
    timed_out: bool = False
    overflow: bool = False


def isolation_problem() -> str:
    """Empty when runs get the full OS boundary here, else what is missing and the fix."""
    return isolation.isolation_problem()


def network_isolated() -> bool:
    """Whether runs get the OS boundary (and so an empty network namespace) on this host."""
    return not isolation.isolation_problem()


def run_sandboxed(
    code: str, records: Sequence[dict[str, Any]], limits: Limits | None = None
) -> SandboxResult:
    """Run ``code`` (defining ``mutate(records)``) on a JSON copy of ``records``.

    Raises ``SandboxUnavailable`` (an ``InputError``) when the OS boundary is missing and
    ``limits.unsandboxed`` is not set, ``InputError`` when ``records`` cannot be sent as
    JSON; for anything the code does, the failure is in the result.
    """
    limits = limits or Limits()
    if not limits.unsandboxed:  # the caller's explicit opt-out (redteam warns every round)
        isolation.require_isolation()
    try:
        job = json.dumps({"code": code, "records": list(records), "limits": limits.child()}, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise InputError(f"records cannot be sent to the sandbox as JSON: {exc}") from None
    started = time.perf_counter()
    with tempfile.TemporaryFile() as stdin:
        stdin.write(job.encode("utf-8"))
        stdin.seek(0)
        try:
            outcome = _execute(stdin, limits)
        except OSError as exc:  # could not start (descriptors, memory): no code ran
            return SandboxResult(False, kind="isolation", error=f"could not start the sandbox: {exc}")
    result = _collect(outcome, limits)
    result.seconds = time.perf_counter() - started
    result.returncode = outcome.returncode
    return result


def _execute(stdin: IO[bytes], limits: Limits) -> Outcome:
    inner = [isolation.interpreter(), "-I", "-S", "-B"]
    if limits.unsandboxed:
        with tempfile.TemporaryDirectory(prefix="inspectorate-unsandboxed-") as scratch:
            return _supervise([*inner, str(CHILD)], (), stdin, limits, None, scratch)
    seccomp_fd = isolation.seccomp_memfd()
    info_r, info_w = os.pipe()
    try:
        argv = isolation.bwrap_argv(
            limits.scratch_mb * 2**20, seccomp_fd, info_w, [*inner, isolation.INNER_CHILD]
        )
        return _supervise(argv, (seccomp_fd, info_w), stdin, limits, info_r, "/")
    finally:
        for fd in (seccomp_fd, info_r, info_w):
            _close(fd)


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _supervise(
    argv: list[str],
    fds: tuple[int, ...],
    stdin: IO[bytes],
    limits: Limits,
    info_r: int | None,
    cwd: str,
) -> Outcome:
    """Start ``argv``, read its output within the byte cap and the deadline, kill on excess."""
    deadline = time.monotonic() + limits.timeout_s
    proc = subprocess.Popen(
        argv,
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        pass_fds=fds,
        env=dict(isolation.ENV),
        cwd=cwd,
        start_new_session=True,
    )
    for fd in fds:
        _close(fd)  # the child holds them now; our info_w copy must close for EOF
    pidfd = _sandbox_pidfd(proc, info_r, deadline)
    try:
        out, err, timed_out, overflow = _read(proc, deadline, int(limits.output_mb * 2**20) + 64)
        if not (timed_out or overflow):
            try:
                proc.wait(timeout=max(deadline - time.monotonic(), 0.01))
            except subprocess.TimeoutExpired:
                timed_out = True
    finally:
        _end(proc, pidfd)
    return Outcome(proc.returncode, out, err, timed_out, overflow)


def _sandbox_pidfd(proc: subprocess.Popen[bytes], info_r: int | None, deadline: float) -> int | None:
    """A pidfd on the sandbox's PID-namespace init (from ``bwrap --info-fd``), checked to be
    bwrap's child, so that killing it can never hit a recycled pid."""
    if info_r is None:
        return None
    raw = b""
    with selectors.DefaultSelector() as sel:
        sel.register(info_r, selectors.EVENT_READ)
        while time.monotonic() < deadline and sel.select(max(deadline - time.monotonic(), 0)):
            chunk = os.read(info_r, 4096)
            if not chunk or len(raw) > 4096:
                break
            raw += chunk
    try:
        pid = int(json.loads(raw)["child-pid"])
        pidfd = os.pidfd_open(pid)
    except (ValueError, KeyError, TypeError, OSError):
        return None
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            ppid = int(fh.read().rsplit(b")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        ppid = -1
    if ppid != proc.pid:
        os.close(pidfd)
        return None
    return pidfd


def _read(proc: subprocess.Popen[bytes], deadline: float, cap: int) -> tuple[bytes, bytes, bool, bool]:
    """stdout (at most ``cap`` bytes) and the tail of stderr until both close or time runs out."""
    out, err = bytearray(), bytearray()
    assert proc.stdout is not None and proc.stderr is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ, out)
        sel.register(proc.stderr, selectors.EVENT_READ, err)
        while sel.get_map():
            left = deadline - time.monotonic()
            if left <= 0:
                return bytes(out), bytes(err[-STDERR_KEEP:]), True, False
            for key, _ in sel.select(left):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    sel.unregister(key.fileobj)
                    continue
                key.data.extend(chunk)
                if key.data is err and len(err) > 2 * STDERR_KEEP:
                    del err[:-STDERR_KEEP]
                if len(out) > cap:
                    return bytes(out[:cap]), bytes(err[-STDERR_KEEP:]), False, True
    return bytes(out), bytes(err[-STDERR_KEEP:]), False, False


def _end(proc: subprocess.Popen[bytes], pidfd: int | None) -> None:
    """Make sure nothing of the run survives. Sandboxed: kill the namespace init (its death
    takes every process of the namespace with it; bwrap then exits). Unsandboxed: kill the
    child's process group. ``killpg`` only ever targets a group whose leader is alive and
    unreaped, so the id cannot have been recycled."""
    if proc.poll() is None:
        if pidfd is not None:
            try:
                signal.pidfd_send_signal(pidfd, signal.SIGKILL)
            except OSError:
                pass
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                proc.kill()
            proc.wait()
    for stream in (proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()
    if pidfd is not None:
        os.close(pidfd)


def _collect(outcome: Outcome, limits: Limits) -> SandboxResult:
    """Turn what was observed into a result; no exception leaves this function."""
    if outcome.timed_out:
        return SandboxResult(
            False, kind="timeout", error=f"wall-clock limit of {limits.timeout_s:g}s exceeded"
        )
    if outcome.overflow:
        return SandboxResult(
            False, kind="output", error=f"output exceeds the limit of {limits.output_mb:g} MB"
        )
    if outcome.returncode != 0:
        return _crash(outcome, limits)
    try:
        payload = parse(outcome.stdout, int(limits.output_mb * 2**20))
    except PayloadError as exc:
        return SandboxResult(False, kind=exc.kind, error=str(exc))
    except Exception as exc:  # a parser bug must not hand control to the child
        return SandboxResult(False, kind="invalid", error=f"unreadable result ({type(exc).__name__})")
    if payload["ok"]:
        return SandboxResult(True, records=payload["records"], blocked=payload["blocked"])
    return SandboxResult(False, kind=payload["kind"], error=payload["error"], blocked=payload["blocked"])


def _crash(outcome: Outcome, limits: Limits) -> SandboxResult:
    rc = outcome.returncode or 0
    signum = -rc if rc < 0 else rc - 128 if rc > 128 else 0  # bwrap reports 128 + signal
    signals = {
        signal.SIGXCPU: ("cpu", f"CPU limit of {limits.cpu_s}s exceeded"),
        signal.SIGKILL: ("cpu", "killed (CPU hard limit or out of memory)"),
        signal.SIGXFSZ: ("output", "file size limit exceeded"),
        signal.SIGSEGV: ("memory", "crashed (segfault, likely the memory limit)"),
        signal.SIGSYS: ("denied", "killed by the seccomp filter (foreign syscall ABI)"),
    }
    kind, message = signals.get(signum, ("crashed", f"child exited with code {rc}"))  # type: ignore[call-overload]
    tail = outcome.stderr.decode("utf-8", errors="replace")[-300:].strip()
    return SandboxResult(False, kind=kind, error=message + (f"; stderr: {tail}" if tail else ""))


def run_mutation(
    code: str, records: Sequence[dict[str, Any]], limits: Limits | None = None
) -> list[dict[str, Any]]:
    """The mutated records, or SandboxError saying what the code did wrong."""
    result = run_sandboxed(code, records, limits)
    if not result.ok:
        raise SandboxError(result.kind, result.error, result.blocked)
    return result.records


__all__ = [
    "Limits",
    "SandboxError",
    "SandboxResult",
    "SandboxUnavailable",
    "isolation_problem",
    "network_isolated",
    "run_mutation",
    "run_sandboxed",
    "validate_output",
]
