"""Run-dir attacks on the hand-made fixture in tests/data/rundirs_attacks/small_run."""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

import pytest

from inspectorate.attacks import RUNDIR_ATTACKS, get_rundir_attack
from inspectorate.attacks._rundir_attacks import phases, read_jsonl
from inspectorate.errors import InputError
from inspectorate.trace import verify_chain

DATA = Path(__file__).resolve().parents[1] / "data" / "rundirs_attacks"
SRC = DATA / "small_run"


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def in_phase(t: float, run: Path, name: str) -> bool:
    span = phases(run)[name]
    return span["start"] <= t <= span["end"]


def test_fixture_builder_reproduces_the_fixture(tmp_path):
    sys.path.insert(0, str(DATA))
    try:
        import build
    finally:
        sys.path.pop(0)
    assert digest(build.build(tmp_path / "run")) == digest(SRC)


@pytest.mark.parametrize("name", sorted(RUNDIR_ATTACKS))
def test_attack_copies_and_keeps_chains(name, tmp_path):
    before = digest(SRC)
    out = get_rundir_attack(name)(SRC, tmp_path / name, 3)
    assert digest(SRC) == before
    assert digest(out) != before
    chained = [f for f in ("steps.jsonl", "windows.jsonl") if (out / f).exists()]
    assert chained, "every attack leaves at least one chained file to check"
    for file in chained:
        assert verify_chain(read_jsonl(out / file)) == []


def test_at_least_six_rundir_attacks():
    assert len(RUNDIR_ATTACKS) >= 6


def test_forge_collectives_during_inference(tmp_path):
    out = get_rundir_attack("forge_collectives")(SRC, tmp_path / "f", 1)
    rows = read_jsonl(out / "collectives.jsonl")
    assert any(in_phase(r["t"], out, "honest_infer") for r in rows)
    assert not any(in_phase(r["t"], SRC, "honest_infer") for r in read_jsonl(SRC / "collectives.jsonl"))


def test_subset_collectives_hides_the_lying_phase(tmp_path):
    out = get_rundir_attack("subset_collectives")(SRC, tmp_path / "s", 1, keep=0.0)
    rows = read_jsonl(out / "collectives.jsonl")
    assert not any(in_phase(r["t"], out, "lie_train") for r in rows)
    assert any(in_phase(r["t"], out, "honest_train") for r in rows)


def test_swap_labels_and_truth_untouched(tmp_path):
    out = get_rundir_attack("swap_labels")(SRC, tmp_path / "l", 1)
    events = read_jsonl(out / "workload_labels.jsonl")
    assert {e["claimed"] for e in events if e["phase"] == "honest_train"} == {"inference"}
    assert [e["truth"] for e in events] == [e["truth"] for e in read_jsonl(SRC / "workload_labels.jsonl")]


def test_smooth_utilization_flattens_training_peaks(tmp_path):
    out = get_rundir_attack("smooth_utilization")(SRC, tmp_path / "u", 1, phase="lie_train")
    lines = (out / "nvsmi.csv").read_text().splitlines()[1:]
    util = [float(line.split(",")[3]) for line in lines]
    assert (
        max(util[-20:]) < 70 and min(util[:20]) == 100
    )  # lie_train now at inference level, honest_train kept


def test_delete_stream_and_bad_names(tmp_path):
    out = get_rundir_attack("delete_stream")(SRC, tmp_path / "d", 1, stream="nvsmi.csv")
    assert not (out / "nvsmi.csv").exists()
    with pytest.raises(InputError):
        get_rundir_attack("delete_stream")(SRC, tmp_path / "d2", 1, stream="../x")
    with pytest.raises(InputError, match="already exists"):
        get_rundir_attack("delete_stream")(SRC, tmp_path / "d", 1)
    with pytest.raises(InputError, match="not a run directory"):
        get_rundir_attack("delete_stream")(tmp_path / "nope", tmp_path / "d3", 1)


def test_tamper_netdev_matches_forged_collectives(tmp_path):
    forged = get_rundir_attack("forge_collectives")(SRC, tmp_path / "f", 1)
    out = get_rundir_attack("tamper_netdev")(forged, tmp_path / "n", 1)
    snaps = [block for block in (out / "netdev.log").read_text().split("--- ")[1:]]
    times = [float(b.split(" ---")[0]) for b in snaps]
    tx = [
        int(next(line for line in b.splitlines() if "eth0:" in line).split(":")[1].split()[8]) for b in snaps
    ]
    coll = read_jsonl(out / "collectives.jsonl")
    for k in range(1, len(times)):
        claimed = sum(c["bytes"] for c in coll if times[k - 1] < c["t"] <= times[k])
        assert tx[k] - tx[k - 1] == claimed


def test_relabel_steps_removes_optimizer_fields(tmp_path):
    out = get_rundir_attack("relabel_steps")(SRC, tmp_path / "r", 1, phase="lie_train")
    rows = [r for r in read_jsonl(out / "steps.jsonl") if r["phase"] == "lie_train"]
    assert rows and all(r["kind"] == "infer_token" and "grad_norm" not in r and "lr" not in r for r in rows)


def test_relabel_windows(tmp_path):
    out = get_rundir_attack("relabel_windows")(SRC, tmp_path / "w", 1)
    assert "training" not in {r["op_type"] for r in read_jsonl(out / "windows.jsonl")}
    assert json.loads((SRC / "windows.jsonl").read_text().splitlines()[0])["op_type"] == "training"
