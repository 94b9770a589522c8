"""Workloads outside the testbed through ``inspectorate capture`` (the lean version of
bench/capture_workloads.py), and a 2-process gloo job captured whole."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from inspectorate.capture._isolate import missing_rights

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "workloads"))
import harness  # noqa: E402

ISOLATION = missing_rights()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(ISOLATION), reason=f"cgroups/network namespaces unavailable: {'; '.join(ISOLATION)}"
    ),
]


def _bench():
    spec = importlib.util.spec_from_file_location(
        "capture_workloads", ROOT / "bench" / "capture_workloads.py"
    )
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def test_lean_bench_lies_are_never_consistent(tmp_path):
    """mlp_lm hands over its description; competent records (every prover file agrees
    with the claim). Lies never consistent or certified under either policy; hidden work
    under idle and a 20x model declared small are inconsistent on sensor CPU."""
    rows = _bench().run_one("mlp_lm", "competent", 3.0, True, tmp_path)
    by = {r["phase"]: r for r in rows}
    assert by["honest_idle"]["strict"] == "consistent"
    assert by["honest_serve"]["strict"] != "inconsistent", by["honest_serve"]
    for phase in ("lie_hidden_under_idle", "lie_train_as_infer", "lie_big_as_small"):
        r = by[phase]
        assert r["strict"] != "consistent" and r["lenient"] != "consistent", r
    assert "compute" in by["lie_hidden_under_idle"]["flagged_by"]
    for phase in ("lie_hidden_under_idle", "lie_big_as_small"):  # not certified even under lenient
        assert by[phase]["strict"] == "inconsistent" and not by[phase]["lenient_certified"], by[phase]
    assert "compute" in by["lie_big_as_small"]["flagged_by"]
    assert (tmp_path / "mlp_lm-competent" / "models" / "mlp_lm-small.json").is_file()
    assert by["_overhead"]["sensor_cpu_s"] is not None


def test_two_gloo_ranks_are_captured_whole(tmp_path):
    """Both ranks (and the launcher) are in the cgroup; their all-reduces ride the
    namespace's own loopback, which the sensor reads as the workload's traffic."""
    from inspectorate.trace.streams import read_sensor

    plan = {
        "config": {"world_size": 2, "width": 256},
        "records": "none",
        "phases": [
            {
                "name": "train",
                "do": "train",
                "seconds": 3,
                "claim": {"op": "training", "model": "ddp-mlp", "n_params": 200_000, "world_size": 2},
            }
        ],
    }
    proc = harness.capture_run("ddp_mlp.py", plan, tmp_path / "run")
    assert proc.returncode == 0, proc.stderr[-2000:]
    log = read_sensor(tmp_path / "run" / "sensor.jsonl")
    assert log.frame["procs"].max() >= 3
    assert log.frame["net_attributable"].max() == 1.0
    own = log.frame["net_tx_b"].drop_nulls()
    assert own.max() - own.min() > 4 * 200_000  # at least one fp32 gradient all-reduce
    result = harness.outcomes(tmp_path / "run")["train"]
    assert result["sensor_sync_bytes"] and result["sensor_sync_bytes"] > 4 * 200_000
