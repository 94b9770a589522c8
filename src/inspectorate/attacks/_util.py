"""Small helpers the record attacks share: which records to hide, time, ids, hashes."""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import random
from collections.abc import Iterator, Sequence
from typing import Any

from inspectorate.attacks._intent import dominant_job
from inspectorate.trace import format_time, parse_time

Records = list[dict[str, Any]]


# Record ids of the run a compound attack hides, fixed before its first step. Why: after
# split_jobs the dominant job is one fragment, so a later step would hide only that
# fragment; a competent prover applies every lie to the whole run it is hiding.
_PINNED: contextvars.ContextVar[frozenset[str] | None] = contextvars.ContextVar("victims", default=None)


@contextlib.contextmanager
def pinned_victims(records: Records) -> Iterator[None]:
    """While open, ``victims`` returns the records (by id) that were victims of ``records``."""
    token = _PINNED.set(frozenset(records[i]["record_id"] for i in victims(records)))
    try:
        yield
    finally:
        _PINNED.reset(token)


def _derived(record_id: str, pinned: frozenset[str]) -> bool:
    """``record_id`` is pinned, or was split off a pinned record (``<id>-s1``, ``<id>-g``)."""
    if record_id in pinned:
        return True
    cut = record_id.find("-")
    while cut > 0:
        if record_id[:cut] in pinned:
            return True
        cut = record_id.find("-", cut + 1)
    return False


def victims(records: Records) -> list[int]:
    """Indices of the dominant job's non-idle records, in time order (ties: file order);
    inside ``pinned_victims``, the non-idle records of the run pinned there."""
    pinned = _PINNED.get()
    if pinned is not None:
        idx = [
            i for i, r in enumerate(records) if _derived(r["record_id"], pinned) and r["op_type"] != "idle"
        ]
        if idx:
            return sorted(idx, key=lambda i: (parse_time(records[i]["window_start"]), i))
    job = dominant_job(records)
    idx = [i for i, r in enumerate(records) if r["job_id"] == job and r["op_type"] != "idle"]
    return sorted(idx, key=lambda i: (parse_time(records[i]["window_start"]), i))


def part(indices: Sequence[int], fraction: float, where: str = "tail") -> list[int]:
    """A ``fraction`` of ``indices`` (time-ordered) from the head, tail or middle."""
    n = max(1, min(len(indices), int(round(len(indices) * fraction))))
    if where == "head":
        return list(indices[:n])
    if where == "middle":
        start = (len(indices) - n) // 2
        return list(indices[start : start + n])
    return list(indices[len(indices) - n :])


def chunks(indices: Sequence[int], parts: int) -> list[list[int]]:
    """``indices`` cut into ``parts`` contiguous, nearly equal runs (time order kept)."""
    parts = max(1, min(parts, len(indices)))
    size, extra = divmod(len(indices), parts)
    out, start = [], 0
    for k in range(parts):
        end = start + size + (1 if k < extra else 0)
        out.append(list(indices[start:end]))
        start = end
    return out


def shift_window(record: dict[str, Any], seconds: float) -> None:
    record["window_start"] = format_time(parse_time(record["window_start"]) + seconds)
    record["window_end"] = format_time(parse_time(record["window_end"]) + seconds)


def seconds_of(record: dict[str, Any]) -> float:
    return parse_time(record["window_end"]) - parse_time(record["window_start"])


def fake_hash(rng: random.Random, prefix: str = "sha256:") -> str:
    """A plausible 16-hex-digit hash prefix, as the seed's fields carry."""
    return prefix + hashlib.sha256(str(rng.random()).encode()).hexdigest()[:16]


def fake_commit(original: str, rng: random.Random) -> str:
    """Same repository, another 7-hex commit: what a rotated checkout looks like."""
    repo = original.rsplit("@", 1)[0] if "@" in original else original
    return f"{repo}@{hashlib.sha1(str(rng.random()).encode()).hexdigest()[:7]}"


def scale_work(record: dict[str, Any], share: float) -> None:
    """Keep ``share`` of a record's flops and tokens (batch kept consistent)."""
    record["flops"] = float(record["flops"]) * share
    record["tokens_processed"] = int(round(record["tokens_processed"] * share))
    record["batch_size"] = max(1, int(round(record["batch_size"] * share)))


def chain_refs(rows: Records) -> None:
    """Each record refers to the one before it (a plausible lineage, backward only)."""
    for prev, row in zip(rows, rows[1:]):
        row["upstream_refs"] = [prev["record_id"]]
    if rows:
        rows[0]["upstream_refs"] = []


def sort_by_time(records: Records) -> Records:
    """File order by window start (stable): writers append in time order."""
    return sorted(records, key=lambda r: parse_time(r["window_start"]))
