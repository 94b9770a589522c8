"""The verifier-owned checkpoint watcher (capture/_ckpt_watch.py): inotify, hashed on close."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="inotify is Linux-only")

torch = pytest.importorskip("torch")

from inspectorate.capture._ckpt_watch import STREAM, CheckpointWatcher, read_watch  # noqa: E402
from inspectorate.models._checkpoint import save_checkpoint, weights_sha256  # noqa: E402
from inspectorate.models._gpt import GPT, GPTConfig  # noqa: E402

TINY = GPTConfig(vocab_size=16, block_size=8, n_layer=1, n_head=1, n_embd=8)


def _records(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / STREAM).read_text().splitlines()]


def _written(run: Path) -> list[dict]:
    return [r for r in _records(run) if r["kind"] == "written"]


def _settle() -> None:
    time.sleep(0.4)  # > one poll of the watcher thread


def test_a_checkpoint_is_fingerprinted_by_its_tensors_not_its_bytes(tmp_path):
    """Two serialisations of the same weights: two file hashes, one content fingerprint,
    equal to the project's weights_sha256 (what a replay claim names)."""
    model = GPT(TINY)
    with CheckpointWatcher(tmp_path, [tmp_path / "claims"]):
        save_checkpoint(tmp_path / "claims" / "p" / "a.pt", model, "abc", {"step": 1})
        save_checkpoint(tmp_path / "claims" / "p" / "b.pt", model, "abc", {"step": 2, "other": "meta"})
        _settle()
    seen = {r["path"]: r for r in _written(tmp_path)}
    a, b = seen["claims/p/a.pt"], seen["claims/p/b.pt"]  # a new subdirectory is watched too
    assert a["file_sha256"] != b["file_sha256"]
    assert a["weights_sha256"] == b["weights_sha256"] == weights_sha256(model.state_dict())
    # the temp file is usually hashed only at its new name; on a loaded box its rename can
    # miss the grace period, and then it is recorded as what it holds: the same tensors
    assert all(r["weights_sha256"] == a["weights_sha256"] for p, r in seen.items() if p.endswith(".tmp"))
    assert all(r["t"] <= r["hashed_t"] for r in seen.values())  # the time is the event's
    log = read_watch(tmp_path)
    assert log is not None and log.problems == [] and log.stopped


def test_a_rewrite_is_seen_again_and_an_unclosed_file_is_reported(tmp_path):
    with CheckpointWatcher(tmp_path, [tmp_path / "claims"]):
        target = tmp_path / "claims" / "w.bin"
        target.write_bytes(b"first")
        _settle()
        target.write_bytes(b"second")
        _settle()
        held = open(tmp_path / "claims" / "open.bin", "wb")
        held.write(b"partial")
        held.flush()
        _settle()
    held.close()
    kinds = [(r["kind"], r.get("path")) for r in _records(tmp_path)]
    assert kinds.count(("written", "claims/w.bin")) == 2
    assert ("unclosed", "claims/open.bin") in kinds
    w = [r for r in _written(tmp_path) if r["path"] == "claims/w.bin"]
    assert w[0]["file_sha256"] != w[1]["file_sha256"] and w[0]["weights_sha256"] is None
    assert w[0]["weights_error"] == "not a torch checkpoint"


def test_files_already_there_are_recorded_and_an_edited_stream_is_caught(tmp_path):
    (tmp_path / "claims" / "early").mkdir(parents=True)
    (tmp_path / "claims" / "early" / "x.bin").write_bytes(b"x")
    with CheckpointWatcher(tmp_path, [tmp_path / "claims"]):
        pass
    assert [r["event"] for r in _written(tmp_path)] == ["scan"]
    lines = (tmp_path / STREAM).read_text().splitlines()
    rec = json.loads(lines[1])
    rec["t"] -= 100.0  # a prover moving a write into another phase
    lines[1] = json.dumps(rec)
    (tmp_path / STREAM).write_text("\n".join(lines) + "\n")
    log = read_watch(tmp_path)
    assert log is not None and any("hash chain broken" in p for p in log.problems)
    assert read_watch(tmp_path / "nowhere") is None


def test_the_sensor_command_runs_the_watcher(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    cmd = [
        sys.executable,
        "-m",
        "inspectorate.cli",
        "sensor",
        "--pid",
        str(sleeper.pid),
        "--out",
        str(tmp_path),
    ]
    try:
        proc = subprocess.Popen([*cmd, "--watch", str(tmp_path / "claims"), "--duration", "3"], env=env)
        deadline = time.monotonic() + 20
        while not (tmp_path / STREAM).exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.3)
        (tmp_path / "claims" / "c.bin").write_bytes(b"weights")
        assert proc.wait(timeout=30) == 0
    finally:
        sleeper.kill()
        sleeper.wait()
    assert [r["path"] for r in _written(tmp_path)] == ["claims/c.bin"]
    assert _records(tmp_path)[-1]["kind"] == "stop"
