"""The scale run generator writes run dirs the verifier reads as honest: intact chains,
one phase a schedule row, nothing flagged, the sensor deciding P1 for training; an
existing output is refused without --force."""

from __future__ import annotations

import json

import pytest

from inspectorate.cli import invoke
from inspectorate.errors import InputError
from inspectorate.trace import load_run
from inspectorate.trace._rungen import RunSpec, generate_run, phases_of
from inspectorate.trace.streams import read_sensor
from inspectorate.verify import INCONSISTENT, Inspector

SPEC = RunSpec(hosts=2, hours=0.9, hz=1.0, seed=3)  # train, infer, eval, idle at 1 Hz


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    out = tmp_path_factory.mktemp("rungen") / "run"
    generate_run(out, SPEC)
    return out


def test_every_host_is_a_chained_flat_run_dir(root):
    assert sorted(p.name for p in root.iterdir()) == ["host00", "host01"]
    for host in root.iterdir():
        run = load_run(host)
        assert run.layout == "flat" and len(run.phases()) == len(phases_of(SPEC)) == 4
        assert run.windows is not None and not run.windows.chain_breaks()
        assert all(log.intact for log in run.step_logs.values())
        log = read_sensor(host / "sensor.jsonl")
        assert log.intact and not log.torn and log.start.get("kind") == "start"
        assert log.frame.height == int(SPEC.hours * 3600 * SPEC.hz) + 1
    a, b = ((root / h / "sensor.jsonl").read_bytes() for h in ("host00", "host01"))
    assert a != b  # each host its own noise


def test_the_honest_schedule_verifies_with_nothing_flagged(root):
    verdict = Inspector(policy="lenient").inspect(root / "host00")
    flagged = [
        (p.phase, f.property) for p in verdict.phases for f in p.findings if f.decision == INCONSISTENT
    ]
    assert flagged == [] and verdict.verdict == 1
    train = next(p for p in verdict.phases if p.claimed.startswith("pretrain"))
    p1 = next(f for f in train.findings if f.property == "p1_op_type")
    assert p1.decision == "consistent" and "sensor" in p1.basis
    assert p1.evidence["observed_op"] == "training"  # the namespace traffic of the syncs
    assert all(g["decision"] == "consistent" for g in verdict.gaps) and len(verdict.gaps) == 3


def test_an_existing_output_is_refused_without_force(root, tmp_path):
    with pytest.raises(InputError, match="--force"):
        generate_run(root, SPEC)
    code = invoke(["trace", "generate-run", "--out", str(root), "--hosts", "1", "--hours", "0.5"])
    assert code == 2
    out = tmp_path / "cli"
    assert (
        invoke(["trace", "generate-run", "--out", str(out), "--hosts", "1", "--hours", "0.4", "--hz", "0.5"])
        == 0
    )
    assert json.loads((out / "host00" / "provenance.json").read_text())["seed"] == 0
