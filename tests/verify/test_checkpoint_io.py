"""The compute check excuses the CPU of writing handed-over replay checkpoints (and only
that), and a gap before a job may hold the cost of building the job's declared model."""

from __future__ import annotations

import pytest

pytest.importorskip("torch")

from inspectorate.verify import Inspector
from inspectorate.verify._calibration import DEFAULT
from inspectorate.verify._evidence import Claim, PhaseEvidence
from inspectorate.verify._physics import checkpoint_io, claimed_work, compute
from inspectorate.verify._properties import Context
from inspectorate.verify._spotcheck import checkpoint_cpu_s_per_byte, spot_check

GB = 1e9


def _phase(cpu_s: float, write_b: float | None, files_b: float) -> PhaseEvidence:
    claim = Claim("pretrain:tiny", "pretrain", "training", "tiny", 28576, world_size=2, model="micro")
    ev = PhaseEvidence("p", claim, 0.0, 10.0)
    ev.windows = {"tokens": 20_000, "batch_size": 8, "sequence_length": 32}
    ev.sensor = {"cpu_s": cpu_s, "cores": cpu_s / 10.0, "write_b": write_b}
    ev.checkpoint_files_b = files_b
    return ev


def _expected_cpu_s() -> float:
    work = claimed_work(_phase(1.0, None, 0.0))
    assert work is not None
    check = spot_check(work, DEFAULT.spot_check_s)
    assert not isinstance(check, str)
    return check.cpu_s_per_token * 20_000


def test_the_excuse_is_the_sensor_seen_bytes_capped_by_the_checkpoints_handed_over():
    per_byte = checkpoint_cpu_s_per_byte()
    assert per_byte is not None and per_byte > 0
    assert checkpoint_io(_phase(5.0, 2 * GB, 3 * GB)) == {
        "checkpoint_bytes": 2 * GB,
        "io_cpu_s": 2 * GB * per_byte,
    }
    assert (
        checkpoint_io(_phase(5.0, 9 * GB, 1 * GB))["checkpoint_bytes"] == 1 * GB
    )  # wrote more than it handed over
    assert checkpoint_io(_phase(5.0, 9 * GB, 0.0)) == {}  # no claim: writing excuses nothing
    assert checkpoint_io(_phase(5.0, None, 3 * GB)) == {}  # an old sensor without the counter


def test_checkpoint_writes_keep_an_honest_job_consistent_and_hide_nothing_else():
    """The job burned twice the upper tolerance of its claimed work, all of it beyond the
    claim spent writing the checkpoints it hands over: consistent. The same CPU with the
    bytes written but no checkpoint handed over (writes as cover for hidden work), or
    with the files present but nothing written while the phase ran: inconsistent."""
    ctx = Context(DEFAULT)
    expected = _expected_cpu_s()
    per_byte = checkpoint_cpu_s_per_byte()
    assert per_byte is not None
    target = expected * DEFAULT.compute_high * 0.5  # comfortably inside the tolerance
    extra = expected * DEFAULT.compute_high * 1.5  # what the writes cost on top
    written = extra / per_byte
    honest = compute(_phase(target + extra, written, written), ctx)
    assert honest.decision == "consistent", honest.evidence
    assert honest.evidence["io_cpu_s"] == pytest.approx(extra, rel=1e-5)  # findings keep 6 digits
    assert compute(_phase(target + extra, written, 0.0), ctx).decision == "inconsistent"
    assert compute(_phase(target + extra, 0.0, written), ctx).decision == "inconsistent"


def test_a_gap_may_hold_building_the_next_jobs_declared_model():
    inspector = Inspector()
    following = _phase(1.0, None, 0.0)
    following.claim = Claim(
        "pretrain:small", "pretrain", "training", "small", None, world_size=2, model="laptop"
    )
    work = claimed_work(following)
    assert work is not None
    check = spot_check(work, DEFAULT.spot_check_s)
    assert not isinstance(check, str) and check.build_cpu_s > 0
    allowance = DEFAULT.gap_cpu_s + 2 * check.build_cpu_s
    gap = {"after": "a", "before": "b", "sensor": {"cpu_s": DEFAULT.gap_cpu_s + check.build_cpu_s}}
    judged = inspector.judge_gap(gap, following)
    assert judged["decision"] == "consistent" and judged["allowed_cpu_s"] == pytest.approx(allowance)
    assert inspector.judge_gap(gap)["decision"] == "inconsistent"  # nothing follows: no build to allow


def test_the_cap_counts_only_checkpoint_files_the_claim_names(tmp_path):
    """Padding the claim folder with files the claim does not name (which no replay
    reads), or naming a path out of it, raises the cap by nothing."""
    import json

    from inspectorate.verify._evidence import _checkpoint_bytes

    folder = tmp_path / "claims" / "p"
    folder.mkdir(parents=True)
    (folder / "ckpt_0.pt").write_bytes(b"\0" * 1000)
    (folder / "ckpt_1.pt").write_bytes(b"\0" * 500)
    (folder / "padding.pt").write_bytes(b"\0" * 10**6)
    (tmp_path / "outside.pt").write_bytes(b"\0" * 10**6)
    files = ["ckpt_0.pt", "ckpt_1.pt", "../../outside.pt"]
    (folder / "claim.json").write_text(json.dumps({"checkpoints": [{"file": f} for f in files]}))
    assert _checkpoint_bytes(tmp_path, "p") == 1500.0
    assert _checkpoint_bytes(tmp_path, "absent") == 0.0
