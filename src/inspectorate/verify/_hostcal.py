"""The host's matrix-product rate: physics for a claim whose model the verifier cannot build.

When a phase declares only an op and a parameter count, the spot-check has nothing to
re-run. Physics still bounds the claim from one side: N parameters cost 6N FLOPs per
trained token and 2N per inferred one (Kaplan), and no CPU does FLOPs faster than its
dense matrix-product rate. So the claimed tokens need at least
``flops / peak_rate`` CPU-seconds; a sensor that saw fewer means the claimed work was
not done here (tokens inflated to fit the CPU, or a smaller model than declared). The
other side (compute hidden beyond the claim) needs the model's real cost per token,
which only a built model gives: that side stays unverifiable, and says so.

The rate is measured once per host (one intra-op thread: the busy-core unit the sensor's
CPU-seconds count), in ``SAMPLES`` timed blocks; the fastest block is the peak (the
bound must hold for an honest workload that got the whole core), and the spread is
reported. It is cached per (host, CPU model, torch version) in the user's cache folder.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

SAMPLES = 5
N = 384  # matrix side: large enough for the BLAS kernel's rate, small enough for a laptop's cache
CACHE_ENV = "INSPECTORATE_CACHE_DIR"


@dataclass(frozen=True)
class HostRate:
    """Dense fp32 matrix-product FLOPs per CPU-second on one thread of this host."""

    host: str
    cpu: str
    torch: str
    peak_flop_per_cpu_s: float
    median_flop_per_cpu_s: float
    spread: float  # (peak - slowest) / peak over the samples
    samples: int

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _cache_file() -> Path:
    root = os.environ.get(CACHE_ENV) or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "inspectorate"
    )
    return Path(root) / "host-rate.json"


@lru_cache(maxsize=1)
def host_rate(refresh: bool = False) -> HostRate | str:
    """This host's rate (cached on disk), or a sentence saying why it cannot be measured."""
    try:
        import torch
    except ImportError:
        return "torch is not installed (the [testbed] extra): cannot measure the host's FLOP rate"
    key = {"host": platform.node(), "cpu": _cpu_model(), "torch": torch.__version__}
    path = _cache_file()
    if not refresh:
        cached = read_cached(path, HostRate, key)
        if cached is not None:
            return cached
    rate = _measure(key)
    write_cached(path, rate.to_dict())
    return rate


def read_cached(path: Path, cls: Any, key: dict[str, str]) -> Any | None:
    """A cached measurement of dataclass ``cls`` whose ``key`` fields match this host;
    None when absent, damaged or another host's (measured again, never trusted)."""
    try:
        item = cls(**json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    return item if all(getattr(item, k) == v for k, v in key.items()) else None


def write_cached(path: Path, data: dict[str, Any]) -> None:
    """Write a measurement atomically; a read-only home just measures again next time."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data, sort_keys=True), encoding="utf-8")
        tmp.replace(path)
    except OSError:
        pass


def _measure(key: dict[str, str], seconds: float = 0.15) -> HostRate:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        a, b = torch.randn(N, N), torch.randn(N, N)
        torch.mm(a, b)  # warm the kernel
        rates = []
        for _ in range(SAMPLES):
            cpu0, reps = time.process_time(), 0
            while reps < 2 or time.process_time() - cpu0 < seconds:
                torch.mm(a, b)
                reps += 1
            rates.append(2.0 * N**3 * reps / max(time.process_time() - cpu0, 1e-9))
    finally:
        torch.set_num_threads(threads)
    rates.sort()
    peak = rates[-1]
    return HostRate(
        key["host"], key["cpu"], key["torch"], peak, rates[len(rates) // 2], (peak - rates[0]) / peak, SAMPLES
    )


def flops_floor_cpu_s(op: str, n_params: int, tokens: float, rate: HostRate) -> float:
    """The fewest CPU-seconds ``tokens`` of ``op`` on an ``n_params`` model can take here."""
    per_token = (6.0 if op == "training" else 2.0) * n_params
    return per_token * tokens / rate.peak_flop_per_cpu_s
