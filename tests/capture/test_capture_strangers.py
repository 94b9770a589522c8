"""A workload written as a stranger (tests/workloads/stranger/batch_server.py: its own
GPT-2-style model, padded batches, top-p sampling, a heartbeat thread, bursts with idle
gaps) through ``inspectorate capture``: honest phases are never flagged, a lie that the
sensor can tell is never consistent nor certified under either policy, and the batches
it serves (handed over through the public API) re-compute."""

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


def test_stranger_server_honest_unflagged_lies_caught(tmp_path):
    bench = _bench()
    name, config = "s_server", bench.WORKLOADS["s_server"]["config"]
    claim = {"model": name, "n_params": bench.n_params(name, config)}
    rows = [
        ("honest_idle", "idle", {"op": "idle"}),
        ("honest_serve", "serve", {"op": "inference", **claim}),
        ("lie_hidden_under_idle", "hidden", {"op": "idle"}),
        ("lie_train_as_infer", "train", {"op": "inference", **claim}),
    ]
    plan = {
        "config": config,
        "records": "naive",
        "handover": True,  # its serve phase hands over: top-p through pick(), its layout by names=
        "phases": [{"name": n, "do": d, "seconds": 3, "claim": c} for n, d, c in rows],
    }
    proc = harness.capture_run(
        "stranger/batch_server.py",
        plan,
        tmp_path / "run",
        claims={"models": bench.model_files(name, tmp_path)},
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    strict, lenient = harness.outcomes(tmp_path / "run"), harness.outcomes(tmp_path / "run", "lenient")
    assert strict["honest_idle"]["outcome"] == "consistent", strict["honest_idle"]
    assert strict["honest_serve"]["outcome"] != "inconsistent", strict["honest_serve"]
    for lie in ("lie_hidden_under_idle", "lie_train_as_infer"):
        assert strict[lie]["outcome"] == "inconsistent", strict[lie]
        assert not lenient[lie]["certified"], lenient[lie]
    assert strict["lie_hidden_under_idle"]["decisions"]["compute"] == "inconsistent"
    # the left-padded, top-p batches it served re-compute against the weights it handed over
    assert strict["honest_serve"]["decisions"]["served_model_identity"] == "consistent", strict[
        "honest_serve"
    ]
    assert (tmp_path / "run" / "server_heartbeat.jsonl").is_file()  # its own thread ran inside
