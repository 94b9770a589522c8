"""Weights left still: an inference or eval phase that touched a forward pass's worth of
memory but left less than the weights it reads unchanged wrote its weights (training),
whatever its footprint; the rule fails claims and never excuses one."""

from __future__ import annotations

from inspectorate.models import GPTSpec, LlamaSpec
from inspectorate.verify._calibration import DEFAULT
from inspectorate.verify._evidence import Claim, PhaseEvidence
from inspectorate.verify._properties import Context, p1_op_type
from inspectorate.verify._stillness import read_weights_b

WIDE = GPTSpec(8, 8, 512, 64, 65)  # 25.3M: below the footprint's failing side (~34M)
N = WIDE.n_params()
W = 4 * N


def _phase(
    intervals: list[list[float]], op: str = "eval", spec=WIDE, gpu: float | None = None
) -> PhaseEvidence:  # type: ignore[no-untyped-def]
    n = spec.n_params()
    ev = PhaseEvidence("p", Claim(op, None, op, None, n, model="m"), 0.0, 10.0)
    ev.windows = {"tokens": 1000, "batch_size": 4, "sequence_length": 8}
    ev.sensor = {"cpu_s": 9.0, "cores": 0.9, "footprint_b": 16 * n, "mem_procs": 1, "busy_procs": 1}
    ev.sensor["ws_intervals"] = intervals
    ev.sync_bytes = {"sensor_net": 0.0}
    ev.streams = {"sensor": True}
    ev.model_spec = spec
    ev.gpu_util = gpu
    return ev


def _interval(
    still: float,
    data: float,
    sd: float = 2e6,
    t0: float = 0.0,
    t1: float = 10.0,
    grew: float = 0.0,
    held: float = 0.0,
) -> list[float]:
    return [t0, t1, data + 50e6, data, still, sd, grew, held]


def test_training_under_an_eval_claim_is_inconsistent_where_the_footprint_cannot_tell() -> None:
    """25.3M parameters, a footprint of 16 B/param: under the footprint's failing side.
    Training touches 16 B/param and leaves only the runtime unchanged (measured 3-40 MB)."""
    ev = _phase([_interval(still=20e6, data=16 * N + 30e6)])
    ev.sensor["footprint_b"] = 16 * N + 20e6
    lie = p1_op_type(ev, Context(DEFAULT))
    assert lie.decision == "inconsistent", lie.evidence
    assert lie.evidence["checks"]["weights_rewritten"] > 0.5
    assert lie.evidence["checks"].get("footprint_holds_training_state", 0) < 0.5  # memory alone passed it


def test_below_the_runtime_floor_a_small_model_is_not_judged_on_stillness() -> None:
    """At 3.2M the weights (13 MB) are less than what a training runtime leaves unchanged:
    the rule does not fail it (and, failing only, never passes anything)."""
    small = GPTSpec(4, 4, 256, 128, 65)
    lie = p1_op_type(
        _phase([_interval(still=20e6, data=16 * small.n_params() + 30e6)], spec=small), Context(DEFAULT)
    )
    assert "weights_rewritten" not in lie.evidence["checks"]


def test_an_honest_eval_leaves_its_weights_still_and_is_not_flagged() -> None:
    honest = p1_op_type(_phase([_interval(still=W + 10e6, data=W + 40e6)]), Context(DEFAULT))
    assert "weights_rewritten" not in honest.evidence["checks"], honest.evidence
    assert honest.evidence["still_mean_b"] >= honest.evidence["still_needed_b"]


def test_sampling_error_is_allowed_for() -> None:
    """A still estimate short of the need by less than its error does not fail."""
    need = 0.8 * read_weights_b(_phase([]), N)
    noisy = p1_op_type(_phase([_interval(still=need - 10e6, data=W, sd=8e6)]), Context(DEFAULT))
    assert "weights_rewritten" not in noisy.evidence["checks"], noisy.evidence


def test_the_rule_stands_aside_where_it_cannot_speak() -> None:
    ctx = Context(DEFAULT)
    idle_server = p1_op_type(_phase([_interval(still=1e6, data=2e6)]), ctx)  # touched no forward's worth
    assert "still_intervals" not in idle_server.evidence
    assert "forward" in idle_server.evidence["still_not_judged"]  # it says why it did not judge
    on_gpu = p1_op_type(_phase([_interval(still=1e6, data=16 * N)], gpu=40.0), ctx)  # weights on a device
    assert "weights_rewritten" not in on_gpu.evidence["checks"]
    assert "GPU" in on_gpu.evidence["still_not_judged"]
    # a server that loaded its model inside the interval: its weights arrived after the
    # draw and cannot read as still
    loading = p1_op_type(_phase([_interval(still=2e6, data=W + 20e6, grew=W + 10e6, held=0.9)]), ctx)
    assert "weights_rewritten" not in loading.evidence["checks"], loading.evidence
    # ... but growth allocated just before the interval's end is no load: judged
    feint = p1_op_type(_phase([_interval(still=2e6, data=16 * N, grew=W + 10e6, held=0.05)]), ctx)
    assert feint.evidence["checks"].get("weights_rewritten", 0) > 0.5, feint.evidence
    older_sensor = p1_op_type(_phase([]), ctx)
    assert "still_intervals" not in older_sensor.evidence
    assert "older sensor" in older_sensor.evidence["still_not_judged"]


def test_lookup_tables_are_not_required_to_be_read() -> None:
    """An untied input embedding is read a few rows per batch: a Llama's need leaves it out."""
    llama = LlamaSpec(n_layers=2, dim=256, n_heads=4, n_kv_heads=4, ffn_hidden=688, vocab_size=32000)
    n = llama.n_params()
    assert read_weights_b(_phase([], spec=llama), n) == 4 * (n - 32000 * 256)


def test_a_declared_bf16_server_is_held_to_half_the_bytes() -> None:
    """An honest server of bf16 weights reads 2 B/param: declared, it is not held to fp32's."""
    bf16 = GPTSpec(8, 8, 512, 64, 65, weights_dtype="bf16")
    still = 2 * N + 5e6  # its weights, read and unchanged
    as_fp32 = p1_op_type(_phase([_interval(still=still, data=2 * N + 40e6)]), Context(DEFAULT))
    assert as_fp32.evidence["checks"].get("weights_rewritten", 0) > 0.5  # held to fp32, it would fail
    declared = p1_op_type(_phase([_interval(still=still, data=2 * N + 40e6)], spec=bf16), Context(DEFAULT))
    assert "weights_rewritten" not in declared.evidence["checks"], declared.evidence


def test_an_unknown_weights_dtype_is_refused_naming_the_field() -> None:
    import pytest

    from inspectorate.errors import InputError
    from inspectorate.models._files import spec_from_dict

    data = WIDE.to_dict()
    assert "weights_dtype" not in data["config"]  # the default stays unwritten
    data["config"]["weights_dtype"] = "fp8"
    with pytest.raises(InputError, match="weights_dtype"):
        spec_from_dict(data)


def test_growth_held_is_read_from_the_memory_samples() -> None:
    from inspectorate.verify._sensor_features import _held

    ts = [float(t) for t in range(11)]
    loaded_early = [100.0] + [200.0] * 10  # a model loaded in the first second, kept
    feint = [100.0] * 10 + [200.0]  # memory allocated just before the probe
    assert _held(ts, loaded_early, 0.0, 10.0, 100.0) > 0.8
    assert _held(ts, feint, 0.0, 10.0, 100.0) < 0.2
    assert _held(ts[:2], loaded_early[:2], 0.0, 10.0, 100.0) == 0.0  # too few readings to say


def _nudged(nudged: float, sd: float, t0: float = 0.0, t1: float = 10.0) -> list[float]:
    return [t0, t1, nudged, sd]


def test_a_frozen_server_beside_a_trained_copy_fails_on_the_nudged_copy() -> None:
    """The competent post-trainer: the served weights stay still (the still rule passes
    it), a second copy moved by SGD in one interval of three reads as nudged."""
    quiet = [_interval(still=1.1 * W, data=1.3 * W, t0=t, t1=t + 3) for t in (0, 3, 6)]
    ev = _phase(quiet, op="inference")
    ev.sensor["ws_nudged"] = [_nudged(0, 0, 0, 3), _nudged(0.9 * W, 0.1 * W, 3, 6), _nudged(0, 0, 6, 9)]
    f = p1_op_type(ev, Context(DEFAULT))
    assert f.decision == "inconsistent", f.evidence
    assert f.evidence["checks"]["weights_nudged"] > 0.5
    assert "weights_rewritten" not in f.evidence["checks"]


def test_an_honest_server_nudges_nothing_and_an_uncertain_estimate_does_not_fail() -> None:
    quiet = [_interval(still=1.1 * W, data=1.3 * W)]
    for rows in ([_nudged(0, 0)], [_nudged(0.6 * W, 0.1 * W)], [_nudged(2e6, 1e6)]):
        ev = _phase(quiet, op="inference")
        ev.sensor["ws_nudged"] = rows
        f = p1_op_type(ev, Context(DEFAULT))
        assert "weights_nudged" not in f.evidence["checks"], (rows, f.evidence)
    gpu = _phase(quiet, op="inference", gpu=50.0)  # weights may live on the GPU: not judged
    gpu.sensor["ws_nudged"] = [_nudged(W, 0)]
    f = p1_op_type(gpu, Context(DEFAULT))
    assert "weights_nudged" not in f.evidence["checks"]
    assert "GPU" in f.evidence["nudged_not_judged"]
    old = _phase(quiet, op="inference")  # a sensor from before the field says so
    assert "older sensor" in p1_op_type(old, Context(DEFAULT)).evidence["nudged_not_judged"]
