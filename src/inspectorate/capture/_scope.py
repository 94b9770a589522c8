"""Counters that belong to the workload alone: its cgroup, its network namespace, its GPU
processes. The sensor (``_proc_sensor``) adds them to every sample.

Why: host-wide counters (``/proc/net/dev`` of the host, ``/proc/stat``, a GPU's total
utilisation) move when a neighbour works, and a verifier that reads them as the
workload's calls an honest idle phase training because another process flooded the
loopback. Everything here is scoped by the kernel:

* **cgroup**: ``cpuacct.usage`` / ``cpu.stat usage_usec`` (CPU of every process that
  ever ran in the group, exited ones included, to the nanosecond), ``memory.usage_in_bytes``
  / ``memory.current`` and ``memory.stat`` (anon / rss), ``blkio`` / ``io.stat`` bytes,
  and the seconds its tasks waited runnable for a CPU (v2 ``cpu.pressure``).
  A v1 cgroup is given by its path in any one hierarchy; the same relative path is looked
  up in the others (``inspectorate capture`` creates it in each).
* **network namespace**: ``/proc/<pid>/net/dev`` of a workload process shows the interfaces
  of *its* namespace. The scope is ``netns`` only when every workload process shares one
  namespace other than the sensor's own; otherwise (``host``, ``mixed``) the traffic is not
  attributable and the reader never lets it decide.
* **GPU**: NVML's running compute processes (memory) and process utilisation samples
  (SM %), summed over the workload's PIDs only.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspectorate.capture._procfs import Pread, kv_bytes, net_dev_bytes

PROC = Path("/proc")
CGROUP_ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("cpuacct", "memory", "blkio")
NETNS = "netns"  # the workload's own namespace: traffic attributable
HOST = "host"  # the sensor's namespace: host-wide, never decides
MIXED = "mixed"  # processes in several namespaces (or unreadable): never decides
# sample key -> memory.stat name (v1 reads total_<name> first). anon_b is sensor/1; the
# rest are sensor/2: page cache and shared memory charged to the group, and the
# cumulative minor+major (pgfault) and major (pgmajfault) page faults of its processes
V1_MEMORY_STAT = {
    "anon_b": "rss",
    "file_b": "cache",
    "shmem_b": "shmem",
    "pgfault": "pgfault",
    "pgmajfault": "pgmajfault",
}
V2_MEMORY_STAT = {
    "anon_b": "anon",
    "file_b": "file",
    "shmem_b": "shmem",
    "pgfault": "pgfault",
    "pgmajfault": "pgmajfault",
}
_V1_TOTALS = re.compile(
    rb"^total_(" + b"|".join(n.encode() for n in V1_MEMORY_STAT.values()) + rb") (\d+)$", re.M
)
_V2_NAMES = re.compile(rb"^(" + b"|".join(n.encode() for n in V2_MEMORY_STAT.values()) + rb") (\d+)$", re.M)


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except OSError:
        return None


def _int(text: str | bytes | None) -> int | None:
    try:
        return int(text.strip()) if text is not None else None
    except ValueError:
        return None


@dataclass
class CgroupCounters:
    """The workload's cgroup in every hierarchy where it exists (v2 and/or v1)."""

    version: int
    dirs: dict[str, Path] = field(default_factory=dict)  # controller (or "v2") -> directory
    reset_peaks: bool = True  # False: leave the kernel's peak alone (another reader owns it)
    _open: dict[tuple[str, str], Pread | None] = field(default_factory=dict, repr=False, compare=False)
    _peak_fd: int | None = field(default=None, repr=False, compare=False)
    _peak_state: str = field(default="new", repr=False, compare=False)  # new, open, none

    def _text(self, ctl: str, name: str) -> bytes | None:
        """A file of the group, opened once and re-read with pread (``_procfs``); keyed by
        (controller, name), never by a Path built per tick (that cost ~20 us a tick)."""
        key = (ctl, name)
        f = self._open.get(key, False)
        if f is False:
            f = self._open[key] = Pread.open(os.path.join(self.dirs[ctl], name))
        return f.read() if f is not None else None  # type: ignore[union-attr]

    def close(self) -> None:
        for f in self._open.values():
            if f is not None:
                f.close()
        self._open.clear()
        self.close_peak()

    @classmethod
    def discover(cls, path: Path | str, reset_peaks: bool = True) -> CgroupCounters:
        """From one cgroup directory, the same group in the other hierarchies."""
        path = Path(path).resolve()
        if (path / "cgroup.controllers").exists():  # a v2 directory
            dirs = {"v2": path}
            rel = _relative(path)
            if rel is not None:  # hybrid host: v1 twins made by capture carry the counters v2 lacks
                dirs.update(_v1_twins(rel))
            return cls(2, dirs, reset_peaks)
        rel = _relative(path)
        dirs = _v1_twins(rel) if rel is not None else {}
        if not dirs:
            dirs = {"cpuacct": path}
        v2 = CGROUP_ROOT / "unified" / rel if rel is not None else None
        if v2 is not None and (v2 / "cgroup.procs").exists():
            dirs["v2"] = v2
        return cls(1, dirs, reset_peaks)

    def procs_dir(self) -> Path:
        return next(iter(self.dirs.values()))

    def read(self) -> dict[str, Any]:
        """CPU-seconds, memory (total, anonymous) and block-I/O bytes of the group."""
        out: dict[str, Any] = {"v": self.version}
        cpu = self._cpu_s()
        if cpu is not None:
            out["cpu_s"] = round(cpu, 4)
        wait = self._cpu_wait_s()
        if wait is not None:
            out["cpu_wait_s"] = round(wait, 4)
        out.update(self._memory())
        peak = self._peak()
        if peak is not None:
            out["mem_peak_b"] = peak
        out.update(self._io())
        return out

    def _peak(self) -> int | None:
        """The group's peak memory since the previous sample, held by the kernel (v1
        ``memory.max_usage_in_bytes``, reset by writing 0; v2 ``memory.peak``, reset per
        descriptor by any write, kernel >= 6.12). Why: memory is a gauge, and a tick can
        only see it at one instant; an allocation made and freed between two ticks (slow
        ones above all, ``_cadence``) still lands here. None where it cannot be reset:
        a peak since the group began would not say when."""
        if self._peak_state == "none" or not self.reset_peaks:
            return None
        if self._peak_state == "new":
            self._peak_state = "none"
            ctl, name = (
                ("memory", "memory.max_usage_in_bytes") if "memory" in self.dirs else ("v2", "memory.peak")
            )
            if ctl not in self.dirs:
                return None
            try:
                self._peak_fd = os.open(os.path.join(self.dirs[ctl], name), os.O_RDWR | os.O_CLOEXEC)
                os.write(self._peak_fd, b"0\n")  # the first reading starts from now
            except OSError:
                self.close_peak()
                return None
            self._peak_state = "open"
        assert self._peak_fd is not None
        try:
            value = _int(os.pread(self._peak_fd, 64, 0))
            os.write(self._peak_fd, b"0\n")
        except OSError:
            self.close_peak()
            return None
        return value

    def close_peak(self) -> None:
        self._peak_state = "none"
        if self._peak_fd is not None:
            os.close(self._peak_fd)
            self._peak_fd = None

    def _cpu_s(self) -> float | None:
        if "cpuacct" in self.dirs:
            ns = _int(self._text("cpuacct", "cpuacct.usage"))
            if ns is not None:
                return ns / 1e9
        if "v2" in self.dirs:  # cpu.stat's usage_usec exists in v2 without the cpu controller
            usec = kv_bytes(self._text("v2", "cpu.stat")).get("usage_usec")
            if usec is not None:
                return usec / 1e6
        return None

    def _cpu_wait_s(self) -> float | None:
        """Seconds during which some task of the group was runnable but waiting for a CPU
        (v2 ``cpu.pressure``, ``some total=`` in microseconds; PSI, kernel >= 4.20, a
        core file of every v2 group, no controller needed). Why: CPU time says what the
        tree got, this says what it asked for; a starved tree on a busy host gets little
        CPU but waits most of the time. None where the host has no PSI or no v2 group."""
        if "v2" not in self.dirs:
            return None
        text = self._text("v2", "cpu.pressure")
        if not text or not text.startswith(b"some"):
            return None
        usec = _int(text.split(b"\n", 1)[0].rpartition(b"total=")[2])
        return usec / 1e6 if usec is not None else None

    def _memory(self) -> dict[str, int]:
        """Total and anonymous memory, and (sensor/2) the allocator and page-fault counters
        of ``memory.stat``: every process that ever ran in the group, exited ones included."""
        if "memory" in self.dirs:
            total = _int(self._text("memory", "memory.usage_in_bytes"))
            # v1 hierarchical totals (total_*) include child groups; the bare names do not
            stat = dict(_V1_TOTALS.findall(self._text("memory", "memory.stat") or b""))
            names = V1_MEMORY_STAT
        elif "v2" in self.dirs:
            total = _int(self._text("v2", "memory.current"))
            stat = dict(_V2_NAMES.findall(self._text("v2", "memory.stat") or b""))
            names = V2_MEMORY_STAT
        else:
            return {}
        out = {key: int(stat[name.encode()]) for key, name in names.items() if name.encode() in stat}
        if total is not None:
            out["mem_b"] = total
        return out

    def _io(self) -> dict[str, int]:
        if "blkio" in self.dirs:
            text = self._text("blkio", "blkio.throttle.io_service_bytes_recursive")
            if text is None:
                return {}
            rd = wr = 0
            for line in text.split(b"\n"):
                parts = line.split()
                if len(parts) == 3 and parts[2].isdigit():
                    rd += int(parts[2]) if parts[1] == b"Read" else 0
                    wr += int(parts[2]) if parts[1] == b"Write" else 0
            return {"io_r_b": rd, "io_w_b": wr}
        if "v2" in self.dirs:
            raw = self._text("v2", "io.stat")
            if raw is None:
                return {}
            rd = wr = 0
            for row in raw.decode().splitlines():
                kv = dict(p.split("=", 1) for p in row.split()[1:] if "=" in p)
                rd += int(kv.get("rbytes", 0))
                wr += int(kv.get("wbytes", 0))
            return {"io_r_b": rd, "io_w_b": wr}
        return {}


def _relative(path: Path) -> Path | None:
    """The group's path below its hierarchy's mount (``cpuacct/a/b`` -> ``a/b``)."""
    try:
        rel = path.relative_to(CGROUP_ROOT)
    except ValueError:
        return None
    parts = rel.parts
    if not parts:
        return None
    if (CGROUP_ROOT / "cgroup.controllers").exists():  # pure v2 mount at the root
        return rel
    return Path(*parts[1:]) if len(parts) > 1 else None


def _v1_twins(rel: Path) -> dict[str, Path]:
    """The group in each v1 hierarchy: at the same relative path, or (``capture`` nests
    the group under its own cgroup of each hierarchy, and the sensor is capture's child)
    by name under this process's own group there."""
    out = {}
    for ctl in V1_CONTROLLERS:
        for d in (CGROUP_ROOT / ctl / rel, CGROUP_ROOT / ctl / _own_v1(ctl) / rel.name):
            if (d / "cgroup.procs").exists():
                out[ctl] = d
                break
    return out


def _own_v1(controller: str) -> str:
    for line in (_read(PROC / "self" / "cgroup") or "").splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(","):
            return path.lstrip("/")
    return ""


# ------------------------------------------------------------------------ network


def netns_id(pid: int | str) -> str | None:
    """The network namespace a process lives in (``net:[inode]``), None when gone."""
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def net_dev(path: Path) -> dict[str, list[int]] | None:
    """Per interface: [rx_bytes, tx_bytes, rx_packets, tx_packets] of one ``net/dev`` file."""
    text = _read(path)
    return net_dev_bytes(text.encode()) if text is not None else None


class NetScope:
    """The workload's network namespace, tick by tick.

    ``netns`` when every readable workload process shares one namespace that is not the
    sensor's own; then the counters are that namespace's interfaces (veth and its own
    loopback), read through a workload process. Otherwise the scope says why the traffic
    cannot be the workload's alone, and no counters are returned. The ``net/dev`` file is
    kept open per (process, namespace): a procfs ``net`` file shows the namespace the
    process had when it was opened, so a process seen in another namespace is reopened."""

    def __init__(self) -> None:
        self.own = netns_id("self")
        self.dev: dict[tuple[int, str], Pread | None] = {}

    def read(self, pids: list[int]) -> tuple[str, str | None, dict[str, list[int]] | None]:
        ids = {p: netns_id(p) for p in pids}
        spaces = {n for n in ids.values() if n is not None}
        if len(spaces) != 1:
            return MIXED, None, None
        space = next(iter(spaces))
        if space == self.own:
            return HOST, space, None
        for pid in pids:  # any process of the namespace shows its interfaces
            if ids[pid] != space:
                continue
            key = (pid, space)
            if key not in self.dev:
                self.dev[key] = Pread.open(f"/proc/{pid}/net/dev")
            f = self.dev[key]
            counters = net_dev_bytes(f.read()) if f is not None else None
            if counters is not None and netns_id(pid) == space:  # still there after the read
                self._keep(key)
                return NETNS, space, counters
        return MIXED, space, None

    def _keep(self, key: tuple[int, str]) -> None:
        for other in [k for k in self.dev if k != key]:
            f = self.dev.pop(other)
            if f is not None:
                f.close()

    def close(self) -> None:
        self._keep((-1, ""))


def workload_net(pids: list[int]) -> tuple[str, str | None, dict[str, list[int]] | None]:
    """One reading of the workload's namespace (``NetScope`` keeps files open between ticks)."""
    scope = NetScope()
    try:
        return scope.read(pids)
    finally:
        scope.close()


# ------------------------------------------------------------------------ GPU


class GpuProcesses:
    """Per-device GPU memory and SM utilisation of the workload's PIDs (NVML).

    ``nvmlDeviceGetComputeRunningProcesses`` gives each process's used memory;
    ``nvmlDeviceGetProcessUtilization`` gives utilisation samples (pid, smUtil, memUtil,
    timeStamp) since a timestamp, so each read asks only for samples newer than the last."""

    def __init__(self, nvml: Any, handles: list[Any]) -> None:
        self.nvml = nvml
        self.handles = handles
        self.last_ts = [0] * len(handles)

    def read(self, pids: list[int]) -> list[dict[str, Any]]:
        mine = set(pids)
        out = []
        for i, h in enumerate(self.handles):
            row: dict[str, Any] = {"index": i, "mem_b": None, "sm_util": None, "pids": 0}
            try:
                procs = self.nvml.nvmlDeviceGetComputeRunningProcesses(h)
                used = [p.usedGpuMemory or 0 for p in procs if int(p.pid) in mine]
                row["mem_b"], row["pids"] = int(sum(used)), len(used)
            except Exception:
                pass
            row["sm_util"] = self._util(i, h, mine)
            out.append(row)
        return out

    def _util(self, i: int, handle: Any, mine: set[int]) -> float | None:
        try:
            samples = self.nvml.nvmlDeviceGetProcessUtilization(handle, self.last_ts[i])
        except Exception as exc:  # NVML_ERROR_NOT_FOUND: no sample since last_ts -> idle
            return 0.0 if type(exc).__name__.endswith("NotFound") else None
        if not samples:
            return 0.0
        self.last_ts[i] = max(int(s.timeStamp) for s in samples)
        per_pid: dict[int, float] = {}
        for s in samples:
            if int(s.pid) in mine:
                per_pid[int(s.pid)] = max(per_pid.get(int(s.pid), 0.0), float(s.smUtil))
        return float(min(sum(per_pid.values()), 100.0))


# ------------------------------------------------------------------------ one sample


@dataclass
class WorkloadScope:
    """What the sensor adds to a sample: cgroup counters, the workload's namespace
    traffic with its scope, and (with NVML) the workload's GPU processes."""

    cgroup: CgroupCounters | None = None
    gpu: GpuProcesses | None = None
    net: NetScope = field(default_factory=NetScope)

    def read(self, pids: list[int]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.cgroup is not None:
            out["cg"] = self.cgroup.read()
        scope, space, counters = self.net.read(pids)
        out["net_scope"] = scope
        out["netns"] = space
        if counters is not None:
            out["wl_net"] = counters
        if self.gpu is not None:
            out["gpu_procs"] = self.gpu.read(pids)
        return out
