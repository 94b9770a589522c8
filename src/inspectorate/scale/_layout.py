"""A native layout for scale: partitioned Parquet with per-chip chains and Merkle roots.

``<root>/manifest.json`` plus ``window=<W>/group=<G>.parquet``: records bucketed by time
window (``window_seconds`` of window_start) and chip group (a stable hash of chip_id).
Every record keeps its exact fields (the single-chain ``prev_record_hash`` included, so
the conversion is lossless) plus:

- ``seq``: its position in the original single-chain file (the converter's order);
- ``chip_prev``: the hash of the previous record *of the same chip* (time, then seq
  order; GENESIS for a chip's first). Each chip is a chain of its own, so chip groups
  verify in parallel and never need another group's data.

Per window, the heads of the chips active in it (the hash of each chip's last record in
the window) are the leaves of a Merkle tree (leaf = SHA-256 of ``chip_id NUL head``,
sorted by chip_id; an odd node is paired with itself). The manifest lists every window's
root and the root over the window roots in time order: publishing that one value pins
every record. ``verify_partitioned`` recomputes everything from the records and compares
with the manifest, and with a root published out of band when given.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from pathlib import Path
from typing import Any

import polars as pl
import pyarrow.parquet as pq

from inspectorate.errors import InputError
from inspectorate.trace import Trace, read_trace, write_trace
from inspectorate.trace._canonical import GENESIS
from inspectorate.trace._fastchain import frame_hashes
from inspectorate.trace._frame import FRAME_SCHEMA, with_derived

LAYOUT = "inspectorate.partitioned/1"
MANIFEST = "manifest.json"


def merkle_root(leaves: list[bytes]) -> str:
    """Hex Merkle root of leaf digests (an odd node pairs with itself; empty: GENESIS)."""
    if not leaves:
        return GENESIS
    level = leaves
    while len(level) > 1:
        if len(level) % 2:
            level = level + [level[-1]]
        level = [hashlib.sha256(level[i] + level[i + 1]).digest() for i in range(0, len(level), 2)]
    return level[0].hex()


def _leaf(chip: str, head: str) -> bytes:
    return hashlib.sha256(chip.encode() + b"\0" + head.encode()).digest()


def _group(chip: str, groups: int) -> int:
    return int.from_bytes(hashlib.sha256(chip.encode()).digest()[:8], "big") % groups


def _window_roots(heads: pl.DataFrame) -> dict[int, str]:
    """Merkle root per window over (chip_id, head) rows."""
    out = {}
    for (window,), part in heads.sort(["win", "chip_id"]).group_by("win", maintain_order=True):
        out[int(window)] = merkle_root([_leaf(c, h) for c, h in zip(part["chip_id"], part["head"])])
    return out


def _annotated(frame: pl.DataFrame, window_seconds: int, groups: int) -> pl.DataFrame:
    """seq, h (record hash), win, grp and chip_prev for every record."""
    chips = frame["chip_id"].cast(pl.Utf8).unique().to_list()
    table = pl.DataFrame({"chip_id": chips, "grp": [_group(c, groups) for c in chips]})
    out = (
        frame.with_columns(
            pl.col("row").cast(pl.Int64).alias("seq"),
            pl.Series("h", frame_hashes(frame)),
            (pl.col("ws") // window_seconds).cast(pl.Int64).alias("win"),
            pl.col("chip_id").cast(pl.Utf8),
        )
        .join(table, on="chip_id", how="left")
        .sort(["chip_id", "ws", "seq"])
    )
    return out.with_columns(pl.col("h").shift(1).over("chip_id").fill_null(GENESIS).alias("chip_prev"))


def _heads(frame: pl.DataFrame) -> pl.DataFrame:
    """(win, chip_id, head): each chip's last record hash in each window (rows in chain order)."""
    return frame.group_by(["win", "chip_id"], maintain_order=True).agg(pl.col("h").last().alias("head"))


def write_partitioned(
    trace: Trace | str | Path, root: str | Path, window_seconds: int = 3600, chip_groups: int = 16
) -> dict[str, Any]:
    """Write ``trace`` (a Trace or any trace path) in the partitioned layout; returns the manifest."""
    trace = trace if isinstance(trace, Trace) else read_trace(trace)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    frame = _annotated(trace.full_frame(), window_seconds, chip_groups)
    stored = [*FRAME_SCHEMA, "seq", "chip_prev"]
    windows: dict[str, Any] = {}
    roots = _window_roots(_heads(frame))
    for (win, grp), part in frame.group_by(["win", "grp"], maintain_order=True):
        name = f"window={win}/group={grp}.parquet"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(part.select(stored).to_arrow(), root / name, compression="zstd")
        entry = windows.setdefault(str(win), {"root": roots[int(win)], "records": 0, "files": []})
        entry["records"] += part.height
        entry["files"].append(name)
    for entry in windows.values():
        entry["files"].sort()
    ordered = sorted(windows, key=int)
    last = frame.sort("seq")["h"][-1]
    manifest = {
        "layout": LAYOUT,
        "window_seconds": window_seconds,
        "chip_groups": chip_groups,
        "records": frame.height,
        "windows": {w: windows[w] for w in ordered},
        "root": merkle_root([bytes.fromhex(windows[w]["root"]) for w in ordered]),
        "single_chain_head": last,
    }
    (root / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
    return manifest


def read_manifest(root: str | Path) -> dict[str, Any]:
    path = Path(root) / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputError(f"not a partitioned trace ({exc})", path) from None
    if not isinstance(manifest, dict) or manifest.get("layout") != LAYOUT:
        raise InputError(f"manifest layout is not {LAYOUT}", path)
    return manifest


def _read_files(root: Path, files: list[str]) -> pl.DataFrame:
    """The typed schema columns (+ ``_extra``) and ``seq``/``chip_prev`` of some partitions."""
    from inspectorate.trace._io import _typed

    parts = []
    for name in files:
        path = root / name
        try:
            table = pq.read_table(path)
            extra = pl.DataFrame(pl.from_arrow(table.select(["seq", "chip_prev"])))
        except (OSError, ValueError, KeyError) as exc:
            raise InputError(f"unreadable partition ({exc})", path) from None
        parts.append(_typed(table, path, list(FRAME_SCHEMA)).hstack(extra))
    if not parts:
        raise InputError("partitioned trace lists no files", root)
    return pl.concat(parts)


def _files_by_group(manifest: dict[str, Any]) -> dict[str, list[str]]:
    by_group: dict[str, list[str]] = defaultdict(list)
    for win in sorted(manifest["windows"], key=int):
        for name in manifest["windows"][win]["files"]:
            by_group[name.split("/")[-1]].append(name)
    return by_group


def verify_group(root: Path, files: list[str], window_seconds: int) -> tuple[list[str], pl.DataFrame]:
    """One chip group on its own: (problems, heads per window). Parallel across groups."""
    raw = _read_files(root, files)
    frame = with_derived(raw.drop("chip_prev", "seq")).with_columns(
        raw["seq"], raw["chip_prev"], pl.col("chip_id").cast(pl.Utf8)
    )
    frame = frame.with_columns(
        pl.Series("h", frame_hashes(frame)), (pl.col("ws") // window_seconds).cast(pl.Int64).alias("win")
    ).sort(["chip_id", "ws", "seq"])
    expected = pl.col("h").shift(1).over("chip_id").fill_null(GENESIS)
    bad = frame.filter(pl.col("chip_prev") != expected)
    problems = [
        f"chip {c}: record {r} (seq {s}) does not chain to the chip's previous record"
        for c, r, s in bad.select("chip_id", "record_id", "seq").head(20).iter_rows()
    ]
    return problems, _heads(frame)


def verify_partitioned(root: str | Path, expected_root: str | None = None) -> list[str]:
    """Every problem found (empty: intact): per-chip chains, window roots, the root."""
    root = Path(root)
    manifest = read_manifest(root)
    problems: list[str] = []
    heads = []
    records = 0
    for files in _files_by_group(manifest).values():
        found, group_heads = verify_group(root, files, int(manifest["window_seconds"]))
        problems += found
        heads.append(group_heads)
        records += sum(pq.ParquetFile(root / f).metadata.num_rows for f in files)
    if records != manifest["records"]:
        problems.append(f"{records} records stored, manifest says {manifest['records']}")
    roots = _window_roots(pl.concat(heads)) if heads else {}
    for win, entry in manifest["windows"].items():
        if roots.get(int(win)) != entry["root"]:
            problems.append(f"window {win}: Merkle root of the chip heads differs from the manifest")
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
    frame = _read_files(root, files).sort("seq").drop("seq", "chip_prev")
    return Trace(with_derived(frame), None, str(root))


def convert(source: str | Path, out: str | Path, **layout: int) -> Path:
    """JSONL/Parquet -> partitioned directory, or partitioned directory -> JSONL/Parquet."""
    source, out = Path(source), Path(out)
    if (source / MANIFEST).exists():
        return write_trace(read_partitioned(source), out)
    if (out / MANIFEST).exists() or (out.exists() and not out.is_dir()):
        raise InputError("output exists; choose a new directory", out)
    write_partitioned(source, out, **layout)
    return out
