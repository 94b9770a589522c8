"""The kernel tables the relay-peer audit (``capture._peers``) reads: unix sockets and
their peers from ``NETLINK_SOCK_DIAG`` (``linux/unix_diag.h``), inet 4-tuples from
``/proc/PID/net``, the fds of ``/proc/*/fd``, and a process's cumulative CPU."""

from __future__ import annotations

import ctypes
import os
import socket
import stat
import struct
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# linux/sock_diag.h, linux/unix_diag.h, linux/netlink.h
NETLINK_SOCK_DIAG, SOCK_DIAG_BY_FAMILY = 4, 20
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLMSG_ERROR, NLMSG_DONE = 2, 3
UDIAG_SHOW_NAME, UDIAG_SHOW_PEER = 0x1, 0x4
UNIX_DIAG_NAME, UNIX_DIAG_PEER = 0, 2
CLONE_NEWNET = 0x40000000
_NLMSG = struct.Struct("=IHHII")
_UNIX_REQ = struct.Struct("=BBHIIIII")
_UNIX_MSG = struct.Struct("=BBBBIII")
_RTA = struct.Struct("=HH")
TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100

INET = {"TCP": "tcp", "TCPv6": "tcp6", "UDP": "udp", "UDPv6": "udp6"}  # sockprotoname -> /proc/net file
TCP_LISTEN, TCP_CLOSE = 10, 7


@dataclass(frozen=True)
class UnixSock:
    """One AF_UNIX socket from a sock_diag dump: inode, its peer's inode (0: none),
    type (1 stream, 2 dgram, 5 seqpacket), bound path ("" unnamed, "@x" abstract) and
    state (``TCP_LISTEN`` for a listener)."""

    ino: int
    peer: int
    type: int
    name: str
    state: int = 0


def parse_unix_dump(data: bytes) -> tuple[list[UnixSock], bool]:
    """The sockets in one ``recv`` of a unix_diag dump, and whether the dump ended
    (NLMSG_DONE). A netlink error raises OSError."""
    out: list[UnixSock] = []
    at = 0
    while at + _NLMSG.size <= len(data):
        length, kind, _flags, _seq, _pid = _NLMSG.unpack_from(data, at)
        if length < _NLMSG.size:
            break
        body = at + _NLMSG.size
        if kind == NLMSG_DONE:
            return out, True
        if kind == NLMSG_ERROR:
            err = -struct.unpack_from("=i", data, body)[0]
            raise OSError(err, f"sock_diag: {os.strerror(err)}")
        if kind == SOCK_DIAG_BY_FAMILY:
            out.append(_unix_msg(data, body, at + length))
        at += (length + 3) & ~3
    return out, False


def _unix_msg(data: bytes, at: int, end: int) -> UnixSock:
    _fam, kind, state, _pad, ino, _c0, _c1 = _UNIX_MSG.unpack_from(data, at)
    peer, name = 0, ""
    at += _UNIX_MSG.size
    while at + _RTA.size <= end:
        rlen, rtype = _RTA.unpack_from(data, at)
        if rlen < _RTA.size:
            break
        payload = data[at + _RTA.size : at + rlen]
        if rtype == UNIX_DIAG_PEER and len(payload) >= 4:
            peer = struct.unpack_from("=I", payload)[0]
        elif rtype == UNIX_DIAG_NAME and payload:
            raw = payload.rstrip(b"\0") if payload[:1] != b"\0" else b"@" + payload[1:].rstrip(b"\0")
            name = raw.decode(errors="replace")
        at += (rlen + 3) & ~3
    return UnixSock(ino, peer, kind, name, state)


def open_diag(netns: str | None = None) -> socket.socket:
    """A NETLINK_SOCK_DIAG socket in ``netns`` (a ``/proc/PID/ns/net`` path; None: this
    thread's). A socket stays in the namespace it was created in, so a throwaway
    thread enters the namespace (``setns`` moves only the calling thread), creates
    it and ends; the caller's threads never leave theirs."""
    if netns is None:
        return socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG)
    box: list[Any] = []

    def enter() -> None:
        try:
            fd = os.open(netns, os.O_RDONLY)
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                if libc.setns(fd, CLONE_NEWNET) != 0:
                    err = ctypes.get_errno()
                    raise OSError(err, f"setns {netns}: {os.strerror(err)}")
                box.append(socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_SOCK_DIAG))
            finally:
                os.close(fd)
        except OSError as exc:
            box.append(exc)

    worker = threading.Thread(target=enter, name="peer-netns", daemon=True)
    worker.start()
    worker.join()
    if not box or isinstance(box[0], OSError):
        raise box[0] if box else OSError(f"cannot open sock_diag in {netns}")
    sock: socket.socket = box[0]
    return sock


def unix_dump(sock: socket.socket) -> list[UnixSock]:
    """Every unix socket of the diag socket's namespace with its peer and name."""
    req = _UNIX_REQ.pack(socket.AF_UNIX, 0, 0, 0xFFFFFFFF, 0, UDIAG_SHOW_PEER | UDIAG_SHOW_NAME, 0, 0)
    head = _NLMSG.pack(_NLMSG.size + len(req), SOCK_DIAG_BY_FAMILY, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
    sock.send(head + req)
    out: list[UnixSock] = []
    while True:
        part, done = parse_unix_dump(sock.recv(1 << 16))
        out += part
        if done:
            return out


# ------------------------------------------------------------------------ /proc


@dataclass
class Held:
    """What the workload's processes hold: socket inodes and pipe/FIFO keys, each with
    the first workload pid seen holding it."""

    sockets: dict[int, int] = field(default_factory=dict)
    socket_fds: dict[int, str] = field(default_factory=dict)  # inode -> a /proc/PID/fd/N path to it
    pipes: dict[tuple[int, int], int] = field(default_factory=dict)  # (st_dev, st_ino) -> pid
    pipe_names: dict[tuple[int, int], str] = field(default_factory=dict)


def held_by(pids: Iterable[int]) -> Held:
    """Sockets and pipes/FIFOs in ``/proc/PID/fd`` of ``pids`` (a process gone meanwhile
    is skipped)."""
    held = Held()
    for pid in pids:
        base = f"/proc/{pid}/fd"
        try:
            fds = os.listdir(base)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"{base}/{fd}")
                if link.startswith("socket:["):
                    ino = int(link[8:-1])
                    held.sockets.setdefault(ino, pid)
                    held.socket_fds.setdefault(ino, f"{base}/{fd}")
                    continue
                if link.startswith(("anon_inode:", "/dev/")):
                    continue
                st = os.stat(f"{base}/{fd}")
            except (OSError, ValueError):
                continue
            if stat.S_ISFIFO(st.st_mode):
                key = (st.st_dev, st.st_ino)
                held.pipes.setdefault(key, pid)
                held.pipe_names.setdefault(key, link)
    return held


def owners(
    sockets: set[int], pipes: set[tuple[int, int]], skip: set[int], named: bool = True
) -> tuple[dict[int, set[int]], dict[tuple[int, int], set[int]]]:
    """Processes (not in ``skip``) whose fds hold any of ``sockets`` or ``pipes``: one pass
    over ``/proc/*/fd``. Only a link that could be one of the pipes is ``stat``-ed: an
    anonymous pipe by its ``pipe:[N]`` number; a path only when ``named`` (some of the
    pipes are FIFOs in the file system, which any path may name)."""
    by_sock: dict[int, set[int]] = {}
    by_pipe: dict[tuple[int, int], set[int]] = {}
    pipe_inos = {ino for _, ino in pipes}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) in skip:
            continue
        pid, base = int(entry.name), f"{entry.path}/fd"
        try:
            fds = os.listdir(base)
        except OSError:
            continue
        for fd in fds:
            try:
                link = os.readlink(f"{base}/{fd}")
                if link.startswith("socket:["):
                    ino = int(link[8:-1])
                    if ino in sockets:
                        by_sock.setdefault(ino, set()).add(pid)
                    continue
                if not pipes or link.startswith(("anon_inode:", "/dev/")):
                    continue
                if link.startswith("pipe:["):
                    if int(link[6:-1]) not in pipe_inos:
                        continue
                elif not named:
                    continue
                st = os.stat(f"{base}/{fd}")
            except (OSError, ValueError):
                continue
            key = (st.st_dev, st.st_ino)
            if key in pipes:
                by_pipe.setdefault(key, set()).add(pid)
    return by_sock, by_pipe


def sock_proto(fd_path: str) -> str:
    """The protocol of the socket behind ``/proc/PID/fd/N`` (``TCP``, ``UDPv6``,
    ``UNIX-STREAM``, ``NETLINK``...); "" when it cannot be read."""
    try:
        return os.getxattr(fd_path, "system.sockprotoname").rstrip(b"\0").decode()
    except OSError:
        return ""


def inet_table(net_dir: str, protos: Iterable[str] = INET.values()) -> dict[int, tuple[str, str, str, int]]:
    """inode -> (proto, local, remote, state) from ``net_dir``/{tcp,udp}{,6} (only the
    ``protos`` files: each read walks the kernel's whole hash table, ~1-3 ms), addresses
    as the kernel prints them (hex): comparing raw strings needs no decoding."""
    out: dict[int, tuple[str, str, str, int]] = {}
    for proto in protos:
        try:
            lines = Path(net_dir, proto).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) > 9 and f[9] != "0":
                out[int(f[9])] = (proto, f[1], f[2], int(f[3], 16))
    return out


def connected(entry: tuple[str, str, str, int]) -> bool | None:
    """True: connected to another address; False: never will be (a listener, loopback);
    None: not connected yet (may connect later)."""
    proto, _local, remote, state = entry
    if proto.startswith("tcp") and state == TCP_LISTEN:
        return False
    if set(remote.split(":")[0]) == {"0"}:
        return None
    return not _hex_ip(remote)[1]


def _hex_ip(addr: str) -> tuple[str, bool]:
    """A ``/proc/net`` hex address as text, and whether it is loopback or unspecified."""
    ip_hex, port = addr.split(":")
    raw = bytes.fromhex(ip_hex)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    if len(words) == 4:
        text = socket.inet_ntop(socket.AF_INET, words)
        local = words[0] == 127 or words == bytes(4)
    else:
        text = socket.inet_ntop(socket.AF_INET6, words)
        local = text in ("::1", "::") or text.startswith("::ffff:127.")
    return f"{text}:{int(port, 16)}", local


def host_ends(
    mine: dict[int, tuple[str, str, str, int]], host: dict[int, tuple[str, str, str, int]]
) -> dict[int, tuple[int, str, str]]:
    """Host-namespace inode -> (workload inode, proto, remote address) for each connected
    workload socket whose other end is a host socket: TCP by the reversed 4-tuple, UDP
    by the reversed tuple or a socket bound to the workload's remote port (address or
    wildcard) and not connected elsewhere."""
    index: dict[tuple[str, str, str], int] = {}
    udp_bound: dict[tuple[str, str], int] = {}
    for ino, (proto, local, remote, _state) in host.items():
        index[(proto, local, remote)] = ino
        if proto.startswith("udp"):
            udp_bound[(proto, local)] = ino
    out: dict[int, tuple[int, str, str]] = {}
    for w_ino, (proto, local, remote, _state) in mine.items():
        text, internal = _hex_ip(remote)
        if internal:  # unconnected, or loopback inside the namespace
            continue
        hit = index.get((proto, remote, local))
        if hit is None and proto.startswith("udp"):
            ip_hex, port = remote.split(":")
            wildcard = "0" * len(ip_hex) + ":" + port
            hit = index.get((proto, remote, "0" * len(ip_hex) + ":0000"))
            hit = hit if hit is not None else udp_bound.get((proto, wildcard))
        if hit is not None:
            out[hit] = (w_ino, proto.rstrip("6"), text)
    return out


def cpu_ticks(pid: int, skip: set[int]) -> tuple[int, int] | None:
    """(start time, CPU ticks) of ``pid``: utime+stime of all its threads plus reaped
    children (cutime+cstime) plus its live descendants' (not those in ``skip``).
    None when it is gone."""
    fields = _stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    total = sum(int(x) for x in fields[11:15])
    stack, seen = [pid], {pid}
    while stack:
        for child in _children(stack.pop()):
            if child in seen or child in skip:
                continue
            seen.add(child)
            stack.append(child)
            sub = _stat(child)
            if sub is not None:
                total += sum(int(x) for x in sub[11:15])  # live: not yet in anyone's reaped times
    return int(fields[19]), total


def _stat(pid: int) -> list[str] | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    return raw[raw.rfind(b")") + 2 :].decode().split()


def _children(pid: int) -> list[int]:
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tasks:
        try:
            out += [int(x) for x in Path(f"/proc/{pid}/task/{tid}/children").read_text().split()]
        except (OSError, ValueError):
            continue
    return out


def ancestors(pid: int) -> set[int]:
    """``pid`` and every process above it (parent pids up to init)."""
    out: set[int] = set()
    while pid > 0 and pid not in out:
        out.add(pid)
        fields = _stat(pid)
        if fields is None:
            break
        pid = int(fields[1])
    return out


def in_ns(pids: Iterable[int], home_ns: str | None) -> int | None:
    """One of ``pids`` in the namespace ``home_ns`` (a ``net:[...]`` link), or None."""
    for pid in pids:
        try:
            if home_ns is not None and os.readlink(f"/proc/{pid}/ns/net") == home_ns:
                return pid
        except OSError:
            continue
    return None


def comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""
