"""Seed-schema window records from what each rank actually processed.

Each rank tallies the tokens its steps finished in each window of a grid anchored at the
run's start (so windows of different ranks line up); at the end of a phase rank 0 turns
the tallies into one record per chip per window, clipped to the phase, and appends them
to ``windows.jsonl`` through the hash-chained writer. The tokens are real; everything
the prover asserts (op type, FLOPs per token, model hash, dataset) is the *claimed*
workload's, as a lying prover would write it. No torch here.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inspectorate.trace import canonical_json


def iso_z(t: float) -> str:
    """Epoch seconds as ISO 8601 UTC with microseconds and a ``Z``."""
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def short_hash(obj: Any) -> str:
    """``sha256:<16 hex>`` of an object's canonical JSON (config hashes, job ids)."""
    return "sha256:" + hashlib.sha256(canonical_json(obj).encode()).hexdigest()[:16]


@dataclass
class WindowTally:
    """Tokens finished per window index, for one rank; cheap enough to call every step."""

    grid_t0: float
    window_s: float
    tokens: dict[int, int] = field(default_factory=dict)
    steps: dict[int, int] = field(default_factory=dict)

    def index(self, t: float) -> int:
        return math.floor((t - self.grid_t0) / self.window_s)

    def add(self, tokens: int, t: float | None = None) -> None:
        idx = self.index(time.time() if t is None else t)
        self.tokens[idx] = self.tokens.get(idx, 0) + int(tokens)
        self.steps[idx] = self.steps.get(idx, 0) + 1

    def save(self, path: Path) -> None:
        data = {
            "tokens": {str(k): v for k, v in self.tokens.items()},
            "steps": {str(k): v for k, v in self.steps.items()},
        }
        path.write_text(json.dumps(data), encoding="utf-8")

    @classmethod
    def load(cls, path: Path, grid_t0: float, window_s: float) -> WindowTally:
        data = json.loads(path.read_text(encoding="utf-8"))
        return cls(
            grid_t0,
            window_s,
            {int(k): v for k, v in data["tokens"].items()},
            {int(k): v for k, v in data["steps"].items()},
        )


@dataclass(frozen=True)
class WindowClaim:
    """The fields a prover asserts for every window of one phase on one host."""

    job_id: str
    operator: str
    cluster_region: str
    op_type: str
    flops_per_token: float
    batch_size: int
    sequence_length: int
    model_hash_prefix: str
    dataset_fingerprint: str
    data_source_tags: tuple[str, ...]
    code_commit: str
    config_hash: str


def window_bounds(
    t_start: float, t_end: float, grid_t0: float, window_s: float
) -> list[tuple[int, float, float]]:
    """(index, start, end) of every grid window overlapping [t_start, t_end], clipped to it."""
    first = math.floor((t_start - grid_t0) / window_s)
    last = max(first, math.ceil((t_end - grid_t0) / window_s) - 1)
    out = []
    for idx in range(first, last + 1):
        lo = max(grid_t0 + idx * window_s, t_start)
        hi = min(grid_t0 + (idx + 1) * window_s, t_end)
        if hi > lo or idx == first:
            out.append((idx, lo, max(hi, lo)))
    return out


def _clamped_tokens(tally: WindowTally, indices: list[int]) -> dict[int, int]:
    """Tokens per window; steps that finished just outside the phase fold into its edge windows."""
    lo, hi = indices[0], indices[-1]
    out = {i: 0 for i in indices}
    for idx, n in tally.tokens.items():
        out[min(max(idx, lo), hi)] += n
    return out


def window_records(
    claim: WindowClaim,
    chips: Iterable[str],
    tallies: list[WindowTally],
    t_start: float,
    t_end: float,
    *,
    grid_t0: float,
    window_s: float,
) -> list[dict[str, Any]]:
    """Records (without record_id/prev_record_hash/upstream_refs) for one phase, chip-major.

    ``tallies[i]`` belongs to the i-th chip; an idle claim writes zero flops.
    """
    bounds = window_bounds(t_start, t_end, grid_t0, window_s)
    indices = [b[0] for b in bounds]
    records = []
    for chip, tally in zip(chips, tallies):
        tokens = _clamped_tokens(tally, indices)
        for idx, lo, hi in bounds:
            n = tokens[idx]
            records.append(
                {
                    "chip_id": chip,
                    "job_id": claim.job_id,
                    "operator": claim.operator,
                    "cluster_region": claim.cluster_region,
                    "window_start": iso_z(lo),
                    "window_end": iso_z(hi),
                    "op_type": claim.op_type,
                    "flops": 0.0 if claim.op_type == "idle" else float(claim.flops_per_token * n),
                    "tokens_processed": n,
                    "batch_size": claim.batch_size,
                    "sequence_length": claim.sequence_length,
                    "model_hash_prefix": claim.model_hash_prefix,
                    "dataset_fingerprint": claim.dataset_fingerprint,
                    "data_source_tags": list(claim.data_source_tags),
                    "code_commit": claim.code_commit,
                    "config_hash": claim.config_hash,
                }
            )
    return records


def append_windows(writer: Any, records: list[dict[str, Any]], id_prefix: str) -> list[dict[str, Any]]:
    """Append records to a ChainWriter; ``upstream_refs`` = the job's previous record id."""
    stored: list[dict[str, Any]] = []
    last_by_job: dict[str, str] = {}
    for record in records:
        prev = last_by_job.get(record["job_id"])
        out = writer.append({**record, "upstream_refs": [prev] if prev else []}, id_prefix=id_prefix)
        last_by_job[record["job_id"]] = out["record_id"]
        stored.append(out)
    return stored
