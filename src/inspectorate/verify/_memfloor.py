"""What a process holds before it holds a model: the floor under the memory baseline.

The footprint properties (P1 excluding training from a serving claim, P2's size bound)
read the workload's memory *above a baseline*. The baseline used to be the lowest tree
memory while labelled; but labels are the prover's, so a prover that allocates its
model, gradients and optimizer state before its first label moves all of it into the
baseline, and the footprint reads zero: a trained model passes as served, a big model
as small. The verifier cannot know what the workload held before its model, but it can
measure what a process of the same runtime holds before any model: a fresh interpreter
that imported torch. Its anonymous memory is private to each process, its file-backed
pages (the libraries) are shared, so a tree of ``k`` such processes holds at most
``k * anon + file`` before any model; the baseline is capped there.

What stays open: a workload on a leaner runtime (no torch, or a C++ server) holds less
than this floor, and can hide the difference (about 146 MB per process on the
development host, i.e. ~36M fp32 parameters served, ~9M trained with AdamW).

Measured once per (host, python, torch) in a child process and cached beside the host's
FLOP rate (``verify/_hostcal.py``).
"""

from __future__ import annotations

import platform
import subprocess
import sys
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any

from inspectorate.verify._hostcal import _cache_file, read_cached, write_cached

_PROBE = "import torch, sys; sys.stdout.write(open('/proc/self/status').read())"


@dataclass(frozen=True)
class MemoryFloor:
    """Resident bytes of a fresh interpreter that imported torch (no model)."""

    host: str
    python: str
    torch: str
    anon_b: int
    file_b: int

    def tree_floor_b(self, processes: int) -> float:
        """The most ``processes`` such interpreters hold together, libraries counted once
        (the sensor's tree memory is PSS: shared pages split, not repeated)."""
        return float(max(processes, 1) * self.anon_b + self.file_b)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@lru_cache(maxsize=1)
def memory_floor() -> MemoryFloor | None:
    """This host's floor (cached on disk); None when it cannot be measured (no torch, no
    /proc), and the baseline then stays uncapped, which the finding says."""
    try:
        import torch
    except ImportError:
        return None
    key = {"host": platform.node(), "python": platform.python_version(), "torch": torch.__version__}
    path = _cache_file().with_name("memory-floor.json")
    cached = read_cached(path, MemoryFloor, key)
    if cached is not None:
        return cached
    floor = _measure(key)
    if floor is not None:
        write_cached(path, floor.to_dict())
    return floor


def _measure(key: dict[str, str]) -> MemoryFloor | None:
    try:
        out = subprocess.run(
            [sys.executable, "-c", _PROBE], capture_output=True, text=True, timeout=120, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    fields = {}
    for line in out.splitlines():
        name, _, value = line.partition(":")
        if name in ("RssAnon", "RssFile") and value.strip().endswith("kB"):
            fields[name] = int(value.split()[0]) * 1024
    if len(fields) != 2:
        return None
    return MemoryFloor(key["host"], key["python"], key["torch"], fields["RssAnon"], fields["RssFile"])


def runtime_processes(records: Any, t0: float, t1: float, floor: MemoryFloor) -> int:
    """Processes of the tree that held at least one interpreter's private memory at some
    sample in [t0, t1]. Counting a decoy gains the prover nothing: its own memory is in
    the tree's total, at least as much as the cap subtracts for it."""
    seen: set[int] = set()
    for r in records:
        if t0 <= r["t"] <= t1:
            seen.update(runtime_pids(r, floor))
    return len(seen)


def runtime_pids(record: Any, floor: MemoryFloor) -> list[int]:
    """PIDs of one sensor sample holding at least one interpreter's private memory (the
    one per-process test both the frame path and the streaming pass apply)."""
    return [pid for pid, _cpu, rss, *_ in record.get("per_proc", []) if int(rss or 0) >= floor.anon_b]


def capped_baseline(lowest: float | None, processes: int) -> float | None:
    """The memory baseline: the lowest tree reading in the span, but never above what
    ``processes`` fresh interpreters hold (see the module's docstring)."""
    floor = memory_floor()
    if lowest is None or floor is None:
        return lowest
    return min(lowest, floor.tree_floor_b(processes))
