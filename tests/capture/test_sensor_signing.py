"""The real sensor signs its chain head every window into the log: an honest run
verifies, with every head at a real record and the stop record signed as final."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("cryptography")

from inspectorate.capture._proc_sensor import SENSOR_FILE, run_sensor
from inspectorate.ledger import (
    HeadSigner,
    LogOperator,
    enrol,
    generate_key,
    init_log,
    load_keyring,
    open_log,
    verify_signed,
)
from inspectorate.ledger._log import read_jsonl
from inspectorate.ledger._witness import Witness


def test_sensor_signs_every_window_and_an_honest_run_verifies(tmp_path: Path) -> None:
    keys = {i: generate_key(i, r) for i, r in (("host-a", "host"), ("log-a", "log"), ("w1", "witness"))}
    for k in keys.values():
        enrol(tmp_path / "ring.json", k.id, k.role, k.public_hex)
    init_log(tmp_path / "log", "log-a")
    signer = HeadSigner(keys["host-a"], LogOperator(tmp_path / "log", keys["log-a"]), window_s=0.2)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        run_sensor(
            tmp_path / "run", pid=child.pid, hz=20, duration=1.2, gpu=False, signer=signer, challenge="c-1"
        )
    finally:
        child.kill()
        child.wait()
    records = read_jsonl(tmp_path / "run" / SENSOR_FILE)
    leaves = read_jsonl(tmp_path / "log" / "leaves.jsonl")
    assert records[0]["nonce"] == "c-1" and leaves[-1]["final"] and leaves[-1]["count"] == len(records)
    assert 3 <= len(leaves) < len(records)  # once per window, not once per record
    view = open_log(tmp_path / "log")
    sth = view.latest_sth()
    assert sth is not None
    witness = Witness(keys["w1"], load_keyring(tmp_path / "ring.json"), tmp_path / "w.json")
    cosig = witness.cosign(sth, []).cosig
    assert cosig is not None
    (tmp_path / "log" / "cosignatures.jsonl").write_text(__import__("json").dumps(cosig) + "\n")
    report = verify_signed(
        tmp_path / "run" / SENSOR_FILE, tmp_path / "log", tmp_path / "ring.json", challenge="c-1"
    )
    assert report.decision == "consistent", report.problems
