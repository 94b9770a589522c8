"""Signed chain heads: what a host's sensor puts in the log every window.

A head names the stream (the hash of its first record, so it is fixed at genesis and
covers the verifier's nonce in the sensor's start record), the record count, the hash
of the last record, the time, and the machine it was signed on (``/etc/machine-id``
and the kernel's ``boot_id``). Signing with the host key binds all of them; the log
makes the sequence of heads append-only.

Why the machine fields: a host key copied to a second machine signs valid heads there.
Without a TEE nothing stops the copy, but its heads carry the other machine's ids (or
the same boot id at overlapping times), which the audit reports as a key used on two
hosts. A prover with root can forge both files; docs/signing.md says what a TEE adds.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from inspectorate.ledger._keys import SigningKey, load_key
from inspectorate.ledger._log import LogOperator

HEAD_SCHEMA = "inspectorate.head/1"


def machine_identity() -> dict[str, str]:
    """This machine's ids as the kernel and systemd report them ("" when unreadable)."""
    out = {}
    for name, path in (
        ("machine_id", "/etc/machine-id"),
        ("boot_id", "/proc/sys/kernel/random/boot_id"),
    ):
        try:
            out[name] = Path(path).read_text(encoding="ascii").strip()
        except OSError:
            out[name] = ""
    return out


class HeadSigner:
    """The sensor's hook: after a window's record is written, sign the chain head and
    append it to the log (one leaf + one signed tree head per window)."""

    def __init__(self, key: SigningKey, log: LogOperator, *, window_s: float = 5.0) -> None:
        if key.role != "host":
            raise ValueError(f"key {key.id!r} is a {key.role} key, not a host key")
        self.key, self.log, self.window_s = key, log, window_s
        self.machine = machine_identity()
        self.stream: str | None = None
        self.nonce: str | None = None
        self._last_t = float("-inf")
        self.signed = 0

    def observe(self, record: dict[str, Any], head: str, count: int, *, final: bool = False) -> None:
        """Called after every record the chain writer stored; signs once per window
        (always the first record, so the stream is logged from its start, and a ``stop``
        record, which closes the stream: ``final``)."""
        final = final or record.get("kind") == "stop"
        if count == 1:
            self.stream, self.nonce = head, record.get("nonce")
        now = time.monotonic()
        if not final and count > 1 and now - self._last_t < self.window_s:
            return
        self._last_t = now
        self.sign(head, count, final)

    def sign(self, head: str, count: int, final: bool) -> dict[str, Any]:
        body = {
            "schema": HEAD_SCHEMA,
            "host": self.key.id,
            "stream": self.stream,
            "nonce": self.nonce,
            "count": count,
            "head": head,
            "final": final,
            "t": round(time.time(), 4),
            **self.machine,
        }
        leaf = self.key.sign("head", body)
        self.log.append(leaf)
        self.log.publish()
        self.signed += 1
        return leaf


def open_signer(key: Path, log: Path, log_key: Path, window_s: float = 5.0) -> HeadSigner:
    """A head signer from key files: the host's key, and the log (with its operator key)."""
    return HeadSigner(load_key(key), LogOperator(log, load_key(log_key)), window_s=window_s)


def sign_file(path: Path, signer: HeadSigner, *, final: bool = True) -> dict[str, Any]:
    """Sign the current head of an existing chained JSONL file (``ledger sign-stream``):
    for writers without a hook, e.g. a window-record recorder signing after each window."""
    from inspectorate.ledger._log import read_stream
    from inspectorate.trace._canonical import record_hash

    records = read_stream(path)
    if not records:
        from inspectorate.errors import InputError

        raise InputError("nothing to sign: the stream is empty", path)
    signer.stream, signer.nonce = record_hash(records[0]), records[0].get("nonce")
    return signer.sign(record_hash(records[-1]), len(records), final)
