"""load_run on both layouts: the seed's H100 per-phase layout (fixture built by
tests/data/rundirs/make_h100_layout.py) and the flat layout, written here with the
capture writers the testbed uses."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from inspectorate.capture import CollectiveLog, LabelWriter, StepRecorder
from inspectorate.errors import InputError
from inspectorate.trace import Phase, format_time, load_run, rechain

H100 = Path(__file__).resolve().parents[1] / "data" / "rundirs" / "h100_two_hosts"
STREAMS = Path(__file__).resolve().parents[1] / "data" / "streams"


def test_h100_layout_two_hosts() -> None:
    run = load_run(H100)
    assert run.layout == "phases" and run.hosts == ["host-a", "host-b"]
    assert run.missing_streams == ["cpu", "collectives", "steps", "windows"]
    assert [(p.name, p.claimed) for p in run.phases()] == [
        ("honest_pretrain_small", "pretrain"),
        ("idle_baseline", "idle"),
    ]
    train = run.slice("nvsmi", "honest_pretrain_small")
    idle = run.slice("nvsmi", "idle_baseline")
    assert train.height == idle.height == 12  # 2 hosts x 3 polls x 2 GPUs
    assert train["power_draw_w"].min() > 500 and idle["power_draw_w"].max() < 100
    assert set(train["host"]) == {"host-a", "host-b"}
    nccl = run.slice("nccl", "honest_pretrain_small")
    assert nccl.height == 10 and set(nccl["rank"]) == {0, 1} and set(nccl["bytes"]) == {4194304 * 4}
    assert run.slice("nccl", "idle_baseline").height == 0  # inference/idle issue no collectives
    assert run.slice("dcgm", "honest_pretrain_small").height == 2 * 30 * 2
    assert run.nccl_inits.height == 2
    assert run.provenance["hosts"]["host-b"]["hostname"] == "host-b"


def test_h100_layout_single_host_dir() -> None:
    run = load_run(H100 / "host-a")
    assert run.hosts == ["host-a"] and run.provenance["hostname"] == "host-a"
    assert run.slice("netdev", "honest_pretrain_small")["iface"].to_list()[:2] == ["lo", "eth0"]
    assert len(run.phases()) == 2 and "host" not in run.labels.columns


def test_phases_do_not_need_truth(tmp_path: Path) -> None:
    copy = tmp_path / "run"
    shutil.copytree(H100 / "host-a", copy)
    labels = copy / "workload_labels.jsonl"
    rows = [json.loads(line) for line in labels.read_text().splitlines()]
    labels.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "truth"}) + "\n" for r in rows))
    stripped = load_run(copy).phases()
    original = load_run(H100 / "host-a").phases()
    assert [(p.name, p.claimed, p.t0, p.t1) for p in stripped] == [
        (p.name, p.claimed, p.t0, p.t1) for p in original
    ]
    assert all(p.truth is None for p in stripped)


def _window(i: int, t: float) -> dict:
    return {
        "record_id": f"w{i}",
        "prev_record_hash": "",
        "chip_id": "cpu-0",
        "job_id": "j",
        "operator": "o",
        "cluster_region": "local",
        "window_start": format_time(t),
        "window_end": format_time(t + 1),
        "op_type": "training",
        "flops": 1e9,
        "tokens_processed": 100,
        "batch_size": 4,
        "sequence_length": 25,
        "model_hash_prefix": "sha256:0",
        "dataset_fingerprint": "sha256:0",
        "upstream_refs": [],
        "data_source_tags": [],
        "code_commit": "git:x",
        "config_hash": "sha256:0",
    }


def _flat_run(root: Path) -> None:
    """Two phases written the way the testbed writes them, with real writers."""
    labels = LabelWriter(root / "workload_labels.jsonl")
    recorders = [
        StepRecorder(root / name, phase="", rank=r, fingerprint_every=0)
        for r, name in enumerate(("steps.jsonl", "steps_rank1.jsonl"))
    ]
    coll = CollectiveLog(root / "collectives.jsonl", rank=0, world_size=2)
    for phase, claimed, truth in (
        ("p1_pretrain", "training", "training"),
        ("p2_serve", "inference", "training"),
    ):
        labels.start(phase, claimed=claimed, truth=truth)
        coll.set_phase(phase)
        for rec in recorders:
            rec.set_phase(phase)
            rec.event("tick", step=0)
        coll.log(op="allreduce", nbytes=40, duration_s=0.001, dtype="float32")
        labels.end(phase, claimed=claimed, truth=truth)
    for closer in (labels, coll, *recorders):
        closer.close()
    events = [json.loads(line) for line in (root / "workload_labels.jsonl").read_text().splitlines()]
    t, mid = events[0]["t"], (events[0]["t"] + events[1]["t"]) / 2  # phases last microseconds here
    (root / "cpu.csv").write_text("timestamp,cpu_percent\n" + f"{mid!r},99.0\n{t + 3600!r},1.0\n")
    (root / "provenance.json").write_text(json.dumps({"hostname": "laptop"}))
    (root / "windows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rechain([_window(0, t)])))
    shutil.copy(STREAMS / "netdev.log", root / "netdev.log")


def test_flat_layout(tmp_path: Path) -> None:
    _flat_run(tmp_path)
    run = load_run(tmp_path)
    assert run.layout == "flat" and run.missing_streams == ["nvsmi", "dcgm", "nccl"]
    assert sorted(run.step_logs) == ["steps.jsonl", "steps_rank1.jsonl"]
    assert all(log.intact for log in run.step_logs.values())
    assert run.steps.height == 4 and set(run.steps["rank"]) == {0, 1}
    assert run.provenance == {"hostname": "laptop"} and len(run.windows) == 1
    phases = run.phases()
    assert [p.claimed for p in phases] == ["training", "inference"]
    assert run.slice("steps", "p2_serve")["phase"].to_list() == ["p2_serve", "p2_serve"]
    assert run.slice("collectives", phases[0])["phase"].to_list() == ["p1_pretrain"]
    assert run.slice("cpu", "p1_pretrain")["cpu_percent"].to_list() == [99.0]  # the later row is outside
    assert run.slice("nvsmi", "p1_pretrain") is None
    with pytest.raises(InputError, match="no phase named"):
        run.slice("steps", "p9")
    with pytest.raises(InputError, match="cannot slice"):
        run.slice("labels", "p1_pretrain")


def test_unfinished_phase_is_open_ended(tmp_path: Path) -> None:
    (tmp_path / "workload_labels.jsonl").write_text(
        json.dumps({"event": "start", "phase": "a", "claimed": "training", "t": 5.0}) + "\n"
    )
    run = load_run(tmp_path)
    assert run.phases() == [Phase("a", "training", 5.0, None, None)]
    assert run.missing_streams == [
        s for s in ("provenance", "nvsmi", "dcgm", "nccl", "netdev", "cpu", "collectives", "steps", "windows")
    ]


def test_not_a_run_dir(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no run streams"):
        load_run(tmp_path)
    (tmp_path / "file").write_text("x")
    with pytest.raises(InputError, match="not a run directory"):
        load_run(tmp_path / "file")


def test_bad_stream_in_a_phase_dir_names_the_file(tmp_path: Path) -> None:
    shutil.copytree(H100 / "host-a", tmp_path / "host-a")
    nvsmi = tmp_path / "host-a" / "phases" / "idle_baseline" / "nvsmi.csv"
    nvsmi.write_text(nvsmi.read_text() + "garbage\n")
    with pytest.raises(InputError) as info:
        load_run(tmp_path)
    assert info.value.path == str(nvsmi) and info.value.line == 8
