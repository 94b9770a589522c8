"""A tiny signed world for the ledger tests: a host, a log, a witness, a keyring, and
chained streams (import the `world` fixture from here: `from signed_world import world`)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("cryptography")

from inspectorate.capture._chain_writer import ChainWriter
from inspectorate.ledger import (
    HeadSigner,
    Keyring,
    LogOperator,
    SigningKey,
    enrol,
    generate_key,
    init_log,
    load_keyring,
    save_key,
)
from inspectorate.ledger._witness import witness_log


@dataclass
class World:
    root: Path
    log: Path
    ring: Path
    keys: dict[str, SigningKey]

    @property
    def keyring(self) -> Keyring:
        return load_keyring(self.ring)

    def signer(self, host: str = "host-a", window_s: float = 0.0) -> HeadSigner:
        return HeadSigner(self.keys[host], LogOperator(self.log, self.keys["log-a"]), window_s=window_s)

    def stream(self, name: str, n: int = 6, nonce: str = "nonce-1", signer: HeadSigner | None = None) -> Path:
        """A sensor-shaped stream: start (with the nonce), n samples, stop; signed every record."""
        path = self.root / name
        signer = signer or self.signer()
        with ChainWriter(path, on_append=signer.observe) as w:
            w.append({"kind": "start", "nonce": nonce, "t": 0.0})
            for i in range(n):
                w.append({"kind": "sample", "t": float(i + 1), "cpu_s": 0.5 * i})
            w.append({"kind": "stop", "t": float(n + 1)})
        return path

    def cosign(self, witness: str = "w1") -> str | None:
        answer = witness_log(
            self.log, self.root / f"{witness}.key", self.ring, self.root / f"{witness}.state"
        )
        return answer.refusal


@pytest.fixture
def world(tmp_path: Path) -> World:
    keys = {}
    for key_id, role in (("host-a", "host"), ("host-b", "host"), ("log-a", "log"), ("w1", "witness")):
        keys[key_id] = generate_key(key_id, role)
        save_key(keys[key_id], tmp_path / f"{key_id}.key")
        enrol(tmp_path / "ring.json", key_id, role, keys[key_id].public_hex)
    init_log(tmp_path / "log", "log-a")
    return World(tmp_path, tmp_path / "log", tmp_path / "ring.json", keys)
