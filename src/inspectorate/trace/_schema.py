"""The window record: the seed's per-chip, per-window claim, typed and versioned.

Every field of the seed schema is required. Fields beyond the schema (the seed's
``_real_training``, ``_alibaba``, ``_bloom_real`` blocks, or anything a producer adds)
are kept untouched: they are part of what the chain hashes.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from inspectorate.errors import RecordError

SCHEMA_VERSION = 1
SCHEMA_NAME = "inspectorate.window"

# name -> JSON type the seed uses. "number" accepts JSON ints and floats; "int" only ints.
STRING_FIELDS = (
    "record_id",
    "prev_record_hash",
    "chip_id",
    "job_id",
    "operator",
    "cluster_region",
    "window_start",
    "window_end",
    "op_type",
    "model_hash_prefix",
    "dataset_fingerprint",
    "code_commit",
    "config_hash",
)
INT_FIELDS = ("tokens_processed", "batch_size", "sequence_length")
NUMBER_FIELDS = ("flops",)
LIST_FIELDS = ("upstream_refs", "data_source_tags")
FIELDS = STRING_FIELDS + INT_FIELDS + NUMBER_FIELDS + LIST_FIELDS
FIELD_SET = frozenset(FIELDS)

OP_TYPES_KNOWN = ("training", "inference", "eval", "idle")


def parse_time(value: str) -> float:
    """ISO 8601 timestamp -> epoch seconds (UTC when no offset is given)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise RecordError(f"not an ISO 8601 timestamp: {value!r}") from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.timestamp()


def format_time(epoch: float) -> str:
    """Epoch seconds -> ``YYYY-MM-DDTHH:MM:SS[.ffffff]Z`` (the seed's spelling)."""
    moment = datetime.fromtimestamp(epoch, tz=UTC)
    text = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if moment.microsecond:
        text += f".{moment.microsecond:06d}"
    return text + "Z"


def validate_record(record: Any) -> None:
    """Raise RecordError naming the first problem with ``record``."""
    if not isinstance(record, dict):
        raise RecordError(f"record must be a JSON object, got {type(record).__name__}")
    missing = [name for name in FIELDS if name not in record]
    if missing:
        raise RecordError(f"missing field(s): {', '.join(missing)}")
    for name in STRING_FIELDS:
        if not isinstance(record[name], str):
            raise RecordError(f"field {name!r} must be a string, got {_json_type(record[name])}")
    for name in INT_FIELDS:
        value = record[name]
        if not isinstance(value, int) or isinstance(value, bool):
            raise RecordError(f"field {name!r} must be an integer, got {_json_type(value)}")
        if not 0 <= value < 2**63:
            raise RecordError(f"field {name!r} must be between 0 and 2**63-1, got {value}")
    _check_number(record, "flops")
    for name in LIST_FIELDS:
        value = record[name]
        if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
            raise RecordError(f"field {name!r} must be a list of strings")
    start, end = parse_time(record["window_start"]), parse_time(record["window_end"])
    if end < start:
        raise RecordError(
            f"window_end {record['window_end']} is before window_start {record['window_start']}"
        )


def _check_number(record: Mapping[str, Any], name: str) -> None:
    value = record[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise RecordError(f"field {name!r} must be a number, got {_json_type(value)}")
    if not math.isfinite(value):
        raise RecordError(f"field {name!r} is not finite ({value})")
    if value < 0:
        raise RecordError(f"field {name!r} must be >= 0, got {value}")


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }.get(type(value), type(value).__name__)


def json_schema() -> dict[str, Any]:
    """The window record as a JSON Schema (draft 2020-12), derived from the field lists
    above: the one definition the readers, writers and ``validate_record`` use. Extra
    fields are allowed and kept byte-for-byte (they are part of what the chain hashes)."""
    string, integer = {"type": "string"}, {"type": "integer", "minimum": 0, "maximum": 2**63 - 1}
    props: dict[str, Any] = {name: dict(string) for name in STRING_FIELDS}
    props.update({name: dict(integer) for name in INT_FIELDS})
    props.update({name: {"type": "number", "minimum": 0} for name in NUMBER_FIELDS})
    props.update({name: {"type": "array", "items": string} for name in LIST_FIELDS})
    for name in ("window_start", "window_end"):
        props[name]["format"] = "date-time"
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"{SCHEMA_NAME}/{SCHEMA_VERSION}",
        "title": "inspectorate window record (the seed's per-chip, per-window claim)",
        "type": "object",
        "required": list(FIELDS),
        "properties": props,
        "additionalProperties": True,
    }
