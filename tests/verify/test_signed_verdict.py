"""``verify --head-log``: signed evidence can only take certification away."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("cryptography")

from inspectorate.capture import ChainWriter
from inspectorate.ledger._log import read_jsonl
from inspectorate.trace._canonical import canonical_bytes
from inspectorate.verify._inspector import RunVerdict
from inspectorate.verify._signed import attach_signed
from signed_world import World, world  # noqa: F401


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


T0 = 1777450000.0
SAMPLE = {
    "schema": "inspectorate.sensor/1",
    "kind": "sample",
    "procs": 2,
    "threads": 8,
    "rss_b": 2**28,
    "pss_b": 2**27,
    "minflt": 0,
    "majflt": 0,
    "ctx_vol": 0,
    "ctx_invol": 0,
    "per_proc": [],
    "host_ncpu": 2,
    "net": {},
}
SMALL = Path(__file__).resolve().parents[1] / "data" / "rundirs_attacks" / "small_run"


def _signed_run(world: World) -> Path:  # noqa: F811
    run = world.root / "small_run"
    shutil.copytree(SMALL, run)
    with ChainWriter(run / "sensor.jsonl", on_append=world.signer(window_s=0.5).observe) as w:
        w.append({"schema": "inspectorate.sensor/1", "kind": "start", "t": T0, "nonce": "c-9"})
        for i in range(300):  # 10 Hz over the 30 s of the run, the shape the real sensor writes
            t = T0 + i / 10
            w.append({**SAMPLE, "t": t, "cpu_s": i / 20, "host_cpu_s": i / 20})
        w.append({"schema": "inspectorate.sensor/1", "kind": "stop", "t": T0 + 30})
    world.cosign()
    return run


def _verify(run: Path, *extra: object) -> tuple[int, dict]:  # type: ignore[type-arg]
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "inspectorate.cli",
            "verify",
            str(run),
            "--format",
            "json",
            "-q",
            *map(str, extra),
        ],
        capture_output=True,
        text=True,
    )
    assert proc.returncode in (0, 1), proc.stderr
    return proc.returncode, json.loads(proc.stdout)


def test_verify_cli_signed_evidence_changes_nothing_honest_and_catches_a_cut(world: World) -> None:  # noqa: F811
    run = _signed_run(world)
    signed = ("--head-log", world.log, "--keyring", world.ring, "--challenge", "c-9")
    code0, plain = _verify(run)
    code1, with_log = _verify(run, *signed)
    assert with_log["signed"]["decision"] == "consistent"
    assert (code1, with_log["verdict"], with_log["reasons"]) == (code0, plain["verdict"], plain["reasons"])
    stream = run / "sensor.jsonl"
    stream.write_bytes(b"".join(canonical_bytes(r) + b"\n" for r in read_jsonl(stream)[:-20]))
    code, cut = _verify(run, *signed)
    assert code == 1 and cut["verdict"] == 0 and cut["outcome"] == "inconsistent"
    assert any("truncation" in r for r in cut["reasons"])
