"""verify on a real (test-profile) testbed run: every lie flagged for the right reason,
no honest phase flagged, and verdicts that do not move when the truth is stripped.

One run (session fixture, ~45 s on 2 cores) feeds every test here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")

from inspectorate.trace import rechain
from inspectorate.verify import INCONSISTENT, check_property, verify_run

pytestmark = pytest.mark.slow
CORPUS = Path(__file__).resolve().parents[1] / "data" / "testbed_corpus.txt"
H100 = Path(__file__).resolve().parents[1] / "data" / "rundirs" / "h100_two_hosts"
EXPECTED = {  # adversarial phase -> the property meant to catch it (naive variants)
    "adv_train_as_infer": "p1_op_type",
    "adv_big_as_small": "p2_model_size",
    "adv_finetune_as_pretrain": "p3_finetune",
    "adv_infer_with_fake_nccl": "p1_op_type",
    "adv_subsetted_nccl_log": "consistency",
    "adv_interleaved_train_infer": "p1_op_type",
    "adv_single_rank_train_as_infer": "p1_op_type",
    "adv_fullft_as_pretrain": "p3_finetune",
    "adv_work_as_idle": "compute",
}
# competent variants: the phases a sensor-backed property still flags (the rest must at
# least stay uncertified: unverifiable under the strict policy)
COMPETENT_SENSOR_CATCHES = {
    "adv_train_as_infer": "p1_op_type",
    "adv_big_as_small": "p2_model_size",
    "adv_subsetted_nccl_log": "p1_op_type",
    "adv_interleaved_train_infer": "p1_op_type",
    "adv_work_as_idle": "compute",
}
TRUTH_KEYS = ("truth", "truth_op", "model", "n_params", "truth_note")


@pytest.fixture(scope="session")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from inspectorate.testbed import run_testbed

    out = tmp_path_factory.mktemp("verify") / "run"
    run_testbed("test", "vhost", out, corpus=CORPUS, progress=False, threads=1)
    return out


@pytest.fixture(scope="session")
def verdict(run_dir: Path):
    return verify_run(run_dir)


def _flagged(verdict) -> dict[str, set[str]]:
    return {p.phase: {f.property for f in p.findings if f.decision == INCONSISTENT} for p in verdict.phases}


def test_every_lie_is_flagged_by_its_property(verdict):
    flagged = _flagged(verdict)
    for phase, prop in EXPECTED.items():
        assert prop in flagged[phase], (phase, flagged[phase])


def test_no_honest_phase_is_flagged(verdict):
    flagged = _flagged(verdict)
    honest = {p: f for p, f in flagged.items() if not p.startswith("adv_")}
    assert len(honest) == 5 and not any(honest.values()), honest


def test_every_adversarial_phase_is_uncertified_under_strict(verdict):
    for p in verdict.phases:
        if p.phase.startswith("adv_"):
            assert p.verdict == 0 and p.outcome in ("inconsistent", "unverifiable"), p.phase


@pytest.fixture(scope="session")
def competent(run_dir: Path, tmp_path_factory: pytest.TempPathFactory):
    from inspectorate.testbed.competent import make_competent

    return verify_run(make_competent(run_dir, tmp_path_factory.mktemp("competent") / "run"))


def test_competent_variants_stay_uncertified_and_sensor_properties_catch_theirs(competent):
    flagged = _flagged(competent)
    for p in competent.phases:
        if p.phase.startswith("adv_"):
            assert p.verdict == 0 and p.outcome in ("inconsistent", "unverifiable"), p.phase
    for phase, prop in COMPETENT_SENSOR_CATCHES.items():
        assert prop in flagged[phase], (phase, flagged[phase])
        finding = next(
            f for p in competent.phases if p.phase == phase for f in p.findings if f.property == prop
        )
        assert finding.decision == INCONSISTENT


def test_competent_forgery_leaves_no_confession_in_prover_streams(competent):
    """What the forger wrote agrees with the claim: P3 and the step-record view see nothing."""
    for p in competent.phases:
        if p.phase in ("adv_finetune_as_pretrain", "adv_fullft_as_pretrain"):
            p3 = next(f for f in p.findings if f.property == "p3_finetune")
            assert p3.decision == "unverifiable", p3.evidence
            assert p.outcome == "unverifiable" and "p3_finetune" in p.unverifiable


def test_honest_phases_are_the_same_in_both_variants(verdict, competent):
    a = {p.phase: p.to_dict() for p in verdict.phases if not p.phase.startswith("adv_")}
    b = {p.phase: p.to_dict() for p in competent.phases if not p.phase.startswith("adv_")}
    assert a.keys() == b.keys() and all(a[k]["outcome"] == b[k]["outcome"] for k in a)


def test_subsetted_log_shows_up_against_loopback_bytes(verdict):
    p = next(p for p in verdict.phases if p.phase == "adv_subsetted_nccl_log")
    cons = next(f for f in p.findings if f.property == "consistency")
    assert {"log_vs_netdev", "syncs_per_step"} & set(cons.evidence["failed"])


def _strip(src: Path, dst: Path) -> Path:
    """A copy with the truth removed and phase names replaced by opaque ones everywhere."""
    shutil.copytree(src, dst)
    events = [json.loads(line) for line in (dst / "workload_labels.jsonl").read_text().splitlines()]
    names = {n: f"phase_{i:02d}" for i, n in enumerate(dict.fromkeys(e["phase"] for e in events))}
    for e in events:
        for key in TRUTH_KEYS:
            e.pop(key, None)
        e["phase"] = names[e["phase"]]
    (dst / "workload_labels.jsonl").write_text("".join(json.dumps(e) + "\n" for e in events))
    for path in [*dst.glob("steps*.jsonl"), *dst.glob("collectives*.jsonl")]:
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for r in rows:
            if r.get("phase") in names:
                r["phase"] = names[r["phase"]]
        chained = rechain(rows) if path.name.startswith("steps") else rows
        path.write_text("".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in chained))
    prov = json.loads((dst / "provenance.json").read_text())
    prov.pop("phases", None)
    (dst / "provenance.json").write_text(json.dumps(prov))
    return dst


def test_verdicts_do_not_change_when_truth_and_phase_names_are_stripped(run_dir, verdict, tmp_path):
    stripped = verify_run(_strip(run_dir, tmp_path / "stripped")).to_dict()
    original = verdict.to_dict()
    assert [p["phase"] for p in stripped["phases"]] == [f"phase_{i:02d}" for i in range(15)]
    for a, b in zip(original["phases"], stripped["phases"]):
        a, b = dict(a, phase=None), dict(b, phase=None)
        assert a == b
    assert (original["verdict"], original["confidence"]) == (stripped["verdict"], stripped["confidence"])


def test_deleted_collectives_still_give_a_verdict_with_lower_confidence(run_dir, verdict, tmp_path):
    from inspectorate.attacks import get_rundir_attack

    run = get_rundir_attack("delete_stream")(run_dir, tmp_path / "nocoll", 0, stream="collectives.jsonl")
    partial = verify_run(run)
    assert "collectives" in partial.missing_streams
    flagged = _flagged(partial)
    assert "p1_op_type" in flagged["adv_train_as_infer"]  # loopback bytes still show the sync
    before = {p.phase: p.confidence for p in verdict.phases}
    assert all(p.confidence <= before[p.phase] for p in partial.phases)
    assert any(p.confidence < before[p.phase] for p in partial.phases)


@pytest.mark.parametrize("prop", ["p2_model_size", "p3_finetune", "flops", "consistency", "compute"])
def test_builtin_properties_pass_conformance_on_the_run(run_dir, prop):
    check_property(prop, run_dir, H100)


def test_archived_json_differs_only_in_timings_across_fresh_spot_checks(run_dir, verdict):
    """Issue 18 item 5: two verifications with fresh spot-check measurements (the cache
    cleared) give the same document outside ``"timings"``, and the timings are there.
    The one exception is real: a decision that rests on a spot-check (a phase's
    ``compute``, a gap's allowance) can flip on a loaded host, and then what follows from
    it differs too; every other difference fails."""
    from inspectorate.report._archive import split_timings
    from inspectorate.verify._spotcheck import _measure, checkpoint_cpu_s_per_byte

    _measure.cache_clear()
    checkpoint_cpu_s_per_byte.cache_clear()
    again = verify_run(run_dir)
    first, timings = split_timings(verdict.to_dict())
    second, _ = split_timings(again.to_dict())
    flipped = [
        f"$.phases[{i}]"
        for i, (x, y) in enumerate(zip(first["phases"], second["phases"]))
        if _decision(x, "compute") != _decision(y, "compute")
    ] + [f"$.gaps[{i}]" for i, (x, y) in enumerate(zip(first["gaps"], second["gaps"])) if x != y]
    derived = ("$.reasons", "$.outcome", "$.verdict") if flipped else ()
    unexplained = [d for d in _differences(first, second) if not d.startswith((*flipped, *derived))]
    assert unexplained == []
    assert any("compute" in p["findings"] for p in timings["phases"].values())


def _differences(a, b, path="$") -> list[str]:
    """JSON paths where two documents differ (a readable failure instead of a long diff)."""
    if isinstance(a, dict) and isinstance(b, dict):
        keys = sorted(set(a) | set(b))
        return [d for k in keys for d in _differences(a.get(k), b.get(k), f"{path}.{k}")]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in _differences(x, y, f"{path}[{i}]")]
    return [] if a == b else [f"{path}: {a!r} != {b!r}"[:200]]


def _decision(phase: dict, prop: str) -> str | None:
    return next((f["decision"] for f in phase["findings"] if f["property"] == prop), None)
