"""The streaming chain reader (``iter_chain`` / ``scan_chain``) finds exactly the breaks
``verify_chain`` finds over the whole file, keeps the torn-tail and one-line error
semantics of ``read_chain_file``, and ``RunDir`` reads step files only when asked."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inspectorate.errors import InputError
from inspectorate.trace import load_run, rechain, verify_chain
from inspectorate.trace.streams import has_records, read_chain_file, scan_chain


def _records(n: int = 6) -> list[dict]:
    return rechain(
        [{"kind": "train_step", "rank": 0, "step": i, "t": float(i), "record_id": f"s{i}"} for i in range(n)]
    )


def _write(path: Path, records: list[dict], tail: str = "") -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records) + tail)
    return path


def _both(path: Path):
    seen: list[tuple[int, dict]] = []
    tail = scan_chain(path, lambda i, r: seen.append((i, r)))
    records, torn = read_chain_file(path)
    return tail, seen, records, torn


def _damaged() -> dict[str, list[dict]]:
    base = _records()
    edited = [dict(r) for r in base]
    edited[2]["step"] = 99  # edited in place: the next record's link breaks
    swapped = list(base)
    swapped[2], swapped[3] = swapped[3], swapped[2]  # reordered
    rechained = rechain(base[:3] + base[4:])  # a record dropped, the rest re-chained
    return {
        "intact": base,
        "edited": edited,
        "reordered": swapped,
        "dropped": base[:3] + base[4:],
        "rechained_tail": base[:2] + rechained[2:],
        "truncated_head": base[2:],
    }


@pytest.mark.parametrize("case", list(_damaged()))
def test_streamed_breaks_equal_whole_file_breaks(tmp_path: Path, case: str) -> None:
    path = _write(tmp_path / "steps.jsonl", _damaged()[case])
    tail, seen, records, torn = _both(path)
    assert [r for _, r in seen] == records and [i for i, _ in seen] == list(range(len(records)))
    assert tail.records == len(records) and tail.torn is torn is False
    assert tail.breaks == verify_chain(records)
    # a re-chained file holds together without a published head (as over the whole file)
    assert tail.intact is (case in ("intact", "rechained_tail"))


def test_torn_tail_dropped_and_reported(tmp_path: Path) -> None:
    path = _write(tmp_path / "steps.jsonl", _records(), tail='{"kind": "train_st')
    tail, seen, records, torn = _both(path)
    assert tail.torn and torn and tail.records == len(records) == 6 and tail.intact
    complete = _write(tmp_path / "whole.jsonl", _records()[:-1], tail=json.dumps(_records()[-1]))
    tail, _, records, torn = _both(complete)  # a last line lacking only its newline is whole
    assert not tail.torn and not torn and tail.records == 6


def test_bad_line_names_file_and_line(tmp_path: Path) -> None:
    lines = [json.dumps(r) for r in _records()]
    lines[3] = "{not json"
    path = tmp_path / "steps.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as streamed:
        scan_chain(path, lambda i, r: None)
    with pytest.raises(InputError) as whole:
        read_chain_file(path)
    assert str(streamed.value) == str(whole.value)
    assert "steps.jsonl" in str(streamed.value) and ":4" in str(streamed.value)
    assert "\n" not in str(streamed.value)


def test_has_records(tmp_path: Path) -> None:
    assert not has_records(_write(tmp_path / "a.jsonl", []))
    assert not has_records(_write(tmp_path / "b.jsonl", [], tail='\n  \n{"kind": "tr'))
    assert has_records(_write(tmp_path / "c.jsonl", [], tail="\n" + json.dumps(_records()[0])))
    assert has_records(_write(tmp_path / "d.jsonl", _records(1)))


def test_rundir_reads_step_files_only_when_asked(tmp_path: Path, monkeypatch) -> None:
    run = tmp_path / "run"
    run.mkdir()
    _write(run / "steps.jsonl", _records())
    _write(run / "steps_rank1.jsonl", [], tail="")
    (run / "workload_labels.jsonl").write_text(
        json.dumps({"phase": "a", "event": "start", "t": 0.0, "claimed": "pretrain"}) + "\n"
    )
    calls: list[Path] = []
    import inspectorate.trace._rundir as rundir

    real = rundir.read_steps
    monkeypatch.setattr(rundir, "read_steps", lambda p: calls.append(p) or real(p))
    loaded = load_run(run)
    assert sorted(loaded.step_files) == ["steps.jsonl", "steps_rank1.jsonl"]
    assert "steps" not in loaded.missing_streams and not calls  # presence without reading
    assert loaded.steps is not None and loaded.steps.height == 6 and len(calls) == 2
    assert loaded.steps is loaded.steps and len(calls) == 2  # read once
    _write(run / "steps.jsonl", [], tail='{"torn')
    assert "steps" in load_run(run).missing_streams  # only a torn line: no record
