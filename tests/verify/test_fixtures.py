"""verify on hand-made fixtures (no torch): the seed's H100 layout, the run-dir attack
fixture (tests/data/rundirs_attacks/small_run: honest_train, honest_infer, and lie_train
= training claimed as inference), every run-dir attack, partial evidence, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inspectorate.attacks import get_rundir_attack
from inspectorate.cli import invoke
from inspectorate.verify import INCONSISTENT, check_property, verify_run

DATA = Path(__file__).resolve().parents[1] / "data"
H100 = DATA / "rundirs" / "h100_two_hosts"
SMALL = DATA / "rundirs_attacks" / "small_run"


def flagged(verdict, phase: str) -> set[str]:
    p = next(p for p in verdict.phases if p.phase == phase)
    return {f.property for f in p.findings if f.decision == INCONSISTENT}


def test_h100_layout_honest_phases_are_consistent_and_json_follows_the_contract():
    v = verify_run(H100, policy="lenient")
    doc = v.to_dict()
    assert {"run", "verdict", "confidence", "phases", "missing_streams"} <= set(doc)
    assert {"policy", "outcome", "reasons", "gaps"} <= set(doc)
    assert doc["verdict"] == 1 and [p["phase"] for p in doc["phases"]] == [
        "honest_pretrain_small",
        "idle_baseline",
    ]
    for p in doc["phases"]:
        assert {"phase", "claimed", "verdict", "confidence", "findings"} <= set(p)
        assert p["outcome"] in ("consistent", "unverifiable")
        assert all({"property", "decision", "evidence", "basis"} <= set(f) for f in p["findings"])
    p1 = next(f for f in doc["phases"][0]["findings"] if f["property"] == "p1_op_type")
    assert p1["evidence"]["sync_source"] == "nccl_log" and p1["evidence"]["observed_op"].startswith(
        "training"
    )
    assert "steps" in doc["missing_streams"]  # no step records in the seed capture: named, not guessed
    json.dumps(doc)


def test_h100_training_claimed_idle_is_flagged(tmp_path):
    import shutil

    run = tmp_path / "h100"
    shutil.copytree(H100, run)
    for host in ("host-a", "host-b"):
        path = run / host / "workload_labels.jsonl"
        path.write_text(path.read_text().replace('"claimed": "pretrain"', '"claimed": "idle"'))
    assert "p1_op_type" in flagged(verify_run(run), "honest_pretrain_small")


def test_small_run_lie_is_caught_by_p1_and_honest_phases_pass():
    v = verify_run(SMALL)
    assert v.verdict == 0 and v.exit_code == 1
    assert "p1_op_type" in flagged(v, "lie_train")
    assert not flagged(v, "honest_train") and not flagged(v, "honest_infer")


# attack -> (params, phase that must be flagged, the property meant to catch it)
ATTACKS = {
    "forge_collectives": ({"phase": "honest_infer"}, "honest_infer", "p1_op_type"),
    "subset_collectives": ({"phase": "lie_train", "keep": 0.05}, "lie_train", "consistency"),
    "swap_labels": ({"phase": "honest_train", "claimed": "inference"}, "honest_train", "p1_op_type"),
    "smooth_utilization": ({"phase": "lie_train"}, "lie_train", "p1_op_type"),
    "relabel_steps": ({"phase": "lie_train"}, "lie_train", "p1_op_type"),
    "relabel_windows": ({}, "honest_train", "consistency"),
}


@pytest.mark.parametrize("name", sorted(ATTACKS))
def test_each_rundir_attack_is_flagged_by_its_property(name, tmp_path):
    params, phase, prop = ATTACKS[name]
    run = get_rundir_attack(name)(SMALL, tmp_path / name, 0, **params)
    assert prop in flagged(verify_run(run), phase)


def test_forged_log_disagrees_with_netdev(tmp_path):
    run = get_rundir_attack("forge_collectives")(SMALL, tmp_path / "f", 0, phase="honest_infer")
    p = next(p for p in verify_run(run).phases if p.phase == "honest_infer")
    cons = next(f for f in p.findings if f.property == "consistency")
    assert "log_vs_netdev" in cons.evidence["failed"]


def test_tamper_netdev_to_match_a_forged_log_still_leaves_the_phase_flagged(tmp_path):
    forged = get_rundir_attack("forge_collectives")(SMALL, tmp_path / "f", 0, phase="honest_infer")
    run = get_rundir_attack("tamper_netdev")(forged, tmp_path / "t", 0)
    assert "p1_op_type" in flagged(verify_run(run), "honest_infer")


def test_deleting_a_stream_names_it_and_lowers_confidence(tmp_path):
    full = verify_run(SMALL)
    run = get_rundir_attack("delete_stream")(SMALL, tmp_path / "d", 0, stream="collectives.jsonl")
    partial = verify_run(run)
    assert "collectives" in partial.missing_streams and "collectives" not in full.missing_streams
    assert "p1_op_type" in flagged(partial, "lie_train")  # netdev still shows the gradient traffic
    conf = {p.phase: p.confidence for p in full.phases}
    assert all(p.confidence <= conf[p.phase] for p in partial.phases)
    assert any(p.confidence < conf[p.phase] for p in partial.phases)


def test_verdict_is_deterministic():
    assert verify_run(SMALL).to_json() == verify_run(SMALL).to_json()


def test_builtin_properties_pass_conformance():
    check_property("p1_op_type", SMALL, H100)


def _broken_step_chain(dst: Path) -> Path:
    """A copy of SMALL whose steps.jsonl has one record edited after it was chained."""
    import shutil

    shutil.copytree(SMALL, dst)
    lines = (dst / "steps.jsonl").read_text().splitlines()
    record = json.loads(lines[3])
    record["loss"] = record["loss"] + 1.0  # not re-chained: the next record's prev hash no longer fits
    lines[3] = json.dumps(record, sort_keys=True, separators=(",", ":"))
    (dst / "steps.jsonl").write_text("\n".join(lines) + "\n")
    return dst


def test_integrity_passes_conformance_on_a_broken_chain(tmp_path):
    firing = _broken_step_chain(tmp_path / "broken")
    assert "integrity" in flagged(verify_run(firing), "honest_train")
    check_property("integrity", firing, SMALL)


def test_every_builtin_property_has_a_conformance_test():
    """p1 and integrity run here; the rest need the torch testbed run, whose
    conformance test is tests/verify/test_testbed_run.py (slow): a new built-in
    property must be added to one of them."""
    from inspectorate.verify import PROPERTIES

    here = {"p1_op_type", "integrity"}
    on_the_testbed_run = {"p2_model_size", "p3_finetune", "flops", "consistency", "compute"}
    # tests/verify/test_posttrain_props.py and tests/testbed/test_posttrain_e2e.py (slow)
    posttrain = {
        f"posttrain_{n}" for n in ("resident_state", "backward_share", "weight_writes", "served_drift")
    }
    builtin = {n for n in PROPERTIES.names() if PROPERTIES[n].fn.__module__.startswith("inspectorate.")}
    assert builtin == here | on_the_testbed_run | posttrain


def test_cli_exit_codes(tmp_path, capsys):
    assert invoke(["verify", str(H100), "--format", "json", "--policy", "lenient"]) == 0
    assert json.loads(capsys.readouterr().out)["verdict"] == 1
    assert invoke(["verify", str(H100), "--format", "json"]) == 1  # no sensor stream: cannot certify
    doc = json.loads(capsys.readouterr().out)
    assert doc["outcome"] == "unverifiable" and doc["policy"] == "strict"
    assert doc["reasons"] and all(r.startswith("unverifiable: ") for r in doc["reasons"])
    assert invoke(["verify", str(SMALL)]) == 1
    assert "lie_train" in capsys.readouterr().out
    assert invoke(["verify", str(tmp_path / "nope")]) == 2
    err = capsys.readouterr().err
    assert "not a run directory" in err and err.count("\n") == 1 and "Traceback" not in err
