"""The failing side of the memory separation: above the separation size, a serving or
eval claim whose footprint holds most of training's gradients and optimizer state
(12 B/param beyond the weights) is inconsistent; an honest server's is not, and below
the separation size memory says nothing either way."""

from __future__ import annotations

from inspectorate.models import MLPSpec
from inspectorate.verify._calibration import DEFAULT
from inspectorate.verify._evidence import Claim, PhaseEvidence
from inspectorate.verify._properties import Context, p1_op_type

WIDE = MLPSpec(65, 16, 64, (5120, 5120), "gelu")  # 31.8M: above the ~22M separation size
N = WIDE.n_params()


def _serve(footprint: float, n: int = N, op: str = "inference") -> PhaseEvidence:
    ev = PhaseEvidence("p", Claim(op, None, op, None, n, model="m"), 0.0, 10.0)
    ev.windows = {"tokens": 1000, "batch_size": 4, "sequence_length": 8}
    ev.sensor = {"cpu_s": 9.0, "cores": 0.9, "footprint_b": footprint, "mem_procs": 1, "busy_procs": 1}
    ev.sync_bytes = {"sensor_net": 0.0}
    ev.streams = {"sensor": True}
    ev.model_spec = WIDE
    return ev


def test_a_serving_claim_holding_training_state_is_inconsistent_above_the_separation_size():
    ctx = Context(DEFAULT)
    honest = p1_op_type(_serve(4 * N + 80e6), ctx)  # weights + runtime residue
    assert honest.decision == "consistent", honest.evidence
    training = p1_op_type(_serve(16 * N + 100e6), ctx)  # weights, grads, AdamW, activations
    assert training.decision == "inconsistent", training.evidence
    assert training.evidence["checks"]["footprint_holds_training_state"] > 0.5
    evaluating = p1_op_type(_serve(16 * N + 100e6, op="eval"), ctx)
    assert evaluating.decision == "inconsistent", evaluating.evidence


def test_below_the_separation_size_memory_does_not_decide():
    small = 2_000_000  # 12 B/param = 24 MB, under the footprint slack
    found = p1_op_type(_serve(16 * small + 100e6, n=small), Context(DEFAULT))
    assert "footprint_holds_training_state" not in found.evidence.get("checks", {})


def test_above_the_failing_side_training_fails_and_a_spare_weights_copy_passes():
    """From slack / 8 B (~34M) up, AdamW training (16 B/param) is past what serving can
    hold (weights + one spare copy + cache + logits + the slack); an honest server that
    keeps the state dict it loaded (8 B/param) and runtime noise is not flagged."""
    n, ctx = 40_000_000, Context(DEFAULT)
    lie = p1_op_type(_serve(16 * n, n=n), ctx)  # weights, grads, AdamW; no activations
    assert lie.decision == "inconsistent", lie.evidence
    spare = p1_op_type(_serve(8 * n + 0.9 * DEFAULT.footprint_slack_b, n=n), ctx)
    assert spare.decision != "inconsistent", spare.evidence


def test_between_the_two_sides_memory_decides_only_past_the_spare_copy():
    """At 24.2M (a stranger's Llama under capture: honest serving 127 MB, training
    claimed as serving 475 MB) training's bare 16 B/param is within the spare-copy
    allowance, so memory alone does not flag it; the measured 475 MB (activations and
    allocator residue on top) is past it, by 13 MB."""
    n, ctx = 24_192_512, Context(DEFAULT)
    assert p1_op_type(_serve(16 * n, n=n), ctx).decision != "inconsistent"
    assert p1_op_type(_serve(475e6, n=n), ctx).decision == "inconsistent"
    assert p1_op_type(_serve(127e6, n=n), ctx).decision == "consistent"


def _with_working_set(ev: PhaseEvidence, ws: float, covered: float) -> PhaseEvidence:
    ev.sensor = {**ev.sensor, "ws_max_b": ws, "ws_probes": 1, "ws_covered_s": covered}
    return ev


def test_training_state_held_but_untouched_is_not_training():
    """An evaluation inside a training run keeps its optimizer alive: the footprint holds
    training's state (16 B/param), but the working set (the MMU's accessed bits,
    capture._workset) shows only the weights and activations touched, below one AdamW
    step's 16 B/param: P1 is consistent and settled by the sensor."""
    ctx = Context(DEFAULT)
    held = 16 * N + 100e6
    evaluating = p1_op_type(_with_working_set(_serve(held, op="eval"), 4 * N + 60e6, 10.0), ctx)
    assert evaluating.decision == "consistent", evaluating.evidence
    assert "sensor" in evaluating.basis
    assert evaluating.evidence["footprint_holds_training_state_untouched"] > 0.5
    assert evaluating.evidence["checks"]["working_set_excludes_training"] < 0.5


def test_a_working_set_that_touches_the_state_or_covers_too_little_excuses_nothing():
    ctx = Context(DEFAULT)
    held = 16 * N + 100e6
    touched = p1_op_type(_with_working_set(_serve(held), 16 * N + 50e6, 10.0), ctx)
    assert touched.decision == "inconsistent", touched.evidence  # the state is used: training
    brief = p1_op_type(_with_working_set(_serve(held), 4 * N, 4.0), ctx)  # 4 s of a 10 s phase
    assert brief.decision == "inconsistent", brief.evidence
    # an honest footprint with a large working set (big-batch activations) is not failed by it
    honest = p1_op_type(_with_working_set(_serve(4 * N + 80e6), 20 * N, 10.0), ctx)
    assert honest.decision == "consistent", honest.evidence


def test_a_decoy_memory_holder_does_not_widen_the_working_set_excuse():
    """Holding memory in a second process raises the count of model holders; the
    working-set bound stays one copy's, so training beside a decoy is not excused."""
    ev = _with_working_set(_serve(16 * N + 100e6), 16 * N + 80e6, 10.0)
    ev.sensor["mem_procs"] = 2
    found = p1_op_type(ev, Context(DEFAULT))
    assert "working_set_excludes_training" not in found.evidence["checks"], found.evidence
