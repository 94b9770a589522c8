"""Attacks on run directories: the telemetry layer a prover controls less, tampered anyway.

Each attack copies a flat run dir (workload_labels.jsonl, provenance.json, cpu.csv,
netdev.log, collectives.jsonl, steps.jsonl, windows.jsonl, nvsmi.csv) to a new dir and
edits files there; the source is never touched. Chained files (steps.jsonl,
windows.jsonl) are re-chained so the hash chain is never the cheap catch. The seed's
H100 write-up names the cross-checks these attacks aim at: NCCL collectives fire on
every training step and never during inference, and NIC counters agree with the
collective log, "so a tampered NCCL log is detectable from the orthogonal streams";
``tamper_netdev`` is the attacker's answer to that sentence.
"""

from __future__ import annotations

import csv
import io
import json
import random
import shutil
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any, Protocol, TypeVar

from inspectorate._plugins import Registry
from inspectorate.errors import InputError, PluginError
from inspectorate.trace import canonical_json, rechain

RundirFn = Callable[..., None]


class RundirAttackFunction(Protocol):
    """What ``@rundir_attack`` registers: ``fn(run_dir, rng, **params)`` edits the copy
    of a run directory at ``run_dir`` in place (the source is never handed to it)."""

    def __call__(self, run_dir: Path, rng: random.Random, /, *args: Any, **params: Any) -> None: ...


RdFn = TypeVar("RdFn", bound=RundirAttackFunction)


@dataclass(frozen=True)
class RundirAttack:
    """A registered run-dir attack: ``fn(dst, rng, **params)`` edits the copy ``dst``."""

    name: str
    fn: RundirFn
    intent: str
    targets: tuple[str, ...]

    def __call__(
        self, src: str | Path, dst: str | Path, rng: random.Random | int | None = None, **params: Any
    ) -> Path:
        src, dst = Path(src), Path(dst)
        if not src.is_dir() or not (src / "workload_labels.jsonl").exists():
            raise InputError("not a run directory (no workload_labels.jsonl)", src)
        if dst.exists():
            raise InputError("destination already exists; attacks never overwrite", dst)
        shutil.copytree(src, dst)
        gen = rng if isinstance(rng, random.Random) else random.Random(rng)
        self.fn(dst, gen, **params)
        return dst


RUNDIR_ATTACKS: Registry[RundirAttack] = Registry(
    "run-dir attack",
    "inspectorate.rundir_attacks",
    ("inspectorate.attacks._rundir_attacks",),
    positional=("run_dir", "rng"),
)


def rundir_attack(name: str, *, intent: str, targets: list[str]) -> Callable[[RdFn], RdFn]:
    """Register ``fn(run_dir, rng, **params)`` as run-directory attack ``name``."""

    def register(fn: RdFn) -> RdFn:
        RUNDIR_ATTACKS.check(name, fn)
        if not isinstance(intent, str) or not intent.strip():
            raise PluginError(f"run-dir attack {name!r}: intent must say what it hides, got {intent!r}")
        if isinstance(targets, str) or not all(isinstance(t, str) for t in targets):
            raise PluginError(f"run-dir attack {name!r}: targets must be a list of names, got {targets!r}")
        RUNDIR_ATTACKS.add(name, RundirAttack(name, fn, intent, tuple(targets)), fn)
        return fn

    return register


def get_rundir_attack(name: str) -> RundirAttack:
    """The registered run-dir attack called ``name``; InputError lists the known ones."""
    return RUNDIR_ATTACKS.get(name)


# --- file helpers -------------------------------------------------------------------


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def write_jsonl(path: Path, rows: list[dict[str, Any]], chained: bool = False) -> None:
    rows = rechain(rows) if chained else rows
    text = "".join(
        (canonical_json(r) if chained else json.dumps(r, separators=(",", ":"))) + "\n" for r in rows
    )
    path.write_text(text, encoding="utf-8")


def phases(run: Path) -> dict[str, dict[str, Any]]:
    """phase -> {claimed, start, end} from the label events (``truth`` is never read)."""
    out: dict[str, dict[str, Any]] = {}
    for event in read_jsonl(run / "workload_labels.jsonl"):
        entry = out.setdefault(event["phase"], {"claimed": event["claimed"], "start": None, "end": None})
        entry["start" if event["event"] == "start" else "end"] = float(event["t"])
    return out


def _phase_of(t: float, spans: dict[str, dict[str, Any]]) -> str | None:
    for name, span in spans.items():
        if span["start"] is not None and span["end"] is not None and span["start"] <= t <= span["end"]:
            return name
    return None


def _read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    rows = list(csv.reader(io.StringIO(path.read_text(encoding="utf-8"))))
    return rows[0], rows[1:]


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows([header, *rows])
    path.write_text(buf.getvalue(), encoding="utf-8")


def _csv_time(cell: str) -> float:
    """cpu.csv uses epoch seconds; nvsmi.csv uses ``YYYY/MM/DD HH:MM:SS.mmm`` (UTC)."""
    try:
        return float(cell)
    except ValueError:
        from datetime import datetime

        return datetime.strptime(cell.strip(), "%Y/%m/%d %H:%M:%S.%f").replace(tzinfo=UTC).timestamp()


# --- attacks ------------------------------------------------------------------------


def _claimed(spans: dict[str, dict[str, Any]], label: str) -> list[str]:
    return [name for name, span in spans.items() if span["claimed"] == label]


@rundir_attack(
    "forge_collectives",
    intent="fake all-reduces logged during inference phases, "
    "so claimed DDP training seems to happen where it did not",
    targets=["collectives-vs-label", "collectives-vs-netdev"],
)
def forge_collectives(
    run: Path, rng: random.Random, phase: str | None = None, period_s: float = 0.5, nbytes: int = 4 * 2**20
) -> None:
    """Insert one all-reduce every ``period_s`` across ``phase`` (default: every phase
    claimed as inference), shaped like the real ones (rank, world size, dtype)."""
    spans = phases(run)
    rows = read_jsonl(run / "collectives.jsonl")
    like = rows[0] if rows else {"rank": 0, "world_size": 2, "dtype": "float32", "op": "allreduce"}
    for name in [phase] if phase else _claimed(spans, "inference"):
        t = spans[name]["start"] + period_s / 2
        while t < spans[name]["end"]:
            rows.append(
                {
                    "t": t,
                    "rank": like["rank"],
                    "world_size": like["world_size"],
                    "op": "allreduce",
                    "bytes": nbytes,
                    "duration_s": rng.uniform(0.001, 0.003),
                    "dtype": like["dtype"],
                    "phase": name,
                }
            )
            t += period_s
    write_jsonl(run / "collectives.jsonl", sorted(rows, key=lambda r: r["t"]))


@rundir_attack(
    "subset_collectives",
    intent="most all-reduces of a training phase removed, so it reads as inference",
    targets=["collectives-vs-label"],
)
def subset_collectives(run: Path, rng: random.Random, phase: str | None = None, keep: float = 0.05) -> None:
    """Keep only ``keep`` of the collectives inside ``phase`` (default: phases claimed as
    something other than training that nevertheless logged collectives)."""
    spans = phases(run)
    rows = read_jsonl(run / "collectives.jsonl")
    targets = [phase] if phase else [n for n, s in spans.items() if s["claimed"] != "training"]
    kept = [r for r in rows if _phase_of(r["t"], spans) not in targets or rng.random() < keep]
    write_jsonl(run / "collectives.jsonl", kept)


@rundir_attack(
    "swap_labels",
    intent="claimed labels of phases changed (training claimed as inference)",
    targets=["label-vs-telemetry"],
)
def swap_labels(run: Path, rng: random.Random, phase: str | None = None, claimed: str = "inference") -> None:
    """Rewrite the ``claimed`` label of ``phase`` (default: every phase claimed as training)."""
    events = read_jsonl(run / "workload_labels.jsonl")
    spans = phases(run)
    names = [phase] if phase else _claimed(spans, "training")
    for event in events:
        if event["phase"] in names:
            event["claimed"] = claimed
    (run / "workload_labels.jsonl").write_text(
        "".join(json.dumps(e, sort_keys=True, separators=(",", ":")) + "\n" for e in events), encoding="utf-8"
    )


def _flatten(
    path: Path,
    columns: list[str],
    spans: dict[str, dict[str, Any]],
    hot: list[str],
    cold: list[str],
    rng: random.Random,
) -> None:
    header, rows = _read_csv(path)
    idx = [header.index(c) for c in columns if c in header]
    cold_rows = [r for r in rows if _phase_of(_csv_time(r[0]), spans) in cold]
    for col in idx:
        values = [float(r[col]) for r in cold_rows] or [0.0]
        level, spread = statistics.median(values), (statistics.pstdev(values) if len(values) > 1 else 0.0)
        for r in rows:
            if _phase_of(_csv_time(r[0]), spans) in hot:
                r[col] = f"{max(0.0, level + rng.gauss(0.0, spread)):.2f}"
    _write_csv(path, header, rows)


@rundir_attack(
    "smooth_utilization",
    intent="training-level utilization, power and CPU flattened to the "
    "inference level in phases claimed as inference",
    targets=["P1-op-type", "label-vs-telemetry"],
)
def smooth_utilization(run: Path, rng: random.Random, phase: str | None = None) -> None:
    """Replace GPU util/power/memory (nvsmi.csv) and CPU load (cpu.csv) of ``phase`` (default:
    phases claimed inference) by the median and spread of the other inference-claimed phases,
    or of idle phases when there are none."""
    spans = phases(run)
    hot = [phase] if phase else _claimed(spans, "inference")
    cold = [n for n in _claimed(spans, "inference") if n not in hot] or _claimed(spans, "idle")
    if (run / "nvsmi.csv").exists():
        _flatten(
            run / "nvsmi.csv",
            ["utilization.gpu", "utilization.memory", "memory.used", "power.draw"],
            spans,
            hot,
            cold,
            rng,
        )
    if (run / "cpu.csv").exists():
        _flatten(
            run / "cpu.csv", ["cpu_percent", "per_cpu_max", "proc_rss_mb", "load1"], spans, hot, cold, rng
        )


@rundir_attack(
    "delete_stream", intent="an incriminating stream removed from the run dir", targets=["missing_streams"]
)
def delete_stream(run: Path, rng: random.Random, stream: str = "collectives.jsonl") -> None:
    """Delete ``stream``: verifiers must report it missing rather than pass by default."""
    if "/" in stream or stream.startswith("."):
        raise InputError(f"stream must be a file name in the run dir, got {stream!r}")
    (run / stream).unlink(missing_ok=True)


def _netdev_snapshots(text: str) -> list[tuple[float, list[str]]]:
    out: list[tuple[float, list[str]]] = []
    for line in text.splitlines():
        if line.startswith("--- ") and line.endswith(" ---"):
            out.append((float(line[4:-4]), []))
        elif out:
            out[-1][1].append(line)
    return out


@rundir_attack(
    "tamper_netdev",
    intent="NIC counters rewritten to agree with the (forged) collective log",
    targets=["collectives-vs-netdev"],
)
def tamper_netdev(run: Path, rng: random.Random, iface: str | None = None, factor: float = 1.0) -> None:
    """Re-derive ``iface``'s rx/tx byte counters (default: the busiest non-loopback one)
    so each interval grows by ``factor`` × the bytes the collective log claims in it."""
    snaps = _netdev_snapshots((run / "netdev.log").read_text(encoding="utf-8"))
    if not snaps:
        return
    collectives = read_jsonl(run / "collectives.jsonl") if (run / "collectives.jsonl").exists() else []
    name = iface or _busiest(snaps)
    prev_t, rx, tx = snaps[0][0], *_counters(snaps[0][1], name)
    for t, lines in snaps[1:]:
        claimed = sum(c["bytes"] for c in collectives if prev_t < c["t"] <= t) * factor
        rx, tx, prev_t = rx + int(claimed), tx + int(claimed), t
        _set_counters(lines, name, rx, tx)
    body = "".join(f"--- {t:.3f} ---\n" + "".join(line + "\n" for line in lines) for t, lines in snaps)
    (run / "netdev.log").write_text(body, encoding="utf-8")


def _iface_fields(line: str) -> tuple[str, list[str]] | None:
    if ":" not in line or "|" in line:
        return None
    name, rest = line.split(":", 1)
    return name.strip(), rest.split()


def _counters(lines: list[str], name: str) -> tuple[int, int]:
    for line in lines:
        parsed = _iface_fields(line)
        if parsed and parsed[0] == name:
            return int(parsed[1][0]), int(parsed[1][8])
    raise InputError(f"netdev.log has no interface {name!r}")


def _set_counters(lines: list[str], name: str, rx: int, tx: int) -> None:
    for i, line in enumerate(lines):
        parsed = _iface_fields(line)
        if parsed and parsed[0] == name:
            fields = parsed[1]
            fields[0], fields[8] = str(rx), str(tx)
            lines[i] = f"{name:>6}: " + " ".join(f"{v:>8}" for v in fields)


def _busiest(snaps: list[tuple[float, list[str]]]) -> str:
    first, last = snaps[0][1], snaps[-1][1]
    names = [p[0] for p in map(_iface_fields, last) if p and p[0] != "lo"]
    if not names:
        return "lo"
    return max(names, key=lambda n: _counters(last, n)[1] - _counters(first, n)[1])


@rundir_attack(
    "relabel_steps",
    intent="train_step records rewritten as inference steps, chain recomputed",
    targets=["P1-op-type", "steps-vs-label"],
)
def relabel_steps(run: Path, rng: random.Random, phase: str | None = None, kind: str = "infer_token") -> None:
    """Turn ``train_step`` records of ``phase`` (default: phases claimed inference) into
    ``kind`` records, dropping the optimizer fields that would betray an update."""
    spans = phases(run)
    names = [phase] if phase else _claimed(spans, "inference")
    rows = read_jsonl(run / "steps.jsonl")
    for row in rows:
        if row.get("kind") == "train_step" and row.get("phase") in names:
            row["kind"] = kind
            for key in [k for k in row if "grad" in k or "optimizer" in k or k in ("lr", "backward_ms")]:
                del row[key]
    write_jsonl(run / "steps.jsonl", rows, chained=True)


@rundir_attack(
    "relabel_windows",
    intent="window records of a run dir relabelled (op_type), chain recomputed",
    targets=["aggregate_flop_cap", "windows-vs-telemetry"],
)
def relabel_windows(run: Path, rng: random.Random, to: str = "inference", only: str = "training") -> None:
    """Set op_type ``to`` on every ``only`` window record of windows.jsonl."""
    rows = read_jsonl(run / "windows.jsonl")
    for row in rows:
        if row.get("op_type") == only:
            row["op_type"] = to
    write_jsonl(run / "windows.jsonl", rows, chained=True)
