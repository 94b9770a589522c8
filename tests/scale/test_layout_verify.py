"""The streaming verifier (window by window, chip heads carried across windows) against
forgers who edit partitions directly: the edit breaks the chip chain; re-chained, the
window root; with the manifest recomputed too, only the published root is left."""

from __future__ import annotations

import hashlib
import json

import polars as pl
import pytest

from inspectorate.scale import merkle_root, verify_partitioned, write_partitioned
from inspectorate.trace import GenSpec, generate_trace
from inspectorate.trace._canonical import GENESIS, record_hash
from inspectorate.trace._frame import records_from_frame
from inspectorate.trace._schema import parse_time


@pytest.fixture
def layout(tmp_path):
    """5 chips over 3 hours in 1-hour windows and 2 chip groups; returns (root, published root)."""
    trace = generate_trace(GenSpec(chips=5, hours=3, scenario="mixed"))
    manifest = write_partitioned(trace, tmp_path / "p", window_seconds=3600, chip_groups=2)
    return tmp_path / "p", manifest["root"]


def _manifest(root):
    return json.loads((root / "manifest.json").read_text())


def _files(root):
    manifest = _manifest(root)
    return [f for w in sorted(manifest["windows"], key=int) for f in manifest["windows"][w]["files"]]


def _hash(row: pl.DataFrame) -> str:
    return record_hash(records_from_frame(row)[0])


def _link(prev: str, h: str) -> str:
    return hashlib.sha256((prev + h).encode()).hexdigest()


def _forge_rest(root) -> None:
    """What a forger who owns every file does after an edit (no library code): re-chain
    every chip from its first record, then recompute every count and root."""
    manifest = _manifest(root)
    carried: dict[str, str] = {}
    total = 0
    for win in sorted(manifest["windows"], key=int):
        entry = manifest["windows"][win]
        heads = {}
        for name in entry["files"]:
            frame = pl.read_parquet(root / name).with_columns(
                pl.col("window_start").map_elements(parse_time, pl.Float64).alias("ws")
            )
            frame = frame.sort(["chip_id", "ws", "seq"])
            prevs = []
            for i, chip in enumerate(frame["chip_id"]):
                prevs.append(carried.get(chip, GENESIS))
                carried[chip] = heads[chip] = _link(prevs[-1], _hash(frame[i]))
            frame.drop("ws").with_columns(pl.Series("chip_prev", prevs)).write_parquet(root / name)
        leaves = [hashlib.sha256(c.encode() + b"\0" + h.encode()).digest() for c, h in sorted(heads.items())]
        entry["root"] = merkle_root(leaves)
        entry["records"] = sum(pl.read_parquet(root / f).height for f in entry["files"])
        total += entry["records"]
    manifest["records"] = total
    ordered = sorted(manifest["windows"], key=int)
    manifest["root"] = merkle_root([bytes.fromhex(manifest["windows"][w]["root"]) for w in ordered])
    (root / "manifest.json").write_text(json.dumps(manifest))


def _edit_first(root, name, repoint: bool = False) -> str:
    """Halve the flops of the first record of file ``name``; returns its chip. With
    ``repoint`` the chip's next record is pointed at the edited record's new link: all a
    forger had to do under layout /1, where a head was a bare record hash."""
    frame = pl.read_parquet(root / name)
    old = _link(frame["chip_prev"][0], _hash(frame.head(1)))
    frame = frame.with_columns(
        pl.when(pl.int_range(pl.len()) == 0)
        .then(pl.col("flops") / 2)
        .otherwise(pl.col("flops"))
        .alias("flops")
    )
    frame.write_parquet(root / name)
    new = _link(frame["chip_prev"][0], _hash(frame.head(1)))
    for other in _files(root) if repoint else []:
        part = pl.read_parquet(root / other)
        if (part["chip_prev"] == old).any():
            part.with_columns(pl.col("chip_prev").replace(old, new)).write_parquet(root / other)
    return frame["chip_id"][0]


def test_intact_layout_verifies(layout):
    root, published = layout
    assert verify_partitioned(root, expected_root=published) == []


def test_an_edit_breaks_the_chip_chain(layout):
    root, _ = layout
    chip = _edit_first(root, _files(root)[2])
    problems = verify_partitioned(root)
    assert any(p.startswith(f"chip {chip}:") and "does not chain" in p for p in problems)


def test_repointing_the_next_record_is_not_enough(layout):
    """Links commit to the chip's history: the re-pointed successor's own link changes,
    so the record after it breaks (the edited record is its chip's first of a window)."""
    root, published = layout
    chip = _edit_first(root, _files(root)[2], repoint=True)
    problems = verify_partitioned(root, expected_root=published)
    assert len(problems) == 1 and problems[0].startswith(f"chip {chip}:") and "does not chain" in problems[0]


def test_a_forger_who_rechains_and_fixes_everything_is_caught_only_by_the_published_root(layout):
    root, published = layout
    _edit_first(root, _files(root)[2])
    _forge_rest(root)
    assert verify_partitioned(root) == []
    problems = verify_partitioned(root, expected_root=published)
    assert len(problems) == 1 and "is not the published root" in problems[0]


def test_the_chip_chain_is_carried_across_windows(layout):
    """A chip restarted at GENESIS in a later window (its earlier records disowned): the
    chip_prev is not part of any record hash, so every root still agrees; only the hash
    carried over from the previous window exposes it."""
    root, published = layout
    name = _manifest(root)["windows"][sorted(_manifest(root)["windows"], key=int)[1]]["files"][0]
    frame = pl.read_parquet(root / name).with_columns(
        pl.col("window_start").map_elements(parse_time, pl.Float64).alias("t")
    )
    first = frame.sort("t", "seq").group_by("chip_id", maintain_order=True).head(1)["seq"][0]
    frame.drop("t").with_columns(
        pl.when(pl.col("seq") == first)
        .then(pl.lit(GENESIS))
        .otherwise(pl.col("chip_prev"))
        .alias("chip_prev")
    ).write_parquet(root / name)
    problems = verify_partitioned(root, expected_root=published)
    # the record itself, and its successor (which chains to the true link, not the forged one)
    assert len(problems) == 2 and f"(seq {first}) does not chain" in problems[0]


@pytest.mark.parametrize("target", ["next_window", "other_group"])
def test_a_record_moved_to_another_file_is_caught(layout, target):
    root, _ = layout
    manifest = _manifest(root)
    windows = sorted(manifest["windows"], key=int)
    source = manifest["windows"][windows[0]]["files"][0]
    if target == "next_window":
        dest = source.replace(f"window={windows[0]}", f"window={windows[1]}")
    else:
        dest = next(f for f in manifest["windows"][windows[0]]["files"] if f != source)
    frame, into = pl.read_parquet(root / source), pl.read_parquet(root / dest)
    pl.concat([into, frame.tail(1)]).write_parquet(root / dest)
    frame.head(frame.height - 1).write_parquet(root / source)
    _forge_rest(root)
    problems = verify_partitioned(root)
    assert any(p.startswith(f"{dest}: record") and "belongs to window" in p for p in problems)


def test_a_dropped_record_is_caught_by_the_count_or_the_chain(layout):
    root, published = layout
    name = _files(root)[0]
    frame = pl.read_parquet(root / name)
    frame.slice(1).write_parquet(
        root / name
    )  # the file's first record: its chip's successor no longer chains
    problems = verify_partitioned(root, expected_root=published)
    assert any("records stored, manifest says" in p for p in problems)
    assert any("does not chain" in p for p in problems)


def test_worker_processes_find_what_one_process_finds(layout, monkeypatch):
    """Chip groups verified in 2 spawned workers, one window per round (the chips' links
    handed from round to round): the same problems, tampered or not."""
    from inspectorate.scale import _layout

    monkeypatch.setattr(_layout, "BATCH_WINDOWS", 1)
    root, published = layout
    assert verify_partitioned(root, published, workers=2) == []
    chip = _edit_first(root, _files(root)[2], repoint=True)
    manifest = _manifest(root)
    source = manifest["windows"][sorted(manifest["windows"], key=int)[0]]["files"][1]
    frame = pl.read_parquet(root / source)
    frame.slice(1).write_parquet(root / source)
    serial = verify_partitioned(root, published, workers=1)
    parallel = verify_partitioned(root, published, workers=2)
    assert sorted(parallel) == sorted(serial)
    assert any(p.startswith(f"chip {chip}:") for p in parallel)
    assert any("records stored" in p for p in parallel)
