"""compute with relay peers (``verify._relay``): a busy peer leaves a passing idle phase
unverifiable and names it; a quiet one is recorded and changes nothing; a phase that
already failed keeps failing."""

from __future__ import annotations

from inspectorate.verify._calibration import DEFAULT
from inspectorate.verify._evidence import Claim, PhaseEvidence
from inspectorate.verify._physics import compute
from inspectorate.verify._properties import Context
from inspectorate.verify._relay import relay_allowance
from inspectorate.verify._settle import would_settle


def _watch(rise: float) -> dict:
    channel = {"t": 1.0, "pid": 4242, "comm": "python", "via": "unix", "address": "/tmp/x.sock"}
    samples = [(1.0, 10.0), (5.0, 10.0 + rise), (30.0, 10.0 + rise + 50.0)]  # the last is after the phase
    return {
        "escapes": [],
        "problems": [],
        "relays": {4242: {"channels": [channel], "samples": samples, "gone": None}},
    }


def _idle(cores: float) -> PhaseEvidence:
    ev = PhaseEvidence("p", Claim("idle", None, "idle", None, None), 0.0, 10.0)
    ev.sensor = {"cpu_s": cores * 10.0, "cores": cores, "mem_procs": 1}
    return ev


def test_a_busy_relay_peer_leaves_an_idle_phase_unverifiable_naming_it():
    ev = _idle(0.001)
    assert relay_allowance(ev, DEFAULT) == DEFAULT.idle_cores * 10.0 + 0.1
    f = compute(ev, Context(escapes=_watch(3.0)))
    assert f.decision == "unverifiable", f
    assert f.evidence["reason"].startswith(
        "work may have been relayed to pid 4242 (python) outside the capture"
    )
    assert "unix socket /tmp/x.sock: 3.0 CPU-s" in f.evidence["reason"]
    assert "relay peer captured too" in (would_settle(f) or "")


def test_a_quiet_relay_peer_is_recorded_and_changes_nothing():
    f = compute(_idle(0.001), Context(escapes=_watch(0.2)))
    assert f.decision == "consistent" and f.evidence["relay_peers"][0]["cpu_s"] == 0.2
    assert compute(_idle(0.001), Context()).decision == "consistent"


def test_a_phase_that_fails_on_its_own_keeps_failing_with_the_peer_named():
    f = compute(_idle(0.9), Context(escapes=_watch(3.0)))
    assert f.decision == "inconsistent" and f.evidence["relay_cpu_s"] == 3.0


def test_a_busy_reader_of_the_captures_own_stdio_is_shown_not_judged():
    """The launcher reading the capture's stdout (a pipe the wrapper holds too) may be
    busy for reasons of its own: a test harness running a noisy neighbour was."""
    watch = _watch(3.0)
    watch["relays"][4242]["channels"][0]["inherited"] = True
    f = compute(_idle(0.001), Context(escapes=watch))
    assert f.decision == "consistent" and f.evidence["relay_peers"] == []
    assert f.evidence["stdio_peers"][0]["cpu_s"] == 3.0
