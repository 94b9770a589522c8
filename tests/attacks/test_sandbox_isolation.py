"""The OS layers one by one: what the sandbox sees, the seccomp program, the namespace kill."""

from __future__ import annotations

import os
import struct
import tempfile
from pathlib import Path

import pytest
from attack_data import small_trace

from inspectorate.attacks import Limits, run_sandboxed
from inspectorate.attacks import _sandbox as sandbox
from inspectorate.attacks import _sandbox_isolation as isolation
from inspectorate.attacks import _sandbox_seccomp as seccomp

OS_ONLY = Limits(timeout_s=15, cpu_s=2, memory_mb=256, output_mb=1, python_layer=False)


def inside(expression: str) -> str:
    """The value of ``expression`` evaluated in the sandbox with only the OS layers on."""
    code = f"import os, sys, socket\ndef mutate(records):\n    raise ValueError(repr({expression}))\n"
    result = run_sandboxed(code, small_trace()[:1], OS_ONLY)
    assert result.kind == "error" and result.error.startswith("ValueError: "), result.error
    return result.error.removeprefix("ValueError: ")


def refused(statement: str) -> str:
    """The containment reason when ``statement`` runs in the sandbox (OS layers only)."""
    code = f"import os, sys, socket\ndef mutate(records):\n    {statement}\n    return records\n"
    result = run_sandboxed(code, small_trace()[:1], OS_ONLY)
    assert not result.ok
    return f"{result.kind}: {result.error}"


def test_the_sandbox_sees_only_the_runtime_and_scratch(os_sandbox):
    top = set(eval(inside("os.listdir('/')")))
    assert top <= {"usr", "lib", "lib64", "lib32", "root", "sandbox", "dev", "scratch", "opt", "home"}
    assert not {"etc", "proc", "tmp", "var", "sys", "run", "work"} & top
    assert eval(inside("sorted(os.listdir('/dev'))")) == ["null", "urandom"]
    assert eval(inside("sorted(os.listdir('/sandbox'))")) == ["_sandbox_child.py", "_sandbox_seccomp.py"]
    assert set(eval(inside("os.listdir('/usr')"))) <= {"lib", "lib64", "lib32", "local"}  # no /usr/bin


def test_unprivileged_uid_and_fixed_environment(os_sandbox):
    assert eval(inside("(os.getuid(), os.getgid(), os.geteuid())")) == (65534, 65534, 65534)
    env = eval(inside("dict(os.environ)"))
    assert set(env) <= set(isolation.ENV) | {"PWD"}
    assert eval(inside("os.getcwd()")) == "/scratch"


def test_only_pid_in_its_namespace_and_no_network(os_sandbox):
    assert eval(inside("os.getpid()")) <= 2  # pid 1 is bwrap's init
    assert "denied: PermissionError" in refused("socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)")


def test_the_runtime_is_read_only(os_sandbox):
    target = os.path.join(os.path.dirname(os.__file__), "inspectorate_canary.py")
    assert "Read-only file system" in refused(f"open({target!r}, 'w')")
    assert not os.path.exists(target)


def test_exec_denied_after_start(os_sandbox):
    assert "denied: PermissionError" in refused("os.execv(sys.executable, [sys.executable, '-c', '1'])")


def test_pid_namespace_kill_leaves_no_descendant(os_sandbox):
    """With seccomp replaced by an allow-all program (so fork works), a double-forked,
    re-sessioned, exec'd sleeper still dies with the run at the wall-clock limit."""
    marker = "inspectorate-survivor-" + os.urandom(4).hex()
    sleeper = f"import time; time.sleep(120)  # {marker}"
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n"
        "    os.setsid()\n"
        "    if os.fork() == 0:\n"
        f"        os.execv({isolation.interpreter()!r}, ['python', '-c', {sleeper!r}])\n"
        "    time.sleep(120)\n"
        "time.sleep(120)\n"
    )
    allow_all = os.memfd_create("allow")
    os.write(allow_all, struct.pack("=HBBI", seccomp.RET_K, 0, 0, seccomp.RET_ALLOW))
    os.lseek(allow_all, 0, os.SEEK_SET)
    info_r, info_w = os.pipe()
    argv = isolation.bwrap_argv(2**20, allow_all, info_w, [isolation.interpreter(), "-I", "-S", "-c", code])
    with tempfile.TemporaryFile() as stdin:
        outcome = sandbox._supervise(argv, (allow_all, info_w), stdin, Limits(timeout_s=1.5), info_r, "/")
    os.close(info_r)
    assert outcome.timed_out
    survivors = [p for p in Path("/proc").iterdir() if p.name.isdigit() and marker.encode() in _cmdline(p)]
    assert survivors == []


def _cmdline(proc: Path) -> bytes:
    try:
        return (proc / "cmdline").read_bytes()
    except OSError:
        return b""


def _decode(program: bytes) -> list[tuple[int, int, int, int]]:
    return [struct.unpack("=HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]


@pytest.mark.parametrize("arch", sorted(seccomp.ARCHES))
def test_seccomp_program_checks_arch_first_and_denies_with_eperm(arch):
    table = seccomp.ARCHES[arch]
    program = _decode(seccomp.program(exec_allowed=False, arch=arch))
    assert program[0] == (seccomp.LD_W_ABS, 0, 0, seccomp.OFF_ARCH)
    assert program[1] == (seccomp.JEQ_K, 1, 0, table.audit)
    assert program[2] == (seccomp.RET_K, 0, 0, seccomp.RET_KILL_PROCESS)
    denied = {k for code, _, _, k in program if code == seccomp.JEQ_K}
    assert set(table.deny.values()) | set(table.exec.values()) <= denied
    assert program[-1] == (seccomp.RET_K, 0, 0, seccomp.RET_ALLOW)
    eperm = seccomp.RET_ERRNO | 1
    assert sum(1 for code, _, _, k in program if code == seccomp.RET_K and k == eperm) >= len(denied) - 2


def test_seccomp_exec_allowed_variant_leaves_only_exec_out():
    strict = _decode(seccomp.program(exec_allowed=False, arch="x86_64"))
    loose = _decode(seccomp.program(exec_allowed=True, arch="x86_64"))
    assert len(strict) - len(loose) == 4  # execve and execveat: a compare and a return each
    assert (seccomp.JEQ_K, 0, 1, 59) in strict and (seccomp.JEQ_K, 0, 1, 59) not in loose


def test_unknown_architecture_is_refused(monkeypatch):
    with pytest.raises(seccomp.SeccompUnsupported, match="riscv64"):
        seccomp.program(exec_allowed=False, arch="riscv64")
    monkeypatch.setattr(seccomp, "machine", lambda: "riscv64")
    assert "riscv64" in isolation._check_arch()


def test_x86_64_numbers_match_the_kernel_headers():
    header = Path("/usr/include/x86_64-linux-gnu/asm/unistd_64.h")
    if not header.exists():
        pytest.skip("linux-libc-dev headers not installed")
    import re

    numbers = {m[1]: int(m[2]) for m in re.finditer(r"#define __NR_(\w+) (\d+)", header.read_text())}
    table = seccomp.ARCHES["x86_64"]
    ours = {**table.deny, **table.exec, "clone": table.clone, "clone3": table.clone3}
    assert {name: numbers.get(name) for name in ours} == ours
