"""The verifier's side: audit a log and check a chained stream against its signed heads.

Every problem names what it detects, and whether it proves tampering (``inconsistent``)
or only leaves the evidence unproven (``unverifiable``):

- ``provenance``: a head, tree head or cosignature not signed by the key the keyring
  enrolled for the id it names.
- ``truncation``: the stream (or the log) ends before a head someone signed.
- ``rechain``: a record at a signed position hashes differently (edited and re-chained).
- ``replay``: the stream answers another challenge than the verifier's nonce, or the log
  is smaller than, or not an extension of, the one this verifier accepted before.
- ``split_view``: two signed heads that cannot both be true (same size, other root; or
  a head the leaves do not reproduce), from the log, a witness or a peer (gossip).
- ``key_reuse``: one host key signing on two machines, or on two boots at once.
- ``unwitnessed`` / ``unclosed``: no witness cosigned the stream's last head; the stream
  has no final signed head (sensor killed, or its end cut off with the log).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspectorate.errors import InputError
from inspectorate.ledger._keys import Keyring
from inspectorate.ledger._log import LogView
from inspectorate.ledger._merkle import ProofError, verify_consistency, verify_inclusion
from inspectorate.trace._canonical import record_hash

INCONSISTENT, UNVERIFIABLE = "inconsistent", "unverifiable"
STATE_SCHEMA = "inspectorate.verifier-state/1"


@dataclass(frozen=True)
class Problem:
    kind: str
    decision: str
    message: str

    def to_dict(self) -> dict[str, str]:
        return {"kind": self.kind, "decision": self.decision, "message": self.message}


@dataclass
class Audit:
    """The log as the verifier found it: valid heads, the witnessed size, the problems."""

    view: LogView
    heads: list[tuple[int, dict[str, Any]]] = field(default_factory=list)  # (leaf index, head)
    witnessed: tuple[int, bytes] | None = None  # (size, root) of the largest valid cosignature
    problems: list[Problem] = field(default_factory=list)

    def add(self, kind: str, decision: str, message: str) -> None:
        self.problems.append(Problem(kind, decision, message))


def audit_log(view: LogView, keyring: Keyring, peers: list[dict[str, Any]] | None = None) -> Audit:
    """Signatures and provenance of every leaf, tree head and cosignature; each tree
    head reproduced from the leaves; peers' heads compared (gossip); key reuse."""
    audit = Audit(view)
    for i, leaf in enumerate(view.leaves):
        bad = keyring.verify("head", leaf, str(leaf.get("host")), "host")
        if bad is not None:
            audit.add("provenance", INCONSISTENT, f"leaf {i}: {bad}")
        else:
            audit.heads.append((i, leaf))
    for sth in view.sths:
        if _signed_head_ok(audit, keyring, "sth", sth, view.log_id, "log", "tree head"):
            _check_against_leaves(audit, sth, "the log's own tree head")
    for cosig in view.cosigs:
        signer = str(cosig.get("witness"))
        if not _signed_head_ok(audit, keyring, "cosig", cosig, signer, "witness", "cosignature"):
            continue
        if _check_against_leaves(audit, cosig, f"witness {signer}'s cosigned head"):
            size = int(cosig["size"])
            if audit.witnessed is None or size > audit.witnessed[0]:
                audit.witnessed = (size, bytes.fromhex(cosig["root"]))
    for peer in peers or []:
        _gossip(audit, keyring, peer)
    _key_reuse(audit)
    return audit


def _signed_head_ok(
    audit: Audit, keyring: Keyring, kind: str, rec: dict[str, Any], signer: str, role: str, what: str
) -> bool:
    if rec.get("log") != audit.view.log_id:
        return False  # another log's head: not ours to judge
    bad = keyring.verify(kind, rec, signer, role)
    if bad is not None:
        audit.add("provenance", INCONSISTENT, f"{what} of size {rec.get('size')}: {bad}")
    return bad is None


def _check_against_leaves(audit: Audit, head: dict[str, Any], who: str) -> bool:
    """Does the log reproduce this signed (size, root)? Larger than the log: the log was
    cut; another root at that size: the log was rewritten or shown split."""
    try:
        size, root = int(head["size"]), str(head["root"])
    except (KeyError, TypeError, ValueError):
        audit.add("split_view", INCONSISTENT, f"{who} has no valid size/root")
        return False
    have = len(audit.view.leaves)
    if size > have:
        audit.add("truncation", INCONSISTENT, f"{who} covers {size} leaves; the log holds only {have}")
        return False
    if audit.view.root(size).hex() != root:
        audit.add("split_view", INCONSISTENT, f"{who} at size {size} has a root the log's leaves do not give")
        return False
    return True


def _gossip(audit: Audit, keyring: Keyring, peer: dict[str, Any]) -> None:
    """A head another verifier was shown: signed by the log (or a witness), it must be a
    prefix of, or equal to, this log; otherwise one of us was shown a split view."""
    if peer.get("log") != audit.view.log_id:
        return
    if "witness" in peer:
        kind, signer, role = "cosig", str(peer["witness"]), "witness"
    else:
        kind, signer, role = "sth", audit.view.log_id, "log"
    bad = keyring.verify(kind, peer, signer, role)
    if bad is not None:
        audit.add("provenance", UNVERIFIABLE, f"a peer's head is unusable: {bad}")
        return
    _check_against_leaves(audit, peer, "a peer's signed head")


def _key_reuse(audit: Audit) -> None:
    """One host key, two machines: other machine ids, or two boots whose heads overlap in time."""
    by_host: dict[str, dict[str, list[float]]] = {}
    machines: dict[str, set[str]] = {}
    for _, head in audit.heads:
        host, t = str(head.get("host")), float(head.get("t") or 0.0)
        if head.get("machine_id"):
            machines.setdefault(host, set()).add(str(head["machine_id"]))
        if head.get("boot_id"):
            span = by_host.setdefault(host, {}).setdefault(str(head["boot_id"]), [t, t])
            span[0], span[1] = min(span[0], t), max(span[1], t)
    for host, ids in sorted(machines.items()):
        if len(ids) > 1:
            audit.add("key_reuse", INCONSISTENT, f"host key {host!r} signed on {len(ids)} machines")
    for host, boots in sorted(by_host.items()):
        spans = sorted(boots.values())
        if any(b[0] <= a[1] for a, b in zip(spans, spans[1:], strict=False)):
            audit.add("key_reuse", INCONSISTENT, f"host key {host!r} signed from two boots at once")


def check_stream(records: list[dict[str, Any]], audit: Audit, challenge: str | None = None) -> list[Problem]:
    """The stream against its signed heads: found, in order, reaching the end, not
    re-chained, closed, witnessed and included, answering the verifier's challenge."""
    out: list[Problem] = []
    if not records:
        return [Problem("truncation", INCONSISTENT, "the stream is empty")]
    stream = record_hash(records[0])
    heads = [(i, h) for i, h in audit.heads if h.get("stream") == stream]
    if not heads:
        return [
            Problem("rechain", INCONSISTENT, "no signed head names this stream (re-chained or never logged)")
        ]
    counts = [int(h.get("count") or 0) for _, h in heads]
    if any(b <= a for a, b in zip(counts, counts[1:], strict=False)):
        out.append(Problem("rechain", INCONSISTENT, "signed heads of this stream do not advance"))
    out += _positions(records, heads)
    out += _ending(records, heads[-1][1])
    out += _freshness(records[0], heads, challenge)
    out += _witnessed(audit, heads[-1][0])
    return out


def _positions(records: list[dict[str, Any]], heads: list[tuple[int, dict[str, Any]]]) -> list[Problem]:
    for _, head in heads:
        count = int(head.get("count") or 0)
        if count > len(records):
            msg = f"a head signed at record {count} but the stream holds {len(records)} (tail cut)"
            return [Problem("truncation", INCONSISTENT, msg)]
        if count < 1 or record_hash(records[count - 1]) != head.get("head"):
            return [
                Problem("rechain", INCONSISTENT, f"record {count} is not the one signed (edited, re-chained)")
            ]
    return []


def _ending(records: list[dict[str, Any]], last: dict[str, Any]) -> list[Problem]:
    extra = len(records) - int(last.get("count") or 0)
    if not last.get("final"):
        return [
            Problem("unclosed", UNVERIFIABLE, f"no final signed head; {extra} record(s) after the last one")
        ]
    if extra > 0:
        return [Problem("rechain", INCONSISTENT, f"{extra} record(s) after the final signed head")]
    return []


def _freshness(
    first: dict[str, Any], heads: list[tuple[int, dict[str, Any]]], challenge: str | None
) -> list[Problem]:
    nonce = first.get("nonce")
    if any(h.get("nonce") != nonce for _, h in heads):
        return [Problem("replay", INCONSISTENT, "signed heads carry another nonce than the stream's start")]
    if challenge is not None and nonce != challenge:
        return [
            Problem(
                "replay", INCONSISTENT, f"the stream answers challenge {str(nonce)[:12]}..., not this one"
            )
        ]
    return []


def _witnessed(audit: Audit, index: int) -> list[Problem]:
    if audit.witnessed is None or audit.witnessed[0] <= index:
        return [
            Problem("unwitnessed", UNVERIFIABLE, "no witness cosigned a tree holding the stream's last head")
        ]
    size, root = audit.witnessed
    leaf = audit.view.hashes[index]
    if not verify_inclusion(index, size, leaf, audit.view.inclusion(index, size), root):
        return [Problem("split_view", INCONSISTENT, "the last head is not included in the witnessed tree")]
    return []


# ---- the verifier's memory: monotonic tree size per log ----


def load_state(path: Path | None) -> dict[str, dict[str, Any]]:
    if path is None or not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if data.get("schema") != STATE_SCHEMA:
            raise ValueError("wrong schema")
        return {str(k): {"size": int(v["size"]), "root": str(v["root"])} for k, v in data["logs"].items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise InputError(f"not a verifier state file ({exc})", path) from None


def check_monotonic(audit: Audit, seen: dict[str, Any] | None) -> list[Problem]:
    """The log must extend what this verifier accepted before: never smaller, same prefix."""
    if seen is None:
        return []
    size, root, have = int(seen["size"]), str(seen["root"]), len(audit.view.leaves)
    if have < size:
        return [
            Problem(
                "replay", INCONSISTENT, f"log has {have} leaves; this verifier already saw {size} (old log)"
            )
        ]
    # the RFC 9162 consistency proof the log serves, checked as a remote verifier would
    proof = audit.view.consistency(size, have) if 0 < size < have else []
    try:
        ok = size == 0 or verify_consistency(size, have, bytes.fromhex(root), audit.view.root(have), proof)
    except (ValueError, ProofError):
        ok = False
    if not ok:
        msg = f"log is not an extension of the size-{size} tree this verifier saw"
        return [Problem("split_view", INCONSISTENT, msg)]
    return []


def save_state(path: Path, audit: Audit, state: dict[str, dict[str, Any]]) -> None:
    size = len(audit.view.leaves)
    state[audit.view.log_id] = {"size": size, "root": audit.view.root(size).hex()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps({"schema": STATE_SCHEMA, "logs": state}, indent=2, sort_keys=True) + "\n")
    tmp.replace(path)
