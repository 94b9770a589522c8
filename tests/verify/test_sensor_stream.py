"""The streaming sensor path (one time-ordered pass, per-window accumulators) gives the
same evidence and verdicts as the frame path (``INSPECTORATE_SENSOR_LOADER=frame``) on
every run dir the tests have: the gap/torn fixtures, damaged and reordered sensors, the
testbed's small runs shipped with the benchmark, and the no-sensor fixtures."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from test_gaps import _with_gap_and_sensor

from inspectorate.trace import load_run
from inspectorate.trace._canonical import rechain
from inspectorate.verify import Inspector
from inspectorate.verify._evidence import collect, gaps

DATA = Path(__file__).resolve().parents[1] / "data"
BENCH_RUNS = (
    Path(__file__).resolve().parents[2] / "src" / "inspectorate" / "data" / "bench" / "public-v1" / "runs"
)


def _same(a, b, where=""):
    """Equal, floats to 1e-12 (a running sum and polars' mean may differ in the last bit)."""
    if isinstance(a, float) and isinstance(b, float):
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-9) or (math.isnan(a) and math.isnan(b)), where
    elif isinstance(a, dict) and isinstance(b, dict):
        assert set(a) == set(b), (where, set(a) ^ set(b))
        for k in a:
            _same(a[k], b[k], f"{where}.{k}")
    elif isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            _same(x, y, f"{where}[{i}]")
    else:
        assert a == b, (where, a, b)


def _both(monkeypatch, fn):
    out = []
    for mode in ("stream", "frame"):
        monkeypatch.setenv("INSPECTORATE_SENSOR_LOADER", mode)
        out.append(fn())
    return out


def _evidence(run_path: Path, subset: str = "full"):
    run = load_run(run_path)
    return [(e.name, e.sensor, e.integrity, e.streams) for e in collect(run, subset)], gaps(run, subset)


def _assert_paths_agree(monkeypatch, run_path: Path, verdicts: bool = True) -> None:
    for subset in ("full", "sensor"):
        stream, frame = _both(monkeypatch, lambda s=subset: _evidence(run_path, s))
        _same(stream, frame, subset)
    if verdicts:
        a, b = _both(monkeypatch, lambda: Inspector(policy="lenient").inspect(run_path).to_dict())
        for doc in (a, b):
            doc.pop("timings", None)
        _same(a, b, "verdict")


def _samples(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "sensor.jsonl").read_text().splitlines()]


def _write(run: Path, records: list[dict]) -> None:
    (run / "sensor.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rechain(records)))


@pytest.mark.parametrize("cores", [0.0, 2.0])
def test_gap_fixtures_agree(monkeypatch, tmp_path, cores):
    run = _with_gap_and_sensor(tmp_path, gap_cores=cores)
    _assert_paths_agree(monkeypatch, run)
    stream, _ = _both(monkeypatch, lambda: _evidence(run))
    assert stream[1] and stream[1][0]["sensor"]["samples"] > 2  # the gap was measured, not skipped


def test_torn_and_broken_sensors_agree(monkeypatch, tmp_path):
    run = _with_gap_and_sensor(tmp_path, gap_cores=2.0)
    records = _samples(run)
    records[100]["cpu_s"] += 1.0  # edited without re-chaining: a break the chain must show
    (run / "sensor.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    with open(run / "sensor.jsonl", "ab") as handle:
        handle.write(b'{"kind":"sample","t":17774')
    _assert_paths_agree(monkeypatch, run)
    (stream, _), _ = _both(monkeypatch, lambda: _evidence(run))
    assert any(s[2].get("sensor_breaks") for s in stream)
    assert any("torn_streams" in s[2] for s in stream)


def test_gap_bounds_on_and_between_samples_agree(monkeypatch, tmp_path):
    """Phase and gap edges exactly on a sample, between samples, and a gap holding no
    sample of its own (the bracket must reach out to its neighbours)."""
    run = _with_gap_and_sensor(tmp_path, gap_cores=2.0)
    records = _samples(run)
    for r in records:
        r["per_proc"] = [[7, r["cpu_s"] * 0.8, 1, 2], [9, r["cpu_s"] * 0.2, 1, 1]]
        r["t"] = round(r["t"], 1) if r["t"] - 1777450000.0 < 20.01 else r["t"] + 0.05
    _write(run, records)
    labels = run / "workload_labels.jsonl"
    events = [json.loads(line) for line in labels.read_text().splitlines()]
    for e in events:  # a 0.6 s gap starting on a sample, ending between two
        if e["phase"] == "lie_train" and e["event"] == "start":
            e["t"] = 1777450020.6
        if e["phase"] == "honest_infer" and e["event"] == "end":
            e["t"] = 1777450020.0  # exactly on a sample
    labels.write_text("".join(json.dumps(e) + "\n" for e in events))
    _assert_paths_agree(monkeypatch, run)


def test_samples_out_of_order_fall_back_to_the_frame(monkeypatch, tmp_path):
    run = _with_gap_and_sensor(tmp_path, gap_cores=2.0)
    records = _samples(run)
    records[50], records[51] = records[51], records[50]
    _write(run, records)
    _assert_paths_agree(monkeypatch, run)


def test_runs_without_a_sensor_agree(monkeypatch):
    _assert_paths_agree(monkeypatch, DATA / "rundirs_attacks" / "small_run")
    _assert_paths_agree(monkeypatch, DATA / "rundirs" / "h100_two_hosts")


@pytest.mark.parametrize("name", ["r01", "r03"])
def test_testbed_bench_runs_agree(monkeypatch, tmp_path, name):
    """Real testbed captures (two ranks, real /proc sensor); the verdict needs the
    spot-check (torch, timings vary), so the evidence it reads is compared instead."""
    run = tmp_path / name
    shutil.copytree(BENCH_RUNS / name, run)
    _assert_paths_agree(monkeypatch, run, verdicts=False)
