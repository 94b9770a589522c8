"""The compiled JSONL scanner (``_cjsonl``) takes a line's values only where the line is
their json.dumps spelling: a row it accepts reads exactly as json reads the line, and a
line that is not that spelling is always left to json."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspectorate.data import seed_path
from inspectorate.trace import canonical_json, record_hash
from inspectorate.trace._frame import records_from_frame
from inspectorate.trace._jsonl import _scan, _scanner
from inspectorate.trace._schema import FIELDS

pytestmark = pytest.mark.skipif(_scanner is None, reason="the _cjsonl extension is not built")
GOOD = json.loads(seed_path("legit_finetune").read_text().splitlines()[0])


def _rows(lines: list[str]) -> tuple[list[bool], list[dict]]:
    frame, _, _, ok, *_ = _scan(("\n".join(lines) + "\n").encode())
    frame = frame.with_columns(pl.lit(None, dtype=pl.Utf8).alias("_extra"))
    return ok.tolist(), records_from_frame(frame)


def test_reference_and_canonical_lines_scan():
    lines = seed_path("legit_finetune").read_text().splitlines()
    ok, records = _rows(lines + [canonical_json(json.loads(lines[0]))])
    assert all(ok)
    assert records == [json.loads(line) for line in lines + lines[:1]]


def test_blank_lines_and_a_last_line_without_newline():
    lines = seed_path("legit_finetune").read_text().splitlines()
    raw = (lines[0] + "\n\n\n" + lines[1] + "\n\n" + lines[2]).encode()
    scanned = _scan(raw)
    assert scanned is not None and scanned.exact.tolist() == [True, True, True]
    assert [raw[a:b].decode() for a, b in zip(scanned.starts, scanned.ends)] == lines[:3]


def test_digests_are_the_canonical_hashes():
    """The scanner spells each scanned row canonically from the line's tokens (lists
    re-joined with ","); its digests are the chain's record hashes."""
    lines = seed_path("legit_finetune").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    records[1]["upstream_refs"] = ["a", "b", "c"]
    records[2]["data_source_tags"] = []
    spelled = [json.dumps(r) for r in records] + [canonical_json(r) for r in records]
    spelled[3] = json.dumps({**records[3], "chip_id": "é"})  # not scanned: hashed from json
    _, _, _, ok, digests, _ = _scan(("\n".join(spelled) + "\n").encode())
    empty = hashlib.sha256(b"").hexdigest()  # a row not scanned: the reader hashes json's record
    want = [record_hash(r) if scanned else empty for r, scanned in zip(records + records, ok)]
    assert ok[3] == False  # noqa: E712
    assert [digests[32 * i : 32 * i + 32].hex() for i in range(len(spelled))] == want


@pytest.mark.parametrize(
    "spelling",
    [
        lambda r: json.dumps(r).replace('"flops": ', '"flops":  '),  # a second space
        lambda r: json.dumps(r, separators=(",", ": ")),  # a third layout
        lambda r: json.dumps(r).replace(", ", ",", 1),  # separators mixed
        lambda r: json.dumps({**r, "flops": int(r["flops"])}),  # an int where json read a float
        lambda r: json.dumps({**r, "tokens_processed": 1.0}),  # a float where an int belongs
        lambda r: json.dumps({**r, "chip_id": "é"}),  # an escape (\\u00e9)
        lambda r: json.dumps({**r, "chip_id": "é"}, ensure_ascii=False),  # raw UTF-8
        lambda r: json.dumps({**r, "x": 1}),  # an extra field
        lambda r: json.dumps({k: v for k, v in r.items() if k != "job_id"}),  # a missing one
        lambda r: json.dumps(r)[:-1] + ', "flops": 1.0}',  # a duplicate key
        lambda r: json.dumps(r).replace('"batch_size": ', '"batch_size": 0'),  # a leading zero
        lambda r: json.dumps(r).replace(str(r["flops"]), "1E30"),  # not repr's spelling
        lambda r: json.dumps({**r, "flops": float("nan")}),
        lambda r: json.dumps(r) + " ",  # trailing space
        lambda r: json.dumps(r) + json.dumps(r),  # two records on one line
        lambda r: json.dumps(r)[:-1],  # no closing brace before the newline
        lambda r: json.dumps({**r, "upstream_refs": [1]}),
    ],
)
def test_other_spellings_are_left_to_json(spelling):
    ok, _ = _rows([json.dumps(GOOD), spelling(GOOD), json.dumps(GOOD)])
    assert ok == [True, False, True]


tokens = (
    st.text(max_size=6)
    | st.integers(-(2**64), 2**64)
    | st.floats()
    | st.lists(st.text(max_size=3), max_size=3)
)


@settings(max_examples=300, deadline=None)
@given(field=st.sampled_from(sorted(GOOD)), value=tokens, canonical=st.booleans())
def test_a_scanned_row_is_what_json_reads(field, value, canonical):
    """Soundness: accepted only if the line is json.dumps of what json reads from it, in
    one of the two layouts, and then the row holds exactly those values."""
    record = {**GOOD, field: value}
    line = canonical_json(record) if canonical else json.dumps(record)
    ok, records = _rows([json.dumps(GOOD), line])
    assert ok[0]
    if ok[1]:
        read = json.loads(line)
        assert line in (json.dumps(read), json.dumps(read, sort_keys=True, separators=(",", ":")))
        assert records[1] == read
        assert [type(records[1][k]) for k in FIELDS] == [type(read[k]) for k in FIELDS]


@settings(max_examples=400, deadline=None)
@given(
    value=st.floats(allow_nan=False, allow_infinity=False)
    | st.from_regex(r"\A-?[0-9]{1,18}(\.[0-9]{0,18})?(e[+-]?[0-9]{1,3})?\Z", fullmatch=True)
)
def test_a_float_token_scans_only_as_repr_spells_it(value):
    """flops: repr's spelling of every finite double scans to that double; any other
    decimal spelling (trailing zeros, exponent layouts, int-spelled) is left to json."""
    token = repr(value) if isinstance(value, float) else value
    line = json.dumps(GOOD).replace(json.dumps(GOOD["flops"]), token, 1)
    ok, records = _rows([line])
    try:
        read = json.loads(line)["flops"]
    except ValueError:  # not JSON ("0.", "01"): never scanned
        read = None
    exact = isinstance(read, float) and abs(read) != float("inf") and repr(read) == token
    assert ok == [exact]
    if exact:
        assert repr(records[0]["flops"]) == token


def test_a_file_split_across_threads_scans_as_one(monkeypatch):
    """A large file is cut at a line boundary and its halves scanned on two threads: the
    rows, bounds, flags and digests are those of one pass (here with a tiny threshold, and
    lines the scanner takes, leaves to json, and defers to repr)."""
    import inspectorate.trace._jsonl as jsonl

    lines = seed_path("legit_finetune").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    spelled = [json.dumps(r) for r in records] + [canonical_json(r) for r in records]
    spelled[2] = json.dumps({**records[2], "chip_id": "é"})  # left to json
    spelled[5] = json.dumps({**records[5], "flops": 5e-324})  # a subnormal: repr decides
    raw = ("\n".join(spelled * 3) + "\n").encode()
    one = _scan(raw)
    monkeypatch.setattr(jsonl, "_SPLIT_BYTES", 64)
    monkeypatch.setattr(jsonl.os, "cpu_count", lambda: 2)
    assert len(jsonl._ranges(raw)) == 2
    two = _scan(raw)
    assert one is not None and two is not None
    assert one[0].equals(two[0])
    for a, b in zip(one[1:4], two[1:4]):
        assert a.tolist() == b.tolist()
    assert one[4] == two[4]
    assert not one[3][2] and one[3][5] and one[3].sum() == len(spelled) * 3 - 3
    for name in ("window_start", "window_end"):
        assert np.array_equal(one.times[name], two.times[name], equal_nan=True)


def test_identity_columns_come_dictionary_encoded_and_read_as_json_reads_them(monkeypatch, tmp_path):
    """The identity columns (chip, job, ...) come from the scanner as indices into their
    distinct values: thousands of distinct chips (the table grows many times), the same
    value on both threads, rows left to json (their placeholders replaced), all read back
    as json reads the lines, and the frame's columns are Categorical already."""
    import inspectorate.trace._jsonl as jsonl

    base = json.loads(seed_path("legit_finetune").read_text().splitlines()[0])
    records = [{**base, "chip_id": f"chip-{i % 3001}", "job_id": f"job-{i % 7}"} for i in range(9000)]
    spelled = [json.dumps(r) for r in records]
    spelled[10] = json.dumps({**records[10], "chip_id": "chip-é"})  # left to json
    spelled[11] = json.dumps({**records[11], "extra": 1})  # left to json
    monkeypatch.setattr(jsonl, "_SPLIT_BYTES", 64)
    monkeypatch.setattr(jsonl.os, "cpu_count", lambda: 2)
    raw = ("\n".join(spelled) + "\n").encode()
    frame, _, _, ok, *_ = _scan(raw)
    assert frame.schema["chip_id"] == pl.Categorical and frame.schema["job_id"] == pl.Categorical
    assert ok.sum() == len(spelled) - 2 and frame["chip_id"].n_unique() == 3001 + 1  # + the placeholder ""
    assert frame["chip_id"].to_list()[:3] == ["chip-0", "chip-1", "chip-2"]
    assert frame["chip_id"][5000] == "chip-1999" and frame["job_id"][8999] == f"job-{8999 % 7}"
    path = tmp_path / "many_chips.jsonl"
    path.write_bytes(raw)
    trace = jsonl.read_jsonl_columns(path)
    assert trace is not None
    assert records_from_frame(trace.frame) == [json.loads(line) for line in spelled]


def _near_repr(x: float) -> list[str]:
    """repr(x) and decimals a digit away from it: 16-17 digit spellings of x ('.16e',
    '.17g', '.15e') and repr's digits with the last one moved by one."""
    r = repr(x)
    mantissa, _, exp = r.partition("e")
    out = [r, f"{x:.16e}", f"{x:.17g}", f"{x:.15e}"]
    last = mantissa[-1]
    for step in (-1, 1):
        if "0" <= chr(ord(last) + step) <= "9":
            out.append(mantissa[:-1] + chr(ord(last) + step) + ("e" + exp if exp else ""))
    return out


def test_sixteen_and_seventeen_digit_floats_are_judged_as_repr():
    """Floats of 16-17 significant digits are proven repr's without repr (no shorter
    decimal reads back, the digits are the nearest): every token a digit away from repr's
    is told apart exactly as repr tells it, over values where that proof applies and
    where it defers to repr."""
    import random

    rnd = random.Random(22)
    values = [rnd.uniform(1e15, 1e22) for _ in range(1500)]
    values += [float(rnd.randint(1, 10**17)) * 10.0 ** rnd.randint(-40, 40) for _ in range(1500)]
    tokens = [t for x in values for t in _near_repr(x)]
    base, old = json.dumps(GOOD), json.dumps(GOOD["flops"])
    frame, _, _, ok, *_ = _scan(("\n".join(base.replace(old, t, 1) for t in tokens) + "\n").encode())
    want = [repr(float(t)) == t for t in tokens]
    assert ok.tolist() == want
    assert sum(want) > len(values) and not all(want)
    taken = [float(t) for t, w in zip(tokens, want) if w]
    assert frame.filter(pl.Series(ok))["flops"].to_list() == taken


def _stamps() -> list[str]:
    """Seed-spelled timestamps over years 1-9999 (leap days, month ends, the epoch) and
    texts one step off that spelling or the calendar."""
    import random

    rnd = random.Random(7)
    out = [
        f"{rnd.randint(1, 9999):04d}-{rnd.randint(1, 12):02d}-{rnd.randint(1, 31):02d}T"
        f"{rnd.randint(0, 24):02d}:{rnd.randint(0, 60):02d}:{rnd.randint(0, 60):02d}Z"
        for _ in range(3000)
    ]
    out += ["0001-01-01T00:00:00Z", "9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59Z"]
    out += ["2024-02-29T12:00:00Z", "2023-02-29T12:00:00Z", "1900-02-29T00:00:00Z", "2000-02-29T00:00:00Z"]
    out += [
        "2026-04-31T00:00:00Z",
        "0000-01-01T00:00:00Z",
        "2026-04-24T09:00:00",
        "2026-04-24T09:00:00+00:00",
    ]
    out += ["2026-04-24 09:00:00Z", "2026-04-24T09:00:00.5Z", "2026-4-24T09:00:00Z", "2026-04-24T09:00:0aZ"]
    return out


def test_timestamps_read_in_the_scan_are_parse_time_s():
    """The scanner gives epoch seconds for a timestamp in the seed's spelling on a real
    date (exactly parse_time's value) and NaN for every other text, which the reader
    then parses itself: the trace's ws/we are parse_time's either way."""
    from inspectorate.trace._schema import RecordError, parse_time

    def parsed(text: str) -> float | None:
        try:
            return parse_time(text)
        except RecordError:
            return None

    stamps = _stamps()
    base, old = json.dumps(GOOD), json.dumps(GOOD["window_start"])
    scanned = _scan(("\n".join(base.replace(old, json.dumps(t), 1) for t in stamps) + "\n").encode())
    assert scanned is not None and scanned.exact.all()
    got = scanned.times["window_start"].tolist()
    seed = [len(t) == 20 and t.endswith("Z") and t[10] == "T" and parsed(t) is not None for t in stamps]
    assert 1000 < sum(seed) < len(stamps)
    for text, value, in_seed in zip(stamps, got, seed):
        assert (value == parsed(text)) if in_seed else np.isnan(value), text
    assert not np.isnan(scanned.times["window_end"]).any()


def test_a_trace_with_other_time_spellings_reads_as_the_line_reader(tmp_path):
    """Rows whose times the scanner leaves (an offset, no zone, a fraction) get parse_time's
    value from the reader; an impossible date is still an error naming its line."""
    from inspectorate.errors import InputError
    from inspectorate.trace._io import _read_jsonl_lines, read_trace

    lines = seed_path("legit_finetune").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    for record, stamp in zip(
        records, ["2026-04-24T09:00:00+00:00", "2026-04-24T09:00:00", "2026-04-24T09:00:00.5Z"]
    ):
        record["window_start"] = stamp
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    fast, slow = read_trace(path), _read_jsonl_lines(path)
    assert fast.frame["ws"].to_list() == slow.frame["ws"].to_list()
    assert fast.frame["we"].to_list() == slow.frame["we"].to_list()
    records[4]["window_end"] = "2026-02-30T00:00:00Z"
    path.write_text("\n".join(json.dumps(r) for r in records) + "\n")
    with pytest.raises(InputError, match=":5"):
        read_trace(path)


def test_a_plain_file_is_mapped_and_one_to_rewrite_is_read(tmp_path):
    """A file whose bytes are its text is mapped (no copy); one with a BOM or \\r\\n is
    read and rewritten as the text reader sees it; an empty one is left to that reader."""
    import mmap

    from inspectorate.trace._jsonl import _bytes

    text = seed_path("legit_finetune").read_bytes()
    plain, bom, crlf, empty = (tmp_path / n for n in ("p.jsonl", "b.jsonl", "c.jsonl", "e.jsonl"))
    plain.write_bytes(text)
    bom.write_bytes(b"\xef\xbb\xbf" + text)
    crlf.write_bytes(text.replace(b"\n", b"\r\n"))
    empty.write_bytes(b"")
    mapped = _bytes(plain)
    assert isinstance(mapped, mmap.mmap) and mapped[:] == text
    assert _bytes(bom) == text and _bytes(crlf) == text and _bytes(empty) == b""


SHRINK = """
import sys
from inspectorate.trace import _jsonl
from inspectorate.cli import main

mapped_by = _jsonl._mapped

def mapped_then_truncated(path):
    mapped = mapped_by(path)
    with open(path, "r+b") as handle:  # the file shrinks after it is mapped, before it is read
        handle.truncate(0)
    return mapped

_jsonl._mapped = mapped_then_truncated
sys.argv = ["inspectorate", "check", sys.argv[1], "-c", sys.argv[2]]
main()
"""


def test_a_file_that_shrinks_under_its_mapping_is_one_line_and_exit_2(tmp_path):
    """A read past the end of a truncated mapped file raises SIGBUS: the process ends
    with exit code 2 and one line naming the file, not a silent kill (-7)."""
    import os
    import subprocess
    import sys

    from inspectorate.data import commitment_path

    trace = tmp_path / "shrinks.jsonl"
    trace.write_bytes(seed_path("legit_finetune").read_bytes())
    env = {**os.environ, "PYTHONFAULTHANDLER": ""}
    run = subprocess.run(
        [sys.executable, "-c", SHRINK, str(trace), str(commitment_path("frontier-training-cap"))],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert run.returncode == 2, (run.returncode, run.stderr[-500:])
    assert run.stdout == ""
    assert run.stderr.splitlines() == [
        f"error: {trace}: the file shrank while it was read (evidence must not change while it is checked)"
    ]
    assert trace.stat().st_size == 0  # the file did shrink: the guard, not luck, answered
