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

from inspectorate.capture._ckpt_watch import STREAM, CheckpointWatcher, read_ingress, read_watch  # noqa: E402
from inspectorate.capture._writers import Writers  # noqa: E402
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
    if _records(tmp_path)[0]["writers"] == "fanotify":  # root: this test process is not the sleeper's tree
        assert _written(tmp_path)[0]["writers"] == [
            {"pid": os.getpid(), "comm": _comm(), "in_workload": False}
        ]


def _comm() -> str:
    return Path(f"/proc/{os.getpid()}/comm").read_text().strip()


def _fanotify_or_skip(tmp_path: Path) -> None:
    fan = Writers.open([tmp_path], {"pid": os.getpid()})
    if isinstance(fan, str):
        pytest.skip(fan)
    fan.close()


def test_fanotify_names_the_writer_and_whether_it_is_the_workload_s(tmp_path):
    """The watcher's own tree (a child writes through a temp file and a rename) against a
    writer outside it: only the first is the workload's."""
    _fanotify_or_skip(tmp_path)
    claims = tmp_path / "claims"
    code = "import os,sys; p=sys.argv[1]; open(p+'.tmp','wb').write(b'w'*4096); os.replace(p+'.tmp', p)"
    with CheckpointWatcher(tmp_path, [claims], workload={"pid": os.getpid()}):
        subprocess.run([sys.executable, "-c", code, str(claims / "child.bin")], check=True)
        _settle()
    with CheckpointWatcher(tmp_path / "other", [claims], workload={"pid": 1 << 22}):
        (claims / "mine.bin").write_bytes(b"x" * 10)
        _settle()
    mine = {r["path"]: r for r in _written(tmp_path)}["claims/child.bin"]
    (writer,) = mine["writers"]
    assert writer["in_workload"] is None or writer["in_workload"] is True  # None: exited first
    assert writer["pid"] != os.getpid()
    other = {r["path"].rsplit("/", 1)[-1]: r for r in _written(tmp_path / "other")}
    assert other["mine.bin"]["writers"] == [{"pid": os.getpid(), "comm": _comm(), "in_workload": False}]
    assert _records(tmp_path)[0]["writers"] == "fanotify"


def test_ingress_counts_every_interface_but_loopback_and_survives_a_counter_reset(tmp_path):
    from inspectorate.capture._chain_writer import ChainWriter

    w = ChainWriter(tmp_path / "sensor.jsonl")
    w.append({"kind": "start", "t": 10.0})
    nets = [
        {"lo": [0, 0], "eth0": [1000, 0]},
        {"lo": [9_000_000, 0], "eth0": [1500, 0]},  # ranks talking over loopback: not ingress
        {"lo": [9_000_000, 0], "eth0": [1500, 0], "veth1": [300, 0]},  # a new interface counts whole
        {"lo": [9_000_000, 0], "eth0": [200, 0], "veth1": [300, 0]},  # eth0 re-created: restarts at 0
    ]
    for i, net in enumerate(nets):
        w.append(
            {
                "kind": "sample",
                "t": 11.0 + i,
                "net": net,
                "net_scope": "netns",
                "wl_net": {"lo": [5, 0], "v": [7 * i, 0]},
            }
        )
    w.close()
    ing = read_ingress(tmp_path)
    assert ing is not None and ing.t0 == 10.0
    assert ing.cumulative == [0.0, 507.0, 814.0, 1021.0]
    assert ing.by(12.5) == 814.0 and ing.by(99.0) == 1021.0
