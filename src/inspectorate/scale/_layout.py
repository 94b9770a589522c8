"""A native layout for scale: partitioned Parquet with per-chip chains and Merkle roots.

``<root>/manifest.json`` plus ``window=<W>/group=<G>.parquet``: records bucketed by time
window (``window_seconds`` of window_start) and chip group (a stable hash of chip_id).
Every record keeps its exact fields (the single-chain ``prev_record_hash`` included, so
the conversion is lossless) plus:

- ``seq``: its position in the original single-chain file (the converter's order);
- ``chip_prev``: the *link* of the previous record of the same chip (time, then seq
  order; GENESIS for a chip's first), where a record's link is the hex SHA-256 of
  ``chip_prev + hash`` (the two hex digests' ASCII; hash = SHA-256 of the record's
  canonical JSON). Each chip is a chain of its own, so chip groups verify in parallel
  and never need another group's data.

Per window, the heads of the chips active in it (the link of each chip's last record in
the window) are the leaves of a Merkle tree (leaf = SHA-256 of ``chip_id NUL head``,
sorted by chip_id; an odd node is paired with itself). A link commits to the record and
to every earlier link of its chip, so a head commits to the chip's whole history: layout
/1 took the head to be the last record's hash alone, and an edited record whose chip
successor was re-pointed (chip_prev is outside the record's hash) left every root as it
was. The manifest lists every window's
root and the root over the window roots in time order: publishing that one value pins
every record. The row order inside a file is not part of the format.

``write_partitioned`` (``_writer``) streams: memory is one chunk plus per-chip state.
``verify_partitioned`` streams too: windows in time order, one file at a time, each
chip's last hash carried from window to window; it recomputes every chip chain and root
from the records and compares with the manifest, and with a root published out of band
when given. A record must lie in the file of its own window and chip group.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from inspectorate.errors import InputError
from inspectorate.scale._writer import (
    LAYOUT,
    MANIFEST,
    ChipState,
    _Groups,
    merkle_root,
    window_root,
    write_partitioned,
)
from inspectorate.trace import Trace, write_trace
from inspectorate.trace._canonical import GENESIS
from inspectorate.trace._fastchain import frame_hashes
from inspectorate.trace._frame import FRAME_SCHEMA, epoch_seconds
from inspectorate.trace._io import _checked
from inspectorate.trace._layouts import LAYOUTS

__all__ = ["LAYOUT", "convert", "merkle_root", "read_partitioned", "verify_partitioned", "write_partitioned"]

MAX_LISTED = 20  # problems of one kind listed before they are only counted
BATCH_WINDOWS = 16  # windows per round of worker tasks (parallel verification)
_NAME = re.compile(r"window=(-?\d+)/group=(\d+)\.parquet")


def read_manifest(root: str | Path) -> dict[str, Any]:
    path = Path(root) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"not a partitioned trace ({exc})", path) from None
    if not isinstance(manifest, dict) or manifest.get("layout") != LAYOUT:
        raise InputError(f"manifest layout is not {LAYOUT}", path)
    try:
        for entry in manifest["windows"].values():
            entry["files"] = list(entry["files"])
        int(manifest["window_seconds"]), int(manifest["chip_groups"]), int(manifest["records"])
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise InputError(f"malformed manifest ({exc!r})", path) from None
    return manifest


def _read_file(root: Path, name: str) -> pl.DataFrame:
    """The typed schema columns (+ ``_extra``) and ``seq``/``chip_prev`` of one partition."""
    from inspectorate.trace._io import _typed

    path = root / name
    try:
        table = pq.read_table(path)
        extra = pl.DataFrame(pl.from_arrow(table.select(["seq", "chip_prev"])))
    except (OSError, ValueError, KeyError) as exc:
        raise InputError(f"unreadable partition ({exc})", path) from None
    return _typed(table, path, list(FRAME_SCHEMA)).hstack(extra)


class _Check:
    """Running state of a verification: chip links carried across windows, problems."""

    def __init__(self, root: Path, window_seconds: int, chip_groups: int):
        self.root, self.window_seconds = root, window_seconds
        self.groups = _Groups(chip_groups)
        self.state: ChipState = {}
        self.records = 0
        self.breaks: list[str] = []
        self.misplaced: list[str] = []
        self.broken = 0

    def file(self, win: int, name: str) -> pl.DataFrame:
        """Verify one file (after every earlier window of its chips); (chip_id, head) rows."""
        match = _NAME.fullmatch(name)
        if match is None or int(match.group(1)) != win:
            raise InputError(f"manifest lists {name!r} under window {win}", self.root / MANIFEST)
        raw = _read_file(self.root, name)
        self.records += raw.height
        frame = raw.with_columns(
            epoch_seconds(raw["window_start"]).alias("ws"),
            pl.Series("h", frame_hashes(raw), dtype=pl.Utf8),
            pl.col("chip_prev").alias("stored_prev"),
            self.groups.column(raw["chip_id"]).alias("grp"),
        )
        frame = frame.with_columns((pl.col("ws") // self.window_seconds).cast(pl.Int64).alias("win"))
        out = frame.filter(
            (pl.col("win") != win) | (pl.col("grp") != int(match.group(2))) | pl.col("ws").is_null()
        )
        for r, s, w, g in out.select("record_id", "seq", "win", "grp").head(MAX_LISTED).iter_rows():
            self.misplaced.append(f"{name}: record {r} (seq {s}) belongs to window {w}, group {g}")
        del self.misplaced[MAX_LISTED:]
        chained = self.links(frame.drop("chip_prev"))
        bad = chained.filter(pl.col("stored_prev") != pl.col("expected_prev"))
        self.broken += bad.height
        for c, r, s in (
            bad.select("chip_id", "record_id", "seq").head(MAX_LISTED - len(self.breaks)).iter_rows()
        ):
            self.breaks.append(f"chip {c}: record {r} (seq {s}) does not chain to the chip's previous record")
        return chained.group_by("chip_id").agg(pl.col("link").last().alias("head"))

    def links(self, frame: pl.DataFrame) -> pl.DataFrame:
        """Each record's link from its *stored* chip_prev, and the chip_prev it should
        have: the link of the chip's previous record (carried across files). A break is
        reported where it is, not at every later record of the chip; when no record
        breaks, these links are the chain's links from GENESIS, by induction."""
        out = frame.sort(["chip_id", "ws", "seq"])
        sha = hashlib.sha256
        links = [
            sha((p + h).encode()).hexdigest()
            for p, h in zip(out["stored_prev"].to_list(), out["h"].to_list())
        ]
        chips = out["chip_id"].unique().to_list()
        carried = {c: self.state[c][1] if c in self.state else GENESIS for c in chips}
        out = out.with_columns(pl.Series("link", links, dtype=pl.Utf8))
        out = out.with_columns(
            pl.coalesce(
                pl.col("link").shift(1).over("chip_id"), pl.col("chip_id").replace_strict(carried)
            ).alias("expected_prev")
        )
        last = out.group_by("chip_id").agg(pl.col("ws").last(), pl.col("link").last())
        self.state.update(zip(last["chip_id"], zip(last["ws"], last["link"])))
        return out

    def result(self, heads: dict[int, pl.DataFrame]) -> dict[str, Any]:
        keep = ("records", "breaks", "misplaced", "broken")
        return {"heads": heads} | {k: getattr(self, k) for k in keep}


def _verify_serial(root: Path, manifest: dict[str, Any]) -> dict[str, Any]:
    """Window by window in time order: memory is one file, the chips' links and one
    window's heads."""
    check = _Check(root, int(manifest["window_seconds"]), int(manifest["chip_groups"]))
    roots = {}
    for win in sorted(manifest["windows"], key=int):
        heads = [check.file(int(win), name) for name in manifest["windows"][win]["files"]]
        roots[int(win)] = window_root(pl.concat(heads)) if heads else merkle_root([])
    out = check.result({})
    out["roots"] = roots
    return out


def _verify_group(
    root: Path, window_seconds: int, chip_groups: int, files: list[tuple[int, str]], state: ChipState
) -> dict[str, Any]:
    """Some windows of one chip group, in time order, from its chips' carried ``state``
    (a worker process): problems, its chips' heads per window, the state after."""
    check = _Check(root, window_seconds, chip_groups)
    check.state = state
    out = check.result({win: check.file(win, name) for win, name in files})
    out["state"] = check.state
    return out


def _verify_parallel(root: Path, manifest: dict[str, Any], workers: int) -> dict[str, Any]:
    """Chip groups in worker processes (a chip never leaves its group), ``BATCH_WINDOWS``
    windows at a time: each batch's window roots from the heads the workers return, each
    group's chip state handed back for the next batch. Memory in the parent: one batch's
    heads and the chips' last links."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    windows = sorted(manifest["windows"], key=int)
    args = (root, int(manifest["window_seconds"]), int(manifest["chip_groups"]))
    states: dict[str, ChipState] = {}
    out: dict[str, Any] = {"records": 0, "breaks": [], "misplaced": [], "broken": 0, "roots": {}}
    context = multiprocessing.get_context("spawn")  # forking a process that runs Polars threads can hang
    with ProcessPoolExecutor(workers, mp_context=context) as pool:
        for lo in range(0, len(windows), BATCH_WINDOWS):
            batch = windows[lo : lo + BATCH_WINDOWS]
            by_group: dict[str, list[tuple[int, str]]] = {}
            for win in batch:
                for name in manifest["windows"][win]["files"]:
                    by_group.setdefault(name.rsplit("/", 1)[-1], []).append((int(win), name))
            tasks = {
                g: pool.submit(_verify_group, *args, files, states.get(g, {}))
                for g, files in by_group.items()
            }
            heads: dict[int, list[pl.DataFrame]] = {}
            for group, task in tasks.items():
                part = task.result()
                states[group] = part["state"]
                for key in ("records", "broken", "breaks", "misplaced"):
                    out[key] += part[key]
                for win, frame in part["heads"].items():
                    heads.setdefault(win, []).append(frame)
            for win in batch:
                frames = heads.get(int(win), [])
                out["roots"][int(win)] = window_root(pl.concat(frames)) if frames else merkle_root([])
    for key in ("breaks", "misplaced"):
        del out[key][MAX_LISTED:]
    return out


def default_workers() -> int:
    """Worker processes for verification: none on two cores or fewer, where one process
    already keeps both busy (Polars and the compiled hasher run beside the GIL)."""
    cores = os.cpu_count() or 1
    return cores - 1 if cores > 2 else 1


def verify_partitioned(
    root: str | Path, expected_root: str | None = None, workers: int | None = None
) -> list[str]:
    """Every problem found (empty: intact): per-chip chains, window roots, the root.
    ``workers`` > 1 verifies chip groups in that many processes (default: by core count)."""
    root = Path(root)
    manifest = read_manifest(root)
    if not any(entry["files"] for entry in manifest["windows"].values()):
        raise InputError("partitioned trace lists no files", root)
    workers = min(default_workers() if workers is None else workers, int(manifest["chip_groups"]))
    found = _verify_parallel(root, manifest, workers) if workers > 1 else _verify_serial(root, manifest)
    roots = found["roots"]
    problems = found["misplaced"] + found["breaks"]
    if found["broken"] > len(found["breaks"]):
        problems.append(f"{found['broken']} records in all do not chain to their chip's previous record")
    for win in sorted(manifest["windows"], key=int):
        if roots[int(win)] != manifest["windows"][win]["root"]:
            problems.append(f"window {win}: Merkle root of the chip heads differs from the manifest")
    if found["records"] != manifest["records"]:
        problems.append(f"{found['records']} records stored, manifest says {manifest['records']}")
    top = merkle_root([bytes.fromhex(roots[w]) for w in sorted(roots)])
    if top != manifest["root"]:
        problems.append("root over the window roots differs from the manifest")
    if expected_root is not None and expected_root != top:
        problems.append(f"root {top[:16]}... is not the published root {expected_root[:16]}...")
    return problems


def read_partitioned(root: str | Path) -> Trace:
    """The records back in their original single-chain order (lossless)."""
    root = Path(root)
    manifest = read_manifest(root)
    files = [f for w in manifest["windows"].values() for f in w["files"]]
    if not files:
        raise InputError("partitioned trace lists no files", root)
    frame = pl.concat([_read_file(root, f) for f in files]).sort("seq").drop("seq", "chip_prev")
    return Trace(_checked(frame, root), None, str(root))  # validated as any reader validates


def convert(source: str | Path, out: str | Path, **layout: int) -> Path:
    """JSONL/Parquet -> partitioned directory, or partitioned directory -> JSONL/Parquet."""
    source, out = Path(source), Path(out)
    if (source / MANIFEST).exists():
        return write_trace(read_partitioned(source), out)
    if (out / MANIFEST).exists() or (out.exists() and not out.is_dir()):
        raise InputError("output exists; choose a new directory", out)
    write_partitioned(source, out, **layout)
    return out


# read_trace finds this layout through trace's registry: trace never imports scale.
LAYOUTS.register("partitioned", MANIFEST, read_partitioned)
