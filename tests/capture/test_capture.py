"""``inspectorate capture``: claims file, fail-closed rights check, label channel, and an
isolated run end to end (root only; cgroups and network namespaces)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from inspectorate.capture import _capture
from inspectorate.capture._channel import Channel, PhaseClaim
from inspectorate.capture._isolate import missing_rights
from inspectorate.errors import InputError
from inspectorate.trace.streams import read_sensor
from inspectorate.verify._sensor_features import NOT_ATTRIBUTABLE

ISOLATION = missing_rights()
needs_isolation = pytest.mark.skipif(
    bool(ISOLATION), reason=f"cgroups/network namespaces unavailable here: {'; '.join(ISOLATION)}"
)
BURN = "import time\nwhile time.process_time() < {s}: pass\n"  # CPU-seconds, whatever the load


def _claims(tmp_path: Path, doc: object) -> Path:
    path = tmp_path / "claims.json"
    path.write_text(json.dumps(doc))
    return path


def test_claims_file_schedule_and_errors(tmp_path):
    ok = _claims(
        tmp_path,
        {"defaults": {"model": "m", "n_params": 10}, "phases": [{"name": "a", "op": "eval", "duration": 2}]},
    )
    claims = _capture.load_claims(ok)
    assert claims.schedule[0].end_s == 2.0 and claims.schedule[0].claim.fields["claimed_model"] == "m"
    for bad, words in (
        ({"phases": [{"name": "a", "op": "dreaming", "end": 1}]}, "'op' must be one of"),
        ({"phases": [{"name": "a", "op": "idle", "start": 3, "end": 1}]}, "start < end"),
        ({"phases": [{"name": "a", "op": "idle", "end": 1, "n_params": "big"}]}, "'n_params' must be int"),
        ([1, 2], "must be a mapping"),
    ):
        with pytest.raises(InputError, match=words):
            _capture.load_claims(_claims(tmp_path, bad))


def test_without_rights_it_fails_closed_with_one_line(tmp_path, monkeypatch):
    monkeypatch.setattr(
        _capture, "missing_rights", lambda: ["root (CAP_SYS_ADMIN) for cgroups and network namespaces"]
    )
    with pytest.raises(InputError) as err:
        _capture.capture(["true"], _claims(tmp_path, {}), tmp_path / "run")
    text = str(err.value)
    assert "\n" not in text and "missing root" in text and "--shared-host" in text
    assert not (tmp_path / "run" / "sensor.jsonl").exists()  # nothing ran


def test_cli_exits_2_on_bad_input(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "evidence.txt").write_text("keep me")
    cmd = [
        sys.executable,
        "-m",
        "inspectorate.cli",
        "capture",
        "--claims",
        str(_claims(tmp_path, {})),
        "--out",
    ]
    proc = subprocess.run([*cmd, str(tmp_path / "run"), "--", "true"], capture_output=True, text=True)
    assert proc.returncode == 2 and "not empty" in proc.stderr and "Traceback" not in proc.stderr
    assert (tmp_path / "run" / "evidence.txt").read_text() == "keep me"


def test_channel_counts_holders_and_writes_windows(tmp_path):
    ch = Channel(tmp_path, window_s=1.0)
    claim = PhaseClaim.parse(
        {"phase": "train", "op": "training", "n_params": 100, "batch_size": 4, "sequence_length": 8}
    )
    t0 = time.time()
    ch.start(claim, t0)
    ch.start(claim, t0 + 0.1)  # a second rank opens the same phase
    ch.tokens(32, t0 + 0.5)
    ch.tokens(32, t0 + 1.7)
    ch.end("train", t0 + 2.0)
    assert "train" in ch.open  # one holder left
    ch.end("train", t0 + 2.5)
    ch.close()
    labels = [json.loads(x) for x in (tmp_path / "workload_labels.jsonl").read_text().splitlines()]
    assert [x["event"] for x in labels] == ["start", "end"] and labels[1]["t"] == t0 + 2.5
    assert labels[0]["claimed_op"] == "training" and labels[0]["claimed_n_params"] == 100
    from inspectorate.trace import read_trace

    frame = read_trace(tmp_path / "windows.jsonl").frame
    assert frame["tokens_processed"].sum() == 64 and set(frame["op_type"]) == {"training"}
    assert frame["flops"].sum() == pytest.approx(6 * 100 * 64)


@needs_isolation
def test_isolated_capture_sees_the_whole_job_from_before_it_starts(tmp_path):
    """Two children burn 0.4 CPU-s each: the cgroup's CPU counts both; the sensor's first
    sample precedes the command's first instruction; traffic is the namespace's own; the
    cgroup and the namespace are gone afterwards."""
    stamp = tmp_path / "started"
    job = (
        f"import subprocess, sys, time\nopen({str(stamp)!r}, 'w').write(repr(time.time()))\n"
        f"ps = [subprocess.Popen([sys.executable, '-c', {BURN.format(s=0.4)!r}]) for _ in range(2)]\n"
        "[p.wait() for p in ps]\n"
    )
    claims = _claims(tmp_path, {"phases": [{"name": "work", "op": "eval", "start": 0, "end": 30}]})
    result = _capture.capture([sys.executable, "-c", job], claims, tmp_path / "run")
    assert result.exit_code == 0 and result.isolated
    log = read_sensor(tmp_path / "run" / "sensor.jsonl")
    assert log.frame["t"][0] <= float(stamp.read_text())
    assert log.frame["cpu_s"].max() >= 0.8  # both children, after they exited
    assert log.frame["net_attributable"].max() == 1.0
    iso = json.loads((tmp_path / "run" / "provenance.json").read_text())["isolation"]
    assert not any(Path(d).exists() for d in iso["cgroups"])
    netns = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    assert iso["netns"] not in netns


@needs_isolation
def test_shared_host_never_reads_traffic(tmp_path):
    """--shared-host: no namespace, so every traffic signal says it is not attributable."""
    from inspectorate.verify import verify_run

    claims = _claims(
        tmp_path,
        {
            "phases": [
                {"name": "idle", "op": "idle", "start": 0.3, "end": 1.3},
                {"name": "serve", "op": "inference", "start": 1.4, "end": 2.4, "n_params": 1000},
            ]
        },
    )
    result = _capture.capture(
        [sys.executable, "-c", "import time; time.sleep(2.6)"], claims, tmp_path / "run", shared_host=True
    )
    assert result.exit_code == 0 and not result.isolated
    verdict = verify_run(tmp_path / "run")
    for ph in verdict.phases:
        p1 = next(f for f in ph.findings if f.property == "p1_op_type")
        assert p1.evidence["traffic"] == NOT_ATTRIBUTABLE and p1.evidence["sensor_sync_bytes"] is None
