"""Relay peers: host processes outside the capture that the workload talks to.

The cgroup and the namespace bound what the sensor counts. A workload that claims idle
can still hand its work to a helper started on the host beforehand: a few bytes over a
pathname unix socket (these connect across network namespaces), over TCP/UDP to an
address of the host (the veth's default route reaches every one), or through a FIFO
or pipe. The helper computes; the workload's cgroup shows an idle process. This audit,
run about once a second from the escape watch's thread in the sensor's process, finds
the other end of every such channel and samples the CPU of the process that holds it:

* the workload's socket and pipe inodes: ``/proc/PID/fd`` of its tracked processes;
* **unix**: a ``NETLINK_SOCK_DIAG`` dump (``UDIAG_SHOW_PEER``) opened *in the workload's
  namespace*. The kernel creates the server's end of an accepted stream connection in
  the connecting socket's namespace (``unix_stream_connect``: ``unix_create1(net, ...)``
  with the client's ``net``), so the helper's end of the pair is listed there, not in
  the host's dump (checked on this box: ``tests/capture/test_peers.py``). A socket the
  workload holds that the dump does not list (created elsewhere, inherited) sends the
  audit to the host namespace's dump too;
* **tcp/udp**: the workload namespace's ``/proc/PID/net/{tcp,udp}{,6}`` gives each of
  its connected sockets the 4-tuple; a host-namespace socket with the reversed tuple
  (UDP: bound to that address or the wildcard) is a host process's end. There is no
  forwarding or NAT, so nothing else can answer. Loopback stays inside the namespace;
* **fifo/pipe**: pipes and FIFOs the workload holds that a process outside it also
  holds, found by the same ``/proc/*/fd`` scan (only when a new one appears, and at
  most every ``RESCAN_S`` for pipes a helper may open later);
* the owner of each outside end: one ``/proc/*/fd`` scan when a new inode appears
  (cached). An owner inside the workload is not a relay; the verifier's own processes
  (the sensor and the process that started it, the capture wrapper holding the label
  channel) are recorded as such and not sampled;
* each relay peer's CPU (``utime+stime`` of all its threads, its reaped children and
  its live descendants) at every audit until it exits, written when it moves.

Records (in ``sensor_escape.jsonl``, schema ``inspectorate.escape_watch/1``):
``relay_peer`` {pid, comm, via, address, workload_pid, verifier}, ``relay_cpu`` {pid,
cpu_s} and ``relay_gone`` {pid}.
"""

from __future__ import annotations

import ctypes
import os
import socket
import stat
import struct
import threading
import time
from collections.abc import Callable, Iterable
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

RESCAN_S = 10.0  # an owner scan for inodes with no outside holder yet, at most this often
INET = ("tcp", "tcp6", "udp", "udp6")


@dataclass(frozen=True)
class UnixSock:
    """One AF_UNIX socket from a sock_diag dump: inode, its peer's inode (0: none),
    type (1 stream, 2 dgram, 5 seqpacket) and bound path ("" unnamed, "@x" abstract)."""

    ino: int
    peer: int
    type: int
    name: str


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
    _fam, kind, _state, _pad, ino, _c0, _c1 = _UNIX_MSG.unpack_from(data, at)
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
    return UnixSock(ino, peer, kind, name)


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
                    held.sockets.setdefault(int(link[8:-1]), pid)
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
    sockets: set[int], pipes: set[tuple[int, int]], skip: set[int]
) -> tuple[dict[int, set[int]], dict[tuple[int, int], set[int]]]:
    """Processes (not in ``skip``) whose fds hold any of ``sockets`` or ``pipes``: one pass
    over ``/proc/*/fd``. Only a link that could be a pipe is ``stat``-ed."""
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
                if link.startswith("pipe:[") and int(link[6:-1]) not in pipe_inos:
                    continue
                st = os.stat(f"{base}/{fd}")
            except (OSError, ValueError):
                continue
            key = (st.st_dev, st.st_ino)
            if key in pipes:
                by_pipe.setdefault(key, set()).add(pid)
    return by_sock, by_pipe


def inet_table(net_dir: str) -> dict[int, tuple[str, str, str]]:
    """inode -> (proto, local, remote) from ``net_dir``/{tcp,udp}{,6}, addresses as the
    kernel prints them (hex): comparing raw strings needs no decoding."""
    out: dict[int, tuple[str, str, str]] = {}
    for proto in INET:
        try:
            lines = Path(net_dir, proto).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            if len(f) > 9 and f[9] != "0":
                out[int(f[9])] = (proto, f[1], f[2])
    return out


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
    mine: dict[int, tuple[str, str, str]], host: dict[int, tuple[str, str, str]]
) -> dict[int, tuple[int, str, str]]:
    """Host-namespace inode -> (workload inode, proto, remote address) for each connected
    workload socket whose other end is a host socket: TCP by the reversed 4-tuple, UDP
    by the reversed tuple or a socket bound to the workload's remote port (address or
    wildcard) and not connected elsewhere."""
    index: dict[tuple[str, str, str], int] = {}
    udp_bound: dict[tuple[str, str], int] = {}
    for ino, (proto, local, remote) in host.items():
        index[(proto, local, remote)] = ino
        if proto.startswith("udp"):
            udp_bound[(proto, local)] = ino
    out: dict[int, tuple[int, str, str]] = {}
    for w_ino, (proto, local, remote) in mine.items():
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


def _in_ns(pids: Iterable[int], home_ns: str | None) -> int | None:
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


Record = Callable[..., None]


@dataclass
class Peer:
    pid: int
    started: int
    last_ticks: int | None = None


class PeerAudit:
    """Find the workload's relay peers and sample their CPU (module docstring).
    ``record(kind, **fields)`` appends to the escape watch's chained stream; ``verifier``
    are this sensor's own processes (recorded, never sampled)."""

    def __init__(self, record: Record, verifier: set[int]) -> None:
        self.record = record
        self.verifier = set(verifier)
        self.peers: dict[int, Peer] = {}
        self.known: set[tuple[str, int]] = set()  # (kind, inode/key) resolved to owners already
        self.pending: dict[tuple[str, Any], float] = {}  # no outside holder yet -> when last scanned
        self.announced: set[tuple[int, str, str]] = set()
        self._diag: socket.socket | None = None
        self._diag_ns: str | None = None
        self._host_diag: socket.socket | None = None
        self.errors: set[str] = set()
        self.audits, self.cpu_s = 0, 0.0

    def close(self) -> None:
        for sock in (self._diag, self._host_diag):
            if sock is not None:
                sock.close()

    def audit(self, tracked: set[int], home_ns: str | None) -> None:
        """One pass: channels of ``tracked`` (the workload's living pids) whose other end is
        outside, their owners, and every known peer's CPU. ``home_ns``: the workload's
        ``net:[...]`` link. Errors are recorded once each and never stop the escape watch."""
        t0 = time.process_time()
        try:
            self._find(tracked, home_ns)
        except OSError as exc:
            self._error(f"peer audit: {exc}")
        self._sample(tracked)
        self.audits += 1
        self.cpu_s += time.process_time() - t0

    def _error(self, text: str) -> None:
        if text not in self.errors:
            self.errors.add(text)
            self.record("relay_error", error=text[:200])

    def _find(self, tracked: set[int], home_ns: str | None) -> None:
        held = held_by(tracked)
        outside: dict[tuple[str, Any], tuple[int, str, str]] = {}  # key -> (workload pid, via, address)
        unseen = set(held.sockets)
        home = _in_ns(held.sockets.values(), home_ns)
        if unseen and home is not None:
            unseen = self._unix(held, outside, self._ns_diag(home))
            if unseen:
                unseen = self._inet(held, outside, unseen, home)
        if unseen:  # created outside the namespace (inherited): the host's own dump
            if self._host_diag is None:
                self._host_diag = open_diag(None)
            self._unix(held, outside, self._host_diag, only=unseen)
        for key, pid in held.pipes.items():
            outside.setdefault(("pipe", key), (pid, "fifo", held.pipe_names.get(key, "")))
        self._resolve(outside, tracked)

    def _ns_diag(self, pid: int) -> socket.socket:
        """The diag socket in the workload's namespace (reopened if the namespace changed)."""
        path = f"/proc/{pid}/ns/net"
        ident = os.readlink(path)
        if self._diag is None or self._diag_ns != ident:
            if self._diag is not None:
                self._diag.close()
            self._diag, self._diag_ns = open_diag(path), ident
        return self._diag

    def _unix(
        self,
        held: Held,
        outside: dict[tuple[str, Any], tuple[int, str, str]],
        diag: socket.socket,
        only: set[int] | None = None,
    ) -> set[int]:
        """Unix peers of the workload's sockets: returns the workload's socket inodes this
        dump does not list."""
        dump = unix_dump(diag)
        by_ino = {s.ino: s for s in dump}
        mine = set(held.sockets) if only is None else only
        for s in dump:
            if s.ino in mine and s.peer and s.peer not in held.sockets:
                other = by_ino.get(s.peer)
                name = s.name or (other.name if other else "")
                outside.setdefault(("sock", s.peer), (held.sockets[s.ino], "unix", name))
            elif s.peer in mine and s.ino not in held.sockets:  # the accepted end, seen from its side
                outside.setdefault(("sock", s.ino), (held.sockets[s.peer], "unix", s.name))
        return mine - set(by_ino)

    def _inet(
        self,
        held: Held,
        outside: dict[tuple[str, Any], tuple[int, str, str]],
        unseen: set[int],
        pid: int,
    ) -> set[int]:
        table = inet_table(f"/proc/{pid}/net")
        mine = {i: table[i] for i in unseen if i in table}
        if mine:
            for host_ino, (w_ino, proto, addr) in host_ends(mine, inet_table("/proc/self/net")).items():
                outside.setdefault(("sock", host_ino), (held.sockets[w_ino], proto, addr))
        return unseen - set(table)

    def _resolve(self, outside: dict[tuple[str, Any], tuple[int, str, str]], tracked: set[int]) -> None:
        """Owners of outside ends not resolved yet: one /proc scan for all of them, then
        each inode is cached (or retried after ``RESCAN_S`` while nobody outside holds it)."""
        now = time.monotonic()
        todo = {
            k: v
            for k, v in outside.items()
            if k not in self.known and now - self.pending.get(k, -RESCAN_S) >= RESCAN_S
        }
        if not todo:
            return
        socks = {k[1] for k in todo if k[0] == "sock"}
        pipes = {k[1] for k in todo if k[0] == "pipe"}
        by_sock, by_pipe = owners(socks, pipes, skip=tracked)
        for key, (wpid, via, address) in todo.items():
            holders = by_sock.get(key[1], set()) if key[0] == "sock" else by_pipe.get(key[1], set())
            if not holders:
                self.pending[key] = now
                continue
            self.known.add(key)
            self.pending.pop(key, None)
            for pid in sorted(holders):
                self._announce(pid, wpid, via, address)

    def _announce(self, pid: int, wpid: int, via: str, address: str) -> None:
        if (pid, via, address) in self.announced:
            return
        self.announced.add((pid, via, address))
        mine = pid in self.verifier
        self.record(
            "relay_peer", pid=pid, comm=comm(pid), via=via, address=address, workload_pid=wpid, verifier=mine
        )
        if not mine and pid not in self.peers:
            now = cpu_ticks(pid, set())
            if now is not None:
                self.peers[pid] = Peer(pid, now[0])

    def _sample(self, tracked: set[int]) -> None:
        for pid, peer in list(self.peers.items()):
            now = cpu_ticks(pid, tracked)
            if now is None or now[0] != peer.started:
                del self.peers[pid]
                self.record("relay_gone", pid=pid)
                continue
            if now[1] != peer.last_ticks:
                peer.last_ticks = now[1]
                self.record("relay_cpu", pid=pid, cpu_s=now[1] / TICK)
