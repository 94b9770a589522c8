"""Suites: content-addressed manifests, reproducible from (builder version, seed) for the
deterministic tracks, tamper-evident, with the truth kept out of what entrants see."""

from __future__ import annotations

import json
import shutil

import pytest

from inspectorate.bench import build_suite, load_suite
from inspectorate.bench._runcases import TRUTH_KEYS, neutral_copy
from inspectorate.errors import InputError


def test_same_seed_same_hashes_for_deterministic_tracks(tmp_path):
    a = build_suite(tmp_path / "a", 7, ["compliance"])
    b = build_suite(tmp_path / "b", 7, ["compliance"])
    assert a["sha256"] == b["sha256"]
    assert {k: v["sha256"] for k, v in a["files"].items()} == {k: v["sha256"] for k, v in b["files"].items()}
    assert a["reproducible"] == ["compliance"] and a["builder_version"] and a["seed"] == 7
    c = build_suite(tmp_path / "c", 8, ["compliance"])
    assert c["sha256"] != a["sha256"]  # the seed reaches the cases (attack draws, generated traces)


def test_compliance_truth_by_construction(tmp_path):
    build_suite(tmp_path / "s", 0, ["compliance"])
    suite = load_suite(tmp_path / "s")
    answers = suite.answers()
    assert answers is not None
    truths = {a.truth for a in answers.values()}
    assert truths == {"compliant", "violation"}
    families = {a.family for a in answers.values() if a.adversarial}
    assert len(families) >= 20  # the violation itself plus the attack library's evasions
    case = json.loads((tmp_path / "s" / "cases.jsonl").read_text().splitlines()[0])
    assert "truth" not in case and "family" not in case


def test_tampered_suite_is_refused(tmp_path):
    build_suite(tmp_path / "s", 0, ["compliance"])
    victim = next((tmp_path / "s" / "traces").iterdir())
    victim.write_bytes(victim.read_bytes() + b"\n")
    with pytest.raises(InputError, match="does not match its manifest hash"):
        load_suite(tmp_path / "s")


def test_build_refuses_to_overwrite(tmp_path):
    build_suite(tmp_path / "s", 0, ["compliance"])
    with pytest.raises(InputError, match="--force"):
        build_suite(tmp_path / "s", 0, ["compliance"])


def test_public_suite_ships_small_and_consistent(public):
    m = public.manifest
    total = sum(f["bytes"] for f in m["files"].values())
    assert total < 10 * 2**20
    assert set(m["tracks"]) == {
        "compliance",
        "op_type",
        "model_size",
        "undeclared_work",
        "finetune",
        "served_identity",
    }
    assert m["not_reproducible"] and "measured" in {f["origin"] for f in m["files"].values()}
    for t, info in m["tracks"].items():
        assert info["budget"], t
    hosts = {c.host for c in public.cases if c.host}
    assert hosts == {"host0", "host1"}


def test_public_runs_hide_truth_and_phase_names(public):
    for run in (public.root / "runs").iterdir():
        for line in (run / "workload_labels.jsonl").read_text().splitlines():
            event = json.loads(line)
            assert not set(TRUTH_KEYS) & set(event)
            assert not event["phase"].startswith(("adv_", "honest_"))
        for f in run.iterdir():
            assert "adv_" not in f.read_text(errors="replace"), f


def test_neutral_copy_renames_phase_fields_only(tmp_path):
    src = tmp_path / "run"
    src.mkdir()
    labels = [
        {"event": "start", "phase": "idle", "claimed": "idle", "truth": "idle", "t": 1.0},
        {"event": "start", "phase": "adv_x", "claimed": "inference:tiny", "truth": "pretrain:tiny", "t": 2.0},
    ]
    (src / "workload_labels.jsonl").write_text("".join(json.dumps(r) + "\n" for r in labels))
    (src / "collectives.jsonl").write_text(json.dumps({"phase": "adv_x", "op": "idle"}) + "\n")
    names = neutral_copy(src, tmp_path / "out")
    assert names == {"idle": "p01", "adv_x": "p02"}
    rows = [
        json.loads(line) for line in (tmp_path / "out" / "workload_labels.jsonl").read_text().splitlines()
    ]
    assert rows[0] == {"event": "start", "phase": "p01", "claimed": "idle", "t": 1.0}
    assert json.loads((tmp_path / "out" / "collectives.jsonl").read_text()) == {"phase": "p02", "op": "idle"}
    shutil.rmtree(tmp_path / "out")
