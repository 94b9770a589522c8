"""Synthetic cluster traces for tests and benchmarks (``inspectorate trace generate``).

A generated trace is a seed-schema window trace of ``chips`` chips over ``hours``,
one record per chip per window, hash-chained. Scenarios are honest workloads, or an
honest workload with one injected violation, so tests know the right answer. FLOPs
follow 6·N·D (training) or 2·N·D (inference/eval) for a declared model size, with
per-window noise in throughput.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl

from inspectorate.errors import InputError
from inspectorate.trace._canonical import GENESIS
from inspectorate.trace._fastchain import canonical_lines
from inspectorate.trace._frame import FRAME_SCHEMA, with_derived
from inspectorate.trace._scenarios import HONEST, INJECTED, SCENARIOS  # noqa: F401  (re-exported)
from inspectorate.trace._schema import parse_time
from inspectorate.trace._trace import Trace

# The shipped commitment (commitments/, by id) each injected scenario violates at the
# demo's size (8 chips x 2 h, the defaults of ``inspectorate demo``); a test holds every
# pair. over_cap crosses demo-training-cap's caps: no generated run can reach the
# frontier cap's 1e25 FLOP, so for another cap pass ``--cap`` (GenSpec.cap).
SCENARIO_COMMITMENT = {
    "over_cap": "demo-training-cap",
    "relabel_training": "demo-training-cap",
    "idle_work": "frontier-training-cap",
    "forbidden_tag": "frontier-training-cap",
    "dropped_windows": "frontier-training-cap",
    "fragmented_jobs": "frontier-training-cap",
    "tampered": "frontier-training-cap",
}
OVER_CAP_MARGIN = 1.25  # with --cap, the run's total is this much over the cap


@dataclass(frozen=True)
class GenSpec:
    chips: int = 8
    hours: float = 1.0
    scenario: str = "training"
    window_seconds: int = 60
    seed: int = 0
    start: str = "2026-04-24T09:00:00Z"
    params: float = 7e9  # declared model size N
    peak_flops: float = 989e12  # H100 dense BF16
    mfu: float = 0.4
    cap: float | None = None  # over_cap: a per-job FLOP cap the run must cross

    @property
    def windows(self) -> int:
        return max(int(round(self.hours * 3600 / self.window_seconds)), 1)

    @property
    def records(self) -> int:
        return self.windows * self.chips


def _h(text: str) -> str:
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]


def _columns(spec: GenSpec, lo: int, hi: int) -> dict[str, Any]:
    """Columns for records ``lo..hi`` (ordered window-major, then chip)."""
    rng = np.random.default_rng([spec.seed, lo])
    index = np.arange(lo, hi)
    window, chip = index // spec.chips, index % spec.chips
    t0 = parse_time(spec.start)
    starts = t0 + window * spec.window_seconds
    op = _op_types(spec, chip)
    factor = np.where(op == "training", 6.0, 2.0)
    flops_per_window = spec.peak_flops * spec.mfu * spec.window_seconds * rng.uniform(0.9, 1.1, hi - lo)
    tokens = np.floor(flops_per_window / (factor * spec.params)).astype(np.int64)
    flops = tokens * factor * spec.params * rng.uniform(0.98, 1.02, hi - lo)
    idle = op == "idle"
    tokens[idle], flops[idle] = 0, 0.0
    job = np.where(op == "training", "job-train-0001", np.where(op == "idle", "job-idle", "job-serve-0001"))
    return {
        "record_id": _ids(index),
        "prev_record_hash": [GENESIS] * (hi - lo),
        "chip_id": [f"gpu-gen-{c:05d}" for c in chip],
        "job_id": job.tolist(),
        "operator": np.where(op == "training", "lab-pretrain", "lab-serving").tolist(),
        "cluster_region": ["gen-west-1"] * (hi - lo),
        "window_start": _times(starts),
        "window_end": _times(starts + spec.window_seconds),
        "op_type": op.tolist(),
        "flops": flops,
        "tokens_processed": tokens,
        "batch_size": np.where(idle, 0, 8),
        "sequence_length": np.where(idle, 0, 4096),
        "model_hash_prefix": np.where(op == "training", _h("train-model"), _h("serve-model")).tolist(),
        "dataset_fingerprint": np.where(op == "training", _h("pretrain-data"), _h("user-requests")).tolist(),
        "upstream_refs": _refs(window, chip, op),
        "data_source_tags": _repeated_list("corpus:web-filtered", hi - lo),
        "code_commit": ["git:lab/train@0a1b2c3"] * (hi - lo),
        "config_hash": [_h("config-v1")] * (hi - lo),
        "_extra": [None] * (hi - lo),
    }


def _repeated_list(value: str, n: int) -> pl.Series:
    """``[[value]] * n`` as a list column, built by Polars (from Python lists it costs
    ~50 µs a row, most of the generator's time)."""
    return pl.select(pl.concat_list(pl.lit(value, dtype=pl.Utf8).repeat_by(n).explode())).to_series()


def _ids(index: np.ndarray) -> pl.Series:
    return "rec_" + pl.Series(index).cast(pl.Utf8).str.zfill(10)


def _times(epochs: np.ndarray) -> pl.Series:
    """Whole-second epochs -> the seed's ``YYYY-MM-DDTHH:MM:SSZ`` strings, vectorised."""
    moments = pl.Series(np.asarray(epochs * 1e6, dtype=np.int64)).cast(pl.Datetime("us", "UTC"))
    return moments.dt.strftime("%Y-%m-%dT%H:%M:%SZ")


def _refs(window: np.ndarray, chip: np.ndarray, op: np.ndarray) -> pl.Series:
    """Each record references the previous record of its job in file order (the seed's
    convention: one lineage root per job). Jobs are fixed per chip, so the previous
    record is the job's previous chip in this window, or its last chip in the last one."""
    chips = int(chip.max()) + 1 if chip.size else 0
    job_of = {int(c): o for c, o in zip(chip, op)}
    prev_chip, seen = np.full(chips, -1), dict[object, int]()
    for c in range(chips):
        job = job_of.get(c)
        prev_chip[c] = seen.get(job, -1)
        seen[job] = c
    last_chip = np.array([seen.get(job_of.get(c), -1) for c in range(chips)])
    same_window = prev_chip[chip] >= 0
    target = np.where(same_window, window * chips + prev_chip[chip], (window - 1) * chips + last_chip[chip])
    has_ref = same_window | (window > 0)
    ids = _ids(np.maximum(target, 0))
    return pl.select(
        pl.when(pl.Series(has_ref)).then(pl.concat_list(ids)).otherwise(pl.lit([], dtype=pl.List(pl.Utf8)))
    ).to_series()


def _op_types(spec: GenSpec, chip: np.ndarray) -> np.ndarray:
    if spec.scenario == "inference":
        return np.full(chip.size, "inference", dtype=object)
    if spec.scenario == "mixed":
        quarter = max(spec.chips // 4, 1)
        return np.select([chip < 2 * quarter, chip < 3 * quarter], ["training", "inference"], "idle").astype(
            object
        )
    return np.full(chip.size, "training", dtype=object)


def _inject(frame: pl.DataFrame, spec: GenSpec, lo: int) -> pl.DataFrame:
    """Apply the scenario's violation to the rows of one chunk (deterministic rows)."""
    row = pl.int_range(pl.len()) + lo
    target = (row % 97) == 13  # a sparse, spread-out set of records
    s = spec.scenario
    if s == "over_cap":  # the same run at more compute (twice by default: ~80% MFU), still physical
        return frame.with_columns(pl.col("flops") * over_cap_factor(spec))
    if s == "relabel_training":
        return frame.with_columns(
            pl.when(target).then(pl.lit("inference")).otherwise(pl.col("op_type")).alias("op_type")
        )
    if s == "idle_work":
        return frame.with_columns(
            pl.when(target).then(pl.lit("idle")).otherwise(pl.col("op_type")).alias("op_type")
        )
    if s == "forbidden_tag":
        return frame.with_columns(
            pl.when(target)
            .then(pl.lit(["corpus:cbrn-synthesis"]))
            .otherwise(pl.col("data_source_tags"))
            .alias("data_source_tags")
        )
    if s == "fragmented_jobs":
        return frame.with_columns(
            pl.when(pl.col("chip_id").str.ends_with("1"))
            .then(pl.lit("job-train-0002"))
            .otherwise(pl.col("job_id"))
            .alias("job_id")
        )
    return frame


def over_cap_factor(spec: GenSpec) -> float:
    """How much over its honest compute the over_cap run claims: twice, or, given
    ``spec.cap``, so much that its total is OVER_CAP_MARGIN x the cap (never less than
    the honest run). The FLOP claims stay within the chips' peak (MFU at most 1): a cap
    the run cannot cross physically is bad input."""
    if spec.cap is None:
        return 2.0
    if not spec.cap > 0:
        raise InputError(f"must be a positive FLOP count, got {spec.cap!r}", "--cap")
    honest = spec.records * spec.peak_flops * spec.mfu * spec.window_seconds  # expected total
    factor = max(1.0, OVER_CAP_MARGIN * spec.cap / honest)
    if factor * spec.mfu > 1.0:
        chip_hours = OVER_CAP_MARGIN * spec.cap / (spec.peak_flops * 3600)
        raise InputError(
            f"{spec.chips} chips x {spec.hours:g} h cannot cross {spec.cap:.3g} FLOP within the "
            f"chips' peak ({spec.peak_flops:.3g} FLOP/s); it needs about {chip_hours:.3g} chip-hours "
            "(raise --chips or --hours)",
            "--cap",
        )
    return factor


def iter_generated(spec: GenSpec, chunk: int = 250_000) -> Iterator[pl.DataFrame]:
    """Chained frames of at most ``chunk`` rows, in order (bounded memory)."""
    if spec.scenario not in SCENARIOS:
        raise InputError(f"unknown scenario {spec.scenario!r}; known: {', '.join(SCENARIOS)}")
    if spec.cap is not None and spec.scenario != "over_cap":
        raise InputError(f"applies to --scenario over_cap only, not {spec.scenario!r}", "--cap")
    if spec.scenario == "over_cap":
        over_cap_factor(spec)  # bad --cap fails before anything is written
    prev = GENESIS
    total = spec.records
    for lo in range(0, total, chunk):
        frame = _inject(
            pl.DataFrame(_columns(spec, lo, min(lo + chunk, total)), schema=FRAME_SCHEMA), spec, lo
        )
        if spec.scenario == "dropped_windows":
            frame = frame.filter((pl.int_range(pl.len()) + lo) % 50 != 7)
        frame, prev = _chain(frame, prev)
        if spec.scenario == "tampered" and lo == 0 and frame.height > 3:
            frame = frame.with_columns(
                pl.when(pl.int_range(pl.len()) == 2)
                .then(pl.col("flops") / 2)
                .otherwise(pl.col("flops"))
                .alias("flops")
            )
        yield frame


def _chain(frame: pl.DataFrame, prev: str) -> tuple[pl.DataFrame, str]:
    """Fill prev_record_hash sequentially; the canonical text is built once, column-wise."""
    marker = '"prev_record_hash":"'
    hashes = []
    sha = hashlib.sha256
    for line in canonical_lines(frame):
        cut = line.index(marker) + len(marker)
        hashes.append(prev)
        prev = sha((line[:cut] + prev + line[cut + 64 :]).encode()).hexdigest()
    return frame.with_columns(pl.Series("prev_record_hash", hashes, dtype=pl.Utf8)), prev


def generate_trace(spec: GenSpec) -> Trace:
    """The whole generated trace in memory (use ``iter_generated`` for large ones)."""
    frame = pl.concat(list(iter_generated(spec)))
    # the head the generator publishes (write_generated's sidecar), so a trace made in
    # memory is pinned like one read back from disk
    return Trace(with_derived(frame), None, f"<generated {spec.scenario}>", head=_tip(frame))


def _tip(frame: pl.DataFrame) -> str:
    """The hash of the last record: the chain head to publish."""
    from inspectorate.trace._canonical import record_hash
    from inspectorate.trace._frame import records_from_frame

    return record_hash(records_from_frame(frame.tail(1))[0])


def write_generated(spec: GenSpec, path: str | Path) -> int:
    """Stream a generated trace to ``.jsonl[.gz]`` or ``.parquet``; returns the record count."""
    import gzip
    import json

    import pyarrow.parquet as pq

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    count, last = 0, None
    if path.suffix == ".parquet":
        writer: pq.ParquetWriter | None = None
        for frame in iter_generated(spec):
            table = frame.to_arrow()
            writer = writer or pq.ParquetWriter(path, table.schema, compression="zstd")
            writer.write_table(table)
            count, last = count + frame.height, frame.tail(1)
        if writer is not None:
            writer.close()
    else:
        opener = gzip.open if path.name.endswith(".gz") else open
        with opener(path, "wt", encoding="utf-8") as handle:
            for frame in iter_generated(spec):
                handle.write("\n".join(canonical_lines(frame)) + "\n")
                count, last = count + frame.height, frame.tail(1)
    if last is None:
        raise InputError("the generator produced no records (check --hours and --window-seconds)")
    head = _tip(last)
    sidecar = path.with_name(path.name + ".head.json")
    sidecar.write_text(json.dumps({"head": head, "records": count, "schema": "inspectorate.window/1"}) + "\n")
    return count
