"""The verifier-owned sensor: a separate process sampling a workload from ``/proc``.

Why a separate process with its own chain: every other stream of a run is written by the
prover's processes, which a competent prover rewrites at will. This sampler runs outside
the workload (``inspectorate sensor --pid PID`` or ``--cgroup PATH``), reads only what
the kernel reports about the workload's whole process tree (CPU time, resident and
proportional memory, page faults, context switches, threads), the host's CPU and NIC
counters, and NVML when a GPU is present, and appends one hash-chained record per tick
to ``sensor.jsonl``, a file no workload process opens. In deployment the verifier owns
this process (later: attests it); in the testbed it is a child of the testbed parent
that excludes itself from the tree it measures.

Cumulative counters (CPU time, faults, context switches) include processes that have
exited: a process's last reading is kept when it disappears, so a short-lived helper
cannot hide its CPU time between two ticks (it loses at most one period of it).
"""

from __future__ import annotations

import os
import secrets
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inspectorate.capture._chain_writer import ChainWriter
from inspectorate.capture._scope import CgroupCounters, GpuProcesses, WorkloadScope

if TYPE_CHECKING:
    from inspectorate.ledger import HeadSigner

SCHEMA = "inspectorate.sensor/1"
SENSOR_FILE = "sensor.jsonl"
PROC = Path("/proc")
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
MIN_HZ = 10.0


@dataclass
class ProcReading:
    """One process at one tick (cumulative counters since the process started)."""

    pid: int
    ppid: int
    start: int  # start time in clock ticks since boot: (pid, start) survives pid reuse
    cpu_s: float
    rss_b: int
    pss_b: int | None
    minflt: int
    majflt: int
    ctx_vol: int
    ctx_invol: int
    threads: int
    write_b: int = 0  # bytes passed to write(2) and friends (/proc/PID/io wchar); 0 if unreadable


def read_proc(pid: int, pss: bool = True) -> ProcReading | None:
    """``/proc/PID/{stat,status,smaps_rollup}``; None when the process is gone."""
    try:
        stat = (PROC / str(pid) / "stat").read_text()
        status = (PROC / str(pid) / "status").read_text()
    except OSError:
        return None
    f = stat[stat.rfind(")") + 2 :].split()  # comm may hold spaces and parentheses
    ctx = {k: int(v) for k, v in (_kv(line) for line in status.splitlines()) if k.endswith("ctxt_switches")}
    return ProcReading(
        pid=pid,
        ppid=int(f[1]),
        start=int(f[19]),
        cpu_s=(int(f[11]) + int(f[12])) / CLK_TCK,
        rss_b=int(f[21]) * PAGE,
        pss_b=_pss(pid) if pss else None,
        minflt=int(f[7]),
        majflt=int(f[9]),
        ctx_vol=ctx.get("voluntary_ctxt_switches", 0),
        ctx_invol=ctx.get("nonvoluntary_ctxt_switches", 0),
        threads=int(f[17]),
        write_b=_wchar(pid),
    )


def _wchar(pid: int) -> int:
    """Bytes the process has written (``wchar``): what checkpoint writes cost shows up as.
    ``io`` needs the same uid (or CAP_SYS_PTRACE); unreadable counts as nothing written."""
    try:
        for line in (PROC / str(pid) / "io").read_text().splitlines():
            if line.startswith("wchar:"):
                return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _kv(line: str) -> tuple[str, str]:
    key, _, value = line.partition(":")
    value = value.strip().split(" ")[0]
    return key, value if value.isdigit() else "0"


def _pss(pid: int) -> int | None:
    """Proportional set size from smaps_rollup (shared pages split between sharers)."""
    try:
        for line in (PROC / str(pid) / "smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        return None
    return None


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (``/proc/PID/task/*/children``, else a full scan)."""
    out: list[int] = []
    try:
        tasks = os.listdir(PROC / str(pid) / "task")
    except OSError:
        return out
    found_file = False
    for tid in tasks:
        try:
            text = (PROC / str(pid) / "task" / tid / "children").read_text()
        except OSError:
            continue
        found_file = True
        out.extend(int(c) for c in text.split())
    return out if found_file else _scan_children(pid)


def _scan_children(pid: int) -> list[int]:
    out = []
    for name in os.listdir(PROC):
        if name.isdigit():
            reading = read_proc(int(name), pss=False)
            if reading is not None and reading.ppid == pid:
                out.append(reading.pid)
    return out


def tree_pids(root: int, exclude: set[int]) -> list[int]:
    """``root`` and all its descendants, minus ``exclude`` and their descendants."""
    seen, stack = [], [root]
    while stack:
        pid = stack.pop()
        if pid in exclude or pid in seen:
            continue
        seen.append(pid)
        stack.extend(children(pid))
    return seen


def cgroup_pids(path: Path) -> list[int]:
    try:
        return [int(p) for p in (path / "cgroup.procs").read_text().split()]
    except (OSError, ValueError):
        return []


def host_cpu_s() -> tuple[float, int]:
    """(busy CPU-seconds of the whole host since boot, logical CPUs) from /proc/stat."""
    lines = (PROC / "stat").read_text().splitlines()
    vals = [int(v) for v in lines[0].split()[1:9]]
    busy = sum(vals) - vals[3] - vals[4]  # minus idle and iowait
    ncpu = sum(1 for line in lines if line.startswith("cpu") and line[3:4].isdigit())
    return busy / CLK_TCK, ncpu


def nic_counters() -> dict[str, list[int]]:
    """Per interface: [rx_bytes, tx_bytes, rx_packets, tx_packets] from /proc/net/dev."""
    out = {}
    for line in (PROC / "net" / "dev").read_text().splitlines()[2:]:
        name, _, rest = line.partition(":")
        f = rest.split()
        if len(f) >= 10:
            out[name.strip()] = [int(f[0]), int(f[8]), int(f[1]), int(f[9])]
    return out


_CUMULATIVE = ("cpu_s", "minflt", "majflt", "ctx_vol", "ctx_invol", "write_b")


@dataclass
class TreeTotals:
    """Cumulative counters over every process the target ever had (exited ones kept)."""

    last: dict[tuple[int, int], ProcReading] = field(default_factory=dict)
    gone: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_CUMULATIVE, 0.0))

    def update(self, readings: list[ProcReading]) -> dict[str, float]:
        now = {(r.pid, r.start): r for r in readings}
        for key, old in self.last.items():
            if key not in now:
                for name in _CUMULATIVE:
                    self.gone[name] += float(getattr(old, name))
        self.last = now
        return {
            name: self.gone[name] + sum(float(getattr(r, name)) for r in readings) for name in _CUMULATIVE
        }


class ProcSensor:
    """Samples a process tree (``pid``) or a cgroup (``cgroup``) into a chained stream."""

    def __init__(
        self,
        out_dir: Path | str,
        *,
        pid: int | None = None,
        cgroup: Path | str | None = None,
        hz: float = MIN_HZ,
        gpu: bool | None = None,
        signer: HeadSigner | None = None,
        challenge: str | None = None,
    ) -> None:
        if (pid is None) == (cgroup is None):
            raise ValueError("give exactly one of pid or cgroup")
        if hz < MIN_HZ:
            raise ValueError(f"the sensor samples at >= {MIN_HZ:g} Hz")
        self.pid, self.cgroup = pid, Path(cgroup) if cgroup is not None else None
        self.period = 1.0 / hz
        self.out = Path(out_dir) / SENSOR_FILE
        self.totals = TreeTotals()
        self.exclude = {os.getpid()}
        self.nvml = _Nvml.open(gpu)
        # the workload's own counters (cgroup, network namespace, GPU processes): _scope
        self.scope = WorkloadScope(
            cgroup=CgroupCounters.discover(self.cgroup) if self.cgroup is not None else None,
            gpu=GpuProcesses(self.nvml.nvml, self.nvml.handles) if self.nvml is not None else None,
        )
        self.count = 0
        self._pss: dict[tuple[int, int], int | None] = {}
        # signed evidence (docs/signing.md): a ledger.HeadSigner signs the chain head every
        # window into the host's transparency log; the challenge is the verifier's nonce
        self.signer, self.challenge = signer, challenge

    def target(self) -> dict[str, Any]:
        return {"pid": self.pid} if self.pid is not None else {"cgroup": str(self.cgroup)}

    def alive(self) -> bool:
        if self.pid is not None:
            return (PROC / str(self.pid)).exists()
        return self.cgroup is not None and self.cgroup.exists()

    def pids(self) -> list[int]:
        if self.pid is not None:
            return tree_pids(self.pid, self.exclude)
        return [p for p in cgroup_pids(self.cgroup) if p not in self.exclude]  # type: ignore[arg-type]

    def sample(self) -> dict[str, Any]:
        """One record: tree totals, per-process readings, host CPU, NICs, GPUs."""
        t = time.time()
        pids = self.pids()
        readings = self._readings(pids)
        cum = self.totals.update(readings)
        pss = [r.pss_b for r in readings]
        host_s, ncpu = host_cpu_s()
        record: dict[str, Any] = {
            "schema": SCHEMA,
            "kind": "sample",
            "t": round(t, 4),
            "procs": len(readings),
            "threads": sum(r.threads for r in readings),
            "cpu_s": round(cum["cpu_s"], 3),
            "rss_b": sum(r.rss_b for r in readings),
            "pss_b": None if not pss or None in pss else sum(p or 0 for p in pss),
            "minflt": int(cum["minflt"]),
            "majflt": int(cum["majflt"]),
            "ctx_vol": int(cum["ctx_vol"]),
            "ctx_invol": int(cum["ctx_invol"]),
            "write_b": int(cum["write_b"]),
            "per_proc": [[r.pid, round(r.cpu_s, 3), r.rss_b, r.threads] for r in readings],
            "host_cpu_s": round(host_s, 3),
            "host_ncpu": ncpu,
            "net": nic_counters(),
        }
        if self.nvml is not None:
            record["gpu"] = self.nvml.read()
        record.update(self.scope.read(pids))
        return record

    def _readings(self, pids: list[int]) -> list[ProcReading]:
        """Every process's counters; PSS (``smaps_rollup`` walks every mapping: ~5 ms for a
        torch process, half a core's percent per process at 10 Hz) is refreshed once a
        second and carried in between, new processes read at once."""
        fresh = self.count % max(int(round(1.0 / self.period)), 1) == 0
        out = []
        for p in pids:
            r = read_proc(p, pss=False)
            if r is None:
                continue
            key = (r.pid, r.start)
            if fresh or key not in self._pss:
                self._pss[key] = _pss(p)
            r.pss_b = self._pss[key]
            out.append(r)
        self._pss = {(r.pid, r.start): r.pss_b for r in out}
        return out

    def run(self, stop: threading.Event | None = None, duration: float | None = None) -> int:
        """Sample until the target is gone, ``stop`` is set or ``duration`` passes."""
        stop = stop or threading.Event()
        start = time.monotonic()
        on_append = self.signer.observe if self.signer is not None else None
        with ChainWriter(self.out, on_append=on_append) as writer:
            writer.append(
                {
                    "schema": SCHEMA,
                    "kind": "start",
                    "t": time.time(),
                    "target": self.target(),
                    "hz": 1.0 / self.period,
                    "sensor_pid": os.getpid(),
                    # the verifier's challenge, issued as the run starts: replay claims
                    # must derive their seeds from it (replay.derive_seed), so a run
                    # computed before this moment cannot be handed over as this one's
                    "nonce": self.challenge or secrets.token_hex(16),
                },
                id_prefix="sensor_",
            )
            tick = 0
            while not stop.is_set() and self.alive():
                writer.append(self.sample(), id_prefix="sensor_")
                self.count += 1
                if duration is not None and time.monotonic() - start >= duration:
                    break
                tick = max(tick + 1, int((time.monotonic() - start) / self.period))
                stop.wait(max(0.0, start + tick * self.period - time.monotonic()))
            writer.append(
                {"schema": SCHEMA, "kind": "stop", "t": time.time(), "samples": self.count},
                id_prefix="sensor_",
            )
        if self.nvml is not None:
            self.nvml.close()
        return self.count


class _Nvml:
    """NVML through capture's loader (``nvidia-ml-py``); absent GPUs mean no ``gpu`` field."""

    def __init__(self, nvml: Any) -> None:
        self.nvml = nvml
        self.handles = [nvml.nvmlDeviceGetHandleByIndex(i) for i in range(int(nvml.nvmlDeviceGetCount()))]

    @classmethod
    def open(cls, gpu: bool | None) -> _Nvml | None:
        from inspectorate.capture._sensors import _load_pynvml, gpu_available

        if gpu is False or (gpu is None and not gpu_available()):
            return None
        try:
            nvml = _load_pynvml()
            nvml.nvmlInit()
            return cls(nvml)
        except Exception:
            return None

    def read(self) -> list[dict[str, Any]]:
        out = []
        for i, h in enumerate(self.handles):
            row: dict[str, Any] = {"index": i}
            for key, call in (
                ("util", "nvmlDeviceGetUtilizationRates"),
                ("mem", "nvmlDeviceGetMemoryInfo"),
                ("power_mw", "nvmlDeviceGetPowerUsage"),
            ):
                try:
                    value = getattr(self.nvml, call)(h)
                except Exception:
                    value = None
                row[key] = (
                    value.gpu
                    if key == "util" and value is not None
                    else (value.used if key == "mem" and value is not None else value)
                )
            out.append(row)
        return out

    def close(self) -> None:
        try:
            self.nvml.nvmlShutdown()
        except Exception:
            pass


def run_sensor(
    out_dir: Path | str,
    *,
    pid: int | None = None,
    cgroup: Path | str | None = None,
    hz: float = MIN_HZ,
    duration: float | None = None,
    gpu: bool | None = None,
    signer: HeadSigner | None = None,
    challenge: str | None = None,
) -> int:
    """Sample ``pid``'s process tree (or ``cgroup``) into ``out_dir/sensor.jsonl`` until the
    target exits, SIGTERM/SIGINT arrives or ``duration`` passes; returns samples written."""
    sensor = ProcSensor(out_dir, pid=pid, cgroup=cgroup, hz=hz, gpu=gpu, signer=signer, challenge=challenge)
    stop = threading.Event()
    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, lambda *_: stop.set())
    return sensor.run(stop, duration)
