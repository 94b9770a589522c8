"""The verifier's challenge: seeds a run must derive from a nonce issued as it begins.

Kept free of torch so ``verify`` can check a replayed run's seed without the testbed
extra installed.
"""

from __future__ import annotations

import hashlib


def derive_seed(nonce: str, key: str) -> int:
    """The seed a run must use under the verifier's challenge ``nonce`` (48 bits, so both
    torch and numpy take it): unknown before the challenge, so no run computed earlier
    can have it. ``key`` names the job (unique within the run)."""
    return int.from_bytes(hashlib.sha256(f"{nonce}|{key}".encode()).digest()[:6], "little")
