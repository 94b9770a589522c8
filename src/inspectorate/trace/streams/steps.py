"""Hash-chained JSONL record files (``steps.jsonl`` and the like): torn tails, chain checks."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from inspectorate.errors import InputError
from inspectorate.trace._canonical import (
    GENESIS,
    PREV_FIELD,
    ChainBreak,
    canonical_json,
    record_hash,
    verify_chain,
)


@dataclass
class StepLog:
    """Step records of one file: a flat frame, the raw records, and the chain's state.

    ``torn``: the file ended in a partial line (the writer was killed mid-record); the
    records before it are intact and the chain is checked over them.
    """

    path: Path
    frame: pl.DataFrame
    records: list[dict[str, Any]]
    breaks: list[ChainBreak] = field(default_factory=list)
    torn: bool = False

    @property
    def intact(self) -> bool:
        return not self.breaks


def flatten_record(record: dict[str, Any]) -> dict[str, Any]:
    """One level of nesting becomes ``outer.inner`` columns; lists become canonical JSON text."""
    flat: dict[str, Any] = {}
    for key, value in record.items():
        if isinstance(value, dict):
            for inner, v in value.items():
                flat[f"{key}.{inner}"] = canonical_json(v) if isinstance(v, (dict, list)) else v
        elif isinstance(value, list):
            flat[key] = canonical_json(value)
        else:
            flat[key] = value
    return flat


def _json_object(raw: bytes, path: Path, line: int) -> dict[str, Any]:
    try:
        obj = json.loads(raw, parse_constant=_no_constants)
    except ValueError as exc:
        raise InputError(f"not valid JSON ({str(exc).splitlines()[0][:120]})", path, line) from None
    if not isinstance(obj, dict):
        raise InputError("each line must be a JSON object", path, line)
    return obj


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def is_complete_line(raw: bytes) -> bool:
    """A last line lacking its newline is whole only if it parses as a JSON object:
    a write torn before the newline has lost the closing brace."""
    try:
        return isinstance(json.loads(raw, parse_constant=_no_constants), dict)
    except ValueError:
        return False


def read_chain_file(path: Path | str) -> tuple[list[dict[str, Any]], bool]:
    """Complete records of a JSONL chain file, and whether a torn (partial) last line
    was dropped: what a process killed mid-write leaves. A bad line anywhere else is
    corruption, not a crash artefact: InputError with its line number.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path) from None
    lines = data.split(b"\n")
    tail = lines.pop()  # after the last newline: empty when the file ends cleanly
    torn = bool(tail.strip()) and not is_complete_line(tail)
    if tail.strip() and not torn:
        lines.append(tail)
    return [_json_object(raw, path, n) for n, raw in enumerate(lines, 1) if raw.strip()], torn


def read_steps(path: Path | str) -> StepLog:
    """Step records (``steps.jsonl``) with their hash chain verified; breaks are reported,
    not raised, because a broken chain is evidence for the verifier, not a parse error.
    """
    path = Path(path)
    records, torn = read_chain_file(path)
    try:
        frame = (
            pl.DataFrame([flatten_record(r) for r in records], infer_schema_length=None)
            if records
            else pl.DataFrame()
        )
    except (pl.exceptions.PolarsError, TypeError, ValueError) as exc:
        raise InputError(f"step records do not form a table ({exc})", path) from None
    return StepLog(path, frame, records, verify_chain(records), torn)


@dataclass
class ChainTail:
    """What a streaming pass over a chain file keeps of the file itself: how many
    complete records it held, the chain's breaks, and whether the last line was torn."""

    path: Path
    records: int = 0
    breaks: list[ChainBreak] = field(default_factory=list)
    torn: bool = False

    @property
    def intact(self) -> bool:
        return not self.breaks


def scan_chain(path: Path | str, consume: Callable[[int, dict[str, Any]], None]) -> ChainTail:
    """One pass over a JSONL chain file in bounded memory: every complete record goes to
    ``consume(index, record)`` in file order (see ``iter_chain``)."""
    tail = ChainTail(Path(path))
    for index, record in iter_chain(tail):
        consume(index, record)
    return tail


def iter_chain(tail: ChainTail) -> Iterator[tuple[int, dict[str, Any]]]:
    """The complete records of ``tail.path`` in file order, the chain checked record by
    record into ``tail`` (the breaks ``verify_chain`` finds over ``read_chain_file``'s
    records, at the same indices: an edited, dropped, re-chained or reordered record all
    show; a break is in ``tail.breaks`` before its record is yielded). Same file
    semantics as ``read_chain_file``: a torn last line is dropped and reported, a bad line
    anywhere else is InputError naming the file and line."""
    path = tail.path
    prev_hash, prev_id = GENESIS, None
    try:
        f = path.open("rb")
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", path) from None
    with f:
        for line_no, raw in enumerate(f, 1):
            if not raw.endswith(b"\n") and raw.strip() and not is_complete_line(raw):
                tail.torn = True  # only the last line can lack its newline
                break
            if not raw.strip():
                continue
            record = _json_object(raw, path, line_no)
            index = tail.records
            found = record.get(PREV_FIELD)
            if found != prev_hash:
                tail.breaks.append(
                    ChainBreak(
                        index, record.get("record_id"), max(index - 1, 0), prev_id, prev_hash, str(found)
                    )
                )
            prev_hash, prev_id = record_hash(record), record.get("record_id")
            tail.records += 1
            yield index, record


def has_records(path: Path | str) -> bool:
    """Whether a chain file holds at least one complete record, reading only up to its
    first non-blank line (a bad line there is reported by whoever reads the records)."""
    try:
        with Path(path).open("rb") as f:
            for raw in f:
                if raw.strip():
                    return raw.endswith(b"\n") or is_complete_line(raw)
    except OSError as exc:
        raise InputError(f"cannot read ({exc.strerror})", Path(path)) from None
    return False
