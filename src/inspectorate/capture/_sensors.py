"""Telemetry samplers: CPU/memory (psutil), /proc/net/dev, and NVML, each on its own thread.

Why threads and not the workload loop: telemetry must keep ticking at its own rate
whatever the workload does (a stalled training loop is itself evidence), and a sensor
failure must never take the workload down, so every sample is wrapped and errors are
counted, logged once, and swallowed. Output formats match the seed's H100 capture so
one parser reads both (see docs/capture.md).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, TextIO

import psutil

from inspectorate.errors import InputError

log = logging.getLogger(__name__)

CPU_COLUMNS = (
    "timestamp",
    "cpu_percent",
    "per_cpu_max",
    "mem_used_mb",
    "mem_percent",
    "proc_rss_mb",
    "load1",
    "ctx_switches",
)
NVSMI_COLUMNS = (
    "timestamp",
    "index",
    "name",
    "utilization.gpu",
    "utilization.memory",
    "memory.used",
    "memory.total",
    "power.draw",
    "clocks.sm",
    "clocks.mem",
    "temperature.gpu",
)
PROC_NET_DEV = Path("/proc/net/dev")


def nvsmi_timestamp(t: float) -> str:
    """nvidia-smi's timestamp style, ``2026/04/29 07:20:20.991``, in UTC (see docs)."""
    whole = int(t)
    millis = int(round((t - whole) * 1000))
    if millis == 1000:
        whole, millis = whole + 1, 0
    return time.strftime("%Y/%m/%d %H:%M:%S", time.gmtime(whole)) + f".{millis:03d}"


class _Sampler(threading.Thread):
    """A daemon thread calling ``sample()`` at ``hz`` until ``stop()``; never raises.

    Ticks are scheduled against the start time (no drift); a slow sample skips ticks
    rather than bunching them up.
    """

    header: str | None = None

    def __init__(self, path: Path | str, hz: float = 1.0) -> None:
        super().__init__(name=f"inspectorate-{type(self).__name__}", daemon=True)
        if hz <= 0:
            raise InputError("hz must be positive")
        self.path = Path(path)
        self.period = 1.0 / hz
        self.samples = 0
        self.errors = 0
        self._stop_event = threading.Event()
        self._out: TextIO | None = None

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fresh = not self.path.exists() or self.path.stat().st_size == 0
        self._out = open(self.path, "a", encoding="utf-8")
        if fresh and self.header is not None:
            self._out.write(self.header + "\n")
            self._out.flush()

    def setup(self) -> None:
        """Hook run on the sampler thread before the first sample."""

    def teardown(self) -> None:
        """Hook run on the sampler thread after the last sample."""

    def sample(self) -> str:
        """Text to append for one tick."""
        raise NotImplementedError

    def _tick(self) -> None:
        try:
            text = self.sample()
            assert self._out is not None
            self._out.write(text)
            self._out.flush()
            self.samples += 1
        except Exception:  # a sensor must never take the workload down
            self.errors += 1
            if self.errors == 1:
                log.warning(
                    "%s: sample failed (further errors counted, not logged)", self.name, exc_info=True
                )

    def run(self) -> None:
        try:
            self._open()
            self.setup()
        except Exception:
            self.errors += 1
            log.warning("%s: could not start", self.name, exc_info=True)
            return
        start, tick = time.monotonic(), 0
        while not self._stop_event.is_set():
            self._tick()
            tick = max(tick + 1, int((time.monotonic() - start) / self.period))
            self._stop_event.wait(max(0.0, start + tick * self.period - time.monotonic()))
        self._finish()

    def _finish(self) -> None:
        try:
            self.teardown()
        except Exception:
            log.warning("%s: teardown failed", self.name, exc_info=True)
        if self._out is not None:
            self._out.close()

    def stop(self, timeout: float | None = 5.0) -> None:
        """Ask the thread to stop and wait for it (safe to call twice, or before start)."""
        self._stop_event.set()
        if self.is_alive():
            self.join(timeout)

    def __enter__(self) -> _Sampler:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class CpuSampler(_Sampler):
    """Host CPU and memory plus one process's RSS (default: this one) to ``cpu.csv``."""

    header = ",".join(CPU_COLUMNS)

    def __init__(self, path: Path | str, hz: float = 1.0, pid: int | None = None) -> None:
        super().__init__(path, hz)
        self._proc = psutil.Process(pid)

    def setup(self) -> None:
        psutil.cpu_percent(interval=None)  # prime both counters: first reading is 0.0
        psutil.cpu_percent(interval=None, percpu=True)

    def sample(self) -> str:
        now = time.time()
        total = psutil.cpu_percent(interval=None)
        per_cpu = psutil.cpu_percent(interval=None, percpu=True)
        mem = psutil.virtual_memory()
        load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        row = (
            f"{now:.3f}",
            f"{total:.1f}",
            f"{max(per_cpu, default=0.0):.1f}",
            f"{mem.used / 2**20:.1f}",
            f"{mem.percent:.1f}",
            f"{self._proc.memory_info().rss / 2**20:.1f}",
            f"{load1:.2f}",
            str(psutil.cpu_stats().ctx_switches),
        )
        return ",".join(row) + "\n"


class NetdevSampler(_Sampler):
    """Raw /proc/net/dev snapshots, each after a ``--- <epoch> ---`` line (loopback kept)."""

    def __init__(self, path: Path | str, hz: float = 1.0, source: Path | str = PROC_NET_DEV) -> None:
        super().__init__(path, hz)
        self.source = Path(source)

    def sample(self) -> str:
        now = time.time()
        content = self.source.read_text(encoding="ascii", errors="replace")
        if not content.endswith("\n"):
            content += "\n"
        return f"--- {now:.3f} ---\n{content}"


def _load_pynvml() -> Any:
    import pynvml  # nvidia-ml-py, the [gpu] extra

    return pynvml


def gpu_available() -> bool:
    """True when NVML loads and reports at least one GPU (never raises)."""
    try:
        nvml = _load_pynvml()
        nvml.nvmlInit()
    except Exception:
        return False
    try:
        return int(nvml.nvmlDeviceGetCount()) > 0
    except Exception:
        return False
    finally:
        try:
            nvml.nvmlShutdown()
        except Exception:
            pass


def _fmt(value: Any) -> str:
    """A CSV cell; unreadable counters become ``[N/A]`` as in nvidia-smi."""
    if value is None:
        return "[N/A]"
    if isinstance(value, float):
        return f"{value:.2f}"
    return str(value).replace(",", " ")


class NvmlSampler(_Sampler):
    """nvidia-smi-like rows per GPU to ``nvsmi.csv`` through NVML (no subprocess per tick).

    ``indices`` limits the GPUs sampled (default: all). Units are dropped from the
    cells and the header (``--format=csv,nounits`` style); timestamps are UTC.
    """

    header = ",".join(NVSMI_COLUMNS)

    def __init__(self, path: Path | str, hz: float = 1.0, indices: Sequence[int] | None = None) -> None:
        super().__init__(path, hz)
        self.indices = None if indices is None else list(indices)
        self._nvml: Any = None
        self._handles: list[tuple[int, str, Any]] = []

    def setup(self) -> None:
        self._nvml = _load_pynvml()
        self._nvml.nvmlInit()
        count = int(self._nvml.nvmlDeviceGetCount())
        for index in self.indices if self.indices is not None else range(count):
            handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
            name = self._nvml.nvmlDeviceGetName(handle)
            self._handles.append((index, name.decode() if isinstance(name, bytes) else str(name), handle))

    def teardown(self) -> None:
        if self._nvml is not None:
            self._nvml.nvmlShutdown()

    def _read(self, call: str, *args: Any) -> Any:
        """One NVML query; a counter this GPU does not expose reads as None."""
        try:
            return getattr(self._nvml, call)(*args)
        except Exception:
            return None

    def _row(self, now: float, index: int, name: str, handle: Any) -> str:
        nv = self._nvml
        util = self._read("nvmlDeviceGetUtilizationRates", handle)
        mem = self._read("nvmlDeviceGetMemoryInfo", handle)
        power_mw = self._read("nvmlDeviceGetPowerUsage", handle)
        cells = (
            nvsmi_timestamp(now),
            index,
            name,
            None if util is None else util.gpu,
            None if util is None else util.memory,
            None if mem is None else mem.used // 2**20,
            None if mem is None else mem.total // 2**20,
            None if power_mw is None else power_mw / 1000.0,
            self._read("nvmlDeviceGetClockInfo", handle, nv.NVML_CLOCK_SM),
            self._read("nvmlDeviceGetClockInfo", handle, nv.NVML_CLOCK_MEM),
            self._read("nvmlDeviceGetTemperature", handle, nv.NVML_TEMPERATURE_GPU),
        )
        return ",".join(_fmt(c) for c in cells) + "\n"

    def sample(self) -> str:
        now = time.time()
        return "".join(self._row(now, i, n, h) for i, n, h in self._handles)


class Sensors:
    """Context manager running cpu.csv + netdev.log (+ nvsmi.csv) samplers in ``out_dir``.

    ``gpu=None`` samples NVML only when a GPU is found; True forces it (a missing
    NVML then shows up as sampler errors, not as an exception); False never does.
    """

    def __init__(self, out_dir: Path | str, *, hz: float = 1.0, gpu: bool | None = None) -> None:
        self.out_dir = Path(out_dir)
        use_gpu = gpu_available() if gpu is None else gpu
        self.samplers: list[_Sampler] = [
            CpuSampler(self.out_dir / "cpu.csv", hz),
            NetdevSampler(self.out_dir / "netdev.log", hz),
        ]
        if use_gpu:
            self.samplers.append(NvmlSampler(self.out_dir / "nvsmi.csv", hz))

    def start(self) -> Sensors:
        self.out_dir.mkdir(parents=True, exist_ok=True)
        for sampler in self.samplers:
            sampler.start()
        return self

    def stop(self) -> None:
        for sampler in self.samplers:
            sampler.stop()

    def __enter__(self) -> Sensors:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
