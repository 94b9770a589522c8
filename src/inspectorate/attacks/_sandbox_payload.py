"""Reading what the sandboxed child wrote: hostile bytes until proven otherwise.

The parent accepts exactly one framed payload (``HEADER <length>\\n<json>``, nothing
before or after it), of bounded size, whose nesting depth is measured *before*
``json.loads`` runs (so the decoder's recursion cannot be reached), whose integers are
short (a 10**400 would overflow float conversions downstream), with no NaN or Infinity,
and whose records are window records with finite numbers and bounded strings. Every
failure is a ``PayloadError`` carrying the reason; nothing else escapes ``parse``.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from inspectorate.attacks._sandbox_child import HEADER
from inspectorate.errors import PayloadError
from inspectorate.trace import validate_record

MAX_DEPTH = 8  # a record list is 3 deep ([ { "upstream_refs": [ ); extra fields get a little room
MAX_INT_DIGITS = 30  # well inside float range, so math.isfinite and float() never overflow
MAX_STRING = 4096
MAX_BLOCKED = 50
KINDS = ("blocked", "denied", "memory", "error", "output", "isolation")
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"')
_FRAME = re.compile(re.escape(HEADER) + rb" ([0-9]{1,12})\n")


def unframe(raw: bytes) -> bytes:
    """The JSON body, if ``raw`` is exactly one frame."""
    match = _FRAME.match(raw)
    if match is None:
        raise PayloadError("invalid", "no result frame on stdout")
    body = raw[match.end() :]
    if len(body) != int(match.group(1)):
        raise PayloadError(
            "invalid", f"result frame announces {int(match.group(1))} bytes, {len(body)} follow"
        )
    return body


def nesting_depth(body: bytes) -> int:
    """Maximum bracket depth outside string literals, without recursion."""
    brackets = _STRING.sub(b'""', body).translate(None, delete=bytes(set(range(256)) - set(b"[]{}")))
    depth = deepest = 0
    for byte in brackets:
        depth += 1 if byte in (0x5B, 0x7B) else -1
        deepest = max(deepest, depth)
    return deepest


def _int(text: str) -> int:
    if len(text.lstrip("-")) > MAX_INT_DIGITS:
        raise PayloadError("invalid", f"integer with {len(text)} digits in the result")
    return int(text)


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise PayloadError("invalid", f"non-finite number {text[:40]} in the result")
    return value


def _constant(text: str) -> float:
    raise PayloadError("invalid", f"{text} is not a number JSON allows in a result")


def decode(body: bytes, max_bytes: int) -> Any:
    """``body`` as JSON, after the size and depth checks, with the number hooks."""
    if len(body) > max_bytes:
        raise PayloadError("output", f"result of {len(body)} bytes exceeds the limit of {max_bytes}")
    depth = nesting_depth(body)
    if depth > MAX_DEPTH:
        raise PayloadError("invalid", f"result nested {depth} deep (limit {MAX_DEPTH})")
    try:
        text = body.decode("utf-8")
        return json.loads(text, parse_int=_int, parse_float=_float, parse_constant=_constant)
    except PayloadError:
        raise
    except (ValueError, RecursionError) as exc:
        raise PayloadError("invalid", f"result is not JSON: {str(exc)[:200]}") from None


def check_value(value: Any) -> None:
    """Strings bounded, numbers finite, containers walked iteratively (depth is already capped)."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str) and len(item) > MAX_STRING:
            raise PayloadError("invalid", f"a string of {len(item)} characters (limit {MAX_STRING})")
        if isinstance(item, float) and not math.isfinite(item):
            raise PayloadError("invalid", "a non-finite number")
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def validate_output(value: Any) -> str:
    """Empty string when ``value`` is a non-empty list of valid window records, else why not."""
    if not isinstance(value, list):
        return f"mutate() must return a list of records, got {type(value).__name__}"
    if not value:
        return "mutate() returned an empty list"
    for index, record in enumerate(value):
        try:
            check_value(record)
            validate_record(record)
        except (ValueError, TypeError, OverflowError) as exc:
            return f"record {index}: {exc}"
    return ""


def parse(raw: bytes, max_bytes: int) -> dict[str, Any]:
    """The checked payload: ``{"ok": True, "records": [...]}`` or ``{"ok": False, "kind",
    "error"}``, both with ``blocked`` (a short list of short strings)."""
    payload = decode(unframe(raw), max_bytes)
    if not isinstance(payload, dict) or not isinstance(payload.get("ok"), bool):
        raise PayloadError("invalid", "result is not a payload object")
    blocked = payload.get("blocked", [])
    if not isinstance(blocked, list) or len(blocked) > MAX_BLOCKED:
        raise PayloadError("invalid", "malformed 'blocked' list in the result")
    if not all(isinstance(b, str) and len(b) <= 300 for b in blocked):
        raise PayloadError("invalid", "malformed 'blocked' entry in the result")
    if payload["ok"]:
        problem = validate_output(payload.get("records"))
        if problem:
            raise PayloadError("invalid", problem)
        return {"ok": True, "records": payload["records"], "blocked": blocked}
    kind, error = payload.get("kind"), payload.get("error")
    if kind not in KINDS or not isinstance(error, str):
        raise PayloadError("invalid", "malformed failure report in the result")
    return {"ok": False, "kind": kind, "error": error[:1000], "blocked": blocked}
