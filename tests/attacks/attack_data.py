"""The attack tests' data, importable by a name no other test folder uses (``from
attack_data import ...``: a bare ``conftest`` import resolves to whichever folder's
conftest pytest loaded last when several folders are collected together)."""

from __future__ import annotations

from typing import Any

from inspectorate.data import SEED_TRACES, seed_path
from inspectorate.trace import format_time, read_trace, rechain

SHARED_TRACES = [seed_path(name) for name in SEED_TRACES]
REFERENCE_COMMITMENT = seed_path("no_frontier_training.yml")
T0 = 1777021200.0  # 2026-04-24T09:00:00Z


def small_trace() -> list[dict[str, Any]]:
    """2 chips x 8 one-minute training windows, 2 idle windows, a 4-window inference job."""
    rows: list[dict[str, Any]] = []

    def add(chip: str, job: str, op: str, minute: int, flops: float, tokens: int) -> None:
        refs = [rows[-1]["record_id"]] if rows and rows[-1]["job_id"] == job else []
        rows.append(
            {
                "record_id": f"rec_{len(rows):04d}",
                "prev_record_hash": "",
                "chip_id": chip,
                "job_id": job,
                "operator": "lab-a",
                "cluster_region": "eu-1",
                "window_start": format_time(T0 + 60 * minute),
                "window_end": format_time(T0 + 60 * (minute + 1)),
                "op_type": op,
                "flops": flops,
                "tokens_processed": tokens,
                "batch_size": 4 if tokens else 0,
                "sequence_length": 2048,
                "model_hash_prefix": "sha256:aaaaaaaaaaaaaaaa",
                "dataset_fingerprint": "sha256:bbbbbbbbbbbbbbbb",
                "upstream_refs": refs,
                "data_source_tags": ["corpus:web"],
                "code_commit": "git:lab/train@1234567",
                "config_hash": "sha256:cccccccccccccccc",
            }
        )

    for chip in ("c0", "c1"):
        for m in range(8):
            add(chip, "job_train", "training", m, 3.0e16 + 1e14 * m, 500_000)
        add(chip, "job_train", "idle", 8, 0.0, 0)
    for m in range(4):
        add("c2", "job_serve", "inference", m, 1.0e15, 100_000)
    return rechain(rows)


SMALL_COMMITMENT = {
    "id": "small",
    "deterministic_rules": [
        {"kind": "aggregate_flop_cap", "op_type": "training", "scope": "per_job", "threshold": 1.0e18},
        {"kind": "aggregate_flop_cap", "op_type": "*", "scope": "per_job", "threshold": 1.5e18},
        {"kind": "idle_must_be_zero"},
        {"kind": "allowed_op_types", "allowed": ["training", "inference", "eval", "idle"]},
        {"kind": "chip_job_stability"},
        {"kind": "upstream_refs_dag_validity"},
    ],
}


def all_traces() -> dict[str, list[dict[str, Any]]]:
    out = {"small": small_trace()}
    out.update({p.name: read_trace(p).records for p in SHARED_TRACES})
    return out
