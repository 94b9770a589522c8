"""The streamed window records (one pass over ``windows.jsonl``, each record added to the
phases holding its midpoint) give the same evidence and verdict JSON as the records read
whole (``INSPECTORATE_WINDOWS_LOADER=frame``), never read the file whole, and keep the
chain check and the reader's one-line errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from test_sensor_stream import BENCH_RUNS

from inspectorate.errors import InputError
from inspectorate.trace import _rundir, load_run, rechain
from inspectorate.trace._rungen import RunSpec, generate_run
from inspectorate.verify import Inspector, _spotcheck
from inspectorate.verify._evidence import collect
from inspectorate.verify._spotcheck import SpotCheck, Work


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One host, 1.1 h at 1 Hz: two training phases, inference, eval, idle."""
    out = tmp_path_factory.mktemp("windowstream") / "gen"
    generate_run(out, RunSpec(hosts=1, hours=1.1, hz=1.0))
    return out / "host00"


def _both(monkeypatch, run: Path) -> list[tuple[list, list, str]]:
    """(evidence, prover-subset evidence, verdict JSON) by each loader."""
    out = []
    for mode in ("stream", "frame"):
        monkeypatch.setenv("INSPECTORATE_WINDOWS_LOADER", mode)
        ev = [(e.name, e.windows, e.integrity, e.streams) for e in collect(load_run(run))]
        prover = [(e.name, e.windows, e.integrity) for e in collect(load_run(run), "prover")]
        doc = Inspector(policy="lenient").inspect(run).to_dict()  # no timings: to_dict(timed=False)
        out.append((ev, prover, json.dumps(doc, sort_keys=True)))
    return out


def _agree(monkeypatch, run: Path) -> list:
    stream, frame = _both(monkeypatch, run)
    assert stream[0] == frame[0] and stream[1] == frame[1]  # exact: sums match to the bit
    assert stream[2] == frame[2]  # the verdict JSON, byte for byte
    return stream[0]


def _copy(generated: Path, tmp_path: Path) -> Path:
    run = tmp_path / "run"
    shutil.copytree(generated, run)
    return run


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_generated_run_agrees(monkeypatch, generated: Path) -> None:
    evidence = _agree(monkeypatch, generated)
    counted = [e[1]["records"] for e in evidence]
    assert all(n > 0 for n in counted[:3]) and counted[3] == 0  # the idle phase writes none
    assert sum(counted) <= len(_lines(generated / "windows.jsonl"))
    train = [e[1] for e in evidence if e[1].get("op_types") == ["training"]]
    assert len(train) == 2 and all(w["flops"] > 0 and w["batch_size"] == 2 for w in train)


@pytest.mark.parametrize("name", ["r01", "r03"])
def test_shipped_testbed_runs_agree(monkeypatch, name: str) -> None:
    """Testbed runs (two ranks, real window records). Their verdicts rest on the
    spot-check: a fixed stand-in measurement keeps the test to seconds and the two
    loaders' verdicts comparable byte for byte."""

    def measure(work: Work, seconds: float) -> SpotCheck:
        return SpotCheck(work, 2e-4, 1280, 0.256, 10, 0.01)

    monkeypatch.setattr(_spotcheck, "_measure", measure)
    _agree(monkeypatch, BENCH_RUNS / name)


def test_verify_never_reads_the_window_records_whole(monkeypatch, generated: Path) -> None:
    def whole(*_a, **_k):
        raise AssertionError("windows.jsonl read whole")

    monkeypatch.setattr(_rundir, "read_trace", whole)
    monkeypatch.setenv("INSPECTORATE_WINDOWS_LOADER", "stream")
    run = load_run(generated)
    assert run.has("windows") and "windows" not in run.missing_streams
    verdict = Inspector(policy="lenient").inspect(run)
    assert verdict.phases and run._window_cache is None


def test_fractional_flops_sum_to_the_frames_bit(monkeypatch, generated: Path, tmp_path: Path) -> None:
    """Sums whose order matters in the last bit (a running sum would differ) agree exactly."""
    run = _copy(generated, tmp_path)
    records = _lines(run / "windows.jsonl")
    for i, r in enumerate(records):
        r["flops"] = float(r["flops"]) * (1.0 + 1e-7 * (i % 97)) + 0.1 * (i % 7)
    (run / "windows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rechain(records)))
    evidence = _agree(monkeypatch, run)
    assert evidence[0][1]["flops"] != int(evidence[0][1]["flops"])


def test_edited_record_breaks_the_chain_in_its_phase(monkeypatch, generated: Path, tmp_path: Path) -> None:
    run = _copy(generated, tmp_path)
    records = _lines(run / "windows.jsonl")
    records[40]["flops"] = float(records[40]["flops"]) * 3  # edited after writing
    (run / "windows.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    evidence = _agree(monkeypatch, run)
    hit = [e[2]["window_breaks"] for e in evidence if "window_breaks" in e[2]]
    assert hit == [[{"index": 41, "record_id": records[41]["record_id"]}]]


def test_bad_lines_and_records_are_one_line_errors(monkeypatch, generated: Path, tmp_path: Path) -> None:
    run = _copy(generated, tmp_path)
    path = run / "windows.jsonl"
    good = path.read_text().splitlines()
    records = _lines(path)
    del records[7]["window_end"]
    cases = {
        "not valid JSON": "\n".join(good[:20] + [good[20][:-4]] + good[21:]) + "\n",
        "missing field": "".join(json.dumps(r) + "\n" for r in rechain(records)),
        "empty trace": "",
    }
    for expected, text in cases.items():
        path.write_text(text)
        messages = []
        for mode in ("stream", "frame"):
            monkeypatch.setenv("INSPECTORATE_WINDOWS_LOADER", mode)
            with pytest.raises(InputError) as err:
                Inspector(policy="lenient").inspect(run)
            messages.append(str(err.value))
        assert messages[0] == messages[1] and expected in messages[0] and "\n" not in messages[0]
        assert "windows.jsonl" in messages[0]


def test_prover_subset_drops_the_window_file(generated: Path) -> None:
    ev = collect(load_run(generated), "sensor")
    assert all(e.windows == {} and not e.streams["windows"] for e in ev)
