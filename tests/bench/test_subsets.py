"""Evidence subsets are real folders holding only the subset's files; the ablation mode
scores an entry once per removed stream and the removal shows in its verdicts."""

from __future__ import annotations

from inspectorate.bench import Suite, public_suite, run_bench, views_for
from inspectorate.bench._run import STREAMS


def test_realistic_view_has_no_sensor_or_application_logs(public, tmp_path):
    views = views_for(public, tmp_path, "realistic")
    assert views and not any(v.track == "compliance" for v in views)  # window records are application logs
    run_views = [v for v in views if v.case.phase]
    names = {f.name for f in run_views[0].evidence.iterdir()}
    assert names <= {"netdev.log", "cpu.csv", "nvsmi.csv", "workload_labels.jsonl"}
    assert "workload_labels.jsonl" in names and "netdev.log" in names
    sensor = views_for(Suite(public.root, public.manifest, [run_views[0].case]), tmp_path, "sensor")
    assert "sensor.jsonl" in {f.name for f in sensor[0].evidence.iterdir()}
    assert not any(f.name.startswith("steps") for f in sensor[0].evidence.iterdir())


def test_ablation_removes_each_stream(tmp_path):
    board = run_bench(
        public_suite(),
        tmp_path / "out",
        ["threshold"],
        select=["model_size/r01/*", "model_size/r03/*"],
        baselines=False,
        ablate=True,
        reps=50,
        quiet=True,
    )
    ablation = board["entries"][0]["ablation"]
    assert set(ablation) == set(STREAMS)
    # the threshold reads the workload's memory footprint from the process sensor: without
    # it every size case is abstained; without the (prover's) step log nothing changes
    assert ablation["sensor"]["model_size"]["abstained"]["value"] == 1.0
    full = board["entries"][0]["tracks"]["model_size"]
    assert ablation["steps"]["model_size"]["auroc"]["value"] == full["auroc"]["value"]
