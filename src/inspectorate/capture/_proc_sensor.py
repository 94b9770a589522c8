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

Each tick reads files kept open since the process was first seen, and PSS only when
memory moved (``_proc_table``: ~0.19 ms of CPU a tick for one torch process, was 1.2-1.8 ms).

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

from inspectorate.capture._cadence import Cadence
from inspectorate.capture._chain_writer import ChainWriter
from inspectorate.capture._proc_table import HostFiles, ProcTable
from inspectorate.capture._procfs import pss_b, read_once, status_fields, wchar
from inspectorate.capture._scope import CgroupCounters, GpuProcesses, WorkloadScope
from inspectorate.capture._sensor_control import SampleControl
from inspectorate.capture._workset import WorkingSetProbe

if TYPE_CHECKING:
    from inspectorate.ledger import HeadSigner

SCHEMA = "inspectorate.sensor/2"  # /2 adds optional fields (anon_rss_b, faults): readers take /1
SENSOR_FILE = "sensor.jsonl"
PROC = Path("/proc")
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096
MIN_HZ = 10.0  # the rate while anything moves (``hz`` >= this)
STEADY_HZ = 0.8  # the slowest rate, while the workload is steady (``_cadence``)


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
    anon_b: int = 0  # RssAnon: heap and anonymous mappings (what an allocator holds)
    file_b: int = 0  # RssFile + RssShmem: mapped files and shared memory
    hwm_b: int = 0  # VmHWM: the process's peak RSS so far (kernel-held)


def parse_proc(pid: int, stat: bytes, status: bytes | None, io: bytes | None) -> ProcReading:
    """A reading from the texts of ``/proc/PID/{stat,status,io}``."""
    f = stat[stat.rfind(b")") + 2 :].split()  # comm may hold spaces and parentheses
    st = status_fields(status)
    return ProcReading(
        pid=pid,
        ppid=int(f[1]),
        start=int(f[19]),
        cpu_s=(int(f[11]) + int(f[12])) / CLK_TCK,
        rss_b=int(f[21]) * PAGE,
        pss_b=None,
        minflt=int(f[7]),
        majflt=int(f[9]),
        ctx_vol=st.get(b"voluntary_ctxt_switches", 0),
        ctx_invol=st.get(b"nonvoluntary_ctxt_switches", 0),
        threads=int(f[17]),
        write_b=wchar(io),
        anon_b=st.get(b"RssAnon", 0) * 1024,
        file_b=(st.get(b"RssFile", 0) + st.get(b"RssShmem", 0)) * 1024,
        hwm_b=st.get(b"VmHWM", 0) * 1024,
    )


def read_proc(pid: int, pss: bool = True) -> ProcReading | None:
    """``/proc/PID/{stat,status,io,smaps_rollup}`` read once; None when the process is gone."""
    stat = read_once(f"/proc/{pid}/stat")
    if not stat:
        return None
    r = parse_proc(pid, stat, read_once(f"/proc/{pid}/status"), read_once(f"/proc/{pid}/io"))
    r.pss_b = _pss(pid) if pss else None
    return r


def _pss(pid: int) -> int | None:
    """Proportional set size from smaps_rollup (shared pages split between sharers)."""
    return pss_b(read_once(f"/proc/{pid}/smaps_rollup"))


def children(pid: int) -> list[int]:
    """Direct children of ``pid`` (``/proc/PID/task/*/children``, else a full scan)."""
    out: list[int] = []
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    found_file = False
    for tid in tasks:
        text = read_once(f"/proc/{pid}/task/{tid}/children")
        if text is None:
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
        min_hz: float | None = None,
        reset_peaks: bool = True,
    ) -> None:
        if (pid is None) == (cgroup is None):
            raise ValueError("give exactly one of pid or cgroup")
        if hz < MIN_HZ:
            raise ValueError(f"the sensor samples at >= {MIN_HZ:g} Hz")
        if min_hz is not None and not 0 < min_hz <= hz:
            raise ValueError("min_hz must be in (0, hz]")
        self.pid, self.cgroup = pid, Path(cgroup) if cgroup is not None else None
        self.period = 1.0 / hz
        # slower while the workload is steady (_cadence), by default in cgroup mode only:
        # there the group's CPU counts every process that ever ran in it, so a helper born
        # and gone between two slow ticks is still counted; a tree followed by PID loses
        # the last gap of every process that exits, so it keeps the fixed rate
        if min_hz is None:
            min_hz = STEADY_HZ if cgroup is not None else hz
        self.cadence = Cadence(hz, min_hz)
        self.out = Path(out_dir) / SENSOR_FILE
        self.totals = TreeTotals()
        self.workset = WorkingSetProbe()  # what of its memory the tree touched (_workset)
        self.control: SampleControl | None = None  # samples on demand (_sensor_control)
        self.exclude = {os.getpid()}
        self.nvml = _Nvml.open(gpu)
        # the workload's own counters (cgroup, network namespace, GPU processes): _scope
        self.scope = WorkloadScope(
            cgroup=CgroupCounters.discover(self.cgroup, reset_peaks) if self.cgroup is not None else None,
            gpu=GpuProcesses(self.nvml.nvml, self.nvml.handles) if self.nvml is not None else None,
        )
        self.count = 0
        self._grid: tuple[float, int] | None = None  # (start, tick) of the current 1/hz run
        self.table = ProcTable()  # kept-open /proc files of the workload's processes
        self._last_pids: set[int] = set()
        self.host = HostFiles(CLK_TCK)
        # cgroup.procs is opened afresh every tick, never kept: v1 caches the pid list of an
        # open file and serves it again to reads that come within a second (so a process
        # that joined later would never be seen)
        self._procs = str(self.cgroup / "cgroup.procs") if self.cgroup is not None else None
        # signed evidence (docs/signing.md): a ledger.HeadSigner signs the chain head every
        # window into the host's transparency log; the challenge is the verifier's nonce
        self.signer, self.challenge = signer, challenge

    def target(self) -> dict[str, Any]:
        return {"pid": self.pid} if self.pid is not None else {"cgroup": str(self.cgroup)}

    def alive(self) -> bool:
        if self.pid is not None:
            return os.path.exists(f"/proc/{self.pid}")
        return self.cgroup is not None and os.path.exists(self.cgroup)

    def pids(self) -> list[int]:
        if self.pid is not None:
            return self.table.tree(self.pid, self.exclude, _scan_children)
        text = read_once(self._procs) if self._procs is not None else None
        if text is None:
            return []
        return [p for p in map(int, text.split()) if p not in self.exclude]

    def _sleep(self, stop: threading.Event, seconds: float) -> None:
        """Until the next tick, or until the wrapper asks for a sample (with a control,
        whose event the stop signal also sets)."""
        if self.control is None:
            stop.wait(seconds)
            return
        self.control.wake.wait(seconds)
        self.control.wake.clear()

    def sample(self, force_probe: bool = False) -> dict[str, Any]:
        """One record: tree totals, per-process readings, host CPU, NICs, GPUs."""
        t = time.time()
        pids = self.pids()
        readings = self._readings(pids)
        cum = self.totals.update(readings)
        pss = [r.pss_b for r in readings]
        host_s, ncpu = self.host.cpu()
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
            # sensor/2: resident memory by kind (status RssAnon; RssFile + RssShmem)
            "anon_rss_b": sum(r.anon_b for r in readings),
            "file_rss_b": sum(r.file_b for r in readings),
            # the processes' peak RSS (VmHWM), kernel-held: a peak between ticks is kept
            "hwm_b": sum(r.hwm_b for r in readings),
            # [pid, cpu_s, rss_b, threads, minflt, majflt] (the last two: sensor/2)
            "per_proc": [
                [r.pid, round(r.cpu_s, 3), r.rss_b, r.threads, r.minflt, r.majflt] for r in readings
            ],
            "host_cpu_s": round(host_s, 3),
            "host_ncpu": ncpu,
            "net": self.host.nics(),
        }
        if self.nvml is not None:
            record["gpu"] = self.nvml.read()
        record.update(self.scope.read(pids))
        # sensor/2: the working set (``ws_b`` bytes touched in [ws_t0, t]), while busy
        record.update(self.workset.maybe_probe([r.pid for r in readings], t, cum["cpu_s"], force_probe))
        return record

    def _readings(self, pids: list[int]) -> list[ProcReading]:
        """Every process's counters through kept-open files; PSS read or carried
        (``_proc_table``: re-read when RSS moved, at least every 10 s)."""
        now = time.monotonic()
        changed = set(pids) != self._last_pids  # a process came or went: shared pages moved
        self._last_pids = set(pids)
        out = []
        for p in pids:
            texts = self.table.texts(p)
            if texts is None:
                continue
            try:
                r = parse_proc(p, *texts)
            except (ValueError, IndexError):  # a process caught mid-exit
                continue
            files = self.table.files[p]
            r.pss_b = files.pss_now(r.rss_b, now, changed, file_b=r.file_b, alone=len(pids) == 1)
            out.append(r)
        self.table.keep_only(set(pids))
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
                    # slowest rate while steady (_cadence): gaps above 1/hz are steady stretches
                    "min_hz": self.cadence.min_hz,
                    "sensor_pid": os.getpid(),
                    # the verifier's challenge, issued as the run starts: replay claims
                    # must derive their seeds from it (replay.derive_seed), so a run
                    # computed before this moment cannot be handed over as this one's
                    "nonce": self.challenge or secrets.token_hex(16),
                },
                id_prefix="sensor_",
            )
            last = start
            while not stop.is_set() and self.alive():
                asked = self.control.take() if self.control is not None else []
                record = self.sample(force_probe=bool(asked))
                writer.append(record, id_prefix="sensor_")
                if asked:  # written: the wrapper may go on (capture._sensor_control)
                    self.control.done(asked)  # type: ignore[union-attr]
                self.count, last = self.count + 1, time.monotonic()
                if duration is not None and last - start >= duration:
                    break
                self._sleep(stop, self._next_wait(record))
            if self.alive() and time.monotonic() - last > self.period / 2:
                # stopped inside a slow gap: one last sample, so the stream ends on the
                # counters as they are now, not up to 1/min_hz seconds earlier
                writer.append(self.sample(), id_prefix="sensor_")
                self.count += 1
            writer.append(
                {"schema": SCHEMA, "kind": "stop", "t": time.time(), "samples": self.count},
                id_prefix="sensor_",
            )
        if self.nvml is not None:
            self.nvml.close()
        self.close()
        return self.count

    def _next_wait(self, record: dict[str, Any]) -> float:
        """Seconds to the next tick: ``_cadence``'s period, on the 1/hz grid while fast
        (a slow sample skips ticks rather than bunching them up)."""
        wait = self.cadence.observe(record)
        if wait > self.period:
            self._grid = None
            return wait
        now = time.monotonic()
        if self._grid is None:
            self._grid = (now, 0)
        t0, tick = self._grid
        tick = max(tick + 1, int((now - t0) / self.period))
        self._grid = (t0, tick)
        return max(0.0, t0 + tick * self.period - now)

    def close(self) -> None:
        """Close every kept-open file (the sensor object is spent afterwards)."""
        self.table.close()
        self.host.close()
        if self.scope.cgroup is not None:
            self.scope.cgroup.close()
        self.scope.net.close()


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
    min_hz: float | None = None,
    control: Path | None = None,
) -> int:
    """Sample ``pid``'s process tree (or ``cgroup``) into ``out_dir/sensor.jsonl`` until the
    target exits, SIGTERM/SIGINT arrives or ``duration`` passes; returns samples written.
    ``control``: a socket path on which the wrapper asks for samples at phase edges."""
    sensor = ProcSensor(
        out_dir, pid=pid, cgroup=cgroup, hz=hz, gpu=gpu, signer=signer, challenge=challenge, min_hz=min_hz
    )
    stop = threading.Event()
    if control is not None:
        sensor.control = SampleControl(control)
        sensor.workset.still_every = True  # under capture: every interval (_workset)

    def halt(*_: Any) -> None:
        stop.set()
        if sensor.control is not None:
            sensor.control.wake.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, halt)
    try:
        return sensor.run(stop, duration)
    finally:
        if sensor.control is not None:
            sensor.control.close()
