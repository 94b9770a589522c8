"""`inspectorate verify` through the main CLI, with and without a commitment."""

from __future__ import annotations

import json
from pathlib import Path

from test_check_cli import cli

from inspectorate.data import commitment_path

RUN = Path(__file__).resolve().parents[1] / "data" / "rundirs_attacks" / "small_run"


def test_commitment_findings_join_the_phase_verdicts():
    code, out, _ = cli("verify", RUN, "--format", "json")
    plain = json.loads(out)
    code_c, out_c, _ = cli(
        "verify", RUN, "--commitment", commitment_path("inference-only"), "--format", "json"
    )
    judged = json.loads(out_c)
    assert code_c == 1 and judged["verdict"] == 0
    flagged = {p["phase"]: p for p in judged["phases"] if p["verdict"] == 0}
    training = [p for p in judged["phases"] if p["claimed"] == "training"]
    assert training and all(p["phase"] in flagged for p in training)
    findings = [f for p in training for f in p["findings"] if f["property"] == "commitment"]
    assert findings and "allowed_op_types" in json.dumps(findings)
    assert {p["phase"] for p in plain["phases"]} == {p["phase"] for p in judged["phases"]}


def test_verify_bad_input_exit_2(tmp_path):
    code, _, err = cli("verify", tmp_path / "nope")
    assert code == 2 and "Traceback" not in err and len(err.strip().splitlines()) == 1
