"""Window records: grid clipping, claimed FLOPs from real tokens, a verifiable chain."""

from __future__ import annotations

from pathlib import Path

from inspectorate.capture import ChainWriter
from inspectorate.testbed.windows import (
    WindowClaim,
    WindowTally,
    append_windows,
    iso_z,
    window_bounds,
    window_records,
)
from inspectorate.trace import verify_chain
from inspectorate.trace.streams import read_chain_file

SEED_FIELDS = {
    "record_id",
    "prev_record_hash",
    "chip_id",
    "job_id",
    "operator",
    "cluster_region",
    "window_start",
    "window_end",
    "op_type",
    "flops",
    "tokens_processed",
    "batch_size",
    "sequence_length",
    "model_hash_prefix",
    "dataset_fingerprint",
    "upstream_refs",
    "data_source_tags",
    "code_commit",
    "config_hash",
}


def _claim(op: str = "training", fpt: float = 6e6, job: str = "job-a") -> WindowClaim:
    return WindowClaim(
        job_id=job,
        operator="op",
        cluster_region="local-cpu",
        op_type=op,
        flops_per_token=fpt,
        batch_size=4,
        sequence_length=32,
        model_hash_prefix="sha256:" + "1" * 16,
        dataset_fingerprint="sha256:" + "2" * 16,
        data_source_tags=("corpus:x",),
        code_commit="git:inspectorate@abc",
        config_hash="sha256:" + "3" * 16,
    )


def test_windows_are_clipped_to_the_phase() -> None:
    bounds = window_bounds(102.5, 111.0, grid_t0=100.0, window_s=5.0)
    assert bounds == [(0, 102.5, 105.0), (1, 105.0, 110.0), (2, 110.0, 111.0)]


def test_flops_are_claimed_flops_per_token_times_real_tokens() -> None:
    tallies = [WindowTally(100.0, 5.0), WindowTally(100.0, 5.0)]
    tallies[0].add(1000, t=103.0)
    tallies[0].add(500, t=106.0)
    tallies[1].add(700, t=112.0)  # finished after the phase end: folded into the last window
    records = window_records(
        _claim(), ["h-cpu0", "h-cpu1"], tallies, 102.5, 111.0, grid_t0=100.0, window_s=5.0
    )
    assert [r["tokens_processed"] for r in records] == [1000, 500, 0, 0, 0, 700]
    assert [r["flops"] for r in records[:2]] == [6e9, 3e9]
    assert records[0]["window_start"] == iso_z(102.5) and records[0]["window_start"].endswith("Z")


def test_idle_windows_claim_no_flops() -> None:
    records = window_records(
        _claim("idle"), ["h-cpu0"], [WindowTally(0.0, 1.0)], 0.0, 3.0, grid_t0=0.0, window_s=1.0
    )
    assert len(records) == 3 and all(r["flops"] == 0.0 and r["op_type"] == "idle" for r in records)


def test_appended_windows_chain_and_reference_their_job(tmp_path: Path) -> None:
    tally = WindowTally(0.0, 1.0)
    tally.add(10, t=0.5)
    first = window_records(
        _claim(job="job-a"), ["h-cpu0", "h-cpu1"], [tally, tally], 0.0, 2.0, grid_t0=0.0, window_s=1.0
    )
    second = window_records(_claim(job="job-b"), ["h-cpu0"], [tally], 2.0, 3.0, grid_t0=0.0, window_s=1.0)
    with ChainWriter(tmp_path / "windows.jsonl") as writer:
        stored = append_windows(writer, first, "h-rec_") + append_windows(writer, second, "h-rec_")
    records, torn = read_chain_file(tmp_path / "windows.jsonl")
    assert not torn and verify_chain(records) == [] and records == stored
    assert all(SEED_FIELDS <= set(r) for r in records)
    assert records[0]["upstream_refs"] == [] and records[1]["upstream_refs"] == [records[0]["record_id"]]
    assert records[4]["upstream_refs"] == []  # first record of job-b
    assert len({r["record_id"] for r in records}) == len(records)


def test_tally_round_trips_through_its_file(tmp_path: Path) -> None:
    tally = WindowTally(10.0, 2.0)
    tally.add(5, t=11.0)
    tally.add(7, t=13.5)
    tally.save(tmp_path / "t.json")
    back = WindowTally.load(tmp_path / "t.json", 10.0, 2.0)
    assert back.tokens == {0: 5, 1: 7} and back.steps == {0: 1, 1: 1}
