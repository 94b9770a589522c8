"""Every trace writer round-trips through its reader (issue 18 item 4).

A writer never accepts what its reader rejects: whatever records ``write_trace`` (and
the generator's streaming writer) put in ``.jsonl``, ``.jsonl.gz`` or ``.parquet`` read
back as the same records, byte for byte in canonical JSON, with an intact chain that the
published head (the ``.head.json`` sidecar) pins, and the sidecar's record count agrees.
"""

from __future__ import annotations

import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builders import base
from inspectorate.trace import (
    GenSpec,
    canonical_json,
    chain_head,
    read_trace,
    rechain,
    write_generated,
    write_trace,
)
from inspectorate.trace._io import read_head_sidecar

text = st.text(max_size=10)
finite = st.floats(min_value=0, max_value=1e30, allow_nan=False, allow_infinity=False)
extra_value = st.none() | st.booleans() | st.integers(-(10**9), 10**9) | text


@st.composite
def record(draw, index: int):
    second = draw(st.integers(0, 59))
    out = {
        "record_id": f"r{index}-" + draw(text),
        "prev_record_hash": "",
        "chip_id": draw(text),
        "job_id": draw(text),
        "operator": draw(text),
        "cluster_region": draw(text),
        "window_start": "2026-01-01T00:00:00Z",
        "window_end": f"2026-01-01T00:00:{second:02d}Z",
        "op_type": draw(st.sampled_from(["training", "inference", "eval", "idle", "é"])),
        "flops": draw(finite | st.integers(0, 10**18)),
        "tokens_processed": draw(st.integers(0, 2**63 - 1)),
        "batch_size": draw(st.integers(0, 10**6)),
        "sequence_length": draw(st.integers(0, 10**6)),
        "model_hash_prefix": draw(text),
        "dataset_fingerprint": draw(text),
        "upstream_refs": draw(st.lists(text, max_size=3)),
        "data_source_tags": draw(st.lists(text, max_size=3)),
        "code_commit": draw(text),
        "config_hash": draw(text),
    }
    out.update(draw(st.dictionaries(st.sampled_from(["site", "Zz", "note"]), extra_value, max_size=2)))
    return out


@st.composite
def traces(draw):
    count = draw(st.integers(1, 6))
    return rechain([draw(record(i)) for i in range(count)])


SUFFIXES = [".jsonl", ".jsonl.gz", ".parquet"]
SLOW_OK = settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)


@pytest.mark.parametrize("suffix", SUFFIXES)
@SLOW_OK
@given(records=traces())
def test_write_trace_round_trips(tmp_path_factory, suffix, records):
    path = tmp_path_factory.mktemp("rt") / f"t{suffix}"
    write_trace(records, path)
    back = read_trace(path)
    assert [canonical_json(r) for r in back.records] == [canonical_json(r) for r in records]
    assert back.head == chain_head(records)
    assert read_head_sidecar(path) == (chain_head(records), len(records))
    assert back.chain_breaks() == []


@pytest.mark.parametrize("suffix", SUFFIXES)
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**16), scenario=st.sampled_from(["training", "mixed", "over_cap"]))
def test_generated_traces_round_trip(tmp_path_factory, suffix, seed, scenario):
    path = tmp_path_factory.mktemp("gen") / f"g{suffix}"
    count = write_generated(GenSpec(chips=2, hours=0.05, scenario=scenario, seed=seed), path)
    back = read_trace(path)
    assert len(back) == count
    assert json.loads(path.with_name(path.name + ".head.json").read_text())["records"] == count
    assert back.chain_breaks() == []


def test_a_truncated_file_is_named_by_its_sidecar(tmp_path):
    """Before: the head break read like a hash mismatch; now it says what happened."""
    records = rechain(base(chips=1, windows=5))
    path = write_trace(records, tmp_path / "t.jsonl")
    lines = path.read_text().splitlines(keepends=True)
    path.write_text("".join(lines[:3]))
    breaks = read_trace(path).chain_breaks()
    assert [b.reason for b in breaks] == ["truncated: 3 records, the published head covers 5"]
    path.write_text("".join(lines[:3]))  # a head given on the command line carries no count
    assert "truncated" not in read_trace(path, head=breaks[0].expected).chain_breaks()[0].reason


@pytest.mark.parametrize("name", ["legit_finetune", "alibaba_real", "bloom_real"])
def test_the_partitioned_layout_round_trips(tmp_path, name):
    """Single chain -> partitioned layout -> single chain: the same records, and the
    layout's own roots verify."""
    pytest.importorskip("dask")
    from inspectorate.data import seed_path
    from inspectorate.scale import convert, verify_partitioned

    original = read_trace(seed_path(name))
    layout = convert(seed_path(name), tmp_path / "layout", window_seconds=3600, chip_groups=4)
    assert verify_partitioned(layout) == []
    back = read_trace(convert(layout, tmp_path / "back.jsonl"))
    assert sorted(canonical_json(r) for r in back.records) == sorted(
        canonical_json(r) for r in original.records
    )
