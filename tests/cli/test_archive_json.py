"""``check``/``verify`` JSON a user can archive (issue 18 item 5).

Before: no schema version, no tool version, nothing naming what was judged, keys in
insertion order. Now: ``schema_version``, ``tool``, the trace's head (published, or the
chain tip), the commitment file's SHA-256, sorted keys, byte-identical on a rerun, and
the run-to-run values (spot-check timings, wall seconds) under ``"timings"`` only.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from test_check_cli import cli

import inspectorate
from inspectorate.data import commitment_path, seed_path
from inspectorate.report._archive import SCHEMA_VERSION, split_timings
from inspectorate.trace import chain_head, read_trace

FRONTIER = commitment_path("frontier-training-cap")
RUN = Path(__file__).resolve().parents[1] / "data" / "rundirs_attacks" / "small_run"


def _sha(path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def test_check_json_is_archivable_and_byte_identical():
    args = ("check", seed_path("legit_finetune"), "-c", FRONTIER, "--format", "json")
    code, first, _ = cli(*args)
    assert code == 0 and cli(*args)[1] == first
    doc = json.loads(first)
    assert first.rstrip("\n") == json.dumps(doc, indent=2, sort_keys=True)
    assert doc["schema_version"] == SCHEMA_VERSION
    assert doc["tool"] == {"name": "inspectorate", "version": inspectorate.__version__}
    assert doc["commitment"]["sha256"] == _sha(FRONTIER)
    tip = chain_head(read_trace(seed_path("legit_finetune")).records)
    assert doc["trace"] | {"path": None} == {
        "head": tip,
        "head_source": "chain_tip",
        "path": None,
        "records": 120,
    }


def test_check_json_names_the_published_head(tmp_path):
    trace = tmp_path / "t.jsonl"
    assert cli("trace", "generate", "--out", trace, "--hours", "0.05")[0] == 0
    published = json.loads(trace.with_name("t.jsonl.head.json").read_text())["head"]
    doc = json.loads(cli("check", trace, "-c", FRONTIER, "-f", "json")[1])
    assert (doc["trace"]["head"], doc["trace"]["head_source"]) == (published, "published")


def test_verify_json_is_archivable_and_byte_identical():
    args = ("verify", RUN, "--commitment", FRONTIER, "--format", "json")
    _, first, _ = cli(*args)
    doc, again = json.loads(first), json.loads(cli(*args)[1])
    seconds = doc["timings"].pop("seconds")  # wall time: the one part that differs
    assert seconds["phases"] == len(seconds["by_phase"]) == len(doc["phases"])
    again["timings"].pop("seconds")
    assert json.dumps(again, sort_keys=True) == json.dumps(doc, sort_keys=True)
    doc = json.loads(first)
    assert first.rstrip("\n") == json.dumps(doc, indent=2, sort_keys=True)
    assert doc["schema_version"] == SCHEMA_VERSION and doc["tool"]["version"] == inspectorate.__version__
    assert doc["commitment"]["sha256"] == _sha(FRONTIER)
    assert doc["trace"]["head"] == chain_head(read_trace(RUN / "windows.jsonl").records)
    assert "timings" in doc


def test_spot_check_timings_move_under_one_key():
    """The compute finding's measured values (and the confidences they feed) leave the
    body; everything else stays where it was."""
    spot = {"cpu_s_per_token": 1.234e-5, "cpu_s": 0.98}
    verdict = {
        "verdict": 1,
        "confidence": 0.91,
        "phases": [
            {
                "phase": "train",
                "confidence": 0.91,
                "findings": [
                    {
                        "property": "compute",
                        "decision": "consistent",
                        "evidence": {
                            "score": 0.1,
                            "spot_check": spot,
                            "expected_cpu_s": 3.0,
                            "observed_cpu_s": 2.9,
                        },
                    },
                    {"property": "integrity", "decision": "consistent", "evidence": {"score": 0.0}},
                ],
            }
        ],
        "gaps": [{"before": "train", "allowed_cpu_s": 4.5, "decision": "consistent"}],
    }
    body, timings = split_timings(verdict)
    compute, integrity = body["phases"][0]["findings"]
    assert compute["evidence"] == {"observed_cpu_s": 2.9} and integrity["evidence"] == {"score": 0.0}
    assert "confidence" not in body and "confidence" not in body["phases"][0]
    assert timings["phases"]["train"]["findings"]["compute"]["spot_check"] == spot
    assert timings["gaps"] == [{"index": 0, "allowed_cpu_s": 4.5}] and timings["confidence"] == 0.91
    assert verdict["phases"][0]["findings"][0]["evidence"]["score"] == 0.1  # input untouched


def test_version_flag():
    code, out, _ = cli("--version")
    assert code == 0 and out.strip() == f"inspectorate {inspectorate.__version__}"
