"""Tiny hand-built traces for rule tests: the smallest trace that breaks a rule.

``base()`` is an honest 2-chip, 4-window training job (7B model, 6·N·D FLOPs, 60 s
windows); tests copy it and change the few fields that matter, then ``chained``
re-computes the hash chain so only the rule under test can fire.
"""

from __future__ import annotations

import copy
from typing import Any

from inspectorate.trace import Trace, format_time, parse_time, rechain

T0 = parse_time("2026-04-24T09:00:00Z")
N = 7e9
TOKENS = 500_000


def record(i: int, chip: int = 0, window: int = 0, **fields: Any) -> dict[str, Any]:
    start = T0 + 60 * window
    out = {
        "record_id": f"r{i:04d}",
        "prev_record_hash": "",
        "chip_id": f"gpu-{chip:02d}",
        "job_id": "job-a",
        "operator": "team-a",
        "cluster_region": "us-west-2",
        "window_start": format_time(start),
        "window_end": format_time(start + 60),
        "op_type": "training",
        "flops": 6 * N * TOKENS,
        "tokens_processed": TOKENS,
        "batch_size": 8,
        "sequence_length": 4096,
        "model_hash_prefix": "sha256:aaaaaaaaaaaaaaaa",
        "dataset_fingerprint": "sha256:dddddddddddddddd",
        "upstream_refs": [],
        "data_source_tags": ["corpus:web"],
        "code_commit": "git:lab/train@abc1234",
        "config_hash": "sha256:cccccccccccccccc",
    }
    out.update(fields)
    return out


def base(chips: int = 2, windows: int = 4, **fields: Any) -> list[dict[str, Any]]:
    """Honest training: one record per chip per window, refs to the job's previous record."""
    records = []
    for w in range(windows):
        for c in range(chips):
            i = len(records)
            refs = [records[-1]["record_id"]] if records else []
            records.append(record(i, chip=c, window=w, upstream_refs=refs, **fields))
    return records


def chained(records: list[dict[str, Any]]) -> Trace:
    return Trace.from_records(rechain(copy.deepcopy(records)))
