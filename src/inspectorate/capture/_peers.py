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
  channel) are recorded as such and not sampled; an end the wrapper holds too is the
  capture's own stdio, inherited from its launcher, recorded ``inherited`` (verify
  shows those peers and does not judge them);
* each relay peer's CPU (``utime+stime`` of all its threads, its reaped children and
  its live descendants, less the branch that launched this sensor when the peer is
  one of its ancestors) at every audit until it exits, written when it moves.

A socket is looked up once (its peer is fixed once connected), an unconnected one again
every ``RECHECK_AUDITS``-th audit: a steady workload costs a readlink per fd and a
``/proc/PID/stat`` read per peer (~0.4 ms an audit here; docs/capture.md).

Records (in ``sensor_escape.jsonl``, schema ``inspectorate.escape_watch/1``):
``relay_peer`` {pid, comm, via, address, workload_pid, verifier, ancestor, inherited},
``relay_cpu`` {pid, cpu_s}, ``relay_gone`` {pid} and ``relay_error`` {error}.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inspectorate.capture._peer_tables import (
    INET,
    TCP_LISTEN,
    TICK,
    Held,
    UnixSock,
    ancestors,
    comm,
    connected,
    cpu_ticks,
    held_by,
    host_ends,
    in_ns,
    inet_table,
    open_diag,
    owners,
    sock_proto,
    unix_dump,
)

Record = Callable[..., None]
# An owner scan for ends no outside process holds yet (the workload's own pipes) at most
# this often: each reads every fd link of the host (~5 ms on this box). A pipe reaches
# an outside process by fd passing (over a socket: a channel found at once) or by root
# opening /proc/PID/fd/N: found within this.
RESCAN_S = 30.0
RECHECK_AUDITS = 5  # unconnected sockets of the workload: looked up again every 5th audit


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
        # the chain that launched this sensor (a shell, CI, the capture wrapper): a peer on
        # it is sampled without the branch leading here (the capture, the workload)
        self.chain = ancestors(os.getpid())
        self.peers: dict[int, Peer] = {}
        self.state: dict[int, str] = {}  # workload socket inode -> done / wait (unconnected) / other
        self.known: set[tuple[str, Any]] = set()  # (kind, inode/key) resolved to owners already
        # an outside end nobody outside held at the last scan -> (when scanned, its channel)
        self.pending: dict[tuple[str, Any], tuple[float, tuple[int, str, str]]] = {}
        self.announced: set[tuple[int, str, str]] = set()
        self._diag: socket.socket | None = None
        self._diag_ns: str | None = None
        self._host_diag: socket.socket | None = None
        self.errors: set[str] = set()
        self.audits, self.cpu_s, self.max_s = 0, 0.0, 0.0

    def close(self) -> None:
        for sock in (self._diag, self._host_diag):
            if sock is not None:
                sock.close()

    def audit(self, tracked: set[int], home_ns: str | None) -> None:
        """One pass: channels of ``tracked`` (the workload's living pids) whose other end is
        outside, their owners, and every known peer's CPU. ``home_ns``: the workload's
        ``net:[...]`` link. Errors are recorded once each and never stop the escape watch."""
        t0 = time.thread_time()
        try:
            self._find(tracked, home_ns)
        except Exception as exc:  # a failed audit is recorded; it must never end the escape watch
            self._error(f"peer audit: {type(exc).__name__}: {exc}")
        try:
            self._sample(tracked)
        except Exception as exc:
            self._error(f"peer CPU sample: {type(exc).__name__}: {exc}")
        spent = time.thread_time() - t0
        self.audits, self.cpu_s, self.max_s = self.audits + 1, self.cpu_s + spent, max(self.max_s, spent)

    def _error(self, text: str) -> None:
        if text not in self.errors:
            self.errors.add(text)
            self.record("relay_error", error=text[:200])

    def _find(self, tracked: set[int], home_ns: str | None) -> None:
        """Outside ends of the workload's channels. A socket is looked up once (its peer
        does not change after connect), an unconnected one again every
        ``RECHECK_AUDITS``-th audit: a steady workload costs a readlink per fd."""
        held = held_by(tracked)
        self.state = {i: st for i, st in self.state.items() if i in held.sockets}
        due = self.audits % RECHECK_AUDITS == 0
        todo = {i for i in held.sockets if i not in self.state or (due and self.state[i] == "wait")}
        outside: dict[tuple[str, Any], tuple[int, str, str]] = {}  # key -> (workload pid, via, address)
        if todo:
            protos = {i: sock_proto(held.socket_fds[i]) for i in todo}
            self.state.update(dict.fromkeys(todo, "other"))  # netlink, packet...: no peer process
            unix = {i for i, p in protos.items() if p.startswith("UNIX")}
            inet = {i: INET[p] for i, p in protos.items() if p in INET}
            home = in_ns(held.sockets.values(), home_ns)
            if unix:
                self._unix(held, outside, unix, home)
            if inet and home is not None:
                self._inet(held, outside, inet, home)
        for key, pid in held.pipes.items():
            outside.setdefault(("pipe", key), (pid, "fifo", held.pipe_names.get(key, "")))
        self.pending = {k: v for k, v in self.pending.items() if v[1][0] in tracked}
        for end, (_, channel) in self.pending.items():  # a socket's end is listed once: keep asking
            if end[0] == "sock":
                outside.setdefault(end, channel)
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
        todo: set[int],
        home: int | None,
    ) -> None:
        """Unix peers of ``todo``: from the workload namespace's dump, and for sockets it
        does not list (created elsewhere and inherited) from the host's."""
        left = set(todo)
        if home is not None:
            left = self._unix_in(unix_dump(self._ns_diag(home)), held, outside, left)
        if left:
            if self._host_diag is None:
                self._host_diag = open_diag(None)
            self._unix_in(unix_dump(self._host_diag), held, outside, left)

    def _unix_in(
        self,
        dump: list[UnixSock],
        held: Held,
        outside: dict[tuple[str, Any], tuple[int, str, str]],
        todo: set[int],
    ) -> set[int]:
        by_ino = {s.ino: s for s in dump}
        for ino in todo & set(by_ino):
            s = by_ino[ino]
            if s.peer and s.peer not in held.sockets:
                other = by_ino.get(s.peer)
                name = s.name or (other.name if other else "")
                outside.setdefault(("sock", s.peer), (held.sockets[ino], "unix", name))
            # a listener's clients arrive as new accepted sockets; others may connect later
            self.state[ino] = "done" if s.peer or s.state == TCP_LISTEN else "wait"
        return todo - set(by_ino)

    def _inet(
        self,
        held: Held,
        outside: dict[tuple[str, Any], tuple[int, str, str]],
        todo: dict[int, str],
        home: int,
    ) -> None:
        """Host ends of the workload's connected TCP/UDP sockets (``host_ends``); only the
        protocol files these sockets need are read."""
        protos = set(todo.values())
        table = inet_table(f"/proc/{home}/net", protos)
        mine = {}
        for ino in todo:
            entry = table.get(ino)
            state = None if entry is None else connected(entry)
            self.state[ino] = "wait" if state is None else "done"
            if entry is not None and state:
                mine[ino] = entry
        if mine:
            host = inet_table("/proc/self/net", {e[0] for e in mine.values()})
            for host_ino, (w_ino, proto, addr) in host_ends(mine, host).items():
                outside.setdefault(("sock", host_ino), (held.sockets[w_ino], proto, addr))

    def _resolve(self, outside: dict[tuple[str, Any], tuple[int, str, str]], tracked: set[int]) -> None:
        """Owners of outside ends not resolved yet: one /proc scan for all of them, then
        each inode is cached (or retried after ``RESCAN_S`` while nobody outside holds it)."""
        now = time.monotonic()
        todo = {
            k: v
            for k, v in outside.items()
            if k not in self.known and now - self.pending.get(k, (-RESCAN_S, v))[0] >= RESCAN_S
        }
        if not todo:
            return
        socks = {k[1] for k in todo if k[0] == "sock"}
        pipes = {k[1] for k in todo if k[0] == "pipe"}
        named = any(k[0] == "pipe" and not v[2].startswith("pipe:[") for k, v in todo.items())
        by_sock, by_pipe = owners(socks, pipes, skip=tracked, named=named)
        for key, (wpid, via, address) in todo.items():
            holders = by_sock.get(key[1], set()) if key[0] == "sock" else by_pipe.get(key[1], set())
            if not holders:
                self.pending[key] = (now, (wpid, via, address))
                continue
            self.known.add(key)
            self.pending.pop(key, None)
            # an end the verifier's own process also holds is the capture's stdio (or
            # another fd the wrapper handed the command), inherited from its launcher
            inherited = bool(holders & self.verifier)
            for pid in sorted(holders):
                self._announce(pid, wpid, via, address, inherited)

    def _announce(self, pid: int, wpid: int, via: str, address: str, inherited: bool) -> None:
        if (pid, via, address) in self.announced:
            return
        self.announced.add((pid, via, address))
        mine = pid in self.verifier
        self.record(
            "relay_peer",
            pid=pid,
            comm=comm(pid),
            via=via,
            address=address,
            workload_pid=wpid,
            verifier=mine,
            ancestor=pid in self.chain,
            inherited=inherited,
        )
        if not mine and pid not in self.peers:
            now = cpu_ticks(pid, set())
            if now is not None:
                self.peers[pid] = Peer(pid, now[0])

    def _sample(self, tracked: set[int]) -> None:
        for pid, peer in list(self.peers.items()):
            # descendants that are peers themselves are sampled on their own
            now = cpu_ticks(pid, tracked | self.chain | self.verifier | (set(self.peers) - {pid}))
            if now is None or now[0] != peer.started:
                del self.peers[pid]
                self.record("relay_gone", pid=pid)
                continue
            if now[1] != peer.last_ticks:
                peer.last_ticks = now[1]
                self.record("relay_cpu", pid=pid, cpu_s=now[1] / TICK)
