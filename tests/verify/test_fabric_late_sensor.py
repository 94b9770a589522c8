"""link_conservation names a host whose sensor stopped before the ranks ended, instead of
reading its short count as a hidden peer."""

from __future__ import annotations

from pathlib import Path

from inspectorate.verify._fabric import link_conservation
from inspectorate.verify._fabric_evidence import FabricEvidence, HostEvidence


def _fabric(b_rx: int, b_last_t: float, ended: float | None) -> FabricEvidence:
    root = Path("/nonexistent")
    a = HostEvidence(0, {}, root, root, net={"v1": (0, 263_250)}, sensor_ok=True, last_t=100.0)
    b = HostEvidence(1, {}, root, root, net={"v0": (b_rx, 0)}, sensor_ok=True, last_t=b_last_t)
    manifest = {"links": [{"a": 0, "a_if": "v1", "b": 1, "b_if": "v0"}]}
    if ended is not None:
        manifest["ranks_ended"] = ended
    return FabricEvidence(root, manifest, root, root, None, [a, b])


def test_a_short_count_at_a_late_sensor_is_unverifiable_and_named() -> None:
    f = link_conservation(_fabric(b_rx=0, b_last_t=90.0, ended=95.0))
    assert f.decision == "unverifiable"
    assert f.evidence["late_sensors"] == [
        "h1: its sensor's last reading precedes the end of the job's traffic"
    ]
    assert f.evidence["problems"] == ["link h0.v1 - h1.v0: sent 263250 B, received 0 B"]


def test_the_same_gap_with_a_sensor_that_saw_the_end_is_inconsistent() -> None:
    f = link_conservation(_fabric(b_rx=0, b_last_t=96.0, ended=95.0))
    assert f.decision == "inconsistent"
    assert link_conservation(_fabric(b_rx=0, b_last_t=90.0, ended=None)).decision == "inconsistent"


def test_a_late_sensor_that_counted_more_does_not_excuse_the_gap() -> None:
    # the late end received MORE than the punctual end sent: lateness cannot explain it
    f = link_conservation(_fabric(b_rx=900_000, b_last_t=90.0, ended=95.0))
    assert f.decision == "inconsistent"


def test_an_honest_link_is_consistent_whatever_the_clocks() -> None:
    assert link_conservation(_fabric(b_rx=263_250, b_last_t=90.0, ended=95.0)).decision == "consistent"
