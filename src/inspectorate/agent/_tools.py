"""Bounded tools the inspector may call: fetch records, aggregate a column, run a rule.

Each tool reads the trace, never writes it, and answers with at most ``OUTPUT_CAP``
characters of JSON; a bad argument is answered as an error the model can read, never
raised. Each call also names the signals it produced, which a verdict may then cite.
"""

from __future__ import annotations

import json
from typing import Any

import polars as pl

from inspectorate.agent._digest import clip, fetch_records
from inspectorate.errors import InputError
from inspectorate.trace import Trace

OUTPUT_CAP = 8000
MAX_ROWS = 20
GROUP_COLUMNS = (
    "job_id",
    "chip_id",
    "operator",
    "op_type",
    "model_hash_prefix",
    "code_commit",
    "config_hash",
    "dataset_fingerprint",
    "cluster_region",
)
_WHERE = {
    "type": "object",
    "description": "Keep records whose columns equal these values (column -> value).",
    "additionalProperties": {"type": ["string", "number"]},
}

TOOLS: list[dict[str, Any]] = [
    {
        "name": "fetch_records",
        "description": f"Full window records by id and/or filter (at most {MAX_ROWS}).",
        "parameters": {
            "type": "object",
            "properties": {"record_ids": {"type": "array", "items": {"type": "string"}}, "where": _WHERE},
        },
    },
    {
        "name": "aggregate",
        "description": "Per value of a column: records, FLOPs, tokens, chips, jobs, first record "
        f"(top {MAX_ROWS} by FLOPs).",
        "parameters": {
            "type": "object",
            "properties": {"group_by": {"type": "string", "enum": list(GROUP_COLUMNS)}, "where": _WHERE},
            "required": ["group_by"],
        },
    },
    {
        "name": "run_rule",
        "description": "Run a deterministic rule kind of the registry with parameters; returns its violations.",
        "parameters": {
            "type": "object",
            "properties": {"kind": {"type": "string"}, "params": {"type": "object"}},
            "required": ["kind"],
        },
    },
]


def run_tool(trace: Trace, name: str, arguments: Any) -> tuple[str, bool, list[str]]:
    """(JSON answer, is_error, signals produced) for one tool call."""
    if not isinstance(arguments, dict):
        return _error(f"arguments must be a JSON object, got {str(arguments)[:80]}")
    try:
        if name == "fetch_records":
            out, signals = _fetch(trace, arguments)
        elif name == "aggregate":
            out, signals = _aggregate(trace, arguments)
        elif name == "run_rule":
            out, signals = _run_rule(trace, arguments)
        else:
            return _error(f"unknown tool {name!r}; tools: {', '.join(t['name'] for t in TOOLS)}")
    except (InputError, ValueError, TypeError, pl.exceptions.PolarsError) as exc:
        return _error(str(exc).splitlines()[0][:300])
    text = json.dumps(out, default=str)
    if len(text) > OUTPUT_CAP:
        text = text[: OUTPUT_CAP - 40] + ' ... (truncated to fit)"'
    return text, False, signals


def _error(message: str) -> tuple[str, bool, list[str]]:
    return json.dumps({"error": message}), True, []


def _filtered(trace: Trace, where: Any) -> pl.DataFrame:
    if where is None:
        return trace.frame
    if not isinstance(where, dict):
        raise ValueError("where must be an object of column -> value")
    frame = trace.frame
    for column, value in where.items():
        if column not in frame.columns or column.startswith("_") or column in ("ws", "we", "row"):
            raise ValueError(f"unknown column {column!r}")
        if isinstance(value, (dict, list, bool)) or value is None:
            raise ValueError(f"where[{column!r}] must be a string or a number")
        numeric = frame.schema[column].is_numeric()
        if numeric and not isinstance(value, (int, float)):
            raise ValueError(f"where[{column!r}] must be a number")
        frame = frame.filter(
            pl.col(column) == value if numeric else pl.col(column).cast(pl.Utf8) == str(value)
        )
    return frame


def _fetch(trace: Trace, args: dict[str, Any]) -> tuple[Any, list[str]]:
    ids = args.get("record_ids") or []
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise ValueError("record_ids must be a list of strings")
    frame = _filtered(trace, args.get("where"))
    if ids:
        frame = frame.filter(pl.col("record_id").is_in(ids[:MAX_ROWS]))
    elif args.get("where") is None:
        raise ValueError("give record_ids or where")
    wanted = frame.sort(["ws", "row"])["record_id"].head(MAX_ROWS).to_list()
    records = fetch_records(trace.frame, wanted)
    return {"matched": frame.height, "records": records}, ["records"]


def _aggregate(trace: Trace, args: dict[str, Any]) -> tuple[Any, list[str]]:
    column = args.get("group_by")
    if column not in GROUP_COLUMNS:
        raise ValueError(f"group_by must be one of {', '.join(GROUP_COLUMNS)}")
    frame = _filtered(trace, args.get("where")).sort(["ws", "row"])
    table = frame.group_by(pl.col(column).cast(pl.Utf8), maintain_order=True).agg(
        pl.len().alias("records"),
        pl.col("flops").sum().alias("flops"),
        pl.col("tokens_processed").sum().alias("tokens"),
        pl.col("chip_id").n_unique().alias("chips"),
        pl.col("job_id").n_unique().alias("jobs"),
        pl.col("record_id").first().alias("first_record"),
    )
    top = table.sort("flops", descending=True).head(MAX_ROWS)
    return {"groups": table.height, "rows": clip(top.to_dicts())}, [f"aggregate:{column}"]


def _run_rule(trace: Trace, args: dict[str, Any]) -> tuple[Any, list[str]]:
    from inspectorate.commitment import RuleSpec
    from inspectorate.commitment._check import run_rule
    from inspectorate.commitment._model import validate_params

    kind, params = args.get("kind"), args.get("params") or {}
    if not isinstance(kind, str) or not isinstance(params, dict):
        raise ValueError("kind must be a string and params an object")
    spec = RuleSpec(kind, kind, validate_params(kind, params, "run_rule tool"))
    found = run_rule(spec, trace)
    out = [
        {
            "message": v.message,
            "record_ids": list(v.record_ids[:MAX_ROWS]),
            "record_count": v.count if v.count is not None else len(v.record_ids),
        }
        for v in found[:MAX_ROWS]
    ]
    return {"kind": kind, "violations": len(found), "first": clip(out, 300)}, [f"rule:{kind}"]
