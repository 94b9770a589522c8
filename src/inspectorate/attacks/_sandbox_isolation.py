"""The operating-system boundary: the ``bwrap`` command line, and a probe that fails closed.

Each run gets new user, PID, network, IPC, UTS and cgroup namespaces, uid/gid 65534
inside (no capabilities), a root that is an empty read-only tmpfs holding only
read-only binds of the Python runtime (interpreter, its stdlib, libpython) and the C
libraries under ``/usr/lib*``, the two child files at ``/sandbox``, ``/dev/null`` and
``/dev/urandom``, and a size-capped tmpfs at ``/scratch`` (the only writable place).
No ``/proc`` at all (so no host and no parent ``/proc``), no ``/etc``, ``/home``,
``/root``, ``/tmp`` or ``/usr/bin``; ``--clearenv`` with a fixed environment;
``--die-with-parent``, ``--new-session``; and a seccomp filter (``_sandbox_seccomp``)
from before the interpreter starts.

``isolation_problem()`` runs bwrap once per process to check that all of this works
here and returns a one-line reason with the fix when it does not; callers refuse.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from functools import lru_cache
from pathlib import Path

from inspectorate.attacks import _sandbox_seccomp as seccomp
from inspectorate.errors import SandboxUnavailable

HERE = Path(__file__).resolve().parent
CHILD = HERE / "_sandbox_child.py"
SECCOMP = HERE / "_sandbox_seccomp.py"
INNER_DIR = "/sandbox"
INNER_CHILD = f"{INNER_DIR}/_sandbox_child.py"
SCRATCH = "/scratch"
UID = 65534  # nobody
ENV = {"LANG": "C.UTF-8", "HOME": SCRATCH, "TMPDIR": SCRATCH, "PATH": "/nonexistent"}
INSTALL_BWRAP = "install bubblewrap: `apt-get install bubblewrap` (Debian/Ubuntu), `dnf install bubblewrap`"
USERNS_FIX = (
    "enable unprivileged user namespaces (sysctl user.max_user_namespaces=15000; on Ubuntu "
    "24.04 also kernel.apparmor_restrict_unprivileged_userns=0) or run in a VM that allows them"
)

SECCOMP_FIX = "use a kernel built with CONFIG_SECCOMP_FILTER (every mainstream distribution kernel is)"


def interpreter() -> str:
    """The real interpreter file (a venv's ``python`` is a symlink to it)."""
    return os.path.realpath(sys.executable)


def runtime_paths() -> list[str]:
    """Files and directories of the Python runtime that the sandbox binds read-only."""
    import math

    stdlib = os.path.realpath(os.path.dirname(os.__file__))
    paths = [interpreter(), stdlib]
    dynload = os.path.realpath(os.path.dirname(getattr(math, "__file__", stdlib)))
    if not dynload.startswith(stdlib + os.sep) and dynload != stdlib:
        paths.append(dynload)
    if sysconfig.get_config_var("Py_ENABLE_SHARED"):
        lib = os.path.join(
            str(sysconfig.get_config_var("LIBDIR")), str(sysconfig.get_config_var("INSTSONAME"))
        )
        if os.path.exists(lib):  # else the loader would find another libpython (wrong version)
            paths.append(os.path.realpath(lib))
    return paths


def system_lib_args() -> list[str]:
    """The C libraries: ``/usr/lib*`` bound read-only, ``/lib*`` mirrored as on the host."""
    args: list[str] = []
    for path in ("/usr/lib", "/usr/lib64", "/usr/lib32"):
        if os.path.isdir(path) and not os.path.islink(path):
            args += ["--ro-bind", path, path]
    for path in ("/lib", "/lib64", "/lib32"):
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


def bwrap_argv(scratch_bytes: int, seccomp_fd: int, info_fd: int, inner: list[str]) -> list[str]:
    """The full command: bwrap options, then ``inner`` (run as uid 65534 in /scratch)."""
    bwrap = shutil.which("bwrap") or "bwrap"
    args = [bwrap, "--unshare-user", "--unshare-pid", "--unshare-net", "--unshare-ipc"]
    args += ["--unshare-uts", "--unshare-cgroup", "--uid", str(UID), "--gid", str(UID)]
    args += ["--hostname", "sandbox", "--die-with-parent", "--new-session", "--cap-drop", "ALL"]
    args += ["--clearenv"]
    for key, value in ENV.items():
        args += ["--setenv", key, value]
    args += system_lib_args()
    for path in runtime_paths():
        if not path.startswith(("/usr/lib/", "/usr/lib64/")):  # already visible
            args += ["--ro-bind", path, path]
    args += ["--ro-bind", str(CHILD), INNER_CHILD, "--ro-bind", str(SECCOMP), f"{INNER_DIR}/{SECCOMP.name}"]
    args += ["--dev-bind", "/dev/null", "/dev/null", "--dev-bind", "/dev/urandom", "/dev/urandom"]
    args += ["--size", str(scratch_bytes), "--tmpfs", SCRATCH, "--chdir", SCRATCH]
    args += ["--remount-ro", "/", "--seccomp", str(seccomp_fd), "--info-fd", str(info_fd), "--"]
    return args + inner


def seccomp_memfd() -> int:
    """A file descriptor holding the exec-allowing filter, for ``bwrap --seccomp``."""
    fd = os.memfd_create("inspectorate-seccomp")
    os.write(fd, seccomp.program(exec_allowed=True))
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


# Run inside the sandbox by the probe: the child's own (exec-denying) filter must install
# and then refuse a fork and a socket.
PROBE = f"""
import sys, os, socket
sys.path.insert(0, {INNER_DIR!r})
import _sandbox_seccomp
_sandbox_seccomp.install(exec_allowed=False)
for attempt in (os.fork, socket.socket):
    try:
        attempt()
    except PermissionError:
        continue
    sys.exit(3)
print("ok")
"""


def _run_probe(code: str) -> subprocess.CompletedProcess[str]:
    seccomp_fd = seccomp_memfd()
    info_r, info_w = os.pipe()
    try:
        argv = bwrap_argv(2**20, seccomp_fd, info_w, [interpreter(), "-I", "-S", "-B", "-c", code])
        return subprocess.run(
            argv,
            pass_fds=(seccomp_fd, info_w),
            env=dict(ENV),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=30,
        )
    finally:
        for fd in (seccomp_fd, info_r, info_w):
            os.close(fd)


def _check_bwrap() -> str:
    if shutil.which("bwrap") is None:
        return f"bubblewrap (bwrap) is not installed; {INSTALL_BWRAP}"
    return ""


def _check_arch() -> str:
    if seccomp.machine() not in seccomp.ARCHES:
        return f"no seccomp syscall table for architecture {seccomp.machine()!r} (x86_64 and aarch64 only)"
    return ""


def _check_namespaces() -> str:
    done = _run_probe("print('ok')")
    if done.returncode != 0 or done.stdout.strip() != "ok":
        detail = (done.stderr.strip().splitlines() or ["no output"])[-1][:200]
        if "Unknown option" in detail:
            return f"this bwrap is too old ({detail}); {INSTALL_BWRAP} (0.8 is tested)"
        if "seccomp" in detail.lower():
            return f"seccomp filtering is unavailable ({detail}); {SECCOMP_FIX}"
        return f"bwrap cannot create the sandbox's namespaces here ({detail}); {USERNS_FIX}"
    return ""


def _check_seccomp() -> str:
    done = _run_probe(PROBE)
    if done.returncode != 0 or done.stdout.strip() != "ok":
        detail = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1][:200]
        return f"seccomp filtering is unavailable ({detail}); {SECCOMP_FIX}"
    return ""


@lru_cache(maxsize=1)
def isolation_problem() -> str:
    """Empty when the full OS isolation works on this host, else what is missing and the fix."""
    for check in (_check_arch, _check_bwrap, _check_namespaces, _check_seccomp):
        try:
            problem = check()
        except (OSError, subprocess.SubprocessError, seccomp.SeccompUnsupported) as exc:
            problem = f"{check.__name__[7:]} check failed: {exc}"
        if problem:
            return problem
    return ""


def require_isolation() -> None:
    """Raise SandboxUnavailable (an InputError: exit 2 in the CLI) when isolation is missing."""
    problem = isolation_problem()
    if problem:
        raise SandboxUnavailable(
            f"refusing to run untrusted code without the OS sandbox: {problem} "
            "(or pass --unsandboxed to accept the risk)"
        )
