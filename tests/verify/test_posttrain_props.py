"""posttrain_* properties on hand-built evidence: memory, compute, writes, drift."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from inspectorate.difr import (  # noqa: E402
    LogHeader,
    ProjectionSpec,
    SamplingConfig,
    ServeOptions,
    generate,
    save_checkpoint,
    write_log,
)
from inspectorate.models._gpt import GPT, preset  # noqa: E402
from inspectorate.verify import _posttrain as P  # noqa: E402
from inspectorate.verify._evidence import Claim, PhaseEvidence  # noqa: E402
from inspectorate.verify._properties import Context  # noqa: E402

VOCAB = "".join(chr(33 + i) for i in range(65))


def _evidence(root: Path, name: str, **sensor: float) -> PhaseEvidence:
    ev = PhaseEvidence(
        name, Claim("inference:tiny", "inference", "inference", "tiny", 28_576, [], 1), 0.0, 10.0
    )
    ev.run_path, ev.sensor, ev.windows = root, dict(sensor), {"batch_size": 2}
    return ev


def _setup(tmp_path: Path, update: bool, batches: int = 4, between: bool = False) -> PhaseEvidence:
    """A served log of ``batches`` batches; ``update``: the policy takes one SGD-sized step
    at batch 2 and keeps it; ``between``: it serves the stepped policy only away from both
    ends of the phase (the declared weights at the first and last two batches)."""
    torch.manual_seed(0)
    model = GPT(preset("micro")).eval()
    stepped = GPT(preset("micro")).eval()
    stepped.load_state_dict(model.state_dict())
    with torch.no_grad():
        for p in stepped.parameters():
            p.add_(torch.randn_like(p) * 1e-3)
    phase = tmp_path / "served" / "ph"
    phase.mkdir(parents=True)
    save_checkpoint(phase / "declared.pt", model, VOCAB)
    from inspectorate.difr import model_hash

    declared = model_hash(model)
    (phase / "r0").mkdir()
    for b in range(batches):
        stepped_now = (update and b >= 2) or (between and 2 <= b < batches - 2)
        served = stepped if stepped_now else model
        opts = ServeOptions(
            SamplingConfig(0.8, 40, seed=b),
            max_new=8,
            batch_size=2,
            projection=ProjectionSpec(seed=3, layer=1, dim=4),
        )
        recs = [g.record for g in generate(served, [[1, 2, 3, 4], [5, 6, 7, 8]], opts)]
        write_log(
            phase / "r0" / f"b{b:06d}.jsonl",
            LogHeader(declared, VOCAB, opts.sampling, projection=opts.projection),
            recs,
        )
    return _evidence(tmp_path, "ph", footprint_b=4 * 28_576 + 1e5, cpu_s=1.0, write_b=0.0)


def test_drift_catches_a_policy_updated_mid_phase_and_passes_the_honest_server(tmp_path):
    honest = P.served_drift(_setup(tmp_path / "h", update=False), Context())
    updated = P.served_drift(_setup(tmp_path / "u", update=True), Context())
    assert str(honest.decision) == "consistent" and honest.evidence["late_over"] == 0
    assert str(updated.decision) == "inconsistent" and updated.evidence["early_over"] == 0


def test_drift_draws_between_the_ends_a_policy_served_only_there(tmp_path):
    """Declared weights at both ends, the updated policy between: the ends alone pass it."""
    ev = _setup(tmp_path, update=False, batches=8, between=True)
    seen = []
    for head in ("a" * 64, "b" * 64, None):
        f = P.served_drift(ev, Context(sensor_end={"t": 0.0, "clean": True, "head": head}))
        seen.append((str(f.decision), f.evidence["early_over"], f.evidence["middle_sequences"]))
    assert all(s == ("inconsistent", 0, 2 * P.SAMPLE_FILES) for s in seen), seen
    assert f.evidence["middle_drawn_by"].startswith("phase name")


def test_memory_and_writes_catch_optimizer_state_and_checkpoints(tmp_path):
    ev = _setup(tmp_path, update=False)
    assert str(P.resident_state(ev, Context()).decision) == "consistent"
    n = ev.claim.n_params or 0
    ev.sensor["footprint_b"] = 4 * n + 12 * n + P.MEMORY_FIXED_B + 1  # AdamW state + grads
    ev.claim = Claim("inference:tiny", "inference", "inference", "tiny", n, [], 1)
    assert str(P.resident_state(ev, Context()).decision) == "inconsistent"
    assert str(P.weight_writes(ev, Context()).decision) == "consistent"
    ev.sensor["write_b"] = 10 * 4 * n  # ten checkpoints of the policy
    assert str(P.weight_writes(ev, Context()).decision) == "inconsistent"


def test_other_claims_are_not_judged(tmp_path):
    ev = _setup(tmp_path, update=False)
    ev.claim = Claim("pretrain:tiny", "pretrain", "training", "tiny", 28_576, [], 1)
    for fn in (P.resident_state, P.backward_share, P.weight_writes, P.served_drift):
        f = fn(ev, Context())
        assert str(f.decision) == "consistent" and f.evidence["applies"] is False


def test_backward_share_prices_served_tokens_by_the_verifiers_own_decode(tmp_path, monkeypatch):
    ev = _setup(tmp_path, update=False)
    files = P.served_files(ev)
    per_token = P.replay_cpu_per_token(P.declared(ev), files, reps=1)
    assert per_token is not None and 0 < per_token < 1.0  # a real timing of the decode
    _, tokens = P.served_tokens(files)
    assert tokens == 4 * 2 * (4 + 8)  # 4 batches of 2 sequences, 4 prompt + 8 new tokens
    monkeypatch.setattr(P, "replay_cpu_per_token", lambda *a, **k: 1e-3)
    ev.sensor["cpu_s"] = 1e-3 * tokens * 1.2  # honest serving plus log-writing overhead
    ok = P.backward_share(ev, Context())
    assert str(ok.decision) == "consistent" and abs(ok.evidence["ratio"] - 1.2) < 1e-9
    ev.sensor["cpu_s"] = 1e-3 * tokens * (P.COMPUTE_LIMIT + 1)  # a hidden backward pass beside the decode
    bad = P.backward_share(ev, Context())
    assert str(bad.decision) == "inconsistent" and abs(bad.evidence["ratio"] - P.COMPUTE_LIMIT - 1) < 1e-9


def test_padded_logs_buy_no_room_for_a_checkpoint(tmp_path):
    """The write slack grows with the logged bytes, which are the prover's own files:
    capped, so padding the logs with 10x a checkpoint does not hide the checkpoint."""
    n = 3_200_000  # the bench's small model: a 12.8 MB fp32 checkpoint
    ev = _setup(tmp_path, update=False)
    ev.claim = Claim("inference:small", "inference", "inference", "small", n, [], 1)
    pad = tmp_path / "served" / "ph" / "r0" / "b000099.jsonl"
    pad.write_bytes(b"x" * (10 * 4 * n))  # junk "served" bytes, written and counted as logged
    logged = sum(f.stat().st_size for f in (tmp_path / "served" / "ph" / "r0").glob("b*.jsonl"))
    declared = (tmp_path / "served" / "ph" / "declared.pt").stat().st_size
    ev.sensor["write_b"] = logged + declared  # exactly what was logged: nothing hidden
    assert str(P.weight_writes(ev, Context()).decision) == "consistent"
    ev.sensor["write_b"] = logged + declared + 4 * n  # plus one checkpoint of the policy
    found = P.weight_writes(ev, Context())
    assert str(found.decision) == "inconsistent", found.evidence
    assert found.evidence["slack_b"] <= P.WRITE_SLACK_CAP_B + P.WRITE_RECORDS_B


def test_state_held_but_untouched_is_not_a_post_trainer(tmp_path):
    """A server that trained earlier in its process keeps AdamW's state resident; the
    working set over the phase (capture._workset) shows only the served weights touched:
    not post-training. One touch of a second copy plus gradients (an update) is."""
    ev = _setup(tmp_path, update=False)
    n = ev.claim.n_params or 0
    ev.sensor["footprint_b"] = 4 * n + 12 * n + P.MEMORY_FIXED_B + 1
    ev.claim = Claim("inference:tiny", "inference", "inference", "tiny", n, [], 1)
    ev.sensor.update(ws_max_b=4.0 * n, ws_covered_s=ev.duration)
    held = P.resident_state(ev, Context())
    assert str(held.decision) == "consistent" and held.evidence["held_untouched"], held.evidence
    ev.sensor["ws_max_b"] = 12.0 * n + P.serving_bound_b(ev, n)  # trained copy + grads touched
    assert str(P.resident_state(ev, Context()).decision) == "inconsistent"
    ev.sensor.update(ws_max_b=4.0 * n, ws_covered_s=0.3 * ev.duration)  # too little of the phase
    assert str(P.resident_state(ev, Context()).decision) == "inconsistent"
