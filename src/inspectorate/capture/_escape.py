"""Keeping the workload inside what the sensor reads: capabilities dropped before the
command starts, and a watch for processes that leave the capture's cgroup or network
namespace anyway.

Every counter that decides a property is read from the workload's cgroup and its
namespace's interfaces. A prover running as root could step outside both: ``setns``
into the host's network namespace (its traffic then never crosses the veth), or write
its own pid into another cgroup's ``cgroup.procs`` (its CPU and memory are then charged
elsewhere). Two defences, neither resting on the prover's files:

* **Prevention** (``drop_capabilities``, in the child before ``execve``): the command
  runs without ``CAP_SYS_ADMIN`` (no ``setns``/``unshare``/``mount``), ``CAP_NET_ADMIN``,
  ``CAP_SYS_PTRACE``, ``CAP_BPF``, ``CAP_PERFMON``, ``CAP_SYS_MODULE``, ``CAP_SYS_RAWIO``
  in its bounding set, so neither it nor anything it spawns can regain them. Moving
  between cgroups needs only write access to a root-owned file, which uid 0 keeps.
* **Detection** (``EscapeWatch``, a thread in the sensor's process): every process of
  the tree is tracked from the kernel's process connector (fork events, so a child
  that forks and moves before the next sample is still known) and from the cgroup's
  member list; four times a second each tracked, living process must still be a
  member and in the workload's namespace. A departure is recorded in the watch's own
  hash-chained stream ``RUN/sensor_escape.jsonl``, which verify's ``integrity`` reads:

      {"schema": "inspectorate.escape_watch/1", "kind": "escaped", "t": 1712.3,
       "pid": 4242, "comm": "python", "left": "cgroup" | "netns", "now_in": "..."}

About once a second the same thread also audits the workload's relay peers: host
processes outside the capture holding the other end of one of its sockets or pipes,
whose CPU it then samples (``capture._peers``; ``relay_peer`` / ``relay_cpu`` records
in the same stream, read by verify's ``compute``).

What stays open: a process that leaves and returns between two audits (250 ms apart)
is seen only with the probability its excursion covers an audit, so hiding sustained
work this way is caught, a single short burst may not be; the process
connector needs root in the host's namespace (without it the watch falls back to
the member list and parent pids, and says so in its start record).
"""

from __future__ import annotations

import ctypes
import os
import select
import socket
import struct
import threading
import time
from pathlib import Path
from typing import Any

from inspectorate.capture._chain_writer import ChainWriter
from inspectorate.capture._peers import PeerAudit

SCHEMA = "inspectorate.escape_watch/1"
STREAM = "sensor_escape.jsonl"

# linux/capability.h
CAP_NET_ADMIN, CAP_SYS_MODULE, CAP_SYS_RAWIO, CAP_SYS_PTRACE = 12, 16, 17, 19
CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 21, 38, 39
DROPPED = (CAP_SYS_ADMIN, CAP_NET_ADMIN, CAP_SYS_PTRACE, CAP_BPF, CAP_PERFMON, CAP_SYS_MODULE, CAP_SYS_RAWIO)
PR_CAPBSET_DROP = 24

# linux/connector.h, linux/cn_proc.h
NETLINK_CONNECTOR, CN_IDX_PROC, CN_VAL_PROC = 11, 1, 1
PROC_CN_MCAST_LISTEN, NLMSG_DONE = 1, 3
PROC_EVENT_FORK, PROC_EVENT_EXIT = 0x1, 0x80000000
_NLMSG = struct.Struct("=IHHII")
_CNMSG = struct.Struct("=IIIIHH")
_EVENT_HEAD = struct.Struct("=IIQ")
_FORK = struct.Struct("=IIII")
_EVENT_AT = _NLMSG.size + _CNMSG.size


def drop_capabilities(caps: tuple[int, ...] = DROPPED) -> list[int]:
    """Remove ``caps`` from this process's bounding set (call in the child, before
    ``execve``: a root ``execve`` then starts with no more than the bounding set).
    Returns the capabilities dropped; one the kernel does not know is skipped. Any
    other failure raises OSError: the caller must not run the command undefended."""
    libc = ctypes.CDLL(None, use_errno=True)
    dropped = []
    for cap in caps:
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) == 0:
            dropped.append(cap)
            continue
        err = ctypes.get_errno()
        if err != 22:  # EINVAL: a capability this kernel does not have
            raise OSError(err, f"cannot drop capability {cap}")
    return dropped


def _stat_start(pid: int) -> tuple[str, int] | None:
    """(state, start time in clock ticks) of ``pid``, None when it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    rest = raw[raw.rfind(b")") + 2 :].split()
    try:
        return rest[0].decode(), int(rest[19])
    except (IndexError, ValueError):
        return None


def _netns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def _comm(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/comm").read_text().strip()
    except OSError:
        return ""


def _cgroup_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cgroup").read_text().strip().replace("\n", " ")[:300]
    except OSError:
        return ""


def _hierarchy(cgroup_dir: Path) -> tuple[set[str] | None, str]:
    """Which line of ``/proc/PID/cgroup`` speaks for ``cgroup_dir``'s hierarchy, and the
    group's path in it: (v1 controllers, or None for cgroup2; path). Read from the
    mount table, so a v1 host with many hierarchies is told apart line by line."""
    target = str(cgroup_dir.resolve())
    best: tuple[int, set[str] | None, str] | None = None
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        fields = line.split()
        try:
            dash = fields.index("-")
        except ValueError:
            continue
        root, point, fstype = fields[3], fields[4], fields[dash + 1]
        if fstype not in ("cgroup", "cgroup2") or not (target == point or target.startswith(point + "/")):
            continue
        if best is not None and len(point) <= best[0]:
            continue
        ctls = None if fstype == "cgroup2" else set(fields[dash + 3].split(",")) - {"rw", "ro"}
        rel = target[len(point) :] or "/"
        best = (len(point), ctls, (root.rstrip("/") + rel) if root != "/" else rel)
    if best is None:
        raise OSError(f"{cgroup_dir} is not in a mounted cgroup hierarchy")
    return best[1], best[2]


def _inside(pid: int, ctls: set[str] | None, path: str) -> bool | None:
    """Whether ``pid``'s line for the hierarchy puts it at ``path`` or below; None when
    ``/proc/PID/cgroup`` cannot be read (it has gone)."""
    try:
        text = Path(f"/proc/{pid}/cgroup").read_text()
    except OSError:
        return None
    for line in text.splitlines():
        _, line_ctls, where = (line.split(":", 2) + ["", ""])[:3]
        ours = line_ctls == "" if ctls is None else bool(ctls & set(line_ctls.split(",")))
        if ours:
            return where == path or where.startswith(path.rstrip("/") + "/")
    return False


def _open_connector() -> socket.socket | None:
    """A process-connector socket listening for fork/exit events, or None (no root in
    the host's namespace, or a kernel without it)."""
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_DGRAM, NETLINK_CONNECTOR)
        sock.bind((0, CN_IDX_PROC))
        op = struct.pack("=I", PROC_CN_MCAST_LISTEN)
        cn = _CNMSG.pack(CN_IDX_PROC, CN_VAL_PROC, 0, 0, len(op), 0) + op
        sock.send(_NLMSG.pack(_NLMSG.size + len(cn), NLMSG_DONE, 0, 0, 0) + cn)
        sock.setblocking(False)
        return sock
    except OSError:
        return None


class EscapeWatch:
    """Track the workload's processes and record any that leave its cgroup or network
    namespace (see the module docstring). ``cgroup_dirs``: every hierarchy the workload
    was put in (v1 has several); membership is read from the first."""

    def __init__(
        self,
        out: Path | str,
        cgroup_dirs: list[Path],
        period_s: float = 0.05,
        peer_period_s: float | None = 1.0,
    ) -> None:
        self.out = Path(out)
        self.procs_file = Path(cgroup_dirs[0]) / "cgroup.procs"
        self.ctls, self.path = _hierarchy(Path(cgroup_dirs[0]))
        self.period_s = period_s
        self.tracked: dict[int, int] = {}  # pid -> start time (a reused pid is not the same process)
        self.home_ns: str | None = None
        self.escaped: set[int] = set()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._sock = _open_connector()
        self._writer = ChainWriter(self.out / STREAM)
        # relay peers (capture._peers): the sensor and whoever started it are the verifier's
        self.peer_period_s = peer_period_s
        self._peers = PeerAudit(self._record, {os.getpid(), os.getppid()}) if peer_period_s else None
        self._next_peer_audit = 0.0

    def start(self) -> EscapeWatch:
        self._audit()
        self._record(
            "start",
            cgroup=str(self.procs_file.parent),
            hierarchy="cgroup2" if self.ctls is None else ",".join(sorted(self.ctls)),
            netns=self.home_ns,
            fork_events=self._sock is not None,
            tracked=len(self.tracked),
            relay_audit=self._peers is not None,
            verifier_pids=sorted(self._peers.verifier) if self._peers is not None else [],
        )
        self._thread = threading.Thread(target=self._loop, name="escape-watch", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._audit()
        extra: dict[str, Any] = {}
        if self._peers is not None:
            self._audit_peers(force=True)
            self._peers.close()
            # the audit's own cost, for the docs' figure and a reader's check
            extra = {
                "peer_audits": self._peers.audits,
                "peer_audit_cpu_s": round(self._peers.cpu_s, 6),
                "peer_audit_max_s": round(self._peers.max_s, 6),
            }
        self._record("stop", tracked=len(self.tracked), escaped=len(self.escaped), **extra)
        self._writer.close()
        if self._sock is not None:
            self._sock.close()

    def _record(self, kind: str, **fields: Any) -> None:
        self._writer.append({"schema": SCHEMA, "kind": kind, "t": time.time(), **fields})

    def _loop(self) -> None:
        while not self._stop.is_set():
            deadline = time.monotonic() + self.period_s
            while (left := deadline - time.monotonic()) > 0 and not self._stop.is_set():
                if self._sock is None:
                    self._stop.wait(left)
                    break
                ready, _, _ = select.select([self._sock], [], [], left)
                if ready:
                    self._drain()
            try:
                self._audit()
            except OSError as exc:  # the cgroup is gone: the workload has ended
                if not self.procs_file.exists():
                    return
                self._record("error", error=str(exc)[:200])
            self._audit_peers()

    def _audit_peers(self, force: bool = False) -> None:
        """The relay-peer audit (``capture._peers``), at most every ``peer_period_s``."""
        if self._peers is None or (not force and time.monotonic() < self._next_peer_audit):
            return
        self._next_peer_audit = time.monotonic() + float(self.peer_period_s or 0)
        self._peers.audit(set(self.tracked) - self.escaped, self.home_ns)

    def _drain(self) -> None:
        """Fork events of tracked processes add the child at once (before it can move)."""
        assert self._sock is not None
        while True:
            try:
                data = self._sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return
            if len(data) < _EVENT_AT + _EVENT_HEAD.size:
                continue
            what = _EVENT_HEAD.unpack_from(data, _EVENT_AT)[0]
            if what == PROC_EVENT_FORK:
                _ppid, ptgid, cpid, ctgid = _FORK.unpack_from(data, _EVENT_AT + _EVENT_HEAD.size)
                if ptgid in self.tracked and cpid == ctgid and cpid not in self.tracked:
                    self._track(cpid)

    def _track(self, pid: int) -> None:
        stat = _stat_start(pid)
        if stat is not None:
            self.tracked[pid] = stat[1]

    def _members(self) -> set[int]:
        return {int(x) for x in self.procs_file.read_text().split() if x.strip().isdigit()}

    def _audit(self) -> None:
        members = self._members()
        for pid in members:
            if pid not in self.tracked:
                self._track(pid)
            if self.home_ns is None:
                self.home_ns = _netns(pid)
        if self._sock is None:  # no fork events: children of tracked processes, by parent pid
            self._adopt_children()
        for pid, started in list(self.tracked.items()):
            stat = _stat_start(pid)
            if stat is None or stat[1] != started or stat[0] in ("Z", "X"):
                del self.tracked[pid]  # exited (or the pid now names another process)
                continue
            if pid in self.escaped:
                continue
            if pid not in members and self._left_cgroup(pid):
                self._escape(pid, "cgroup", _cgroup_of(pid))
            elif self.home_ns is not None and (ns := _netns(pid)) is not None and ns != self.home_ns:
                self._escape(pid, "netns", ns)

    def _left_cgroup(self, pid: int) -> bool:
        """Not a member, and the kernel places it in another cgroup. An exiting process
        drops out of ``cgroup.procs`` before it is a zombie but keeps its cgroup in
        ``/proc/PID/cgroup``, so that is what decides; a process gone meanwhile has not
        left anything."""
        if pid in self._members():  # re-read: it may have joined since the first read
            return False
        if _inside(pid, self.ctls, self.path) in (True, None):
            return False
        stat = _stat_start(pid)
        return stat is not None and stat[1] == self.tracked.get(pid) and stat[0] not in ("Z", "X")

    def _adopt_children(self) -> None:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit() or int(entry.name) in self.tracked:
                continue
            try:
                status = Path(entry.path, "status").read_text()
            except OSError:
                continue
            for line in status.splitlines():
                if line.startswith("PPid:"):
                    if int(line.split()[1]) in self.tracked:
                        self._track(int(entry.name))
                    break

    def _escape(self, pid: int, left: str, now_in: str) -> None:
        self.escaped.add(pid)
        self._record("escaped", pid=pid, comm=_comm(pid), left=left, now_in=now_in)


def read_escapes(run_path: Path | str) -> dict[str, Any] | None:
    """``RUN/sensor_escape.jsonl`` read and chain-checked: the escape records, problems
    (a broken chain, unreadable lines, no stop record) and whether fork events were
    seen; None when the run has no such stream (not captured isolated)."""
    from inspectorate.capture._chain_read import read_chained

    path = Path(run_path) / STREAM
    if not path.is_file():
        return None
    records, problems = read_chained(path)
    if not any(r.get("kind") == "stop" for r in records):
        problems.append(f"{STREAM}: no stop record (the watch did not end cleanly)")
    start = next((r for r in records if r.get("kind") == "start"), {})
    escapes = [r for r in records if r.get("kind") == "escaped" and isinstance(r.get("t"), (int, float))]
    problems += [f"relay audit: {r.get('error')}" for r in records if r.get("kind") == "relay_error"][:3]
    return {
        "escapes": escapes,
        "problems": problems,
        "fork_events": bool(start.get("fork_events")),
        "relay_audit": bool(start.get("relay_audit")),
        "relays": _relays(records),
    }


def _relays(records: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    """Relay peers outside the verifier (``capture._peers``): pid -> {channels (the
    ``relay_peer`` records), samples [(t, cumulative cpu_s)], gone (t or None)}."""
    out: dict[int, dict[str, Any]] = {}
    for r in records:
        t, pid = r.get("t"), r.get("pid")
        if not isinstance(t, (int, float)) or not isinstance(pid, int):
            continue
        kind = r.get("kind")
        if kind == "relay_peer" and not r.get("verifier"):
            keep = ("t", "pid", "comm", "via", "address", "workload_pid", "inherited")
            peer = out.setdefault(pid, {"channels": [], "samples": [], "gone": None})
            if peer["gone"] is not None:  # the pid was reused by a new peer
                peer.update(samples=[], gone=None)
            peer["channels"].append({k: r.get(k) for k in keep})
        elif kind == "relay_cpu" and pid in out and isinstance(r.get("cpu_s"), (int, float)):
            out[pid]["samples"].append((float(t), float(r["cpu_s"])))
        elif kind == "relay_gone" and pid in out:
            out[pid]["gone"] = float(t)
    return out
