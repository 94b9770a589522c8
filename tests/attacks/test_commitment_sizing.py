"""Attacks are sized from the commitment they attack, not from the seed's 1e19 / 1e18 caps."""

from __future__ import annotations

import random

import yaml
from attack_data import REFERENCE_COMMITMENT

from inspectorate.attacks import get_attack, redteam, violate
from inspectorate.attacks._facts import Facts
from inspectorate.commitment import check, load_commitment
from inspectorate.commitment._model import _Loader
from inspectorate.data import seed_path
from inspectorate.trace import read_trace

TRAIN_CAP, INFER_CAP = 3e20, 5e17  # neither is the reference's (1e19 / 1e18)


def _recapped() -> dict:
    """The reference commitment with other caps: training 3e20, inference and eval 5e17."""
    raw = yaml.load(REFERENCE_COMMITMENT.read_text(), Loader=_Loader)  # YAML 1.2 floats, as load_commitment
    for rule in raw["deterministic_rules"]:
        if rule["kind"] == "aggregate_flop_cap":
            rule["threshold"] = {"training": TRAIN_CAP, "*": 1.5 * TRAIN_CAP}.get(rule["op_type"], INFER_CAP)
        elif rule["kind"] == "op_type_flop_ratio":
            rule["training_threshold"] = 4.0e10
    return raw


def _ghost_jobs(records):
    totals: dict[str, float] = {}
    for r in records:
        if r["job_id"].startswith("job_serve_"):
            totals[r["job_id"]] = totals.get(r["job_id"], 0.0) + float(r["flops"])
    return totals


def test_facts_read_the_commitment_in_force():
    facts = Facts(load_commitment(_recapped()))
    assert facts.quantity("training_job_cap") == TRAIN_CAP
    assert facts.quantity("inference_job_cap") == INFER_CAP
    assert facts.quantity("training_flop_ratio_threshold") == 4.0e10
    assert "sha256:37f6f74900caf51f" in facts.hint("allowed_dataset_fingerprints")
    assert facts.hint("allowed_non_training_op_types") == ["inference", "eval"]


def test_default_sizing_hides_the_excess_under_this_commitments_caps():
    commitment = load_commitment(_recapped())
    clean = read_trace(seed_path("legit_finetune")).records
    base = violate(clean, commitment)
    assert not check(base, commitment).compliant  # 1.3 x 3e20 of training: over the cap
    attack = get_attack("excess_to_ghost_inference")
    out = attack(base, random.Random(3), Facts(commitment))
    ghosts = _ghost_jobs(out)
    assert ghosts and max(ghosts.values()) <= 0.9 * INFER_CAP * (1 + 1e-9)
    fired = {v.kind for v in check(out, commitment).violations}
    assert "aggregate_flop_cap" not in fired, fired  # every shard is under *this* inference cap
    assert attack.intent_preserved(base, out)
    # the seed-sized shards (9e17) would have been over this commitment's 5e17 inference cap
    seed_sized = attack(base, random.Random(3), Facts(commitment), shard_flops=9e17)
    assert max(_ghost_jobs(seed_sized).values()) > INFER_CAP


def test_offline_attacker_samples_values_sized_from_the_commitment(tmp_path):
    commitment = load_commitment(_recapped())
    clean = read_trace(seed_path("legit_finetune")).records
    report = redteam(30, "offline", commitment, clean, tmp_path / "r.jsonl", seed=2)
    steps = [
        s
        for row in report.rounds
        if row["attack_spec"]
        for s in row["attack_spec"]["compose"]
        if s["attack"] == "excess_to_ghost_inference"
    ]
    assert steps, "the search never tried the compound shard attack"
    for step in steps:
        assert step["params"]["shard_flops"] in (0.5 * INFER_CAP, 0.9 * INFER_CAP)
        assert step["params"]["keep"] in (0.7, 0.9 * TRAIN_CAP)
        assert step["params"]["ratio"] in (0.5 * 4.0e10, 0.8 * 4.0e10)
