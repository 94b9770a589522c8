"""Kernel files the sensor reads every tick, kept open and re-read with ``pread``.

Why: opening ``/proc/PID/stat`` through ``pathlib`` and decoding it costs ~15-25 us of
CPU; a ``pread`` at offset 0 of a descriptor kept open costs 2-6 us, because procfs and
kernfs (cgroup files) regenerate the text on every read from offset 0. At 10 Hz over a
handful of files per process that difference is most of the sensor's CPU. A descriptor
of ``/proc/PID/...`` stays bound to the process it was opened for: once that process
exits, reads fail (ESRCH) even if the PID is reused, so a reused PID can never be read
as the old process.

Parsing works on bytes with precompiled patterns (no per-line Python loop).
"""

from __future__ import annotations

import os
import re

_CHUNK = 1 << 16
_STATUS = re.compile(
    rb"^(voluntary_ctxt_switches|nonvoluntary_ctxt_switches|RssAnon|RssFile|RssShmem|VmHWM):\s+(\d+)", re.M
)
_WCHAR = re.compile(rb"^wchar:\s+(\d+)", re.M)
_PSS = re.compile(rb"^Pss:\s+(\d+)", re.M)
# ``name: rx_bytes rx_packets errs drop fifo frame compressed multicast tx_bytes tx_packets``
_NETDEV = re.compile(rb"^\s*([^\s:]+):\s*(\d+)\s+(\d+)(?:\s+\d+){6}\s+(\d+)\s+(\d+)", re.M)


class Pread:
    """One kernel file opened once; ``read()`` is its current content, None once it is gone."""

    __slots__ = ("fd", "path")

    def __init__(self, path: str) -> None:
        self.path = path
        self.fd: int | None = os.open(path, os.O_RDONLY | os.O_CLOEXEC)

    @classmethod
    def open(cls, path: str) -> Pread | None:
        try:
            return cls(path)
        except OSError:
            return None

    def read(self) -> bytes | None:
        if self.fd is None:
            return None
        try:
            data = os.pread(self.fd, _CHUNK, 0)
            while len(data) % _CHUNK == 0 and data:  # rare: a file over 64 KiB
                more = os.pread(self.fd, _CHUNK, len(data))
                if not more:
                    break
                data += more
        except OSError:
            return None
        return data

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


def read_once(path: str) -> bytes | None:
    """A file read without keeping it open (``smaps_rollup`` is read rarely)."""
    f = Pread.open(path)
    if f is None:
        return None
    try:
        return f.read()
    finally:
        f.close()


def status_fields(text: bytes | None) -> dict[bytes, int]:
    """``/proc/PID/status``: context switches, the RSS split (kB) by kind and VmHWM (the
    process's peak RSS, kB: kernel-held, so a peak between two ticks is not lost)."""
    return {k: int(v) for k, v in _STATUS.findall(text or b"")}


def wchar(text: bytes | None) -> int:
    m = _WCHAR.search(text or b"")
    return int(m.group(1)) if m else 0


def pss_b(text: bytes | None) -> int | None:
    m = _PSS.search(text or b"")
    return int(m.group(1)) * 1024 if m else None


def kv_bytes(text: bytes | None) -> dict[str, int]:
    """``key value`` lines (``memory.stat``, ``cpu.stat``) as a dict."""
    out: dict[str, int] = {}
    for line in (text or b"").split(b"\n"):
        k, _, v = line.partition(b" ")
        if v.lstrip(b"-").isdigit():
            out[k.decode()] = int(v)
    return out


def net_dev_bytes(text: bytes | None) -> dict[str, list[int]] | None:
    """Per interface: [rx_bytes, tx_bytes, rx_packets, tx_packets] of a ``net/dev`` text
    (one regex pass: the host's file is parsed every tick)."""
    if text is None:
        return None
    return {
        name.decode(): [int(rx), int(tx), int(rxp), int(txp)]
        for name, rx, rxp, tx, txp in _NETDEV.findall(text)
    }
