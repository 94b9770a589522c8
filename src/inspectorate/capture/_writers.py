"""Who closed a file after writing it: fanotify ``FAN_CLOSE_WRITE``, which names the pid.

inotify says a file under the claim directory was written; it does not say by whom, so a
copier outside the workload (a process fed from the network, in the host's namespace)
could land a relayed checkpoint there and the watcher would record it as the workload's.
fanotify reports the closing process's pid with every event. It needs
``CAP_SYS_ADMIN``: without it ``Writers.open`` returns why, and the watcher's stream says
the writer was not checked (verify then says so instead of passing it).

A mount mark sees every close-for-write on the claim directory's filesystem; events are
kept only for paths under the watched roots, keyed by inode (a temp file renamed into
place keeps its inode, so the writer found for the temp name holds for the final one).
Each writer is judged at event time: in the workload's cgroup (``cgroup.procs`` of the
group and its children) or its process tree (the target pid among its ancestors); a
writer that exited before the event was read is ``None`` (unknown), never a pass.
"""

from __future__ import annotations

import ctypes
import os
import select
import struct
import sys
import threading
from pathlib import Path
from typing import Any

FAN_CLASS_NOTIF, FAN_CLOEXEC, FAN_NONBLOCK = 0x0, 0x1, 0x2
FAN_MARK_ADD, FAN_MARK_MOUNT = 0x1, 0x10
FAN_CLOSE_WRITE, FAN_Q_OVERFLOW = 0x8, 0x4000
AT_FDCWD = -100
_META = struct.Struct("IBBHQii")  # event_len, vers, reserved, metadata_len, mask, fd, pid
FANOTIFY_METADATA_VERSION = 3


class Writers:
    """A fanotify descriptor marking the mounts of ``roots``; ``by_inode`` maps
    (st_dev, st_ino) to the writers seen closing that file: ``{"pid", "comm",
    "in_workload"}``."""

    def __init__(self, fd: int, roots: list[Path], workload: dict[str, Any]) -> None:
        self.fd = fd
        self.roots = [str(r) for r in roots]
        self.workload = workload
        self.by_inode: dict[tuple[int, int], list[dict[str, Any]]] = {}
        self.overflowed = False
        self.lock = threading.Lock()

    @classmethod
    def open(cls, roots: list[Path], workload: dict[str, Any] | None) -> Writers | str:
        """A running descriptor, or why the writer cannot be checked here."""
        if not sys.platform.startswith("linux"):
            return "fanotify needs Linux"
        if not workload:
            return "no workload target given to the watcher"
        libc = ctypes.CDLL(None, use_errno=True)
        libc.fanotify_mark.argtypes = [
            ctypes.c_int,
            ctypes.c_uint,
            ctypes.c_uint64,
            ctypes.c_int,
            ctypes.c_char_p,
        ]
        flags = os.O_RDONLY | os.O_CLOEXEC | getattr(os, "O_LARGEFILE", 0)
        fd = libc.fanotify_init(FAN_CLASS_NOTIF | FAN_CLOEXEC | FAN_NONBLOCK, flags)
        if fd < 0:
            return f"fanotify_init failed ({os.strerror(ctypes.get_errno())}; needs CAP_SYS_ADMIN)"
        for root in roots:
            if (
                libc.fanotify_mark(
                    fd, FAN_MARK_ADD | FAN_MARK_MOUNT, FAN_CLOSE_WRITE, AT_FDCWD, os.fsencode(root)
                )
                < 0
            ):
                why = os.strerror(ctypes.get_errno())
                os.close(fd)
                return f"fanotify_mark on {root} failed ({why})"
        return cls(fd, roots, workload)

    def poll(self, timeout_s: float) -> None:
        """Read the events that arrived within ``timeout_s`` and judge their writers."""
        ready, _, _ = select.select([self.fd], [], [], timeout_s)
        if not ready:
            return
        try:
            buf = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return
        off = 0
        while off + _META.size <= len(buf):
            length, vers, _r, _m, mask, efd, pid = _META.unpack_from(buf, off)
            off += max(length, _META.size)
            if mask & FAN_Q_OVERFLOW:
                self.overflowed = True
            if efd < 0:
                continue
            try:
                if vers == FANOTIFY_METADATA_VERSION:
                    self._event(efd, pid)
            finally:
                os.close(efd)

    def _event(self, efd: int, pid: int) -> None:
        try:
            path = os.readlink(f"/proc/self/fd/{efd}")
            st = os.fstat(efd)
        except OSError:
            return
        if not any(path == r or path.startswith(r + "/") for r in self.roots):
            return  # the mount's other files: not the claim directory's
        writer = {"pid": pid, "comm": _comm(pid), "in_workload": in_workload(pid, self.workload)}
        with self.lock:
            seen = self.by_inode.setdefault((st.st_dev, st.st_ino), [])
            if writer not in seen:
                seen.append(writer)

    def writers_of(self, st: os.stat_result) -> list[dict[str, Any]]:
        with self.lock:
            return list(self.by_inode.get((st.st_dev, st.st_ino), []))

    def close(self) -> None:
        os.close(self.fd)


def _comm(pid: int) -> str | None:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return None


def in_workload(pid: int, workload: dict[str, Any]) -> bool | None:
    """Whether ``pid`` belongs to the workload: its cgroup (``{"cgroup": DIR}``) or its
    process tree (``{"pid": N}``); None when the process is gone (unknown)."""
    if not Path(f"/proc/{pid}").exists():
        return None
    if "cgroup" in workload:
        root = Path(str(workload["cgroup"]))
        try:
            groups = [root, *(p for p in root.rglob("*") if p.is_dir())]
            return any(str(pid) in (g / "cgroup.procs").read_text().split() for g in groups)
        except OSError:
            return None
    target = int(workload.get("pid", -1))
    seen: set[int] = set()
    cur = pid
    while cur > 0 and cur not in seen:
        if cur == target:
            return True
        seen.add(cur)
        cur = _ppid(cur)
        if cur < 0:
            return None
    return False


def _ppid(pid: int) -> int:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return -1
    return int(stat.rsplit(")", 1)[1].split()[1])
