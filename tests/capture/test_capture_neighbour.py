"""Evidence that belongs to the workload: honest idle, serving and single-process
training phases captured once alone and once beside a neighbour that spins a core and
floods the host's loopback at >= 100 MB/s. No outcome may change, and the neighbour's
bytes must show only among the host-wide figures."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from inspectorate.capture._isolate import missing_rights

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workloads"))
import harness

ISOLATION = missing_rights()
PLAN = {
    "records": "competent",
    "phases": [
        {"name": "idle", "do": "idle", "seconds": 3, "claim": {"op": "idle"}},
        {
            "name": "serve",
            "do": "serve",
            "seconds": 3,
            "claim": {"op": "inference", "model": "mlp-lm", "n_params": 300_000},
        },
        {
            "name": "train",
            "do": "train",
            "seconds": 3,
            "claim": {"op": "training", "model": "mlp-lm", "n_params": 300_000},
        },
    ],
}


@pytest.mark.slow
@pytest.mark.skipif(bool(ISOLATION), reason=f"cgroups/network namespaces unavailable: {'; '.join(ISOLATION)}")
def test_no_outcome_changes_under_a_noisy_neighbour(tmp_path):
    alone = harness.capture_run("mlp_lm.py", PLAN, tmp_path / "alone")
    assert alone.returncode == 0, alone.stderr[-2000:]
    with harness.Neighbour(seconds=240) as neighbour:
        noisy = harness.capture_run("mlp_lm.py", PLAN, tmp_path / "noisy")
    assert noisy.returncode == 0, noisy.stderr[-2000:]
    assert neighbour.rate() >= 100e6, f"the neighbour sent only {neighbour.rate() / 1e6:.0f} MB/s"
    quiet, loud = harness.outcomes(tmp_path / "alone"), harness.outcomes(tmp_path / "noisy")
    assert list(quiet) == ["idle", "serve", "train"]
    for phase in quiet:
        assert loud[phase]["outcome"] == quiet[phase]["outcome"], (phase, quiet[phase], loud[phase])
        assert loud[phase]["decisions"]["p1_op_type"] == quiet[phase]["decisions"]["p1_op_type"], phase
        # the workload's own traffic stays tiny; the flood is in the host figures only
        assert (loud[phase]["sensor_sync_bytes"] or 0.0) < 1e6
    assert quiet["idle"]["outcome"] == "consistent"
    host = harness.host_traffic(tmp_path / "noisy")
    assert host >= 50e6, f"host loopback moved only {host / 1e6:.0f} MB during the noisy capture"
