"""The schedule: the seed's 8 phases + 3 follow-ups + 4 trust phases, labels, durations."""

from __future__ import annotations

import pytest

from inspectorate.errors import InputError
from inspectorate.testbed.phases import DEFAULT_PHASES, PHASES, Label, op_type, parse_label, select_phases
from inspectorate.testbed.profiles import PROFILES, get_profile

SEED_ORDER = [
    "honest_pretrain_tiny",
    "honest_pretrain_small",
    "honest_inference_small",
    "honest_finetune_tiny",
    "idle",
    "adv_train_as_infer",
    "adv_big_as_small",
    "adv_finetune_as_pretrain",
]
FOLLOWUPS = ["adv_infer_with_fake_nccl", "adv_subsetted_nccl_log", "adv_interleaved_train_infer"]
TRUST = ["adv_single_rank_train_as_infer", "adv_fullft_as_pretrain", "adv_work_as_idle", "adv_undeclared_job"]


def test_default_schedule_is_the_seeds_then_the_followups_then_the_trust_phases() -> None:
    assert list(DEFAULT_PHASES) == SEED_ORDER + FOLLOWUPS + TRUST


def test_claimed_differs_from_truth_exactly_for_adversarial_phases() -> None:
    for name in DEFAULT_PHASES:
        phase = PHASES[name]
        assert (str(phase.claimed) != str(phase.truth)) == name.startswith("adv_"), name


def test_the_seeds_three_lies() -> None:
    assert (str(PHASES["adv_train_as_infer"].truth), str(PHASES["adv_train_as_infer"].claimed)) == (
        "pretrain:tiny",
        "inference:tiny",
    )
    assert (str(PHASES["adv_big_as_small"].truth), str(PHASES["adv_big_as_small"].claimed)) == (
        "pretrain:small",
        "pretrain:tiny",
    )
    assert (
        str(PHASES["adv_finetune_as_pretrain"].truth),
        str(PHASES["adv_finetune_as_pretrain"].claimed),
    ) == ("finetune:tiny", "pretrain:tiny")


def test_label_vocabulary() -> None:
    assert str(parse_label("finetune:tiny")) == "finetune:tiny"
    assert parse_label("idle") == Label("idle")
    assert op_type("finetune:small") == "training" and op_type("eval:tiny") == "eval"
    for bad in ("train:tiny", "idle:tiny", "pretrain", "pretrain:huge"):
        with pytest.raises(InputError):
            parse_label(bad)


def test_phase_selection() -> None:
    assert [p.name for p in select_phases("idle, honest_pretrain_tiny")] == ["idle", "honest_pretrain_tiny"]
    with pytest.raises(InputError, match="unknown phase"):
        select_phases("idle,nap")


def test_laptop_fits_in_ten_minutes_and_gpu_uses_the_seeds_durations() -> None:
    laptop, gpu = get_profile("laptop"), get_profile("gpu")
    phases = select_phases(None)
    assert sum(laptop.duration(p) for p in phases) <= 540  # + ~1 min of start-up and checkpoints
    seed = {
        "honest_pretrain_tiny": 1800,
        "honest_pretrain_small": 1800,
        "honest_inference_small": 900,
        "honest_finetune_tiny": 1200,
        "idle": 300,
    }
    assert {n: gpu.duration(PHASES[n]) for n in seed} == seed
    assert sum(gpu.duration(PHASES[n]) for n in SEED_ORDER) == 145 * 60  # the seed's 145 min per host
    assert get_profile("test").duration(PHASES["idle"], scale=2.0) == 5.0


def test_profiles_map_roles_to_presets() -> None:
    assert PROFILES["laptop"].role("tiny").preset == "laptop"
    assert (PROFILES["gpu"].role("tiny").preset, PROFILES["gpu"].role("small").preset) == ("tiny", "small")
    assert PROFILES["test"].role("tiny").preset == "micro"
    assert PROFILES["laptop"].with_batch_size(3).role("small").batch_size == 3
    with pytest.raises(InputError, match="unknown profile"):
        get_profile("cluster")
