"""Run directories: every stream of a capture, loaded and aligned by phase.

Two layouts load unchanged (docs/capture.md):

* **flat** (our testbed): ``workload_labels.jsonl, provenance.json, cpu.csv, netdev.log,
  collectives.jsonl, steps.jsonl, windows.jsonl`` and, where a GPU exists, ``nvsmi.csv``
  (plus ``dcgm.csv`` and ``nccl_*.log[.gz]`` if captured). Rank-suffixed variants such
  as ``steps_rank1.jsonl`` / ``collectives_rank1.jsonl`` are merged.
* **phases** (the seed's H100 capture): ``[<host>/]phases/<phase>/{nvsmi.csv, dcgm.csv,
  nccl_<host>_<pid>.log[.gz], netdev.log}`` with ``workload_labels.jsonl`` and
  ``provenance.json`` beside ``phases/`` or at the run root. Rows from a per-phase file
  get ``phase_dir`` (and ``host``) columns, so slicing by phase needs no clock at all.

Why one object for both: verifiers ask "what did stream S show during phase P" and
must not care how the prover laid files out. ``truth`` from the labels is carried for
scoring only; nothing here needs it.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from inspectorate.errors import InputError
from inspectorate.trace._io import read_trace
from inspectorate.trace._trace import Trace
from inspectorate.trace.streams import (
    StepLog,
    has_records,
    read_collectives,
    read_cpu,
    read_dcgm,
    read_labels,
    read_nccl_log,
    read_netdev,
    read_nvsmi,
    read_steps,
)

STREAMS = (
    "labels",
    "provenance",
    "nvsmi",
    "dcgm",
    "nccl",
    "netdev",
    "cpu",
    "collectives",
    "steps",
    "windows",
)
FRAME_STREAMS = ("nvsmi", "dcgm", "nccl", "nccl_inits", "netdev", "cpu", "collectives", "steps")
_SINGLE_FILES: dict[str, tuple[str, Callable[[Path], pl.DataFrame]]] = {
    "nvsmi": ("nvsmi.csv", read_nvsmi),
    "dcgm": ("dcgm.csv", read_dcgm),
    "netdev": ("netdev.log", read_netdev),
    "cpu": ("cpu.csv", read_cpu),
}
_RANKED = re.compile(r"^(?P<stem>steps|collectives)(?:_rank(?P<rank>\d+))?\.jsonl$")


@dataclass(frozen=True)
class Phase:
    """One labelled phase: name, what the prover claims it is, and its time range.

    ``t1`` is None for a phase whose end event is missing (the run was cut short).
    ``truth`` is for scoring only.
    """

    name: str
    claimed: str | None
    t0: float
    t1: float | None
    truth: str | None = None

    def contains(self, t: pl.Expr) -> pl.Expr:
        upper = math.inf if self.t1 is None else self.t1
        return (t >= self.t0) & (t <= upper)


@dataclass
class RunDir:
    """All streams of one run (None when absent); see the module docstring for layouts."""

    path: Path
    layout: str
    hosts: list[str] = field(default_factory=list)
    labels: pl.DataFrame | None = None
    provenance_by_host: dict[str, dict[str, Any]] = field(default_factory=dict)
    nvsmi: pl.DataFrame | None = None
    dcgm: pl.DataFrame | None = None
    nccl: pl.DataFrame | None = None
    nccl_inits: pl.DataFrame | None = None
    netdev: pl.DataFrame | None = None
    cpu: pl.DataFrame | None = None
    collectives: pl.DataFrame | None = None
    step_files: dict[str, Path] = field(default_factory=dict)  # file name -> path, in load order
    window_file: Path | None = None  # windows.jsonl: read whole on first use of ``windows``
    _step_cache: tuple[dict[str, StepLog], pl.DataFrame | None] | None = field(
        default=None, init=False, repr=False, compare=False
    )
    _window_cache: Trace | None = field(default=None, init=False, repr=False, compare=False)

    @property
    def windows(self) -> Trace | None:
        """The window records read whole (on first use: verify streams them instead)."""
        if self.window_file is not None and self._window_cache is None:
            self._window_cache = read_trace(self.window_file)
        return self._window_cache

    @property
    def step_logs(self) -> dict[str, StepLog]:
        """Every step file read whole (on first use: verify streams them instead)."""
        return self._loaded_steps()[0]

    @property
    def steps(self) -> pl.DataFrame | None:
        """All step records as one flat frame (on first use), None without any."""
        return self._loaded_steps()[1]

    def _loaded_steps(self) -> tuple[dict[str, StepLog], pl.DataFrame | None]:
        if self._step_cache is None:
            logs = {name: read_steps(path) for name, path in self.step_files.items()}
            self._step_cache = (logs, _concat([log.frame for log in logs.values() if log.frame.height]))
        return self._step_cache

    def has(self, name: str) -> bool:
        """Whether the run has stream ``name``, without reading step records whole."""
        if name == "steps" and self._step_cache is None:
            return any(has_records(p) for p in self.step_files.values())
        if name == "windows":  # a file without records fails to read: it is not "absent"
            return self.window_file is not None
        return self.stream(name) is not None

    @property
    def provenance(self) -> dict[str, Any] | None:
        """The run's provenance: the one file, or ``{"hosts": {host: ...}}`` for several."""
        if not self.provenance_by_host:
            return None
        if len(self.provenance_by_host) == 1:
            return next(iter(self.provenance_by_host.values()))
        return {"hosts": dict(self.provenance_by_host)}

    @property
    def missing_streams(self) -> list[str]:
        """Streams of ``STREAMS`` this run does not have (a verifier reports, not guesses)."""
        return [s for s in STREAMS if not self.has(s)]

    def stream(self, name: str) -> Any:
        if name not in STREAMS and name not in FRAME_STREAMS:
            raise InputError(f"unknown stream {name!r}; known: {', '.join(STREAMS)}")
        return self.provenance if name == "provenance" else getattr(self, name)

    def phases(self) -> list[Phase]:
        """Phases in time order, from the start/end label events (empty without labels)."""
        return [] if self.labels is None else phases_from_labels(self.labels)

    def slice(self, stream: str, phase: str | Phase) -> pl.DataFrame | None:
        """Rows of ``stream`` during ``phase`` (a name, or one Phase of ``phases()``).

        Per-phase files (layout *phases*) are selected by their directory; other streams
        by ``t`` within the labelled range (rows without a time are left out).
        """
        if stream not in FRAME_STREAMS:
            raise InputError(f"cannot slice {stream!r}; sliceable: {', '.join(FRAME_STREAMS)}")
        frame = getattr(self, stream)
        if frame is None:
            return None
        name = phase.name if isinstance(phase, Phase) else phase
        if "phase_dir" in frame.columns:
            return frame.filter(pl.col("phase_dir") == name)
        ranges = [phase] if isinstance(phase, Phase) else [p for p in self.phases() if p.name == name]
        if not ranges:
            raise InputError(f"no phase named {name!r} in the labels", self.path)
        if "t" not in frame.columns:
            return frame.clear()
        mask = pl.any_horizontal([p.contains(pl.col("t")) for p in ranges])
        return frame.filter(mask.fill_null(False))


def phases_from_labels(labels: pl.DataFrame) -> list[Phase]:
    """Pair each ``start`` with the next ``end`` of the same phase (per host when labels
    come from several hosts), then merge one phase's overlapping host ranges."""
    open_: dict[tuple[Any, str], dict[str, Any]] = {}
    done: list[Phase] = []
    for row in labels.sort("t", maintain_order=True).iter_rows(named=True):
        key = (row.get("host"), row["phase"])
        if row["event"] == "start":
            if key in open_:
                done.append(_phase(open_.pop(key), row["t"]))
            open_[key] = row
        elif key in open_:
            done.append(_phase(open_.pop(key), row["t"], row))
    done.extend(_phase(start, None) for start in open_.values())
    return sorted(_merge_overlaps(done), key=lambda p: p.t0)


def _merge_overlaps(phases: list[Phase]) -> list[Phase]:
    merged: list[Phase] = []
    for p in sorted(phases, key=lambda p: (p.name, p.t0)):
        last = merged[-1] if merged else None
        if last is not None and last.name == p.name and (last.t1 is None or p.t0 <= last.t1):
            t1 = None if last.t1 is None or p.t1 is None else max(last.t1, p.t1)
            merged[-1] = Phase(last.name, last.claimed, last.t0, t1, last.truth)
        else:
            merged.append(p)
    return merged


def _phase(start: dict[str, Any], t1: float | None, end: dict[str, Any] | None = None) -> Phase:
    claimed = start["claimed"] if start["claimed"] is not None else (end or {}).get("claimed")
    truth = start["truth"] if start["truth"] is not None else (end or {}).get("truth")
    return Phase(start["phase"], claimed, start["t"], t1, truth)


# --------------------------------------------------------------------------- loading


def _read_json(path: Path) -> dict[str, Any]:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise InputError(f"cannot read JSON ({exc})", path) from None
    if not isinstance(obj, dict):
        raise InputError("expected a JSON object", path)
    return obj


def _concat(frames: list[pl.DataFrame]) -> pl.DataFrame | None:
    frames = [f for f in frames if f is not None]
    return pl.concat(frames, how="diagonal_relaxed") if frames else None


def _tag(frame: pl.DataFrame, **columns: str | None) -> pl.DataFrame:
    """Add provenance columns (host, phase_dir, file) that the file's location implies."""
    return frame.with_columns(
        [pl.lit(v, dtype=pl.Utf8).alias(k) for k, v in columns.items() if v is not None]
    )


def _load_stream_dir(directory: Path, **tags: str | None) -> dict[str, Any]:
    """Every stream file found directly in ``directory``, tagged with ``tags``."""
    found: dict[str, list[Any]] = {}
    for stream, (name, reader) in _SINGLE_FILES.items():
        if (directory / name).is_file():
            found.setdefault(stream, []).append(_tag(reader(directory / name), **tags))
    for path in sorted(directory.glob("nccl_*.log*")):
        log = read_nccl_log(path)
        found.setdefault("nccl", []).append(_tag(log.collectives, file=path.name, **tags))
        found.setdefault("nccl_inits", []).append(_tag(log.inits, file=path.name, **tags))
    for path in sorted(directory.iterdir()):
        match = _RANKED.match(path.name)
        if match and match["stem"] == "collectives":
            found.setdefault("collectives", []).append(_tag(read_collectives(path), **tags))
        elif match:
            found.setdefault("step_files", []).append(path)
    return found


def _assign(run: RunDir, found: dict[str, list[Any]]) -> None:
    for stream, items in found.items():
        if stream == "step_files":  # read when asked for (``RunDir.steps``) or streamed
            run.step_files.update({path.name: path for path in items})
        else:
            setattr(run, stream, _concat(items))


def _host_dirs(path: Path) -> list[Path]:
    """Host directories of a *phases* capture: the path itself, or its children with phases/."""
    if (path / "phases").is_dir():
        return [path]
    return sorted(d for d in path.iterdir() if d.is_dir() and (d / "phases").is_dir())


def load_run(path: Path | str) -> RunDir:
    """Load a run directory of either layout; absent streams stay None."""
    path = Path(path)
    if not path.is_dir():
        raise InputError("not a run directory", path)
    hosts = _host_dirs(path)
    run = RunDir(path=path, layout="phases" if hosts else "flat")
    if hosts:
        _load_phases_layout(run, hosts)
    else:
        _load_flat_layout(run)
    if len(run.missing_streams) == len(STREAMS):
        raise InputError("no run streams found (neither flat files nor phases/ directories)", path)
    return run


def _load_flat_layout(run: RunDir) -> None:
    path = run.path
    _assign(run, _load_stream_dir(path))
    if (path / "workload_labels.jsonl").is_file():
        run.labels = read_labels(path / "workload_labels.jsonl")
    if (path / "provenance.json").is_file():
        run.provenance_by_host[""] = _read_json(path / "provenance.json")
    if (path / "windows.jsonl").is_file():
        run.window_file = path / "windows.jsonl"


def _load_phases_layout(run: RunDir, hosts: list[Path]) -> None:
    multi = len(hosts) > 1 or hosts[0] != run.path
    found: dict[str, list[Any]] = {}
    labels: list[pl.DataFrame] = []
    for host_dir in hosts:
        host = host_dir.name
        run.hosts.append(host)
        for phase_dir in sorted(d for d in (host_dir / "phases").iterdir() if d.is_dir()):
            for stream, items in _load_stream_dir(phase_dir, host=host, phase_dir=phase_dir.name).items():
                found.setdefault(stream, []).extend(items)
        if (host_dir / "workload_labels.jsonl").is_file():
            labels.append(_tag(read_labels(host_dir / "workload_labels.jsonl"), host=host if multi else None))
        if (host_dir / "provenance.json").is_file():
            run.provenance_by_host[host] = _read_json(host_dir / "provenance.json")
    if multi and (run.path / "workload_labels.jsonl").is_file():
        labels.append(read_labels(run.path / "workload_labels.jsonl"))
    if multi and (run.path / "provenance.json").is_file():
        run.provenance_by_host[""] = _read_json(run.path / "provenance.json")
    _assign(run, found)
    run.labels = _concat(labels)
