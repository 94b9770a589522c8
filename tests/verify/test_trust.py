"""The trust model: owners in one table, prover streams never pass a claim, policies."""

from __future__ import annotations

from pathlib import Path

from inspectorate.verify import Inspector, finding
from inspectorate.verify._inspector import _trust_rule
from inspectorate.verify._trust import PROVER, SENSOR, STREAMS, SUBSETS, owner, trusted

DATA = Path(__file__).resolve().parents[1] / "data"
SMALL = DATA / "rundirs_attacks" / "small_run"


def test_every_stream_has_an_owner_and_prover_streams_are_the_provers():
    assert {s for s, o in STREAMS.items() if o.owner == PROVER} == {
        "labels",
        "provenance",
        "windows",
        "steps",
        "collectives",
        "nccl",
        "claims",
    }
    assert owner("sensor") == SENSOR and trusted("netdev") and not trusted("steps")
    assert owner("something_new") == PROVER  # unknown streams are never trusted
    assert "steps" not in SUBSETS["sensor"] and "sensor" not in SUBSETS["prover"]


def test_a_consistent_finding_without_sensor_basis_becomes_unverifiable():
    passed_on_logs = finding("p1_op_type", 0.0, "consistent", basis=["collectives", "steps"])
    assert _trust_rule(passed_on_logs).decision == "unverifiable"
    passed_on_sensor = finding("p1_op_type", 0.0, "consistent", basis=["sensor"])
    assert _trust_rule(passed_on_sensor).decision == "consistent"
    failed_on_logs = finding("p1_op_type", 1.0, "inconsistent")
    assert _trust_rule(failed_on_logs).decision == "inconsistent"


def test_without_a_sensor_stream_strict_does_not_certify_and_lenient_does():
    strict = Inspector().inspect(SMALL)
    lenient = Inspector(policy="lenient").inspect(SMALL)
    honest = [p for p in strict.phases if p.phase.startswith("honest")]
    assert honest and all(p.outcome != "inconsistent" for p in honest)
    assert any(p.outcome == "unverifiable" and p.verdict == 0 for p in honest)
    assert all(p.verdict == 1 for p in lenient.phases if p.phase.startswith("honest"))
    assert strict.verdict == 0 and any(r.startswith("inconsistent: lie_train") for r in strict.reasons)


def test_subsets_drop_streams():
    full = Inspector().inspect(SMALL)
    sensor_only = Inspector(subset="sensor").inspect(SMALL)
    assert "steps" in sensor_only.missing_streams and "steps" not in full.missing_streams


def test_an_edited_step_record_without_rechaining_is_inconsistent(tmp_path):
    import json
    import shutil

    run = tmp_path / "run"
    shutil.copytree(SMALL, run)
    path = run / "steps.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    victim = next(i for i, r in enumerate(rows) if r["phase"] == "honest_train" and r["kind"] == "train_step")
    rows[victim]["lr"] = 1e-3  # a prover "fixing" one record, chain left as it was
    path.write_text("".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in rows))
    v = Inspector(policy="lenient").inspect(run)
    phase = next(p for p in v.phases if p.phase == "honest_train")
    integrity = next(f for f in phase.findings if f.property == "integrity")
    assert integrity.decision == "inconsistent" and phase.outcome == "inconsistent" and v.verdict == 0
    assert integrity.evidence["step_chain_breaks"]
