"""The streamed step records (one time-ordered pass over every step file, each phase
summarised and dropped when all files pass its end) give the same evidence and verdicts
as the files read whole (``INSPECTORATE_STEPS_LOADER=frame``), hold at most a phase's
records, and keep the chain checks and one-line errors."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
from test_sensor_stream import BENCH_RUNS, _same

from inspectorate.errors import InputError, Unordered
from inspectorate.trace import load_run, rechain
from inspectorate.trace._rungen import RunSpec, generate_run
from inspectorate.verify import Inspector
from inspectorate.verify._evidence import collect
from inspectorate.verify._step_features import stream_steps


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One host, 1.1 h at 1 Hz: two training phases, inference, eval, idle."""
    out = tmp_path_factory.mktemp("stepstream") / "gen"
    generate_run(out, RunSpec(hosts=1, hours=1.1, hz=1.0))
    return out / "host00"


def _evidence(run: Path, subset: str = "full"):
    return [(e.name, e.t1, e.steps, e.integrity, e.streams) for e in collect(load_run(run), subset)]


def _verdict(run: Path) -> dict:
    verdict = Inspector(policy="lenient").inspect(run)
    doc = verdict.to_dict()
    seconds = verdict.to_dict(timed=True)["timings"]["seconds"]
    assert seconds["phases"] == len(seconds["by_phase"]) == len(doc["phases"]) and seconds["per_phase_s"] > 0
    return doc


def _agree(monkeypatch, run: Path, verdicts: bool = True) -> list:
    out = []
    for mode in ("stream", "frame"):
        monkeypatch.setenv("INSPECTORATE_STEPS_LOADER", mode)
        out.append((_evidence(run), _evidence(run, "prover"), _verdict(run) if verdicts else None))
    _same(out[0], out[1], "stream vs frame")
    return out[0][0]


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def _write(path: Path, records: list[dict], tail: str = "") -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rechain(records)) + tail)


def test_generated_run_agrees_and_holds_one_phase(monkeypatch, generated: Path) -> None:
    evidence = _agree(monkeypatch, generated)
    assert [e[2]["train_steps"] > 1000 for e in evidence if e[2].get("train_steps")] == [True, True]
    run = load_run(generated)
    wins = [(p.t0, p.t1) for p in run.phases()]
    view = stream_steps(run.step_files, wins)
    sizes = [sum(e[2]["kinds"].values()) for e in evidence]
    assert view.peak_rows == max(sizes) < sum(sizes) / 2  # a phase's records, not the run's


def test_shipped_testbed_runs_agree(monkeypatch) -> None:
    """Testbed runs (two ranks, fingerprints, grads per group): the evidence agrees (the
    verdicts there rest on a timed spot-check, compared by test_sensor_stream's way)."""
    run = BENCH_RUNS / "r01"
    evidence = _agree(monkeypatch, run, verdicts=False)
    assert any(e[2].get("fingerprint_hashes") for e in evidence) and any(
        e[2].get("grad_groups") for e in evidence
    )


def _edited(generated: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(generated, run)
    return run


def test_columns_only_other_phases_have_settle_at_the_end(
    monkeypatch, generated: Path, tmp_path: Path
) -> None:
    """A gradient group named only in the first training phase is a zero-gradient group
    of the second; ``rank`` missing from one phase reads as one (null) rank: as the
    whole frame's null columns read."""
    run = _edited(generated, tmp_path)
    records = _lines(run / "steps.jsonl")
    first = records[0]["t"] + 600
    for r in records:
        if r["kind"] == "train_step" and r["t"] < first:
            r["grad_norms_per_group"] = {"blocks": 1.0, "head": 0.5}
        if r["kind"] == "infer_token":
            r.pop("rank")
    _write(run / "steps.jsonl", records)
    (run / "steps_rank1.jsonl").unlink()
    train = [e[2] for e in _agree(monkeypatch, run) if e[2].get("train_steps")]
    assert train[0]["zero_grad_groups"] == [] and train[1]["zero_grad_groups"] == ["blocks", "head"]
    assert all(t["grad_groups"] == 2 for t in train)


def test_reordered_records_fall_back_to_the_whole_files(monkeypatch, generated: Path, tmp_path: Path) -> None:
    run = _edited(generated, tmp_path)
    records = _lines(run / "steps.jsonl")
    records[10], records[11] = records[11], records[10]
    _write(run / "steps.jsonl", records)
    loaded = load_run(run)
    with pytest.raises(Unordered):
        stream_steps(loaded.step_files, [(p.t0, p.t1 or math.inf) for p in loaded.phases()])
    _agree(monkeypatch, run)


def test_torn_and_edited_step_files(monkeypatch, generated: Path, tmp_path: Path) -> None:
    """A torn tail and an edited record are reported in the phase that holds them, the
    same both ways."""
    run = _edited(generated, tmp_path)
    rank1 = _lines(run / "steps_rank1.jsonl")
    rank1[5]["loss"] = 0.0  # edited after writing: the next record's link breaks
    lines = "".join(json.dumps(r) + "\n" for r in rank1[:300])
    (run / "steps_rank1.jsonl").write_text(lines + '{"kind": "train_st')
    evidence = _agree(monkeypatch, run)
    integrity = evidence[0][3]
    assert integrity["step_breaks"] == [
        {"file": "steps_rank1.jsonl", "index": 6, "record_id": rank1[6]["record_id"]}
    ]
    assert integrity["torn_streams"][0]["file"] == "steps_rank1.jsonl"
    assert integrity["torn_streams"][0]["complete_records"] == 300


def test_phase_cut_short_ends_at_the_last_step(monkeypatch, generated: Path, tmp_path: Path) -> None:
    run = _edited(generated, tmp_path)
    labels = _lines(run / "workload_labels.jsonl")
    last = max(i for i, e in enumerate(labels) if e["event"] == "end" and e["claimed_op"] != "idle")
    cut = labels[:last]  # the last working phase has no end event (and what follows goes)
    (run / "workload_labels.jsonl").write_text("".join(json.dumps(e) + "\n" for e in cut))
    evidence = _agree(monkeypatch, run)
    steps = _lines(run / "steps.jsonl") + _lines(run / "steps_rank1.jsonl")
    assert evidence[-1][1] == max(r["t"] for r in steps)


def test_bad_step_line_is_one_line_naming_file_and_line(generated: Path, tmp_path: Path) -> None:
    run = _edited(generated, tmp_path)
    lines = (run / "steps_rank1.jsonl").read_text().splitlines()
    lines[41] = lines[41][:-5]
    (run / "steps_rank1.jsonl").write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as err:
        Inspector(policy="lenient").inspect(run)
    message = str(err.value)
    assert "steps_rank1.jsonl" in message and ":42" in message and "\n" not in message
