"""An idle claim on a busy host: CPU time says what the tree got, the PSI wait share what
it asked for. A starved loop that got less than the CPU allowance still fails; an honest
sleeper whose wake-ups wait a scheduling delay each passes; a sensor without PSI is
judged on CPU alone, as before."""

from __future__ import annotations

from inspectorate.verify._calibration import DEFAULT
from inspectorate.verify._evidence import Claim, PhaseEvidence
from inspectorate.verify._physics import compute
from inspectorate.verify._properties import Context, p1_op_type


def _idle(cores: float, wait: float | None) -> PhaseEvidence:
    ev = PhaseEvidence("p", Claim("idle", None, "idle", None, None), 0.0, 10.0)
    ev.sensor = {"cpu_s": cores * 10.0, "cores": cores, "mem_procs": 1}
    if wait is not None:
        ev.sensor["cpu_wait_share"] = wait
    return ev


def test_a_starved_loop_under_the_cpu_allowance_is_not_idle():
    # measured on this 2-CPU box: a nice-19 loop beside 20 busy neighbours got 0.002
    # cores and waited 0.92 of the time
    starved = _idle(0.002, 0.92)
    f = compute(starved, Context(DEFAULT))
    assert f.decision == "inconsistent", f.evidence
    assert f.evidence["cpu_wait_share"] == 0.92
    assert p1_op_type(starved, Context(DEFAULT)).decision == "inconsistent"
    # the same CPU with no wait reading (an older sensor, no PSI): CPU alone, passes
    old = compute(_idle(0.002, None), Context(DEFAULT))
    assert old.decision == "consistent" and old.evidence["cpu_wait"].startswith("not measured")


def test_an_honest_sleeper_on_a_busy_host_stays_idle():
    # a 100 Hz heartbeat waited 0.11-0.14 of the time at load 3-12
    for wait in (0.0, 0.14, 0.3):
        f = compute(_idle(0.007, wait), Context(DEFAULT))
        assert f.decision == "consistent", (wait, f.evidence)
        assert p1_op_type(_idle(0.007, wait), Context(DEFAULT)).decision != "inconsistent"


def test_the_wait_share_never_excuses_cpu_over_the_allowance():
    f = compute(_idle(0.5, 0.0), Context(DEFAULT))
    assert f.decision == "inconsistent", f.evidence
