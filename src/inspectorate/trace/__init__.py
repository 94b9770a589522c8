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
from inspectorate.trace._io import iter_jsonl, read_head, read_trace, write_trace
from inspectorate.trace._schema import FIELDS, SCHEMA_VERSION, WindowRecord, format_time, parse_time, validate_record
from inspectorate.trace._trace import Trace

__all__ = [
    "FIELDS",
    "GENESIS",
    "SCHEMA_VERSION",
    "Trace",
    "WindowRecord",
    "format_time",
    "iter_jsonl",
    "parse_time",
    "read_head",
    "read_trace",
    "validate_record",
    "write_trace",
    "ChainBreak",
    "canonical_bytes",
    "canonical_json",
    "chain_head",
    "iter_chain_breaks",
    "rechain",
    "record_hash",
    "verify_chain",
]
