"""Readers/writers: exact round trips, one clear error for each kind of bad input."""

from __future__ import annotations

import gzip
import json

import pytest

from inspectorate.data import seed_path
from inspectorate.errors import InputError
from inspectorate.trace import GenSpec, canonical_json, read_trace, write_generated, write_trace


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".parquet"])
@pytest.mark.parametrize("name", ["real_laptop_clean", "alibaba_real", "bloom_real"])
def test_round_trip_keeps_extra_fields_and_chain(tmp_path, suffix, name):
    original = read_trace(seed_path(name))
    path = write_trace(original, tmp_path / f"t{suffix}")
    again = read_trace(path)
    assert [canonical_json(r) for r in again.records] == [canonical_json(r) for r in original.records]
    assert again.head is not None and again.chain_breaks() == []


def test_integer_flops_survive_parquet(tmp_path):
    records = read_trace(seed_path("legit_eval_sweep")).records
    records = [dict(r, flops=0) if i == 0 else r for i, r in enumerate(records)]
    from inspectorate.trace import rechain

    path = write_trace(rechain(records), tmp_path / "t.parquet")
    assert read_trace(path).records[0]["flops"] == 0 and isinstance(read_trace(path).records[0]["flops"], int)


def test_generated_parquet_and_jsonl_agree(tmp_path):
    spec = GenSpec(chips=3, hours=0.5, scenario="mixed")
    write_generated(spec, tmp_path / "g.parquet")
    write_generated(spec, tmp_path / "g.jsonl")
    a, b = read_trace(tmp_path / "g.parquet"), read_trace(tmp_path / "g.jsonl")
    assert a.head == b.head and a.chain_breaks() == [] and b.chain_breaks() == []


def _lines(tmp_path, lines, name="bad.jsonl"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n")
    return path


def _good():
    return read_trace(seed_path("legit_finetune")).records[0]


BAD = {
    "truncated": (lambda g: [json.dumps(g), json.dumps(g)[:40]], 2, "not valid JSON"),
    "not json": (lambda g: ["hello"], 1, "not valid JSON"),
    "missing field": (
        lambda g: [json.dumps({k: v for k, v in g.items() if k != "flops"})],
        1,
        "missing field(s): flops",
    ),
    "wrong type": (
        lambda g: [json.dumps(dict(g, tokens_processed="many"))],
        1,
        "'tokens_processed' must be an integer",
    ),
    "nan": (lambda g: [json.dumps(g).replace('"flops": 3.2', '"flops": NaN, "x": 3.2')], 1, "NaN"),
    "infinity literal": (lambda g: [json.dumps(dict(g, flops=1e400))], 1, "Infinity is not allowed"),
    "overflowing number": (
        lambda g: [json.dumps(dict(g, flops=7.0)).replace("7.0", "1e400")],
        1,
        "not finite",
    ),
    "bad time": (lambda g: [json.dumps(dict(g, window_start="yesterday"))], 1, "ISO 8601"),
    "array": (lambda g: ["[1, 2]"], 1, "JSON object"),
    "int64 overflow": (lambda g: [json.dumps(dict(g, tokens_processed=10**20))], 1, "between 0 and 2**63-1"),
    "negative": (lambda g: [json.dumps(dict(g, batch_size=-1))], 1, "between 0 and 2**63-1"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_names_file_line_and_problem(tmp_path, case):
    make, line, reason = BAD[case]
    path = _lines(tmp_path, make(_good()))
    with pytest.raises(InputError) as err:
        read_trace(path)
    assert err.value.line == line and reason in err.value.reason and str(path) in str(err.value)


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "empty.jsonl").write_text("")
    with pytest.raises(InputError, match="empty"):
        read_trace(tmp_path / "empty.jsonl")
    with pytest.raises(InputError, match="no such file"):
        read_trace(tmp_path / "nope.jsonl")
    (tmp_path / "x.jsonl.gz").write_bytes(b"not gzip")
    with pytest.raises(InputError, match="cannot read"):
        read_trace(tmp_path / "x.jsonl.gz")
    (tmp_path / "x.parquet").write_bytes(b"not parquet")
    with pytest.raises(InputError, match="Parquet"):
        read_trace(tmp_path / "x.parquet")


def test_gzip_round_trip_is_canonical_lines(tmp_path):
    path = write_trace(read_trace(seed_path("legit_eval_sweep")), tmp_path / "t.jsonl.gz")
    with gzip.open(path, "rt") as handle:
        first = handle.readline().rstrip("\n")
    assert first == canonical_json(json.loads(first))


def test_large_parquet_keeps_rule_columns_and_streams_the_chain(tmp_path, monkeypatch):
    import inspectorate.trace._io as io
    from inspectorate.commitment import check, load_commitment
    from inspectorate.data import commitment_path

    spec = GenSpec(chips=4, hours=1, scenario="mixed")
    write_generated(spec, tmp_path / "g.parquet")
    write_generated(GenSpec(chips=4, hours=1, scenario="tampered"), tmp_path / "t.parquet")
    full = read_trace(tmp_path / "g.parquet")
    monkeypatch.setattr(io, "LEAN_ABOVE", 10)
    lean = read_trace(tmp_path / "g.parquet")
    assert lean.lean and not full.lean and "window_start" not in lean.frame.columns
    assert lean.chain_breaks() == [] and lean.head == full.head
    assert [canonical_json(r) for r in lean.records] == [canonical_json(r) for r in full.records]
    commitment = load_commitment(commitment_path("frontier-training-cap"))
    assert check(lean, commitment).to_dict() == check(full, commitment).to_dict()
    tampered = read_trace(tmp_path / "t.parquet")
    assert tampered.lean and [b.index for b in tampered.chain_breaks()] == [3]


def test_lean_and_full_frames_give_the_same_violations(tmp_path, monkeypatch):
    import inspectorate.trace._io as io
    from inspectorate.commitment import check, load_commitment
    from inspectorate.data import commitment_path
    from inspectorate.trace import generate_trace, rechain

    commitment = load_commitment(commitment_path("frontier-training-cap"))
    records = generate_trace(GenSpec(chips=3, hours=0.5, scenario="forbidden_tag")).records
    records[7]["upstream_refs"] = ["rec_9999999999"]  # phantom
    records[9]["upstream_refs"] = [records[12]["record_id"]]  # forward reference
    write_trace(rechain(records), tmp_path / "v.parquet")
    full = check(read_trace(tmp_path / "v.parquet"), commitment).to_dict()
    monkeypatch.setattr(io, "LEAN_ABOVE", 10)
    lean_trace = read_trace(tmp_path / "v.parquet")
    assert lean_trace.lean
    lean = check(lean_trace, commitment).to_dict()
    assert lean == full
    fired = {v["rule_id"] for v in lean["violations"]}
    assert {"forbidden_data_source_tags", "upstream_refs_dag_validity"} <= fired


def test_json_schema_and_validator_agree_field_by_field():
    """The JSON Schema is derived from the same field lists validate_record uses: every
    field it requires is required by the validator, with the same JSON type."""
    import copy

    from inspectorate.trace import json_schema, read_trace, validate_record
    from inspectorate.trace._schema import RecordError

    schema = json_schema()
    record = read_trace(seed_path("legit_finetune")).records[0]
    validate_record(record)
    wrong = {"string": 7, "integer": "7", "number": "7", "array": "a"}
    assert set(schema["required"]) == set(schema["properties"])
    for name, prop in schema["properties"].items():
        for broken in ({k: v for k, v in record.items() if k != name}, {**record, name: wrong[prop["type"]]}):
            with pytest.raises(RecordError, match=name if name in broken else f"missing.*{name}"):
                validate_record(copy.deepcopy(broken))


def _parquet_with(tmp_path, name: str, column: str, value) -> object:
    """A generated 24-record Parquet trace with ``column`` of row 13 set to ``value``."""
    import polars as pl

    from inspectorate.trace import generate_trace
    from inspectorate.trace._schema import FIELDS

    frame = pl.DataFrame(generate_trace(GenSpec(chips=4, hours=0.1)).records).select(FIELDS)
    if value is not _STRING_FLOPS:
        at_13 = pl.int_range(pl.len()) == 13
        frame = frame.with_columns(pl.when(at_13).then(pl.lit(value)).otherwise(pl.col(column)).alias(column))
    else:
        frame = frame.with_columns(pl.col("flops").cast(pl.Utf8))
    path = tmp_path / f"{name}.parquet"
    frame.write_parquet(path)
    return path


_STRING_FLOPS = object()
_BAD_ROWS = {
    "null": ("chip_id", None),
    "nan": ("flops", float("nan")),
    "negative": ("tokens_processed", -1),
    "time": ("window_start", "not a time"),
    "feb30": ("window_start", "2026-02-30T00:00:00Z"),
    "order": ("window_end", "2026-04-24T08:00:00Z"),
    "type": ("flops", _STRING_FLOPS),
}


@pytest.mark.parametrize("case", sorted(_BAD_ROWS))
def test_lean_reader_rejects_what_the_full_reader_rejects(tmp_path, monkeypatch, case):
    import inspectorate.trace._io as io

    path = _parquet_with(tmp_path, case, *_BAD_ROWS[case])
    with pytest.raises(InputError) as full:
        read_trace(path)
    monkeypatch.setattr(io, "LEAN_ABOVE", 10)
    with pytest.raises(InputError) as lean:
        read_trace(path)
    if case == "type":  # the storage type is checked before any row is read
        assert str(lean.value) == str(full.value) and "wrong column type" in str(lean.value)
    else:
        assert str(lean.value) == str(full.value) and "row 13" in str(lean.value)


@pytest.mark.parametrize(
    "spelling", ["2026-04-24T09:00:00+00:00", "2026-04-24T10:00:00.250+01:00", "2026-04-24 09:00:00"]
)
def test_every_reader_parses_other_iso_spellings_like_the_line_reader(tmp_path, monkeypatch, spelling):
    import inspectorate.trace._io as io
    from inspectorate.trace._schema import parse_time

    path = _parquet_with(tmp_path, "iso", "window_start", spelling)
    full = read_trace(path).frame
    monkeypatch.setattr(io, "LEAN_ABOVE", 10)
    lean = read_trace(path).frame
    assert full["ws"][13] == lean["ws"][13] == parse_time(spelling)
    assert full["ws"].to_list() == lean["ws"].to_list() and full["we"].to_list() == lean["we"].to_list()


@pytest.mark.parametrize(
    "extra, says",
    [
        ("not json", "is not JSON"),
        ("[1]", "not a JSON object"),
        ('{"record_id": "rec_x"}', "repeats schema field(s) ['record_id']"),
        ('{"flops": 1e25}', "gives flops"),
        ('{"flops": 99}', "gives flops"),
    ],
)
def test_extra_cannot_restate_what_the_rules_read(tmp_path, extra, says):
    """A forger lowers a Parquet file's flops column and keeps the true value in _extra,
    so the chain (hashing _extra's value) still verifies while the rules read the low
    one. Any _extra that re-states a schema field, or is not a JSON object, is bad input."""
    import polars as pl

    from inspectorate.commitment import check, load_commitment
    from inspectorate.data import commitment_path
    from inspectorate.trace import generate_trace
    from inspectorate.trace._schema import FIELDS

    frame = pl.DataFrame(generate_trace(GenSpec(chips=2, hours=0.1)).records).select(FIELDS)
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(pl.lit(extra)).otherwise(None).alias("_extra")
    )
    frame.write_parquet(tmp_path / "f.parquet")
    commitment = load_commitment(commitment_path("frontier-training-cap"))
    with pytest.raises(InputError, match=r"record 'rec_0000000003': _extra") as found:
        check(read_trace(tmp_path / "f.parquet"), commitment)
    assert says in str(found.value)


def test_extra_may_spell_flops_as_the_integer_it_was(tmp_path):
    from inspectorate.trace import generate_trace, rechain

    records = generate_trace(GenSpec(chips=2, hours=0.1)).records
    records[3]["flops"] = int(records[3]["flops"])
    records[4]["note"] = {"free": "text"}
    trace = read_trace(write_trace(rechain(records), tmp_path / "i.parquet"))
    assert trace.chain_breaks() == [] and trace.records[3]["flops"] == records[3]["flops"]
    assert isinstance(trace.records[3]["flops"], int) and trace.records[4]["note"] == {"free": "text"}
