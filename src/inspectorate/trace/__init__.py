"""Evidence formats: window records, canonical JSON + hash chain, trace IO, run dirs."""

from inspectorate.trace._canonical import (
    GENESIS,
    ChainBreak,
    canonical_bytes,
    canonical_json,
    chain_head,
    iter_chain_breaks,
    rechain,
    record_hash,
    verify_chain,
)

__all__ = [
    "GENESIS",
    "ChainBreak",
    "canonical_bytes",
    "canonical_json",
    "chain_head",
    "iter_chain_breaks",
    "rechain",
    "record_hash",
    "verify_chain",
]
