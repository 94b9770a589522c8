"""An eval phase whose handed-over batches re-computed is priced as scoring given text,
not as generation: a larger model evaluating beside a declared-size twin (whose batches
are the ones handed over) shows CPU far past the forward's price."""

from __future__ import annotations

from inspectorate.verify._recomputed import settle
from inspectorate.verify._registry import CONSISTENT, INCONSISTENT, Finding


def _compute(ratio: float, priced: str = "generative eval") -> Finding:
    return Finding(
        "compute",
        0.3,
        CONSISTENT,
        {"observed_over_expected": ratio, "tolerance": [0.47, 2.0], "band": {"priced_up_to": priced}},
    )


def _eval(decision: str = CONSISTENT) -> Finding:
    return Finding("eval_recompute", 0.0, decision, {"binding": {"bound": True}})


def _by(found: list[Finding]) -> dict[str, Finding]:
    return {f.property: f for f in found}


def test_a_twin_evaluation_past_the_forward_price_is_inconsistent_once_batches_recompute():
    # measured: the 24.2M stranger Llama evaluated beside a 1.19M twin, 10.3x the forward
    found = _by(settle([_compute(10.3)], [_eval()]))
    assert found["compute"].decision == INCONSISTENT
    assert found["compute"].score > 0.8
    assert "scoring given text" in found["compute"].evidence["band"]["priced_up_to"]


def test_an_honest_eval_at_the_forward_price_stays_consistent():
    found = _by(settle([_compute(1.3)], [_eval()]))
    assert found["compute"].decision == CONSISTENT


def test_without_a_consistent_recomputation_eval_stays_priced_up_to_generation():
    assert _by(settle([_compute(10.3)], []))["compute"].decision == CONSISTENT
    unbound = Finding("eval_recompute", 1.0, INCONSISTENT, {})
    assert _by(settle([_compute(10.3)], [unbound]))["compute"].decision == CONSISTENT


def test_serving_prices_are_left_alone():
    found = _by(settle([_compute(10.3, "generation re-reading the prefix")], [_eval()]))
    assert found["compute"].decision == CONSISTENT
