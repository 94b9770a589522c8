"""The column-wise JSONL reader reads exactly what the line-by-line json reader reads, and
on bad input gives the very same one-line error (it hands bad files to that reader)."""

from __future__ import annotations

import gzip
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inspectorate.data import seed_path
from inspectorate.errors import InputError
from inspectorate.trace import GenSpec, canonical_json, generate_trace, read_trace, rechain, write_trace
from inspectorate.trace._io import _read_jsonl_lines
from inspectorate.trace._jsonl import _bounds, _bytes, _exact_rows, _parse, read_jsonl_columns

SEEDS = [
    "legit_finetune",
    "legit_eval_sweep",
    "legit_inference_serve",
    "real_laptop_clean",
    "alibaba_real",
    "bloom_real",
]
GOOD = json.loads(seed_path("legit_finetune").read_text().splitlines()[0])


def _same(path):
    """Both readers agree: equal frames and canonical records, or the same error line."""
    try:
        want = _read_jsonl_lines(path)
    except InputError as exc:
        with pytest.raises(InputError) as got:
            read_trace(path)
        assert got.value.one_line() == exc.one_line()
        return None
    fast = read_jsonl_columns(path)
    got = fast if fast is not None else read_trace(path)
    assert got.frame.equals(want.frame)
    assert [canonical_json(r) for r in got.records] == [canonical_json(r) for r in want.records]
    assert got.chain_breaks() == want.chain_breaks()
    return fast


@pytest.mark.parametrize("name", SEEDS)
def test_seed_traces_in_every_layout(tmp_path, name):
    assert _same(seed_path(name)) is not None  # the reference's json.dumps layout
    assert _same(write_trace(read_trace(seed_path(name)), tmp_path / "t.jsonl")) is not None  # canonical
    assert _same(write_trace(read_trace(seed_path(name)), tmp_path / "t.jsonl.gz")) is not None


def test_plain_records_take_the_column_path(tmp_path):
    """No line of a generated trace needs json: every row is proven equal to its line."""
    trace = generate_trace(GenSpec(chips=4, hours=0.5, scenario="mixed"))
    path = tmp_path / "ref.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in trace.records))
    raw = _bytes(path)
    starts, ends = _bounds(raw)
    assert _exact_rows(_parse(raw, len(starts)), raw, starts, ends).all()
    assert _same(path) is not None


def test_duplicate_keys_read_as_json_reads_them(tmp_path):
    """A forger's line with two flops values: every reader must take json's (the last)."""
    line = json.dumps(GOOD)[:-1] + ', "flops": 1.0}'
    path = tmp_path / "dup.jsonl"
    path.write_text(line.replace('"flops": ', '"flops": 9e30, "x": 0, "flops": ', 1) + "\n")
    got = read_trace(path)
    assert got.records[0]["flops"] == json.loads(path.read_text())["flops"] == 1.0
    _same(path)


def test_integer_flops_and_extras_keep_their_bytes(tmp_path):
    recs = rechain([dict(GOOD, flops=0, _extra={"n": 2**70, "f": 1e-7, "s": "é😀"}), dict(GOOD, flops=0.0)])
    path = tmp_path / "t.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in recs))
    got = read_trace(path)
    assert [canonical_json(r) for r in got.records] == [canonical_json(r) for r in recs]
    assert isinstance(got.records[0]["flops"], int) and isinstance(got.records[1]["flops"], float)
    assert got.chain_breaks() == []


BAD_LINES = [
    "{not json}",
    "[1, 2]",
    '{"record_id": "x"}',
    json.dumps(dict(GOOD, flops=-1.0)),
    json.dumps(dict(GOOD, tokens_processed=-5)),
    json.dumps(dict(GOOD, tokens_processed=2**64)),
    json.dumps(dict(GOOD, tokens_processed=1.5)),
    json.dumps(dict(GOOD, chip_id=5)),
    json.dumps(dict(GOOD, upstream_refs=[1])),
    json.dumps(dict(GOOD, window_end="2026-01-01T00:00:00Z")),
    json.dumps(dict(GOOD, window_start="yesterday")),
    json.dumps(GOOD).replace("3.2567729011266216e+16", "NaN"),
    json.dumps(GOOD).replace("3.2567729011266216e+16", "Infinity"),
    json.dumps(dict(GOOD, batch_size=True)),
    json.dumps(dict(GOOD, chip_id=None)),
]


@pytest.mark.parametrize("bad", BAD_LINES)
@pytest.mark.parametrize("where", [0, 2])
def test_bad_lines_give_the_line_readers_error(tmp_path, bad, where):
    lines = [json.dumps(GOOD)] * 3
    lines.insert(where, bad)
    path = tmp_path / "bad.jsonl"
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as exc:
        read_trace(path)
    assert f":{where + 1}" in exc.value.one_line() or f"line {where + 1}" in exc.value.one_line()
    _same(path)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\n\n",
        b"\xef\xbb\xbf" + json.dumps(GOOD).encode(),
        json.dumps(GOOD).encode() + b"\r\n\r\n",
        json.dumps(GOOD).encode() + b"\r" + json.dumps(GOOD).encode(),
        b"  \n" + json.dumps(GOOD).encode(),
        b"\x0c\n" + json.dumps(GOOD).encode(),
        "\u2028\n".encode() + json.dumps(GOOD).encode(),
        json.dumps(GOOD).encode() + b"\xff\n",
        b" " + json.dumps(GOOD).encode(),
    ],
)
def test_odd_bytes_match_the_line_reader(tmp_path, raw):
    path = tmp_path / "odd.jsonl"
    path.write_bytes(raw)
    _same(path)
    gz = tmp_path / "odd.jsonl.gz"
    gz.write_bytes(gzip.compress(raw))
    _same(gz)


values = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=8)
    | st.lists(st.integers() | st.text(max_size=3), max_size=2)
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    field=st.sampled_from(sorted(GOOD) + ["extra"]),
    value=values,
    drop=st.booleans(),
    layout=st.sampled_from(["dumps", "canonical", "indent"]),
    row=st.integers(0, 2),
)
def test_any_field_value_reads_as_the_line_reader_reads_it(tmp_path, field, value, drop, layout, row):
    record = dict(GOOD)
    if drop:
        record.pop(field, None)
    else:
        record[field] = value
    spell = {
        "dumps": json.dumps,
        "canonical": canonical_json,
        "indent": lambda r: json.dumps(r, separators=(",", ": ")),
    }[layout]
    lines = [json.dumps(GOOD)] * 3
    lines[row] = spell(record)
    path = tmp_path / "t.jsonl"
    path.write_text("\n".join(lines) + "\n")
    _same(path)
