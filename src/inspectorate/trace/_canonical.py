"""Canonical JSON and the SHA-256 record chain, exactly as the seed defines them.

A record's hash is SHA-256 over ``json.dumps(record, sort_keys=True,
separators=(",", ":"))`` encoded as UTF-8 (``ensure_ascii`` stays at its default, so
the bytes are ASCII). Each record carries ``prev_record_hash``: the hex hash of the
record before it in file order; the first record carries 64 zeros (``GENESIS``).

The chain alone cannot protect its own tail: editing or dropping the last record
leaves no successor to disagree. A verifier therefore accepts an optional *head*
(the hash of the last record, published by the prover out of band or written by
our writers to a ``.head.json`` sidecar); with a head, every single-field change
anywhere in the trace is detected.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

GENESIS = "0" * 64
PREV_FIELD = "prev_record_hash"

# The C-accelerated encoder, built once: json.dumps() rebuilds it on every call.
_ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"))


def canonical_json(record: Any) -> str:
    """The canonical JSON text of ``record`` (sorted keys, no whitespace); any JSON value works."""
    return _ENCODER.encode(record)


def canonical_bytes(record: Mapping[str, Any]) -> bytes:
    """The bytes the chain hashes: canonical JSON, UTF-8 (ASCII in practice)."""
    return _ENCODER.encode(record).encode("utf-8")


def record_hash(record: Mapping[str, Any]) -> str:
    """Hex SHA-256 of the record's canonical bytes."""
    return hashlib.sha256(canonical_bytes(record)).hexdigest()


@dataclass(frozen=True)
class ChainBreak:
    """One place where the chain does not hold.

    ``index`` is the 0-based position of the record whose ``prev_record_hash`` (or,
    for ``index == count``, the expected head) disagrees; ``suspect_index`` is the
    record most likely edited (the one before the disagreement).
    """

    index: int
    record_id: str | None
    suspect_index: int
    suspect_record_id: str | None
    expected: str
    found: str
    covers: int | None = None  # records the published head covers, when its sidecar says

    @property
    def reason(self) -> str:
        if self.covers is not None and self.covers > self.index:
            return f"truncated: {self.index} records, the published head covers {self.covers}"
        if self.covers is not None and self.covers < self.index:
            return f"extended: {self.index} records, the published head covers {self.covers}"
        if self.found == "<missing head>":
            return "trace ends before the published head"
        return f"prev_record_hash {self.found[:16]}... != hash of previous record {self.expected[:16]}..."


def iter_chain_breaks(records: Iterable[Mapping[str, Any]], head: str | None = None) -> Iterator[ChainBreak]:
    """Yield every break in the chain, in file order; ``head`` pins the last hash."""
    prev_hash, prev_id, index = GENESIS, None, -1
    for index, record in enumerate(records):
        found = record.get(PREV_FIELD)
        if found != prev_hash:
            yield ChainBreak(
                index, record.get("record_id"), max(index - 1, 0), prev_id, prev_hash, str(found)
            )
        prev_hash, prev_id = record_hash(record), record.get("record_id")
    count = index + 1
    if head is not None and head != prev_hash:
        yield ChainBreak(count, None, max(count - 1, 0), prev_id, head, prev_hash)


def verify_chain(records: Iterable[Mapping[str, Any]], head: str | None = None) -> list[ChainBreak]:
    """All breaks in the chain (empty when intact)."""
    return list(iter_chain_breaks(records, head))


def chain_head(records: Iterable[Mapping[str, Any]]) -> str:
    """Hash of the last record (GENESIS for an empty trace): what a prover publishes."""
    head = GENESIS
    for record in records:
        head = record_hash(record)
    return head


def rechain(records: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Copies of ``records`` with ``prev_record_hash`` recomputed in order.

    For tools that mutate traces (attacks, fixtures): the output chain is intact.
    """
    out: list[dict[str, Any]] = []
    prev = GENESIS
    for record in records:
        fixed = dict(record)
        fixed[PREV_FIELD] = prev
        prev = record_hash(fixed)
        out.append(fixed)
    return out
