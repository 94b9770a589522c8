"""Small inputs for the report tests: a trace with a violation, a bench output directory
in the shape `inspectorate bench run` writes, and the H100 fixture run directory."""

from __future__ import annotations

import json
from pathlib import Path

from inspectorate.data import commitment_path
from inspectorate.trace import GenSpec, write_generated

RUN_DIR = Path(__file__).resolve().parents[1] / "data" / "rundirs" / "h100_two_hosts"


def violating_trace(tmp: Path) -> tuple[Path, Path]:
    """Four chips, two hours of training windows, judged against an inference-only promise."""
    trace = tmp / "trace.jsonl"
    write_generated(
        GenSpec(chips=4, hours=2.0, scenario="relabel_training", window_seconds=300, seed=1), trace
    )
    return trace, commitment_path("inference-only")


def bench_dir(tmp: Path, torn_tail: bool = False) -> Path:
    """A bench output dir: three entries with intervals on two tracks, families, cases."""
    out = tmp / "bench"
    out.mkdir()
    entries = []
    for name, base in (("inspectorate", 0.9), ("threshold", 0.6), ("forest", 0.75)):
        entries.append(
            {
                "verifier": name,
                "tracks": {
                    "compliance": {
                        "accuracy": {"value": base, "lo": base - 0.08, "hi": min(1.0, base + 0.06)},
                        "caught_rate": {"value": base - 0.05, "lo": base - 0.15, "hi": base},
                        "n": {"value": 40, "lo": None, "hi": None},
                    },
                    "op_type": {
                        "accuracy": {"value": base - 0.1, "lo": base - 0.2, "hi": base},
                        "honest_fpr": 0.02,
                    },
                },
                # the bench's shape: per track, per family, metric -> {value, lo, hi}
                "families": {
                    "compliance": {
                        "relabel": {
                            "caught": {"value": base, "lo": base - 0.1, "hi": min(1.0, base + 0.05)},
                            "n": {"value": 12, "lo": None, "hi": None},
                        },
                        "split_job": {"caught": {"value": base - 0.3, "lo": None, "hi": None}},
                    }
                },
                "cost": {"tokens": 0, "usd": 0.0},
                "latency": {"median_s": 0.12 / base},
                "unknown_field": [1, 2, 3],
            }
        )
    board = {
        "schema_version": 1,
        "suite": {"name": "public-dev", "version": "0.1", "sha256": "ab" * 32},
        "entries": entries,
    }
    (out / "leaderboard.json").write_text(json.dumps(board), encoding="utf-8")
    cases = [
        {
            "id": f"case-{i}",
            "track": "compliance",
            "family": "relabel",
            "verdict": i % 2,
            "score": i / 10,
            "seconds": 0.1,
            "cost": 0,
        }
        for i in range(8)
    ]
    text = "\n".join(json.dumps(c) for c in cases) + "\n"
    if torn_tail:
        text += '{"id": "case-torn", "tra'
    (out / "results.jsonl").write_text(text, encoding="utf-8")
    return out
