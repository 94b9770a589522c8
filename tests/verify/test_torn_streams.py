"""Damaged streams are named (issue 18 item 6): a torn last line in ``sensor.jsonl`` or
``steps.jsonl`` shows in the phase's ``integrity`` finding (before: dropped silently),
and on a CPU-only host the GPU streams are "not applicable", not missing."""

from __future__ import annotations

import json

from test_gaps import _with_gap_and_sensor

from inspectorate.report import render_run_text
from inspectorate.verify import Inspector

TORN = b'{"schema":"inspectorate.sensor/1","kind":"sample","t":17774500'


def _integrity(verdict):
    return {p.phase: next(f for f in p.findings if f.property == "integrity") for p in verdict.phases}


def test_an_intact_run_names_no_torn_stream(tmp_path):
    run = _with_gap_and_sensor(tmp_path, gap_cores=0.0)
    found = _integrity(Inspector(policy="lenient").inspect(run))
    assert not any("torn_streams" in f.evidence for f in found.values())


def test_torn_sensor_and_steps_tails_are_named(tmp_path):
    run = _with_gap_and_sensor(tmp_path, gap_cores=0.0)
    for name in ("sensor.jsonl", "steps.jsonl"):
        with open(run / name, "ab") as handle:
            handle.write(TORN)  # no newline, no closing brace: a writer killed mid-record
    verdict = Inspector(policy="lenient").inspect(run)
    named = {
        t["file"]: (phase, t)
        for phase, f in _integrity(verdict).items()
        for t in f.evidence.get("torn_streams", [])
    }
    assert set(named) == {"sensor.jsonl", "steps.jsonl"}
    assert all("torn" in t["problem"] and t["complete_records"] > 0 for _, t in named.values())
    # the sensor's last complete sample is at the run's end: the last phase stops early
    assert named["sensor.jsonl"][0] == verdict.phases[-1].phase
    assert "sensor.jsonl: last line torn" in render_run_text(verdict)


def test_gpu_streams_are_not_applicable_on_a_cpu_host(tmp_path):
    run = _with_gap_and_sensor(tmp_path, gap_cores=0.0)
    gpu_host = Inspector(policy="lenient").inspect(run)
    assert gpu_host.not_applicable == {} and {"dcgm", "nccl"} <= set(gpu_host.missing_streams)
    provenance = json.loads((run / "provenance.json").read_text())
    (run / "provenance.json").write_text(json.dumps({**provenance, "device": "cpu", "gpus": []}))
    (run / "nvsmi.csv").unlink()
    cpu_host = Inspector(policy="lenient").inspect(run)
    assert set(cpu_host.not_applicable) == {"nvsmi", "dcgm", "nccl"}
    assert not {"nvsmi", "dcgm", "nccl"} & set(cpu_host.missing_streams)
    assert "not applicable" in cpu_host.not_applicable["nccl"]
    assert cpu_host.to_dict()["streams_not_applicable"] == cpu_host.not_applicable
    assert "not applicable (CPU-only host): nvsmi, dcgm, nccl" in render_run_text(cpu_host)
