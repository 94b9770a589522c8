"""The streaming writer against an independent in-memory oracle of the layout's
definition (per-chip chains in time-then-seq order, heads per window, Merkle roots), on
generated traces cut into chunks that end inside windows, and on out-of-order sources."""

from __future__ import annotations

import hashlib
import json
import random
from collections import defaultdict

import polars as pl
import pytest

from inspectorate.data import seed_path
from inspectorate.scale import PartitionedWriter, merkle_root, verify_partitioned, write_partitioned
from inspectorate.scale._layout import _read_file
from inspectorate.scale._writer import source_chunks
from inspectorate.trace import (
    GenSpec,
    Trace,
    canonical_json,
    generate_trace,
    read_trace,
    rechain,
    write_trace,
)
from inspectorate.trace._canonical import GENESIS, record_hash
from inspectorate.trace._frame import records_from_frame
from inspectorate.trace._schema import parse_time


def _oracle(records: list[dict], window_seconds: int, groups: int) -> tuple[dict, dict]:
    """(manifest fields, {file: [(seq, chip_prev), ...] by seq}) from the definition, record
    by record: a record's link is SHA-256(chip_prev + hash), chip_prev the link before it."""
    rows = []
    for seq, record in enumerate(records):
        ws = parse_time(record["window_start"])
        chip = record["chip_id"]
        grp = int.from_bytes(hashlib.sha256(chip.encode()).digest()[:8], "big") % groups
        rows.append({"seq": seq, "chip": chip, "ws": ws, "win": int(ws // window_seconds), "grp": grp})
        rows[-1]["h"] = record_hash(record)
    by_chip = defaultdict(list)
    for row in rows:
        by_chip[row["chip"]].append(row)
    heads: dict[int, dict[str, str]] = defaultdict(dict)
    for chain in by_chip.values():
        prev = GENESIS
        for row in sorted(chain, key=lambda r: (r["ws"], r["seq"])):
            row["chip_prev"], prev = prev, hashlib.sha256((prev + row["h"]).encode()).hexdigest()
            heads[row["win"]][row["chip"]] = prev
    files: dict[str, list] = defaultdict(list)
    counts: dict[int, int] = defaultdict(int)
    for row in rows:
        files[f"window={row['win']}/group={row['grp']}.parquet"].append((row["seq"], row["chip_prev"]))
        counts[row["win"]] += 1
    windows = {}
    for win in sorted(heads):
        leaves = [
            hashlib.sha256(c.encode() + b"\0" + h.encode()).digest() for c, h in sorted(heads[win].items())
        ]
        names = sorted(f for f in files if f.startswith(f"window={win}/"))
        windows[str(win)] = {"root": merkle_root(leaves), "records": counts[win], "files": names}
    top = merkle_root([bytes.fromhex(windows[w]["root"]) for w in windows])
    manifest = {"records": len(rows), "windows": windows, "root": top, "single_chain_head": rows[-1]["h"]}
    return manifest, dict(files)


def _assert_matches_oracle(root, records, window_seconds, groups, manifest):
    expected, files = _oracle(records, window_seconds, groups)
    assert {k: manifest[k] for k in expected} == expected
    for name, pairs in files.items():
        stored = _read_file(root, name).sort("seq")
        assert list(zip(stored["seq"], stored["chip_prev"])) == pairs
        back = [canonical_json(r) for r in records_from_frame(stored)]
        assert back == [canonical_json(records[s]) for s, _ in pairs]
    assert verify_partitioned(root, expected_root=expected["root"]) == []


def _slices(records: list[dict], rows: int):
    frame = Trace.from_records(records).full_frame()
    return (frame.slice(lo, rows) for lo in range(0, frame.height, rows))


@pytest.mark.parametrize(
    ("scenario", "rows"), [("mixed", 37), ("dropped_windows", 1000), ("tampered", 250), ("training", 5000)]
)
def test_streaming_writer_equals_the_definition(tmp_path, scenario, rows):
    records = generate_trace(GenSpec(chips=7, hours=3, scenario=scenario)).records
    manifest = write_partitioned(_slices(records, rows), tmp_path / "p", window_seconds=1800, chip_groups=3)
    _assert_matches_oracle(tmp_path / "p", records, 1800, 3, manifest)


def _late(records: list[dict]) -> list[dict]:
    """Some records arrive hours late, their window long closed."""
    out = list(records)
    late = [out.pop(i) for i in (400, 120, 30)]
    return rechain(out + late)


def _back_in_time(records: list[dict]) -> list[dict]:
    """One chip's records swap across a window boundary: the chip goes back in time
    while both windows are still open (nothing arrives in a closed window)."""
    out = list(records)
    # chip 2 of 7 at minutes 29 and 37 (windows of 30 min), in consecutive chunks of 50
    i, j = 7 * 29 + 2, 7 * 37 + 2
    out[i], out[j] = out[j], out[i]
    return rechain(out)


@pytest.mark.parametrize(
    "reorder",
    [
        _late,
        _back_in_time,
        lambda rs: rechain(rs[::-1]),
        lambda rs: rechain(random.Random(4).sample(rs, len(rs))),
    ],
    ids=["late", "back_in_time", "reversed", "shuffled"],
)
def test_out_of_order_sources_match_the_definition(tmp_path, reorder):
    records = reorder(generate_trace(GenSpec(chips=7, hours=3, scenario="mixed")).records)
    writer = PartitionedWriter(tmp_path / "p", window_seconds=1800, chip_groups=3)
    for chunk in _slices(records, 50):
        writer.add(chunk)
    manifest = writer.close()
    assert writer.disordered
    assert not list((tmp_path / "p").glob("window=*/late-*.parquet"))  # merged back into the group files
    _assert_matches_oracle(tmp_path / "p", records, 1800, 3, manifest)


def test_in_order_source_streams_without_a_second_pass(tmp_path):
    records = generate_trace(GenSpec(chips=5, hours=2)).records
    writer = PartitionedWriter(tmp_path / "p", window_seconds=600, chip_groups=2)
    for chunk in _slices(records, 40):
        writer.add(chunk)
        assert len(writer.writers) <= 2  # older windows are closed as the source moves on
    writer.close()
    assert not writer.disordered


@pytest.mark.parametrize("name", ["bloom_real", "alibaba_real", "legit_finetune"])
@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_a_trace_file_streams_in_small_chunks(tmp_path, name, suffix):
    records = read_trace(seed_path(name)).records
    path = write_trace(Trace.from_records(records), tmp_path / f"t{suffix}")
    manifest = write_partitioned(
        source_chunks(path, rows=29), tmp_path / "p", window_seconds=600, chip_groups=3
    )
    _assert_matches_oracle(tmp_path / "p", records, 600, 3, manifest)


def test_bad_sources_are_input_errors(tmp_path):
    from inspectorate.errors import InputError

    with pytest.raises(InputError, match="empty"):
        write_partitioned(iter([]), tmp_path / "e")
    frame = generate_trace(GenSpec(chips=2, hours=0.1)).full_frame()
    broken = frame.with_columns(pl.lit("yesterday").alias("window_start"))
    with pytest.raises(InputError, match="ISO 8601"):
        write_partitioned(iter([broken]), tmp_path / "b")
    nulls = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 3).then(None).otherwise(pl.col("chip_id")).alias("chip_id")
    )
    with pytest.raises(InputError, match=f"record {frame.height + 3}: field 'chip_id' is null"):
        write_partitioned(iter([frame, nulls]), tmp_path / "n")
    assert not (tmp_path / "n" / "manifest.json").exists()


def test_cli_generates_straight_into_the_layout(tmp_path, capsys):
    from typer.testing import CliRunner

    from inspectorate.cli import app, invoke

    runner = CliRunner()
    args = ["trace", "generate", "--chips", "5", "--hours", "2", "--scenario", "mixed"]
    layout = ["--layout", "partitioned", "--partition-seconds", "1800", "--chip-groups", "2"]
    done = runner.invoke(app, [*args, *layout, "--out", str(tmp_path / "p")])
    assert done.exit_code == 0, done.output
    records = generate_trace(GenSpec(chips=5, hours=2, scenario="mixed")).records
    manifest = json.loads((tmp_path / "p" / "manifest.json").read_text())
    _assert_matches_oracle(tmp_path / "p", records, 1800, 2, manifest)
    assert invoke([*args, *layout, "--out", str(tmp_path / "p")]) == 2
    assert "not an empty directory" in capsys.readouterr().err


@pytest.mark.parametrize("n", [0, 1, 7])
def test_generator_list_column_equals_python_lists(n):
    from inspectorate.trace._generate import _repeated_list

    built = _repeated_list("corpus:web-filtered", n)
    assert built.dtype == pl.List(pl.Utf8)
    assert built.to_list() == pl.Series([["corpus:web-filtered"]] * n, dtype=pl.List(pl.Utf8)).to_list()


def test_large_jsonl_streams_by_lines(tmp_path, monkeypatch):
    """Above JSONL_IN_MEMORY bytes a JSONL trace is read a chunk of lines at a time, each
    record validated (a bad line is an InputError naming it)."""
    from inspectorate.errors import InputError
    from inspectorate.scale import _writer

    monkeypatch.setattr(_writer, "JSONL_IN_MEMORY", 0)
    records = read_trace(seed_path("alibaba_real")).records
    path = write_trace(Trace.from_records(records), tmp_path / "t.jsonl")
    manifest = write_partitioned(
        source_chunks(path, rows=31), tmp_path / "p", window_seconds=600, chip_groups=3
    )
    _assert_matches_oracle(tmp_path / "p", records, 600, 3, manifest)
    lines = path.read_text().splitlines()
    lines[40] = lines[40].replace('"flops":', '"flops":-')
    path.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError) as exc:
        write_partitioned(path, tmp_path / "q")
    assert str(exc.value).startswith(f"{path}:41: ")
