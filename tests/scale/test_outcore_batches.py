"""Keyed buckets read in batches of whole groups (``_outcore._batches``): a bucket of
few groups can hold far more than ``SPILL_ROWS``; judging it a batch of whole groups at
a time gives the in-memory verdict, violations and evidence."""

from __future__ import annotations

import sys
from pathlib import Path

import polars as pl

import inspectorate.scale._outcore as outcore
from inspectorate.commitment import check
from inspectorate.trace import GenSpec, Trace, generate_trace, read_trace, write_trace

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_outcore import _commitment, _facts


def test_a_bucket_over_the_spill_size_is_judged_in_batches_of_whole_chips(tmp_path, monkeypatch):
    spec = GenSpec(chips=6, hours=0.5, scenario="training", seed=5)
    records = generate_trace(spec).records
    # a chip going back in time: record i takes the window of its chip two windows earlier
    i = len(records) // 2
    records[i] = {**records[i], "window_start": records[i - 12]["window_start"]}
    records[i]["window_end"] = records[i - 12]["window_end"]
    path = write_trace(Trace.from_records(records), tmp_path / "t.parquet")
    seen: list[list] = []
    batches = outcore._batches
    monkeypatch.setattr(outcore, "_batches", lambda *a: seen.append(batches(*a)) or seen[-1])
    commitment = _commitment(spec)
    local = check(read_trace(path), commitment)
    verdict, _ = outcore.check_out_of_core(path, commitment, part_rows=37, spill_rows=20)
    assert _facts(verdict) == _facts(local)
    assert any(v.rule_id == "timestamp_monotonic" for v in verdict.violations)
    split = [b for b in seen if b != [None]]
    assert split, "no bucket was over the spill size"
    for found in split:
        chips = [c for batch in found for c in batch]
        assert len(chips) == len(set(chips))  # every chip in exactly one batch


def test_batches_hold_whole_groups_of_at_most_the_given_rows(tmp_path):
    frame = pl.DataFrame({"k": ["a"] * 5 + ["b"] * 3 + ["c"] * 9 + ["d"] * 1, "row": range(18)})
    frame.slice(0, 10).write_parquet(tmp_path / "p-0.parquet")
    frame.slice(10).write_parquet(tmp_path / "p-1.parquet")
    files = sorted(tmp_path.glob("p-*.parquet"))
    assert outcore._batches(files, "k", 18) == [None]
    found = outcore._batches(files, "k", 8)
    sizes = {"a": 5, "b": 3, "c": 9, "d": 1}
    assert sorted(k for b in found for k in b) == ["a", "b", "c", "d"]
    assert all(sum(sizes[k] for k in b) <= 8 or len(b) == 1 for b in found)
