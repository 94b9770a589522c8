"""Unlabelled time between phases is judged from the sensor: work there is unexplained."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from inspectorate.capture import ChainWriter
from inspectorate.verify import Inspector

SMALL = Path(__file__).resolve().parents[1] / "data" / "rundirs_attacks" / "small_run"
T0 = 1777450000.0


def _with_gap_and_sensor(tmp_path: Path, gap_cores: float) -> Path:
    """small_run with 4 s cut out between honest_infer and lie_train, and a sensor stream
    whose process tree burns ``gap_cores`` cores in that gap and 0.5 elsewhere."""
    run = tmp_path / "run"
    shutil.copytree(SMALL, run)
    path = run / "workload_labels.jsonl"
    events = [json.loads(line) for line in path.read_text().splitlines()]
    for e in events:
        if e["phase"] == "lie_train" and e["event"] == "start":
            e["t"] = T0 + 24.0
    path.write_text("".join(json.dumps(e) + "\n" for e in events))
    with ChainWriter(run / "sensor.jsonl") as w:
        cpu = 0.0
        for i in range(301):  # 10 Hz over the 30 s of the run
            t = T0 + i / 10
            cpu += (gap_cores if 20.0 <= t - T0 < 24.0 else 0.5) / 10
            w.append(
                {
                    "schema": "inspectorate.sensor/1",
                    "kind": "sample",
                    "t": t,
                    "procs": 2,
                    "threads": 8,
                    "cpu_s": cpu,
                    "rss_b": 2**28,
                    "pss_b": 2**27,
                    "minflt": 0,
                    "majflt": 0,
                    "ctx_vol": 0,
                    "ctx_invol": 0,
                    "per_proc": [],
                    "host_cpu_s": cpu,
                    "host_ncpu": 2,
                    "net": {},
                },
            )
    return run


def test_work_in_an_unlabelled_gap_is_inconsistent(tmp_path):
    v = Inspector(policy="lenient").inspect(_with_gap_and_sensor(tmp_path, gap_cores=2.0))
    gap = next(g for g in v.gaps if g["after"] == "honest_infer")
    assert gap["decision"] == "inconsistent" and gap["sensor"]["cpu_s"] > 5.0
    assert v.verdict == 0 and any(
        "unexplained work between honest_infer and lie_train" in r for r in v.reasons
    )


def test_a_quiet_gap_is_consistent(tmp_path):
    v = Inspector(policy="lenient").inspect(_with_gap_and_sensor(tmp_path, gap_cores=0.0))
    gap = next(g for g in v.gaps if g["after"] == "honest_infer")
    assert gap["decision"] == "consistent"
    assert not any("unexplained" in r for r in v.reasons)
