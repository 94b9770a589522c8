"""An external entrant through the check/verify CLI contract; crashed and hung entrants
are scored failures, never a crash of the harness."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from inspectorate.bench import public_suite, run_bench
from inspectorate.bench._command import Command

EXTERNAL = Path(__file__).resolve().parent / "external_verifier.py"

SMALL = ["compliance/seed-*", "compliance/gen-*", "undeclared_work/r01/*", "undeclared_work/r03/*"]


def test_external_command_is_scored(tmp_path):
    cmd = Command(f"{sys.executable} {EXTERNAL}", timeout=60, logs=tmp_path / "out" / "logs", name="external")
    board = run_bench(
        public_suite(), tmp_path / "out", [cmd], select=SMALL, baselines=False, reps=100, quiet=True
    )
    entry = board["entries"][0]
    assert entry["verifier"] == "external"
    assert set(entry["tracks"]) == {"compliance", "undeclared_work"}
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert rows and not any(r["verdict"] == "error" for r in rows), rows[:3]
    logs = list((tmp_path / "out" / "logs").glob("*.stdout"))
    # one call per trace, one `verify` per run directory (reused for its phases)
    assert len(logs) == sum(1 for r in rows if r["track"] == "compliance") + 2
    assert entry["tracks"]["compliance"]["n"]["value"] == 11


@pytest.mark.parametrize("mode,message", [("crash", "exit 3"), ("hang", "timed out")])
def test_failing_entrant_is_a_scored_failure(tmp_path, monkeypatch, mode, message):
    monkeypatch.setenv("EXTERNAL_MODE", mode)
    cmd = Command(f"{sys.executable} {EXTERNAL}", timeout=1.0, logs=tmp_path / "logs", name="broken")
    board = run_bench(
        public_suite(),
        tmp_path / "out",
        [cmd],
        select=["compliance/seed-*"],
        baselines=False,
        reps=50,
        quiet=True,
    )
    m = board["entries"][0]["tracks"]["compliance"]
    assert m["failed"]["value"] == 1.0 and m["caught"]["value"] == 0.0
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert all(r["verdict"] == "error" and message in r["error"] for r in rows)


def _reference_dir():
    import os

    root = Path(os.environ.get("INSPECTORATE_SHARED", Path(__file__).resolve().parents[3] / "shared"))
    ref = root / "reference"
    if not (ref / "inspector" / "consistency_checks.py").is_file():
        pytest.skip(f"reference checker not found at {ref}")
    return ref


def test_reference_checker_enters_through_its_program(tmp_path):
    from inspectorate.bench._command import reference_entrant

    ref = reference_entrant(_reference_dir(), timeout=60, logs=tmp_path / "logs")
    board = run_bench(
        public_suite(),
        tmp_path / "out",
        [ref],
        select=["compliance/seed-*", "compliance/attack-split*"],
        baselines=False,
        reps=50,
        quiet=True,
    )
    m = board["entries"][0]["tracks"]["compliance"]
    assert board["entries"][0]["verifier"] == "reference"
    assert m["honest_fpr"]["value"] == 0.0  # the seed's honest trace against the commitment written for it
    assert m["caught"]["value"] + m["missed"]["value"] + m["abstained"]["value"] == pytest.approx(1.0)
