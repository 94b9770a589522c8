"""A sensor that stops inside a phase (crashed, or killed by a root workload) cannot
vouch for the phase: its features scale a partial span up to the whole phase, so
``integrity`` fails a phase that ends more than 2 s after the sensor's last record; an
escape recorded by the escape watch fails every phase that ends after it."""

from __future__ import annotations

from inspectorate.verify._evidence import Claim, PhaseEvidence
from inspectorate.verify._physics import integrity
from inspectorate.verify._properties import Context


def _phase(seconds: float, t1: float = 20.0) -> PhaseEvidence:
    ev = PhaseEvidence("p", Claim("idle", None, "idle", None, None), 10.0, t1)
    ev.streams = {"sensor": True}
    ev.sensor = {"cpu_s": 0.1, "cores": 0.01, "seconds": seconds}
    return ev


def test_a_sensor_that_stopped_early_in_the_phase_fails_integrity(tmp_path):
    from inspectorate.verify._inspector import sensor_end

    stream = tmp_path / "sensor.jsonl"
    stream.write_text('{"t": 11.0, "cpu_s": 1}\n{"t": 12.0, "cpu_s": 2}\n{"t": 12.5, "cpu')  # torn tail
    killed = sensor_end(stream)
    assert killed == {"t": 12.0, "clean": False, "head": None}
    stopped = integrity(_phase(2.0), Context(sensor_end=killed))
    assert stopped.decision == "inconsistent" and stopped.evidence["sensor_ended_at"] == 12.0
    assert stopped.evidence["sensor_coverage"] == 0.2
    clean = {"t": 20.3, "clean": True}
    assert integrity(_phase(9.8), Context(sensor_end=clean)).decision == "consistent"
    early_phase = _phase(2.0, t1=12.0)  # it ended before the sensor did
    assert integrity(early_phase, Context(sensor_end=killed)).decision == "consistent"


def test_an_escape_fails_the_phases_that_end_after_it():
    escape = {"t": 15.0, "pid": 7, "comm": "python", "left": "cgroup", "now_in": "2:cpuacct:/"}
    ctx = Context(escapes={"escapes": [escape], "problems": [], "fork_events": True})
    before = _phase(4.0, t1=14.0)
    before.t0 = 10.0
    assert integrity(before, ctx).decision == "consistent"
    after = integrity(_phase(9.9), ctx)
    assert after.decision == "inconsistent" and after.evidence["escaped_processes"][0]["pid"] == 7
    broken = Context(
        escapes={
            "escapes": [],
            "problems": ["sensor_escape.jsonl: hash chain broken at record 3"],
            "fork_events": True,
        }
    )
    assert integrity(_phase(9.9), broken).decision == "inconsistent"


def test_memory_p90_weighs_readings_by_the_time_they_stand_for():
    """The adaptive sensor: 10 readings of 1 GB in the first second (10 Hz while the
    phase starts), then 12 readings of 0.2 GB over 15 s (0.8 Hz, steady). Counted by
    samples the p90 is the start's 1 GB; by time it is the steady 0.2 GB. Even gaps
    keep the plain sample quantile."""
    from inspectorate.verify._sensor_features import mem_quantile

    ts = [i * 0.1 for i in range(10)] + [1.0 + 1.25 * i for i in range(1, 13)]
    mem = [1e9] * 10 + [2e8] * 12
    assert mem_quantile(ts, mem) == 2e8
    even = [float(i) for i in range(22)]
    assert mem_quantile(even, mem) == 1e9  # 10 of 22 high: the sample p90 is high
