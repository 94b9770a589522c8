"""A seccomp-BPF program, built in pure Python, that denies what mutation code never needs.

Stdlib only: the sandboxed child imports this file too (it cannot import inspectorate).
Why our own builder and not libseccomp: no dependency, and the program is small enough
to read. It checks the architecture first (a foreign-arch syscall table, e.g. the i386
``int 0x80`` entry or x32 numbers on x86_64, would otherwise map "socket" to another
number), then returns ``EPERM`` for each denied syscall so the child can report what it
tried instead of dying silently. Two variants:

* ``exec_allowed=True``: handed to ``bwrap --seccomp`` (bwrap loads it right before it
  execs the Python interpreter, so ``execve`` must still work at that moment);
* ``exec_allowed=False``: installed by the child itself (``prctl(PR_SET_SECCOMP)``) after
  its own imports and before any untrusted code; filters stack, so from then on
  ``execve`` is denied as well.

``clone3`` answers ``ENOSYS`` rather than ``EPERM``: its flags sit in a struct that BPF
cannot read, and glibc falls back to ``clone`` on ``ENOSYS`` (threads still work);
``clone`` is allowed only with ``CLONE_THREAD`` (a thread, not a process).
"""

from __future__ import annotations

import errno
import platform
import struct
from typing import NamedTuple

# Classic BPF opcodes (linux/filter.h) and seccomp return values (linux/seccomp.h).
LD_W_ABS = 0x20  # BPF_LD | BPF_W | BPF_ABS
JEQ_K = 0x15  # BPF_JMP | BPF_JEQ | BPF_K
JGE_K = 0x35  # BPF_JMP | BPF_JGE | BPF_K
JSET_K = 0x45  # BPF_JMP | BPF_JSET | BPF_K
RET_K = 0x06  # BPF_RET | BPF_K
RET_KILL_PROCESS = 0x80000000
RET_ERRNO = 0x00050000
RET_ALLOW = 0x7FFF0000
CLONE_THREAD = 0x00010000
X32_SYSCALL_BIT = 0x40000000
# Offsets in struct seccomp_data: nr (u32), arch (u32), ip (u64), args[6] (u64, little endian).
OFF_NR, OFF_ARCH, OFF_ARG0_LOW = 0, 4, 16


class Arch(NamedTuple):
    """Syscall numbers of one architecture (asm/unistd_64.h; asm-generic/unistd.h for aarch64)."""

    audit: int
    x32_guard: bool
    clone: int
    clone3: int
    exec: dict[str, int]
    deny: dict[str, int]


ARCHES: dict[str, Arch] = {
    "x86_64": Arch(
        audit=0xC000003E,
        x32_guard=True,
        clone=56,
        clone3=435,
        exec={"execve": 59, "execveat": 322},
        deny={
            "fork": 57,
            "vfork": 58,
            "ptrace": 101,
            "process_vm_readv": 310,
            "process_vm_writev": 311,
            "socket": 41,
            "socketpair": 53,
            "mount": 165,
            "umount2": 166,
            "pivot_root": 155,
            "chroot": 161,
            "unshare": 272,
            "setns": 308,
            "keyctl": 250,
            "add_key": 248,
            "request_key": 249,
            "bpf": 321,
            "perf_event_open": 298,
            "userfaultfd": 323,
            "io_uring_setup": 425,
            "io_uring_enter": 426,
            "io_uring_register": 427,
            "open_tree": 428,
            "move_mount": 429,
            "fsopen": 430,
            "fsconfig": 431,
            "fsmount": 432,
            "fspick": 433,
            "mount_setattr": 442,
            "name_to_handle_at": 303,
            "open_by_handle_at": 304,
            "kexec_load": 246,
            "init_module": 175,
            "finit_module": 313,
            "delete_module": 176,
        },
    ),
    "aarch64": Arch(
        audit=0xC00000B7,
        x32_guard=False,
        clone=220,
        clone3=435,
        exec={"execve": 221, "execveat": 281},
        deny={
            "ptrace": 117,
            "process_vm_readv": 270,
            "process_vm_writev": 271,
            "socket": 198,
            "socketpair": 199,
            "mount": 40,
            "umount2": 39,
            "pivot_root": 41,
            "chroot": 51,
            "unshare": 97,
            "setns": 268,
            "keyctl": 219,
            "add_key": 217,
            "request_key": 218,
            "bpf": 280,
            "perf_event_open": 241,
            "userfaultfd": 282,
            "io_uring_setup": 425,
            "io_uring_enter": 426,
            "io_uring_register": 427,
            "open_tree": 428,
            "move_mount": 429,
            "fsopen": 430,
            "fsconfig": 431,
            "fsmount": 432,
            "fspick": 433,
            "mount_setattr": 442,
            "name_to_handle_at": 264,
            "open_by_handle_at": 265,
            "kexec_load": 104,
            "init_module": 105,
            "finit_module": 273,
            "delete_module": 106,
        },
    ),
}


class SeccompUnsupported(RuntimeError):
    """No syscall table for this machine: the caller must refuse to run untrusted code."""


def machine() -> str:
    return platform.machine().lower().replace("arm64", "aarch64").replace("amd64", "x86_64")


def _ins(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def program(exec_allowed: bool, arch: str | None = None) -> bytes:
    """The filter as packed ``struct sock_filter`` entries (8 bytes each)."""
    table = ARCHES.get(arch or machine())
    if table is None:
        raise SeccompUnsupported(f"no seccomp syscall table for architecture {arch or machine()!r}")
    deny = dict(table.deny)
    if not exec_allowed:
        deny.update(table.exec)
    eperm = RET_ERRNO | errno.EPERM
    out = [_ins(LD_W_ABS, OFF_ARCH), _ins(JEQ_K, table.audit, 1, 0), _ins(RET_K, RET_KILL_PROCESS)]
    out.append(_ins(LD_W_ABS, OFF_NR))
    if table.x32_guard:
        out += [_ins(JGE_K, X32_SYSCALL_BIT, 0, 1), _ins(RET_K, eperm)]
    for nr in sorted(set(deny.values())):
        out += [_ins(JEQ_K, nr, 0, 1), _ins(RET_K, eperm)]
    out += [_ins(JEQ_K, table.clone3, 0, 1), _ins(RET_K, RET_ERRNO | errno.ENOSYS)]
    # clone: allowed only for threads (CLONE_THREAD in the low word of the flags argument).
    out += [
        _ins(JEQ_K, table.clone, 0, 3),
        _ins(LD_W_ABS, OFF_ARG0_LOW),
        _ins(JSET_K, CLONE_THREAD, 1, 0),
        _ins(RET_K, eperm),
        _ins(RET_K, RET_ALLOW),
    ]
    return b"".join(out)


def install(exec_allowed: bool = False) -> None:
    """Install the filter on this process (and every thread it starts later); irreversible.

    Raises OSError (or SeccompUnsupported) when the kernel refuses: callers fail closed.
    """
    import ctypes

    code = program(exec_allowed)

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]

    buf = ctypes.create_string_buffer(code, len(code))
    prog = SockFprog(len(code) // 8, ctypes.cast(buf, ctypes.c_void_p))
    libc = ctypes.CDLL(None, use_errno=True)
    pr_set_no_new_privs, pr_set_seccomp, seccomp_mode_filter = 38, 22, 2
    if libc.prctl(pr_set_no_new_privs, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS) failed")
    if libc.prctl(pr_set_seccomp, seccomp_mode_filter, ctypes.byref(prog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP) failed")
