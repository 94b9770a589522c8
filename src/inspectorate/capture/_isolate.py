"""A cgroup and a network namespace of the workload's own, and a gated start into them.

``inspectorate capture`` puts the command in a fresh cgroup (v2 where the host's
controllers live there, else v1 ``cpuacct`` + ``memory`` (+ ``blkio``)) and a fresh
network namespace joined to the host by a veth pair on a private link-local /30, so the
sensor can read counters that are the workload's alone (``_scope``). The child is
forked, joins both, tells the parent it is ready and then blocks on a pipe: the parent
starts the sensor on the cgroup and releases the child only once the sensor's first
sample is on disk, so no instruction of the command runs unseen.

Nothing here sends traffic anywhere: the veth pair exists inside this machine only, no
forwarding or NAT is set up, and the namespace's default route points at the host end
of the pair (services of this host stay reachable; nothing beyond it is).
"""

from __future__ import annotations

import ctypes
import ipaddress
import os
import random
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from inspectorate.capture._user import Account, become
from inspectorate.errors import InputError

CGROUP_ROOT = Path("/sys/fs/cgroup")
CLONE_NEWNET = 0x40000000
V1_NEEDED = ("cpuacct", "memory")
V1_OPTIONAL = ("blkio",)


# ------------------------------------------------------------------------ rights


def pure_v2() -> bool:
    """The unified hierarchy at the root with cpu and memory controllers (no v1)."""
    text = _read(CGROUP_ROOT / "cgroup.controllers")
    return text is not None and {"cpu", "memory"} <= set(text.split())


def missing_rights() -> list[str]:
    """What this host or user lacks for an isolated capture (empty: all there)."""
    missing = []
    if os.geteuid() != 0:
        missing.append("root (CAP_SYS_ADMIN) for cgroups and network namespaces")
        return missing
    if not pure_v2() and not all(os.access(CGROUP_ROOT / c, os.W_OK) for c in V1_NEEDED):
        missing.append("a writable cgroup hierarchy (v2 cpu+memory, or v1 cpuacct+memory)")
    if shutil.which("ip") is None:
        missing.append("the 'ip' command (iproute2) for the veth pair")
    if not os.path.exists("/proc/self/ns/net"):
        missing.append("network namespaces (/proc/self/ns/net)")
    return missing


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


# ------------------------------------------------------------------------ cgroups


def _own_cgroup(controller: str | None) -> str:
    """This process's cgroup path in a v1 hierarchy (``controller``) or in v2 (None)."""
    for line in (_read(Path("/proc/self/cgroup")) or "").splitlines():
        _, names, path = line.split(":", 2)
        if (controller is None and names == "") or (
            controller is not None and controller in names.split(",")
        ):
            return path.lstrip("/")
    return ""


@dataclass
class Cgroup:
    """The workload's group: one directory per hierarchy; ``sensor_path`` is the one the
    sensor is pointed at (it finds the others from it)."""

    name: str
    dirs: list[Path] = field(default_factory=list)
    version: int = 1

    @classmethod
    def create(cls, name: str) -> Cgroup:
        group = cls(name)
        try:
            if pure_v2():
                group.version = 2
                base = CGROUP_ROOT / "inspectorate.capture"
                base.mkdir(exist_ok=True)
                wanted = set((_read(CGROUP_ROOT / "cgroup.subtree_control") or "").split()) & {
                    "cpu",
                    "memory",
                    "io",
                }
                if wanted:  # enable in the leaf-less base so the workload's group has the files
                    (base / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in sorted(wanted)))
                group._make(base / name)
            else:
                for ctl in (*V1_NEEDED, *V1_OPTIONAL):
                    root = CGROUP_ROOT / ctl
                    if os.access(root, os.W_OK):
                        # nested under our own group: limits set above us keep applying
                        group._make(root / _own_cgroup(ctl) / name)
                group._unified_twin(name)
        except OSError as exc:
            group.remove()
            raise InputError(
                f"cannot create the workload's cgroup ({exc.strerror}): {exc.filename}"
            ) from None
        return group

    def _unified_twin(self, name: str) -> None:
        """On a hybrid host, the same group in the v2 hierarchy mounted at ``unified/``,
        with no controller: it carries ``cpu.pressure`` (how long the workload waited
        runnable for a CPU, which v1 has no file for) and ``cpu.stat``. Best effort:
        without it the sensor reads no wait and the idle check falls back to CPU alone."""
        unified = CGROUP_ROOT / "unified"
        if not os.access(unified / "cgroup.procs", os.W_OK):
            return
        try:
            self._make(unified / _own_cgroup(None) / name)
        except OSError:
            pass

    def _make(self, path: Path) -> None:
        path.mkdir()
        self.dirs.append(path)

    @property
    def sensor_path(self) -> Path:
        return self.dirs[0]

    def join(self, pid: int) -> None:
        for d in self.dirs:
            (d / "cgroup.procs").write_text(str(pid))

    def pids(self) -> list[int]:
        text = _read(self.sensor_path / "cgroup.procs") if self.dirs else None
        return [int(p) for p in (text or "").split()]

    def kill_all(self, timeout_s: float = 5.0) -> int:
        """SIGKILL whatever is left in the group (daemonised descendants); returns how many."""
        killed, deadline = 0, time.monotonic() + timeout_s
        while self.dirs and time.monotonic() < deadline:
            left = self.pids()
            if not left:
                break
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                    killed += 1
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        return killed

    def remove(self) -> None:
        for d in reversed(self.dirs):
            for _ in range(50):  # rmdir fails while the last killed process is reaped
                try:
                    d.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.05)
        self.dirs = []


# ------------------------------------------------------------------------ network


@dataclass
class Netns:
    """A named network namespace with a veth pair to the host on a /30."""

    name: str
    host_if: str
    ns_if: str
    host_ip: str = ""
    ns_ip: str = ""
    created: bool = False

    @classmethod
    def create(cls, tag: str) -> Netns:
        ns = cls(f"insp-{tag}", f"insp{tag}h", f"insp{tag}c")
        net = _free_subnet()
        ns.host_ip, ns.ns_ip = (str(h) for h in list(net.hosts())[:2])
        try:
            _ip("netns", "add", ns.name)
            ns.created = True
            _ip("link", "add", ns.host_if, "type", "veth", "peer", "name", ns.ns_if)
            _ip("link", "set", ns.ns_if, "netns", ns.name)
            _ip("addr", "add", f"{ns.host_ip}/30", "dev", ns.host_if)
            _ip("link", "set", ns.host_if, "up")
            _ip("-n", ns.name, "link", "set", "lo", "up")
            _ip("-n", ns.name, "addr", "add", f"{ns.ns_ip}/30", "dev", ns.ns_if)
            _ip("-n", ns.name, "link", "set", ns.ns_if, "up")
            _ip("-n", ns.name, "route", "add", "default", "via", ns.host_ip)
        except InputError:
            ns.remove()
            raise
        return ns

    @property
    def path(self) -> Path:
        return Path("/run/netns") / self.name

    def remove(self) -> None:
        if self.created:
            subprocess.run(["ip", "link", "del", self.host_if], capture_output=True, check=False)
            subprocess.run(["ip", "netns", "del", self.name], capture_output=True, check=False)
            self.created = False


def _ip(*args: str) -> None:
    proc = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise InputError(f"ip {' '.join(args)} failed: {proc.stderr.strip() or proc.returncode}")


def _free_subnet() -> ipaddress.IPv4Network:
    """A link-local /30 no interface of this host uses (169.254.169.x, cloud metadata, skipped)."""
    text = subprocess.run(["ip", "-4", "-o", "addr"], capture_output=True, text=True, check=False).stdout
    used = [ipaddress.ip_interface(f.split()[3]).network for f in text.splitlines() if len(f.split()) > 3]
    rng = random.SystemRandom()
    for _ in range(200):
        third = rng.choice([x for x in range(1, 255) if x != 169])
        net = ipaddress.IPv4Network(f"169.254.{third}.{4 * rng.randrange(0, 64)}/30")
        if not any(net.overlaps(u) for u in used):
            return net
    raise InputError("no free link-local /30 for the workload's veth pair")


def _setns(path: Path) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    fd = os.open(path, os.O_RDONLY)
    try:
        if libc.setns(fd, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "setns failed", str(path))
    finally:
        os.close(fd)


# ------------------------------------------------------------------------ gated start


@dataclass
class GatedChild:
    """A forked child that has joined its cgroup and namespace and waits to exec."""

    pid: int
    go_w: int

    def release(self) -> None:
        os.write(self.go_w, b"g")
        os.close(self.go_w)

    def abort(self) -> None:
        os.close(self.go_w)  # EOF: the child exits without running the command
        os.waitpid(self.pid, 0)

    def wait(self) -> int:
        """The command's exit status (128 + signal when killed by one)."""
        _, status = os.waitpid(self.pid, 0)
        return os.waitstatus_to_exitcode(status) if hasattr(os, "waitstatus_to_exitcode") else status >> 8


def spawn_gated(
    cmd: Sequence[str],
    env: dict[str, str],
    cgroup: Cgroup | None,
    netns: Netns | None,
    account: Account | None = None,
) -> GatedChild:
    """Fork; the child joins ``cgroup`` and ``netns``, drops to ``account`` if given,
    reports ready, and blocks until ``release()`` (then execs ``cmd``) or ``abort()``.
    InputError when the child could not join or the command cannot be executed."""
    exe = shutil.which(cmd[0], path=env.get("PATH"))
    if exe is None:
        raise InputError(f"command not found: {cmd[0]}")
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns
        os.close(ready_r)
        os.close(go_w)
        _child(exe, list(cmd), env, (cgroup, netns, account), ready_w, go_r)
    os.close(ready_w)
    os.close(go_r)
    report = _read_all(ready_r)
    if report != b"r":
        os.close(go_w)
        os.waitpid(pid, 0)
        raise InputError(
            f"the workload could not be isolated: {report.decode(errors='replace') or 'no report'}"
        )
    return GatedChild(pid, go_w)


def _read_all(fd: int) -> bytes:
    chunks = []
    while chunk := os.read(fd, 4096):
        chunks.append(chunk)
    os.close(fd)
    return b"".join(chunks)


def _child(
    exe: str,
    cmd: list[str],
    env: dict[str, str],
    where: tuple[Cgroup | None, Netns | None, Account | None],
    ready_w: int,
    go_r: int,
) -> None:
    cgroup, netns, account = where
    try:
        os.setpgid(0, 0)  # its own process group: the wrapper signals the whole job
        if cgroup is not None:
            cgroup.join(os.getpid())
        if netns is not None:
            _setns(netns.path)
        if cgroup is not None or netns is not None:  # it may not step out of either again
            from inspectorate.capture._escape import drop_capabilities

            drop_capabilities()
        if account is not None:  # last: joining and dropping need root
            become(account)
        os.write(ready_w, b"r")
        os.close(ready_w)
        if os.read(go_r, 1) != b"g":
            os._exit(125)
        os.close(go_r)
        os.execve(exe, cmd, env)
    except BaseException as exc:  # report to the parent, never run the command unisolated
        try:
            os.write(ready_w, f"{type(exc).__name__}: {exc}".encode())
        except OSError:
            pass
    os._exit(126)


# ------------------------------------------------------------------------ for spawned ranks


@dataclass(frozen=True)
class Membership:
    """What a process spawned by someone else needs to join the workload (picklable)."""

    cgroup_dirs: tuple[str, ...]
    netns_path: str | None

    def join(self) -> None:
        """Join the cgroup and the namespace: call first thing in the new process, before
        it opens a socket or starts a thread (a thread keeps the namespace it was born in)."""
        for d in self.cgroup_dirs:
            Path(d, "cgroup.procs").write_text(str(os.getpid()))
        if self.netns_path is not None:
            _setns(Path(self.netns_path))


@dataclass
class Isolation:
    """A cgroup and a network namespace for workers that a parent spawns itself (the
    testbed's ranks): they ``join()`` the ``membership``; the sensor samples the cgroup."""

    cgroup: Cgroup
    netns: Netns

    @classmethod
    def create_if_permitted(cls) -> Isolation | None:
        """None when this host or user lacks the rights (the caller runs unisolated)."""
        if missing_rights():
            return None
        tag = f"{random.SystemRandom().randrange(16**6):06x}"
        cgroup = Cgroup.create(f"inspectorate-{tag}")
        try:
            return cls(cgroup, Netns.create(tag))
        except BaseException:
            cgroup.remove()
            raise

    @property
    def membership(self) -> Membership:
        return Membership(tuple(str(d) for d in self.cgroup.dirs), str(self.netns.path))

    @property
    def sensor_target(self) -> list[str]:
        return ["--cgroup", str(self.cgroup.sensor_path)]

    def close(self) -> None:
        self.cgroup.kill_all()
        self.cgroup.remove()
        self.netns.remove()
