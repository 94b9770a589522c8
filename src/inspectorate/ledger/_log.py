"""The append-only transparency log of signed chain heads: files, operator, proofs.

A log is a directory:

- ``log.json``: ``{"schema", "log": id}``; the log's public key comes from the
  verifier's keyring, never from this file.
- ``leaves.jsonl``: one signed head per line; the leaf is its canonical bytes.
- ``sth.jsonl``: signed tree heads ``{"schema", "log", "size", "root", "t", "sig"}``.
- ``cosignatures.jsonl``: witnesses' cosignatures of tree heads.

Why files and not a service: the sensor and the log operator run on the prover's host
here, so the prover can rewrite every one of these files. That is the point of the
witness (off-host, remembers what it cosigned) and of the verifier's state and gossip:
a rewritten log disagrees with a head someone outside already holds.
"""

from __future__ import annotations

import base64
import binascii
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspectorate.errors import InputError
from inspectorate.ledger._keys import SigningKey
from inspectorate.ledger._merkle import (
    EMPTY_ROOT,
    HASH_LEN,
    Frontier,
    ProofError,
    consistency_path,
    inclusion_path,
    leaf_hash,
    root_from_hashes,
)
from inspectorate.trace._canonical import canonical_bytes

LOG_SCHEMA = "inspectorate.log/1"
STH_SCHEMA = "inspectorate.sth/1"
PROOF_SCHEMA = "inspectorate.proof/1"
LEAVES, STHS, COSIGS, META = "leaves.jsonl", "sth.jsonl", "cosignatures.jsonl", "log.json"


def _append_line(path: Path, record: dict[str, Any]) -> None:
    with path.open("ab") as f:
        f.write(canonical_bytes(record) + b"\n")


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every object line of ``path`` ([] when absent); a bad line is an InputError."""
    if not path.is_file():
        return []
    return [
        _object(line, path, i) for i, line in enumerate(path.read_bytes().splitlines(), 1) if line.strip()
    ]


def read_stream(path: Path) -> list[dict[str, Any]]:
    """A chained stream's records; a torn last line (a writer killed mid-record, no
    newline) is left out, as the chain writer would cut it: it was never signed."""
    if not path.is_file():
        raise InputError("no such stream file", path)
    data = path.read_bytes()
    if data and not data.endswith(b"\n"):
        tail = data[data.rfind(b"\n") + 1 :]
        try:
            json.loads(tail)
        except ValueError:
            data = data[: len(data) - len(tail)]
    return [_object(line, path, i) for i, line in enumerate(data.splitlines(), 1) if line.strip()]


def _object(line: bytes, path: Path, i: int) -> dict[str, Any]:
    try:
        obj = json.loads(line)
    except ValueError as exc:
        raise InputError(f"not valid JSON ({exc})", path, i) from None
    if not isinstance(obj, dict):
        raise InputError("a record must be a JSON object", path, i)
    return obj


def init_log(path: Path, log_id: str) -> None:
    path.mkdir(parents=True, exist_ok=True)
    meta = path / META
    if meta.exists():
        raise InputError("a log already lives here", meta)
    meta.write_text(json.dumps({"schema": LOG_SCHEMA, "log": log_id}) + "\n", encoding="utf-8")


@dataclass
class LogView:
    """What a log directory holds, read once (the verifier's and the witness's view)."""

    path: Path
    log_id: str
    leaves: list[dict[str, Any]]
    hashes: list[bytes]
    sths: list[dict[str, Any]]
    cosigs: list[dict[str, Any]]
    _prefix_roots: list[bytes] | None = field(default=None, repr=False)

    def root(self, size: int) -> bytes:
        """MTH of the first ``size`` leaves. Every prefix root is computed once, in one
        O(n log n) pass: an audit compares one tree head per leaf, and a per-head MTH would
        grow quadratically with the log."""
        if self._prefix_roots is None:
            frontier, roots = Frontier(), [EMPTY_ROOT]
            for h in self.hashes:
                frontier.append_hash(h)
                roots.append(frontier.root())
            self._prefix_roots = roots
        return (
            self._prefix_roots[size]
            if 0 <= size < len(self._prefix_roots)
            else root_from_hashes(self.hashes[:size])
        )

    def inclusion(self, index: int, size: int) -> list[bytes]:
        return inclusion_path(index, self.hashes[:size])

    def consistency(self, old: int, new: int) -> list[bytes]:
        return consistency_path(old, self.hashes[:new])

    def latest_sth(self) -> dict[str, Any] | None:
        return max(self.sths, key=lambda s: int(s.get("size", -1)), default=None)


def open_log(path: Path) -> LogView:
    meta = path / META
    if not meta.is_file():
        raise InputError("not a transparency log (no log.json)", path)
    try:
        log_id = str(json.loads(meta.read_text(encoding="utf-8"))["log"])
    except (ValueError, KeyError, TypeError) as exc:
        raise InputError(f"malformed log.json ({exc})", meta) from None
    leaves = read_jsonl(path / LEAVES)
    hashes = [leaf_hash(canonical_bytes(leaf)) for leaf in leaves]
    return LogView(path, log_id, leaves, hashes, read_jsonl(path / STHS), read_jsonl(path / COSIGS))


class LogOperator:
    """Appends leaves and publishes signed tree heads; O(log n) per append (``Frontier``)."""

    def __init__(self, path: Path, key: SigningKey) -> None:
        view = open_log(path)
        if key.role != "log" or key.id != view.log_id:
            raise InputError(f"key {key.id!r} ({key.role}) is not the key of log {view.log_id!r}", path)
        self.path, self.key, self.log_id = path, key, view.log_id
        self.frontier = Frontier()
        for h in view.hashes:
            self.frontier.append_hash(h)

    def append(self, leaf: dict[str, Any]) -> int:
        """Add one leaf; returns its index."""
        data = canonical_bytes(leaf)
        _append_line(self.path / LEAVES, leaf)
        self.frontier.append_hash(leaf_hash(data))
        return self.frontier.size - 1

    def publish(self) -> dict[str, Any]:
        """Sign and record the tree head at the current size."""
        body = {
            "schema": STH_SCHEMA,
            "log": self.log_id,
            "size": self.frontier.size,
            "root": self.frontier.root().hex(),
            "t": round(time.time(), 4),
        }
        sth = self.key.sign("sth", body)
        _append_line(self.path / STHS, sth)
        return sth


def add_cosignature(path: Path, cosig: dict[str, Any]) -> None:
    _append_line(path / COSIGS, cosig)


# ---- proofs as they travel (JSON): the parser fuzzed in tests/ledger/test_proofs.py ----


def encode_proof(kind: str, nodes: list[bytes], **sizes: int) -> dict[str, Any]:
    return {"schema": PROOF_SCHEMA, "kind": kind, **sizes, "path": [n.hex() for n in nodes]}


def _node(value: Any, i: int) -> bytes:
    """A proof node as hex (64 chars) or base64 (as transparency-dev's vectors carry them)."""
    if not isinstance(value, str):
        raise ProofError(f"path[{i}] must be a string")
    try:
        raw = bytes.fromhex(value) if len(value) == 2 * HASH_LEN else base64.b64decode(value, validate=True)
    except (ValueError, binascii.Error):
        raise ProofError(f"path[{i}] is neither hex nor base64") from None
    if len(raw) != HASH_LEN:
        raise ProofError(f"path[{i}] is {len(raw)} bytes, want {HASH_LEN}")
    return raw


def _int_field(obj: dict[str, Any], key: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 64:
        raise ProofError(f"proof field {key!r} must be an integer in [0, 2^64)")
    return value


def parse_proof(obj: Any) -> tuple[str, dict[str, int], list[bytes]]:
    """(kind, sizes, nodes) of a JSON proof; anything malformed raises ``ProofError``.

    ``inclusion`` carries ``index`` and ``size``; ``consistency`` ``old_size`` and
    ``new_size``."""
    if not isinstance(obj, dict):
        raise ProofError("a proof must be a JSON object")
    if obj.get("schema") != PROOF_SCHEMA:
        raise ProofError(f"proof schema must be {PROOF_SCHEMA}")
    kind = obj.get("kind")
    fields = {"inclusion": ("index", "size"), "consistency": ("old_size", "new_size")}.get(str(kind))
    if fields is None:
        raise ProofError("proof kind must be inclusion or consistency")
    path = obj.get("path")
    if not isinstance(path, list) or len(path) > 64:  # a 2^64 tree needs at most 64 nodes
        raise ProofError("proof path must be a list of at most 64 nodes")
    return str(kind), {f: _int_field(obj, f) for f in fields}, [_node(v, i) for i, v in enumerate(path)]
