"""The relay forger's simulation (testbed/competent.py): the bytes it needs appear in the
sensor's receive counters, paced before each write, and the stream stays chained."""

from __future__ import annotations

import json
from pathlib import Path

from inspectorate.capture._chain_read import read_chained
from inspectorate.capture._chain_writer import ChainWriter
from inspectorate.capture._ckpt_watch import read_ingress
from inspectorate.testbed.competent import _add_ingress


def test_relayed_bytes_reach_the_sensor_s_counters_before_each_write(tmp_path: Path) -> None:
    w = ChainWriter(tmp_path / "sensor.jsonl")
    w.append({"kind": "start", "t": 0.0})
    for i in range(11):
        w.append({"kind": "sample", "t": float(i), "net": {"lo": [0, 0], "eth0": [100, 0]}})
    w.close()
    _add_ingress(tmp_path / "sensor.jsonl", [(2.0, 4.0, 1000), (4.0, 8.0, 4000)])
    records, problems = read_chained(tmp_path / "sensor.jsonl")
    assert problems == []
    ing = read_ingress(tmp_path)
    assert ing is not None
    assert ing.by(2.0) == 0.0 and ing.by(3.0) == 500.0 and ing.by(4.0) == 1000.0
    assert ing.by(6.0) == 3000.0 and ing.by(10.0) == 5000.0
    assert json.loads((tmp_path / "sensor.jsonl").read_text().splitlines()[-1])["net"]["lo"] == [0, 0]
