"""The serving log: typed JSONL with a header; every malformed line is an InputError."""

from __future__ import annotations

import json

import pytest

from inspectorate.difr import (
    LogHeader,
    LogWriter,
    ProjectionSpec,
    SamplingConfig,
    SequenceRecord,
    commit_seed,
    read_log,
    write_log,
)
from inspectorate.errors import InputError

HEADER = LogHeader(
    model_hash="sha256:0123456789abcdef",
    vocab="abc",
    sampling=SamplingConfig(temperature=0.7, top_k=2, seed=9),
    projection=ProjectionSpec(seed=5, layer=0, dim=2),
)
REC = SequenceRecord(0, (0, 1), (2, 1), ((0.5, -1.0), (0.25, 2.0)))


def test_round_trip(tmp_path):
    path = write_log(tmp_path / "log.jsonl", HEADER, [REC, SequenceRecord(1, (1,), (0,), ((1.0, 1.0),))])
    log = read_log(path)
    assert log.header == HEADER
    assert log.sequences[0] == REC and len(log.sequences) == 2
    first = json.loads(path.read_text().splitlines()[0])
    assert first["format"] == "inspectorate.difr.serving-log" and first["version"] == 1
    assert first["projection"]["seed_commitment"] == commit_seed(5)


def _rewrite(tmp_path, mutate_header=None, line=None):
    path = write_log(tmp_path / "log.jsonl", HEADER, [REC])
    lines = path.read_text().splitlines()
    if mutate_header:
        head = json.loads(lines[0])
        mutate_header(head)
        lines[0] = json.dumps(head)
    if line is not None:
        lines.append(line)
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.mark.parametrize(
    ("mutate", "line", "needle", "lineno"),
    [
        (lambda h: h.update(format="other"), None, "header", 1),
        (lambda h: h.update(version=99), None, "version", 1),
        (lambda h: h["projection"].update(seed=6), None, "commitment", 1),
        (lambda h: h["sampling"].update(temperature=-1), None, "temperature", 1),
        (None, "{not json", "invalid JSON", 3),
        (None, '{"index": 1, "prompt": [0], "tokens": [7], "projections": [[0, 0]]}', "vocabulary", 3),
        (None, '{"index": 0, "prompt": [0], "tokens": [1], "projections": [[0, 0]]}', "duplicate", 3),
        (None, '{"index": 1, "prompt": [0], "tokens": [1], "projections": [[0, 0, 0]]}', "2 values", 3),
        (None, '{"index": 1, "prompt": [0], "tokens": [1, 2], "projections": [[0, 0]]}', "one projection", 3),
        (None, '{"index": 1, "prompt": [0], "tokens": [1], "projections": null}', "header", 3),
        (None, '{"index": 1.5, "prompt": [0], "tokens": [1], "projections": [[0, 0]]}', "integer", 3),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, mutate, line, needle, lineno):
    path = _rewrite(tmp_path, mutate, line)
    with pytest.raises(InputError) as info:
        read_log(path)
    assert needle in info.value.reason and info.value.line == lineno


def test_writer_refuses_duplicates_and_empty_log_is_rejected(tmp_path):
    with LogWriter(tmp_path / "w.jsonl", HEADER) as writer:
        writer.write(REC)
        with pytest.raises(InputError, match="twice"):
            writer.write(REC)
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(InputError, match="empty"):
        read_log(tmp_path / "empty.jsonl")
    with LogWriter(tmp_path / "h.jsonl", HEADER):  # a server that served nothing
        pass
    with pytest.raises(InputError, match="no sequences"):
        read_log(tmp_path / "h.jsonl")
    with pytest.raises(InputError, match="at least one sequence"):  # write_log refuses it up front
        write_log(tmp_path / "h2.jsonl", HEADER, [])
