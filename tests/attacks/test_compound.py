"""Compound attacks: composition semantics, registered compounds, the beam search,
caught rates side by side, and run-dir compounds."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from attack_data import REFERENCE_COMMITMENT, small_trace

from inspectorate.attacks import (
    OfflineAttacker,
    attack_names,
    check_attack,
    compose,
    compose_rundir,
    get_attack,
    redteam,
    violate,
)
from inspectorate.attacks._caught import gaps, side_by_side
from inspectorate.attacks._compound_attacks import PARTS
from inspectorate.attacks._rundir_attacks import phases, read_jsonl
from inspectorate.commitment import check, load_commitment
from inspectorate.data import seed_path
from inspectorate.errors import InputError
from inspectorate.trace import verify_chain

RUN = Path(__file__).resolve().parents[1] / "data" / "rundirs_attacks" / "small_run"
# The frontier commitment's anti-splitting rules, at the small trace's scale.
SPLIT_RULES = [
    {"kind": "aggregate_flop_cap", "op_type": "training", "scope": "per_job", "threshold": 1.0e18},
    {"kind": "cross_job_fingerprint_consistency", "max_jobs_per_fingerprint": 1, "op_types": ["training"]},
    {"kind": "model_uniqueness_per_job"},
    {"kind": "model_hash_consistency"},
    {"kind": "code_commit_per_job_stable"},
    {"kind": "upstream_refs_dag_validity"},
]
LINEAGE = {"kind": "lineage_flop_cap", "op_type": "training", "threshold": 1.0e18}


def commitment(*extra):
    return load_commitment({"id": "split-test", "deterministic_rules": SPLIT_RULES + list(extra)})


@pytest.fixture()
def base():
    return violate(small_trace(), cap=1e18)


def test_compound_hides_the_same_run_in_every_step(base):
    # split first: without pinned victims the relabel would reach only the dominant fragment
    out = compose(["split_jobs", ("relabel_op_type", {"fraction": 1.0})])(base, 1)
    train_jobs = {r["job_id"] for r in base if r["op_type"] == "training"}
    relabelled = {
        r["job_id"] for r in out if r["job_id"].startswith("job_train") and r["op_type"] == "inference"
    }
    assert len(relabelled) == 2 and not any(r["op_type"] == "training" for r in out)
    assert train_jobs == {"job_train"}
    assert verify_chain(out) == []


def test_compound_follows_records_split_off_by_an_earlier_step(base):
    out = compose([("smear_time", {"factor": 2}), ("relabel_op_type", {"fraction": 1.0, "to": "eval"})])(
        base, 1
    )
    smeared = [r for r in out if "-s1" in r["record_id"]]
    assert smeared and all(r["op_type"] == "eval" for r in smeared)


@pytest.mark.parametrize("name", sorted(PARTS))
def test_registered_compounds_conform_and_keep_intent(name, base):
    out = check_attack(name, base)
    entry = get_attack(name)
    assert entry.intent_preserved(base, out)
    assert set(entry.defaults()) == {
        f"{part}__{p}" for part in PARTS[name] for p in get_attack(part).defaults()
    }
    assert all(key.split("__")[0] in PARTS[name] for key in entry.space)


def test_registered_compound_rejects_a_parameter_of_no_part(base):
    with pytest.raises(InputError, match="unknown parameter"):
        get_attack("relabel_deflate_rotate")(base, 1, split_jobs__parts=2)
    out = get_attack("relabel_deflate_rotate")(
        base, 1, relabel_op_type__to="eval", relabel_op_type__fraction=1.0
    )
    assert {r["op_type"] for r in out if r["job_id"] == "job_train"} == {"eval", "idle"}


def test_split_plus_rotation_is_a_gap_until_lineage_closes_it(base):
    combo = [("rotate_model_hash", "split_jobs")]
    singles = ["rotate_model_hash", "split_jobs"]
    before_single, before = side_by_side(base, commitment(), combo, singles=singles, seeds=(0, 1))
    assert all(s.rate == 1.0 for s in before_single)  # each part alone is caught
    assert [g.name for g in gaps(before_single, before)] == ["rotate_model_hash+split_jobs"]
    after_single, after = side_by_side(base, commitment(LINEAGE), combo, singles=singles, seeds=(0, 1))
    assert gaps(after_single, after) == [] and after[0].rate == 1.0
    assert any(f.startswith("lineage_flop_cap") for f in after[0].fired)
    assert check(small_trace(), commitment(LINEAGE)).compliant  # the honest run is quiet


def test_beam_search_extends_the_best_singles_to_pairs_and_triples():
    bot = OfflineAttacker(seed=3, strategy="beam", beam=2, depth=3)
    report = redteam(70, bot, commitment(), small_trace(), None, seed=3)
    sizes = [len(r["attack_spec"]["compose"]) for r in report.rounds]
    n = len(attack_names())  # every library attack alone first, then combinations
    assert sizes[:n] == [1] * n and set(sizes[n:]) == {2, 3} and sizes.index(3) > sizes.index(2)
    hollow = {"drop_head", "drop_tail", "drop_middle", "truncate", "deflate_all", "drop_violating"}
    assert not any(
        hollow & {s["attack"] for s in r["attack_spec"]["compose"]}
        for r in report.rounds
        if len(r["attack_spec"]["compose"]) > 1
    )
    # it finds what the issue asks for: combinations that evade while each part alone is caught
    caught_alone = {r["evasion_name"] for r in report.rounds[:n] if r["caught"] and r["intent_preserved"]}
    gap_rounds = [
        r
        for r in report.evasions
        if len(r["attack_spec"]["compose"]) > 1
        and all(s["attack"] in caught_alone for s in r["attack_spec"]["compose"])
    ]
    assert gap_rounds


def test_beam_is_deterministic_and_checks_its_settings():
    rows = [
        [
            r["evasion_name"]
            for r in redteam(
                40, OfflineAttacker(seed=1, strategy="beam"), commitment(), small_trace(), None, seed=1
            ).rounds
        ]
        for _ in range(2)
    ]
    assert rows[0] == rows[1]
    with pytest.raises(InputError, match="strategy"):
        OfflineAttacker(strategy="annealing")
    with pytest.raises(InputError, match="depth"):
        OfflineAttacker(strategy="beam", depth=9)


def digest(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_rundir_compound_lies_in_records_and_telemetry(tmp_path):
    before = digest(RUN)
    combo = compose_rundir(
        ["relabel_op_type", "rotate_model_hash"], ["swap_labels", "relabel_steps", "subset_collectives"]
    )
    out = combo(RUN, tmp_path / "x", 4)
    again = combo(RUN, tmp_path / "y", 4)
    assert digest(RUN) == before and digest(out) == digest(again)
    windows = read_jsonl(out / "windows.jsonl")
    assert verify_chain(windows) == [] and verify_chain(read_jsonl(out / "steps.jsonl")) == []
    assert "inference" in {w["op_type"] for w in windows}
    assert all(p["claimed"] != "training" for p in phases(out).values())
    assert combo.intent_preserved(RUN, out)
    assert combo.name == "relabel_op_type+rotate_model_hash+swap_labels+relabel_steps+subset_collectives"
    with pytest.raises(InputError, match="never overwrite"):
        combo(RUN, out, 4)
    with pytest.raises(InputError, match="at least one"):
        compose_rundir()
    with pytest.raises(InputError, match="unknown"):
        compose_rundir(rundir=["no_such_rundir_attack"])


def test_cli_strategy(tmp_path, capsys):
    from inspectorate.cli import invoke

    out = tmp_path / "rounds.jsonl"
    args = ["--commitment", str(REFERENCE_COMMITMENT), "--baseline", str(seed_path("legit_finetune"))]
    n = len(attack_names())
    assert (
        invoke(["redteam", "--rounds", str(n + 2), "--strategy", "beam", "-q", *args, "--out", str(out)]) == 0
    )
    played = read_jsonl(out)
    assert [len(r["attack_spec"]["compose"]) for r in played[n:]] == [2, 2]
    assert all(r["rationale"].startswith("beam round") for r in played[n:])
    capsys.readouterr()
    assert (
        invoke(
            [
                "redteam",
                "--attacker",
                "openai",
                "--strategy",
                "beam",
                *args,
                "--out",
                str(tmp_path / "other.jsonl"),
            ]
        )
        == 2
    )
    assert "--strategy" in capsys.readouterr().err
