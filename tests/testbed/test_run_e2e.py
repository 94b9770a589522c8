"""End to end: the test profile (micro model, 2 gloo ranks) runs all 15 phases into a run
directory, and every stream in it says what the schedule did.

One run (module fixture, ~40 s on 2 cores) feeds every assertion below.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("torch")

from inspectorate.models._gpt import PRESETS, flops_per_token
from inspectorate.testbed import DEFAULT_PHASES, PHASES, run_testbed, summarize_run
from inspectorate.testbed.phases import parse_label
from inspectorate.testbed.summary import netdev_bytes, phase_spans
from inspectorate.trace import load_run, verify_chain
from inspectorate.trace.streams import read_chain_file

pytestmark = pytest.mark.slow
HOST = "tbhost"
FIXTURE_CORPUS = Path(__file__).resolve().parents[1] / "data" / "testbed_corpus.txt"
TRAINING = [n for n in DEFAULT_PHASES if parse_label(str(PHASES[n].truth)).training]
SEED_FIELDS = {
    "record_id",
    "prev_record_hash",
    "chip_id",
    "job_id",
    "operator",
    "cluster_region",
    "window_start",
    "window_end",
    "op_type",
    "flops",
    "tokens_processed",
    "batch_size",
    "sequence_length",
    "model_hash_prefix",
    "dataset_fingerprint",
    "upstream_refs",
    "data_source_tags",
    "code_commit",
    "config_hash",
}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tb") / "run"
    run_testbed("test", HOST, out, corpus=FIXTURE_CORPUS, progress=False, threads=1, replay_claims=True)
    return out


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _by_phase(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {r["phase"]: r for r in rows}


def test_run_dir_has_every_stream(run_dir: Path) -> None:
    for name in (
        "workload_labels.jsonl",
        "provenance.json",
        "cpu.csv",
        "netdev.log",
        "collectives.jsonl",
        "steps.jsonl",
        "steps_rank1.jsonl",
        "windows.jsonl",
        "sensor.jsonl",
    ):
        assert (run_dir / name).stat().st_size > 0, name
    assert not (run_dir / "nvsmi.csv").exists()  # CPU profile: no GPU stream
    assert not (run_dir / "checkpoints").exists()  # not kept unless asked
    assert len((run_dir / "cpu.csv").read_text().splitlines()) > 20


def test_provenance_describes_host_and_run(run_dir: Path) -> None:
    prov = json.loads((run_dir / "provenance.json").read_text())
    assert prov["host_id"] == HOST and prov["profile"] == "test" and prov["world_size"] == 2
    assert prov["code_commit"].startswith("git:inspectorate@") and prov["torch"]
    assert "drift_s" in prov["clock"] and prov["end_time"] >= prov["start_time"]
    assert [p["phase"] for p in prov["phases"]] == list(DEFAULT_PHASES)


def test_every_phase_has_start_and_end_labels_and_lies_only_where_adversarial(run_dir: Path) -> None:
    labels = _jsonl(run_dir / "workload_labels.jsonl")
    assert [(e["phase"], e["event"]) for e in labels] == [
        (p, ev) for p in DEFAULT_PHASES for ev in ("start", "end")
    ]
    for e in labels:
        assert (e["claimed"] != e["truth"]) == e["phase"].startswith("adv_"), e
        assert e["claimed_op"] == parse_label(e["claimed"]).op_type
    big = next(e for e in labels if e["phase"] == "adv_big_as_small")
    assert (big["model"], big["claimed_model"]) == ("laptop", "micro")


def test_window_chain_verifies_and_carries_the_claims(run_dir: Path) -> None:
    records, torn = read_chain_file(run_dir / "windows.jsonl")
    assert not torn and verify_chain(records) == []
    assert all(SEED_FIELDS <= set(r) for r in records)
    assert {r["chip_id"] for r in records} == {f"{HOST}-cpu0", f"{HOST}-cpu1"}
    spans = {s["phase"]: s for s in phase_spans(run_dir)}
    labels = {e["job_id"]: e for e in _jsonl(run_dir / "workload_labels.jsonl") if e["event"] == "start"}
    for r in records:
        label = labels[r["job_id"]]
        claimed = parse_label(label["claimed"])
        assert r["op_type"] == claimed.op_type
        if claimed.size is None:
            assert r["flops"] == 0.0
        else:
            fpt = flops_per_token(PRESETS[label["claimed_model"]], training=claimed.training)
            assert r["flops"] == pytest.approx(fpt * r["tokens_processed"])
        assert r["window_start"] <= r["window_end"]
        assert label["phase"] in spans
    tokens = {}
    for r in records:
        tokens[labels[r["job_id"]]["phase"]] = (
            tokens.get(labels[r["job_id"]]["phase"], 0) + r["tokens_processed"]
        )
    assert tokens["idle"] == 0 and all(tokens[p] > 0 for p in DEFAULT_PHASES if p != "idle")


def test_step_chains_verify_per_rank(run_dir: Path) -> None:
    for name in ("steps.jsonl", "steps_rank1.jsonl"):
        records, torn = read_chain_file(run_dir / name)
        assert not torn and verify_chain(records) == [] and len(records) > 100


def test_collectives_in_training_none_in_honest_inference_or_idle(run_dir: Path) -> None:
    rows = _by_phase(summarize_run(run_dir))
    for name in TRAINING:
        if PHASES[name].distributed:  # single-rank and the undeclared thread train without DDP
            assert rows[name]["collectives"] > 0, name
    assert rows["adv_undeclared_job"]["collectives"] == 0
    assert rows["honest_inference_small"]["collectives"] == 0
    assert rows["idle"]["collectives"] == 0
    assert rows["adv_infer_with_fake_nccl"]["collectives"] > 0  # the fake ones


def test_loopback_bytes_grow_during_ddp_phases(run_dir: Path) -> None:
    assert len(netdev_bytes(run_dir / "netdev.log")) > 20
    rows = _by_phase(summarize_run(run_dir))
    for name in ("honest_pretrain_tiny", "honest_finetune_tiny", "adv_subsetted_nccl_log"):
        assert rows[name]["loopback_bytes"] is not None and rows[name]["loopback_bytes"] > 100_000, name


def test_subsetted_log_hides_most_of_the_real_traffic(run_dir: Path) -> None:
    row = _by_phase(summarize_run(run_dir))["adv_subsetted_nccl_log"]
    ranks = 2
    assert 0 < row["collectives"] < 0.5 * row["train_steps_r0"] * ranks
    assert row["collective_bytes"] < 0.5 * row["loopback_bytes"]


def test_step_records_show_each_workload(run_dir: Path) -> None:
    steps = _jsonl(run_dir / "steps.jsonl")
    kinds: dict[str, set[str]] = {}
    for s in steps:
        kinds.setdefault(s["phase"], set()).add(s["kind"])
    assert (
        "train_step" in kinds["honest_pretrain_tiny"] and "infer_token" not in kinds["honest_pretrain_tiny"]
    )
    assert (
        "infer_token" in kinds["honest_inference_small"]
        and "train_step" not in kinds["honest_inference_small"]
    )
    assert (
        "infer_token" in kinds["adv_infer_with_fake_nccl"]
        and "train_step" not in kinds["adv_infer_with_fake_nccl"]
    )
    assert {"infer_token", "train_step"} <= kinds["adv_interleaved_train_infer"]
    assert "train_step" not in kinds["idle"] and "infer_token" not in kinds["idle"]
    finetune = [s for s in steps if s["phase"] == "honest_finetune_tiny" and s["kind"] == "train_step"]
    assert finetune and all(
        "embed" in s["frozen_groups"] and s["lr"] == pytest.approx(3e-5) for s in finetune
    )
    loaded = [s for s in steps if s["kind"] == "checkpoint_loaded"]
    assert {s["phase"] for s in loaded} >= {"honest_inference_small", "honest_finetune_tiny"}


def test_sensor_stream_is_its_own_intact_chain_and_sees_both_ranks(run_dir: Path) -> None:
    from inspectorate.trace.streams import per_process_cpu, read_sensor

    log = read_sensor(run_dir / "sensor.jsonl")
    assert log.intact and log.start["hz"] >= 10 and log.frame.height > 50
    span = next(s for s in phase_spans(run_dir) if s["phase"] == "honest_pretrain_tiny")
    busy = per_process_cpu(log, span["start"], span["end"])
    assert sum(1 for cpu in busy.values() if cpu > 0.05) >= 2  # both ranks worked, seen from /proc


def test_single_rank_training_leaves_no_collective_and_one_training_rank(run_dir: Path) -> None:
    rows = _by_phase(summarize_run(run_dir))
    assert rows["adv_single_rank_train_as_infer"]["collectives"] == 0
    steps = [
        s for s in _jsonl(run_dir / "steps_rank1.jsonl") if s["phase"] == "adv_single_rank_train_as_infer"
    ]
    assert not any(s["kind"] == "train_step" for s in steps)
    steps0 = [s for s in _jsonl(run_dir / "steps.jsonl") if s["phase"] == "adv_single_rank_train_as_infer"]
    assert any(s["kind"] == "train_step" for s in steps0)


def _replayed(run_dir: Path, phase: str, segments: list[int] | None = None) -> Any:
    from inspectorate.models._corpus import load_corpus
    from inspectorate.replay import read_claim, replay_claim

    claim = read_claim(run_dir / "claims" / phase / "claim.json")
    return claim, replay_claim(claim, load_corpus(FIXTURE_CORPUS), segments)


def test_every_training_job_leaves_a_replay_claim(run_dir: Path) -> None:
    """Rank 0 of every job that ran optimizer steps wrote a claim whose step count is
    the job's; phases without training wrote none."""
    phase_done = {r["phase"]: r for r in _jsonl(run_dir / "steps.jsonl") if r.get("kind") == "phase_done"}
    written = {p.parent.name for p in (run_dir / "claims").glob("*/claim.json")}
    assert {"honest_pretrain_tiny", "honest_finetune_tiny", "honest_pretrain_small"} <= written
    assert not written & {"idle", "honest_inference_small", "adv_work_as_idle"}
    for name in written:
        claim = json.loads((run_dir / "claims" / name / "claim.json").read_text())
        assert claim["config"]["steps"] == phase_done[name]["steps"] > 0
        assert len(claim["config"]["lr_schedule"]) == claim["config"]["steps"]


def test_a_data_parallel_pretraining_claim_replays(run_dir: Path) -> None:
    """Two gloo ranks, replayed in one process: the initialisation, the first segment
    and the last land on the recorded weights, and the metric is reproduced."""
    claim, result = _replayed(run_dir, "honest_pretrain_tiny", [0, len(_claim_steps(run_dir)) - 2])
    assert claim.spec.world_size == 2 and claim.start is None
    assert result.decision == "consistent", result.reasons
    assert result.claim["start_checked"] and result.claim["start"] == "seed_init"
    assert all(s.distance <= result.tolerance.weight for s in result.segments)
    assert abs(result.metric["difference"]) <= result.tolerance.metric


def _claim_steps(run_dir: Path) -> list[int]:
    data = json.loads((run_dir / "claims" / "honest_pretrain_tiny" / "claim.json").read_text())
    return [c["step"] for c in data["checkpoints"]]


def test_a_finetune_claim_starts_from_the_pretrained_weights(run_dir: Path) -> None:
    """The fine-tune names its start by weight fingerprint: the pretraining job's final
    checkpoint, so the verifier can follow the lineage; its first segment replays."""
    pre, _ = _replayed(run_dir, "honest_pretrain_tiny", [])
    ft, result = _replayed(run_dir, "honest_finetune_tiny", [0])
    assert ft.start is not None and ft.start["weights_sha256"] == pre.checkpoints[-1].weights_sha256
    assert ft.spec.freeze_embeddings
    assert result.decision == "consistent", result.reasons


def test_verify_with_replays_settles_training_claims_and_catches_a_disguised_finetune(run_dir: Path) -> None:
    """Replay findings bound to their phases: the honest pretrain and fine-tune have P3
    settled by the verifier's re-computation; the fine-tune claimed as pretraining,
    handed over with its own (true) claim, contradicts its phase claim."""
    from inspectorate.replay import replay_finding
    from inspectorate.verify import verify_run
    from inspectorate.verify._recomputed import _finding

    def found(phase: str) -> Any:
        return _finding(replay_finding(_replayed(run_dir, phase, [0])[1]), run_dir)

    names = ["honest_pretrain_tiny", "honest_finetune_tiny", "adv_finetune_as_pretrain"]
    verdict = verify_run(run_dir, recomputed={n: [found(n)] for n in names})
    by = {p.phase: {f.property: f for f in p.findings} for p in verdict.phases}
    for honest in names[:2]:
        assert by[honest]["p3_finetune"].decision == "consistent", by[honest]["p3_finetune"]
        assert by[honest]["p3_finetune"].basis == ("replay",)
    lie = by["adv_finetune_as_pretrain"]["training_replay"]
    assert lie.decision == "inconsistent"
    assert any("claims pretrain; the replayed run starts from model" in b for b in lie.evidence["binding"])


def test_the_claims_seeds_derive_from_the_sensors_challenge(run_dir: Path) -> None:
    """With replay claims on, the sensor's start record carries a challenge and every
    claim's seed is derived from it under the claim's key."""
    from inspectorate.replay import derive_seed, read_claim
    from inspectorate.verify._sensor_features import issued_nonce

    nonce = issued_nonce(run_dir)
    assert nonce is not None and len(nonce) == 32
    for path in (run_dir / "claims").glob("*/claim.json"):
        claim = read_claim(path)
        assert claim.nonce_key is not None and claim.spec.seed == derive_seed(nonce, claim.nonce_key)


@pytest.mark.parametrize(("live", "relay"), [(False, False), (True, False), (True, True)])
def test_a_substituted_claim_and_the_challenge(
    run_dir: Path, tmp_path: Path, live: bool, relay: bool
) -> None:
    """The strongest forgery against the replay binding: the competent prover hands over,
    for its fine-tune claimed as pretraining, a real run of the claimed pretraining done
    elsewhere. Every replay check passes. Computed before or after the run (a fresh
    seed), the challenge rejects it; computed during the run on other hardware (its seed
    derived from the challenge) and handed over, the checkpoint watcher never saw its
    weights written on this host. Relayed onto the host during the phase at the claimed
    pace by a process in the workload's tree (the watcher sees the copies, fanotify a
    workload writer), its bytes crossed the host's NIC after the challenge: the binding
    stays open (settles nothing; P3 not settled), never certified."""
    from inspectorate.models._corpus import load_corpus
    from inspectorate.replay import read_claim, replay_claim, replay_finding
    from inspectorate.testbed.competent import make_competent, make_substituting
    from inspectorate.verify import verify_run
    from inspectorate.verify._recomputed import _finding

    competent = make_competent(run_dir, tmp_path / "competent")
    assert not (competent / "claims" / "adv_finetune_as_pretrain").exists()  # withheld
    sub = make_substituting(competent, tmp_path / "substitute", FIXTURE_CORPUS, live=live, relay=relay)
    path = sub / "claims" / "adv_finetune_as_pretrain" / "claim.json"
    claim = read_claim(path)
    assert claim.start is None and claim.spec.world_size == 2
    result = replay_claim(claim, load_corpus(FIXTURE_CORPUS), [0, len(claim.checkpoints) - 2])
    assert result.decision == "consistent", result.reasons
    verdict = verify_run(
        sub, recomputed={"adv_finetune_as_pretrain": [_finding(replay_finding(result), path)]}
    )
    lie = next(p for p in verdict.phases if p.phase == "adv_finetune_as_pretrain")
    by = {f.property: f for f in lie.findings}
    binding = by["training_replay"].evidence.get("binding", [])
    if relay:
        assert (
            by["training_replay"].decision == "consistent" and by["training_replay"].evidence["settles"] == []
        )
        assert "could have been relayed in (ingress" in by["training_replay"].evidence["observed"]["reason"]
        assert by["p3_finetune"].decision != "consistent" and lie.verdict == 0
    elif live:
        assert by["training_replay"].decision == "inconsistent"
        assert any("never seen written on this host" in b for b in binding), binding
    else:
        assert by["training_replay"].decision == "inconsistent"
        assert any("not derived from the verifier's challenge" in b for b in binding)


def test_verify_replay_in_one_call(run_dir: Path) -> None:
    """``verify --replay``: every handed-over claim is replayed (segment 0 plus a seeded
    draw) and bound to its phase in one call, with the same outcome as the per-phase
    ``replay`` + ``--recomputed`` route above."""
    from inspectorate.verify import verify_run
    from inspectorate.verify._replay_run import ReplayPlan, handed_over

    assert {"honest_pretrain_tiny", "honest_finetune_tiny"} <= set(handed_over(load_run(run_dir)))
    verdict = verify_run(run_dir, replay=ReplayPlan(FIXTURE_CORPUS, draws=1, seed=11))
    by = {p.phase: {f.property: f for f in p.findings} for p in verdict.phases}
    for honest in ("honest_pretrain_tiny", "honest_finetune_tiny"):
        replayed = by[honest]["training_replay"]
        assert replayed.decision == "consistent", replayed.evidence
        assert (
            replayed.evidence["draw_seed"] == 11 and replayed.evidence["segments_replayed"][0]["segment"] == 0
        )
        assert by[honest]["p3_finetune"].basis == ("replay",)
    assert by["adv_finetune_as_pretrain"]["training_replay"].decision == "inconsistent"


def test_serving_phases_hand_over_outputs_the_verifier_recomputes(run_dir: Path) -> None:
    """With replay claims on, the honest serving phase hands over its weights and every
    sequence both ranks served (testbed.handover); ``verify`` re-computes them on its own,
    binds them to the claimed size and settles P2. Training phases hand over no log, and
    no lie becomes consistent."""
    from inspectorate.models._gpt import count_params
    from inspectorate.verify import verify_run
    from inspectorate.verify._calibration import DEFAULT
    from inspectorate.verify._served_run import handed_over_served

    handed = handed_over_served(load_run(run_dir))
    assert "honest_inference_small" in handed and "honest_pretrain_tiny" not in handed
    verdict = verify_run(run_dir)
    by = {p.phase: {f.property: f for f in p.findings} for p in verdict.phases}
    served = by["honest_inference_small"]["served_model_identity"]
    assert served.decision == "consistent", served.evidence
    n = count_params(PRESETS["laptop"])
    assert served.evidence["n_params"] == n
    p2 = by["honest_inference_small"]["p2_model_size"]
    if p2.decision != "consistent":
        # The one reason allowed: the twin guard (a second model's room in the footprint).
        # At 3.2M two ranks' second copies are 51 MB, a fifth of the 256 MiB footprint
        # slack, so the guard reads the two rank runtimes' noise, not a model: CI saw an
        # honest 330.5 MB against the 319.7 MB line (2026-12-07). Above the slack-bound
        # size the guard decides (tests/verify); here it may only ever hold P2 open.
        assert p2.decision == "unverifiable", p2.evidence
        assert p2.evidence["footprint_room_for_a_second_model"], p2.evidence
        assert 2 * n * DEFAULT.infer_bytes_per_param * 2 < DEFAULT.footprint_slack_b / 4
    assert all(p.outcome != "consistent" for p in verdict.phases if p.phase.startswith("adv_"))
