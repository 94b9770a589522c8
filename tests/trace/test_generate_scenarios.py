"""Every injected generator scenario violates the shipped commitment it is paired with
(commitments/README.md), and ``cap`` makes over_cap cross a cap of the caller's."""

from __future__ import annotations

import pytest

from inspectorate.commitment import check, load_commitment
from inspectorate.data import commitment_path
from inspectorate.errors import InputError
from inspectorate.trace import GenSpec, generate_trace
from inspectorate.trace._generate import INJECTED, SCENARIO_COMMITMENT


def test_every_injected_scenario_names_a_commitment():
    assert set(SCENARIO_COMMITMENT) == set(INJECTED)


@pytest.mark.parametrize("scenario", INJECTED)
def test_scenario_flags_under_its_paired_commitment(scenario):
    # the demo's size (8 chips x 2 h), as the pairing is documented; generate_trace
    # carries the head the generator publishes (``trace generate``'s sidecar)
    trace = generate_trace(GenSpec(chips=8, hours=2, scenario=scenario, seed=1))
    honest = generate_trace(GenSpec(chips=8, hours=2, scenario="training", seed=1))
    commitment = load_commitment(commitment_path(SCENARIO_COMMITMENT[scenario]))
    assert check(honest, commitment).compliant, "the honest run must pass the paired commitment"
    verdict = check(trace, commitment)
    assert not verdict.compliant, f"{scenario} passes {commitment.id}"


def test_cap_makes_over_cap_cross_the_callers_cap():
    cap = 3.0e19  # an honest 8-chip, 2-hour run does ~2.3e19: twice that would be 4.6e19
    commitment = load_commitment(
        {
            "id": "c",
            "deterministic_rules": [{"kind": "aggregate_flop_cap", "op_type": "training", "threshold": cap}],
        }
    )
    honest = generate_trace(GenSpec(chips=8, hours=2, scenario="training"))
    assert check(honest, commitment).compliant
    crossed = generate_trace(GenSpec(chips=8, hours=2, scenario="over_cap", cap=cap))
    assert not check(crossed, commitment).compliant
    assert float(crossed.frame["flops"].sum()) == pytest.approx(1.25 * cap, rel=0.02)
    # under the honest total already: the run is not scaled below what it did
    small = generate_trace(GenSpec(chips=8, hours=2, scenario="over_cap", cap=1e18))
    assert float(small.frame["flops"].sum()) == pytest.approx(float(honest.frame["flops"].sum()), rel=1e-9)


@pytest.mark.parametrize(
    "spec, message",
    [
        (GenSpec(scenario="over_cap", cap=1e25), r"cannot cross 1e\+25 FLOP"),
        (GenSpec(scenario="over_cap", cap=-1.0), "positive"),
        (GenSpec(scenario="training", cap=1e19), "over_cap only"),
    ],
)
def test_bad_cap_is_input_error_naming_the_option(spec, message):
    with pytest.raises(InputError, match=message) as err:
        generate_trace(spec)
    assert err.value.path == "--cap"
