"""Ed25519 keys and the keyring (enrolment file): who may sign what.

Why a keyring and not the key a record names: a signature proves only that *some* key
signed. Key provenance is the verifier's own file mapping each host, log and witness id
to the one public key it enrolled (in deployment: the key a TEE's attestation report
bound to the machine, docs/signing.md). A record signed by a key not enrolled for the
id it claims proves nothing. One public key enrolled for two ids is refused: a key
copied to a second host must not look like two hosts.

Every signature is over ``DOMAIN[kind] + canonical JSON of the record without "sig"``, so
a signed head can never be replayed as a tree head or a cosignature.

The ``cryptography`` package is the optional extra ``sign``; without it a command that
needs a key says so in one line (exit 2).
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspectorate.errors import InputError
from inspectorate.trace._canonical import canonical_bytes

KEY_SCHEMA = "inspectorate.key/1"
KEYRING_SCHEMA = "inspectorate.keyring/1"
ROLES = ("host", "log", "witness")
DOMAIN = {
    "head": b"inspectorate.head/1\n",
    "sth": b"inspectorate.sth/1\n",
    "cosig": b"inspectorate.cosig/1\n",
}


def _crypto() -> Any:
    try:
        from cryptography.hazmat.primitives.asymmetric import ed25519
    except ImportError:  # pragma: no cover - depends on the install
        raise InputError("signing needs the `sign` extra: pip install 'inspectorate[sign]'") from None
    return ed25519


def signed_bytes(kind: str, record: Mapping[str, Any]) -> bytes:
    body = {k: v for k, v in record.items() if k != "sig"}
    return DOMAIN[kind] + canonical_bytes(body)


@dataclass
class SigningKey:
    """A private key with the id and role it was made for."""

    id: str
    role: str
    seed: bytes  # the 32-byte Ed25519 private key

    def __post_init__(self) -> None:
        self._key = _crypto().Ed25519PrivateKey.from_private_bytes(self.seed)

    @property
    def public_hex(self) -> str:
        from cryptography.hazmat.primitives import serialization as s

        raw = self._key.public_key().public_bytes(s.Encoding.Raw, s.PublicFormat.Raw)
        return bytes(raw).hex()

    def sign(self, kind: str, record: Mapping[str, Any]) -> dict[str, Any]:
        """``record`` with ``sig`` set over its domain-separated canonical bytes."""
        out = dict(record)
        out["sig"] = self._key.sign(signed_bytes(kind, out)).hex()
        return out


def generate_key(key_id: str, role: str) -> SigningKey:
    _check_role(role)
    return SigningKey(key_id, role, os.urandom(32))


def save_key(key: SigningKey, path: Path, force: bool = False) -> None:
    """Write the private key (mode 0600); refuse to overwrite without ``force``."""
    if path.exists() and not force:
        raise InputError("exists; pass --force to overwrite a key", path)
    body = {"schema": KEY_SCHEMA, "id": key.id, "role": key.role, "private_key": key.seed.hex()}
    body["public_key"] = key.public_hex
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(json.dumps(body, sort_keys=True) + "\n")


def load_key(path: Path) -> SigningKey:
    data = _read_json(path)
    if data.get("schema") != KEY_SCHEMA:
        raise InputError(f"not a key file (schema {data.get('schema')!r}, want {KEY_SCHEMA})", path)
    try:
        seed = bytes.fromhex(str(data["private_key"]))
        key = SigningKey(str(data["id"]), str(data["role"]), seed)
    except (KeyError, ValueError) as exc:
        raise InputError(f"malformed key file ({exc})", path) from None
    _check_role(key.role, path)
    return key


def _check_role(role: str, path: Path | None = None) -> None:
    if role not in ROLES:
        raise InputError(f"unknown role {role!r}; known: {', '.join(ROLES)}", path)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError("no such file", path) from None
    except (OSError, ValueError) as exc:
        raise InputError(f"not readable JSON ({exc})", path) from None
    if not isinstance(data, dict):
        raise InputError("must hold a JSON object", path)
    return data


@dataclass(frozen=True)
class Enrolment:
    id: str
    role: str
    public_key: str  # hex, 32 bytes
    enrolled: float


class Keyring:
    """The verifier's trust anchor: id -> (role, public key), one key per id and vice versa."""

    def __init__(self, entries: list[Enrolment], path: Path | None = None) -> None:
        self.path = path
        self.by_id: dict[str, Enrolment] = {}
        by_key: dict[str, str] = {}
        for e in entries:
            if e.id in self.by_id:
                raise InputError(f"id {e.id!r} enrolled twice", path)
            if e.public_key in by_key:
                raise InputError(
                    f"one public key enrolled for {by_key[e.public_key]!r} and {e.id!r} "
                    "(a key used on two hosts)",
                    path,
                )
            self.by_id[e.id], by_key[e.public_key] = e, e.id

    def verify(self, kind: str, record: Mapping[str, Any], signer: str, role: str) -> str | None:
        """None when ``record`` carries a valid signature by the key enrolled for
        ``signer`` in ``role``; otherwise the reason it does not."""
        entry = self.by_id.get(signer)
        if entry is None:
            return f"{role} {signer!r} is not enrolled"
        if entry.role != role:
            return f"{signer!r} is enrolled as {entry.role}, not {role}"
        sig = record.get("sig")
        try:
            pub = _crypto().Ed25519PublicKey.from_public_bytes(bytes.fromhex(entry.public_key))
            pub.verify(bytes.fromhex(str(sig)), signed_bytes(kind, record))
        except Exception:  # InvalidSignature, bad hex, wrong length: all one answer
            return f"bad {kind} signature for {signer!r}"
        return None

    def to_dict(self) -> dict[str, Any]:
        keys = [vars(e) for e in sorted(self.by_id.values(), key=lambda e: e.id)]
        return {"schema": KEYRING_SCHEMA, "keys": keys}


def load_keyring(path: Path) -> Keyring:
    data = _read_json(path)
    if data.get("schema") != KEYRING_SCHEMA:
        raise InputError(f"not a keyring (schema {data.get('schema')!r}, want {KEYRING_SCHEMA})", path)
    entries = []
    for i, row in enumerate(data.get("keys") or []):
        try:
            entry = Enrolment(
                str(row["id"]), str(row["role"]), str(row["public_key"]), float(row["enrolled"])
            )
            if len(bytes.fromhex(entry.public_key)) != 32:
                raise ValueError("public key is not 32 bytes")
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"keys[{i}] malformed ({exc})", path) from None
        _check_role(entry.role, path)
        entries.append(entry)
    return Keyring(entries, path)


def enrol(keyring_path: Path, key_id: str, role: str, public_key: str) -> Keyring:
    """Add one enrolment to the keyring file (created if absent); refuses a duplicate
    id or a key already enrolled for another id."""
    _check_role(role)
    current = load_keyring(keyring_path) if keyring_path.exists() else Keyring([], keyring_path)
    try:
        if len(bytes.fromhex(public_key)) != 32:
            raise ValueError
    except ValueError:
        raise InputError("public key must be 32 bytes of hex") from None
    entries = [*current.by_id.values(), Enrolment(key_id, role, public_key, round(time.time(), 3))]
    ring = Keyring(entries, keyring_path)
    keyring_path.write_text(json.dumps(ring.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return ring


def enrol_key_file(keyring_path: Path, key_path: Path) -> Enrolment:
    """Enrol the public half of a key file under its own id and role."""
    key = load_key(key_path)
    return enrol(keyring_path, key.id, key.role, key.public_hex).by_id[key.id]
