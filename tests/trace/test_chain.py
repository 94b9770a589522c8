"""The seed's chain: shared traces verify, any single-field change is detected."""

from __future__ import annotations

import copy
import json

import pytest

from inspectorate.data import SEED_TRACES, seed_path
from inspectorate.trace import GENESIS, chain_head, read_trace, rechain, record_hash, verify_chain


@pytest.mark.parametrize("name", SEED_TRACES)
def test_embedded_seed_traces_verify(name):
    trace = read_trace(seed_path(name))
    assert trace.chain_breaks() == []
    assert trace.records[0]["prev_record_hash"] == GENESIS


@pytest.mark.parametrize("name", SEED_TRACES)
def test_shared_seed_traces_verify(name, shared_data):
    assert read_trace(shared_data / "seed-traces" / f"{name}.jsonl").chain_breaks() == []


def _changed(value):
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value * 1.5 + 1.0  # +1 alone vanishes in a float like 3.2e16
    if isinstance(value, str):
        return value + "x"
    if isinstance(value, list):
        return value + ["x"]
    if isinstance(value, dict):
        return {**value, "x": 1}
    return "x"


@pytest.mark.parametrize("name", SEED_TRACES)
def test_every_single_field_change_is_detected(name):
    records = read_trace(seed_path(name)).records
    head = chain_head(records)
    for index, record in enumerate(records):
        for field in record:
            mutated = copy.deepcopy(records)
            mutated[index][field] = _changed(record[field])
            breaks = verify_chain(mutated, head=head)
            assert breaks, f"{name}: change of {field} in record {index} not detected"
            # the break points at the edited record (or at the record it now disagrees with)
            assert index in {b.suspect_index for b in breaks} | {b.index for b in breaks}


def test_tail_edit_needs_the_head():
    records = read_trace(seed_path("legit_finetune")).records
    mutated = copy.deepcopy(records)
    mutated[-1]["flops"] = 1.0
    assert verify_chain(mutated) == []  # nothing after the last record can disagree...
    assert verify_chain(mutated, head=chain_head(records))  # ...which is what a published head is for


def test_truncation_detected_with_head_and_reorder_without():
    records = read_trace(seed_path("legit_finetune")).records
    assert verify_chain(records[:-3], head=chain_head(records))
    swapped = records[:5] + [records[6], records[5]] + records[7:]
    assert verify_chain(swapped)


def test_rechain_repairs_and_does_not_touch_input():
    records = read_trace(seed_path("legit_eval_sweep")).records
    before = json.dumps(records, sort_keys=True)
    mutated = [dict(r, flops=r["flops"] / 2) for r in records]
    assert verify_chain(mutated)
    fixed = rechain(mutated)
    assert verify_chain(fixed) == []
    assert json.dumps(records, sort_keys=True) == before
    assert record_hash(fixed[0]) == fixed[1]["prev_record_hash"]


def test_parallel_parquet_chain_matches_sequential(tmp_path):
    import pyarrow.parquet as pq

    from inspectorate.trace import GenSpec, write_generated
    from inspectorate.trace._fastchain import chunk_chain_breaks, parquet_chain_breaks
    from inspectorate.trace._io import iter_parquet_chunks

    for scenario in ("training", "tampered", "dropped_windows"):
        source = tmp_path / f"{scenario}.parquet"
        write_generated(GenSpec(chips=6, hours=2, scenario=scenario), source)
        split = tmp_path / f"{scenario}_groups.parquet"
        pq.write_table(pq.read_table(source), split, row_group_size=97)  # many row groups
        sequential = chunk_chain_breaks(iter_parquet_chunks(split))
        assert parquet_chain_breaks(split, workers=2) == sequential
        assert bool(sequential) == (
            scenario == "tampered"
        )  # dropped windows are re-chained: completeness catches them
