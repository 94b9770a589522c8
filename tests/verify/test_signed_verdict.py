"""``verify --head-log``: signed evidence can only take certification away."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("cryptography")

from signed_world import World, world  # noqa: E402,F401

from inspectorate.ledger._log import read_jsonl  # noqa: E402
from inspectorate.trace._canonical import canonical_bytes  # noqa: E402
from inspectorate.verify._inspector import RunVerdict  # noqa: E402
from inspectorate.verify._signed import attach_signed  # noqa: E402


def _verdict(run: Path) -> RunVerdict:
    return RunVerdict(str(run), 1, 0.9, [], [], policy="strict", outcome="consistent")


def test_honest_signed_run_keeps_its_certificate(world: World) -> None:  # noqa: F811
    run = world.root / "run"
    run.mkdir()
    world.stream("run/sensor.jsonl", nonce="c-1")
    world.cosign()
    v = attach_signed(_verdict(run), world.log, world.ring, challenge="c-1")
    assert v.verdict == 1 and v.signed is not None and v.signed["decision"] == "consistent"
    assert v.to_dict()["signed"]["heads"] == 8


def test_truncated_sensor_stream_loses_the_certificate(world: World) -> None:  # noqa: F811
    run = world.root / "run"
    run.mkdir()
    stream = world.stream("run/sensor.jsonl", nonce="c-1")
    world.cosign()
    stream.write_bytes(b"".join(canonical_bytes(r) + b"\n" for r in read_jsonl(stream)[:-2]))
    v = attach_signed(_verdict(run), world.log, world.ring, challenge="c-1")
    assert v.verdict == 0 and v.outcome == "inconsistent"
    assert any("truncation" in r for r in v.reasons)


def test_unwitnessed_is_unverifiable_under_strict_only(world: World) -> None:  # noqa: F811
    run = world.root / "run"
    run.mkdir()
    world.stream("run/sensor.jsonl", nonce="c-1")
    strict = attach_signed(_verdict(run), world.log, world.ring)
    assert strict.verdict == 0 and strict.outcome == "unverifiable"
    lenient = _verdict(run)
    lenient.policy = "lenient"
    assert attach_signed(lenient, world.log, world.ring).verdict == 1
