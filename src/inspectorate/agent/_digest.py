"""The evidence digest: what the inspector reads, bounded whatever the trace size.

Aggregates (per job, chip, operator), FLOP/token and batch×seq/token distributions,
job-similarity candidates, per-job change points, the deterministic findings and the
records they cite. Every list is capped by one limit that halves until the JSON fits
``max_chars``; every prover-written string is cut short, because the prover writes
them and a long one is a place to hide instructions for the model. ``signals`` names
what a verdict may cite: a cited signal outside it is rejected as invented.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable
from typing import Any

import polars as pl

from inspectorate.trace import Trace, canonical_json, format_time

DIGEST_VERSION = 1
MAX_CHARS = 60_000
STRING_CAP = 96
FINDING_CAP = 300
QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)
CHANGE_FIELDS = ("dataset_fingerprint", "config_hash", "model_hash_prefix", "code_commit", "operator")
SUSPICIOUS_BATCH_RATIO = 10.0
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def clip(value: Any, cap: int = STRING_CAP) -> Any:
    """Prover strings, shortened and stripped of control characters (recursively)."""
    if isinstance(value, str):
        value = _CONTROL.sub(" ", value)
        return value if len(value) <= cap else value[: cap - 1] + "…"
    if isinstance(value, dict):
        return {clip(k, cap): clip(v, cap) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clip(v, cap) for v in value]
    return value


def evidence_hash(trace: Trace) -> str:
    """SHA-256 of the evidence: the backing file's bytes, or every record's canonical JSON."""
    digest = hashlib.sha256()
    if trace.backing is not None:
        with open(trace.backing, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    else:
        for record in trace.records:
            digest.update(canonical_json(record).encode())
            digest.update(b"\n")
    return digest.hexdigest()


def build_digest(
    trace: Trace,
    findings: Iterable[Any] = (),
    max_chars: int = MAX_CHARS,
    limit: int = 40,
    evidence: str | None = None,
    properties: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The digest of ``trace`` (with ``findings``: Violations, and ``properties``: the
    ``verify`` JSON of the run the trace came from) as JSON-ready builtins."""
    frame = _typed(trace.frame)
    findings = list(findings)
    evidence = evidence or evidence_hash(trace)
    while True:
        digest = _assemble(frame, findings, limit, evidence)
        if properties:
            digest["properties"] = _properties(properties, limit)
            digest["signals"] = sorted(set(digest["signals"]) | set(_property_signals(digest["properties"])))
        size = len(json.dumps(digest, default=str))
        if size <= max_chars or limit == 1:
            break
        limit = max(1, limit // 2)
    if size > max_chars:
        digest.pop("cited_records")
        digest["truncated"] = "cited records dropped to fit"
    digest["limit"] = limit
    return digest


def _typed(frame: pl.DataFrame) -> pl.DataFrame:
    cats = [c for c in ("chip_id", "job_id", "operator", "op_type", *CHANGE_FIELDS) if c in frame.columns]
    return frame.with_columns(pl.col(c).cast(pl.Utf8) for c in dict.fromkeys(cats))


def _assemble(frame: pl.DataFrame, findings: list[Any], limit: int, evidence: str) -> dict[str, Any]:
    signals: list[str] = ["overview", "suspicious_batch_records"]
    jobs = _jobs(frame, limit)
    digest: dict[str, Any] = {
        "digest_version": DIGEST_VERSION,
        "evidence_sha256": evidence,
        "overview": _overview(frame),
        "jobs": jobs,
        "chips": _chips(frame, limit),
        "operators": _operators(frame, limit),
        "distributions": _distributions(frame),
        "similar_jobs": _similar(frame, limit),
        "change_points": _changes(frame, limit),
        "suspicious_batch_records": _suspicious_batch(frame, limit),
        "findings": [_finding(v, limit) for v in findings[:limit]],
        "cited_records": _cited(frame, findings, jobs, limit),
    }
    signals += [f"job:{j['job_id']}" for j in jobs]
    signals += [f"chip:{c['chip_id']}" for c in digest["chips"]["top"]]
    signals += [f"operator:{o['operator']}" for o in digest["operators"]]
    for name, per_op in digest["distributions"].items():
        signals += [f"{name}:{op}" for op in per_op]
    signals += [f"similar:{p['jobs'][0]}|{p['jobs'][1]}" for p in digest["similar_jobs"]]
    signals += [f"change:{c['job_id']}:{c['field']}" for c in digest["change_points"]]
    signals += [f"finding:{f['rule_id']}" for f in digest["findings"]]
    digest["signals"] = sorted(set(signals))
    # Finding messages are ours (quoting prover values), so they get more room.
    kept = clip(digest.pop("findings"), FINDING_CAP)
    return {**clip(digest), "findings": kept}


def _overview(frame: pl.DataFrame) -> dict[str, Any]:
    by_op = frame.group_by("op_type").agg(pl.len().alias("records"), pl.col("flops").sum().alias("flops"))
    return {
        "records": frame.height,
        "chips": frame["chip_id"].n_unique(),
        "jobs": frame["job_id"].n_unique(),
        "operators": frame["operator"].n_unique(),
        "window_range": [format_time(frame["ws"].min()), format_time(frame["we"].max())],  # type: ignore[arg-type]
        "op_types": {op: {"records": n, "flops": f} for op, n, f in by_op.sort("op_type").iter_rows()},
    }


def _some(column: str, n: int = 5) -> list[pl.Expr]:
    return [
        pl.col(column).n_unique().alias(f"n_{column}"),
        pl.col(column).unique(maintain_order=True).head(n).alias(column),
    ]


def _jobs(frame: pl.DataFrame, limit: int) -> list[dict[str, Any]]:
    ordered = frame.sort(["ws", "row"])
    table = ordered.group_by("job_id", maintain_order=True).agg(
        pl.len().alias("records"),
        pl.col("flops").sum().alias("flops"),
        pl.col("tokens_processed").sum().alias("tokens"),
        pl.col("ws").min().alias("start"),
        pl.col("we").max().alias("end"),
        pl.col("record_id").first().alias("first_record"),
        pl.col("record_id").last().alias("last_record"),
        pl.col("chip_id").n_unique().alias("chips"),
        pl.col("op_type").unique().sort().alias("op_types"),
        *_some("operator"),
        *_some("model_hash_prefix", 3),
        *_some("code_commit", 3),
        *_some("config_hash", 3),
        *_some("dataset_fingerprint", 3),
    )
    top = table.sort(["flops", "job_id"], descending=[True, False]).head(limit)
    return [_with_times(row) for row in top.iter_rows(named=True)]


def _with_times(row: dict[str, Any]) -> dict[str, Any]:
    row["start"], row["end"] = format_time(row["start"]), format_time(row["end"])
    return row


def _chips(frame: pl.DataFrame, limit: int) -> dict[str, Any]:
    table = frame.group_by("chip_id").agg(
        pl.len().alias("records"),
        pl.col("flops").sum().alias("flops"),
        pl.col("job_id").n_unique().alias("jobs"),
        pl.col("job_id").unique(maintain_order=True).head(5).alias("job_ids"),
        pl.col("op_type").unique().sort().alias("op_types"),
    )
    per_chip = table["records"]
    top = table.sort(["jobs", "flops", "chip_id"], descending=[True, True, False]).head(limit)
    return {
        "count": table.height,
        "records_per_chip": {"min": per_chip.min(), "median": per_chip.median(), "max": per_chip.max()},
        "max_jobs_per_chip": table["jobs"].max(),
        "top": top.to_dicts(),
    }


def _operators(frame: pl.DataFrame, limit: int) -> list[dict[str, Any]]:
    table = frame.group_by("operator").agg(
        pl.len().alias("records"),
        pl.col("flops").sum().alias("flops"),
        pl.col("job_id").n_unique().alias("jobs"),
        pl.col("op_type").unique().sort().alias("op_types"),
    )
    return table.sort(["flops", "operator"], descending=[True, False]).head(limit).to_dicts()


def _distributions(frame: pl.DataFrame) -> dict[str, dict[str, Any]]:
    tokens = pl.col("tokens_processed").cast(pl.Float64)
    ratios = frame.select(
        "op_type",
        pl.when(tokens > 0).then(pl.col("flops") / tokens).alias("fpt"),
        pl.when(tokens > 0).then((pl.col("batch_size") * pl.col("sequence_length")) / tokens).alias("cap"),
        (tokens == 0).alias("zero_tokens"),
    )
    out: dict[str, dict[str, Any]] = {"flop_per_token": {}, "capacity_ratio": {}}
    for (op,), part in sorted(ratios.group_by("op_type"), key=lambda kv: kv[0]):
        zero = int(part["zero_tokens"].sum())
        out["flop_per_token"][op] = _quantiles(part["fpt"].drop_nulls(), zero)
        out["capacity_ratio"][op] = _quantiles(part["cap"].drop_nulls(), zero)
    return out


def _quantiles(values: pl.Series, zero_tokens: int) -> dict[str, Any]:
    stats: dict[str, Any] = {"n": values.len(), "zero_token_records": zero_tokens}
    if values.len():
        stats.update({f"p{round(q * 100)}": values.quantile(q, "nearest") for q in QUANTILES})
    return stats


def _job_spans(frame: pl.DataFrame) -> pl.DataFrame:
    return frame.group_by("job_id").agg(
        pl.col("ws").min().alias("start"),
        pl.col("we").max().alias("end"),
        pl.col("flops").sum().alias("flops"),
        pl.col("operator").unique().alias("operators"),
        pl.col("model_hash_prefix").unique().alias("models"),
        pl.col("code_commit").unique().alias("commits"),
        pl.col("dataset_fingerprint").unique().alias("datasets"),
    )


def _similar(frame: pl.DataFrame, limit: int) -> list[dict[str, Any]]:
    """Job pairs sharing a model hash, code commit, dataset or operator (the no-splitting
    shape), ranked by how much they share, then by combined FLOPs; ``gap_hours`` below
    zero means their time spans overlap."""
    spans = {row["job_id"]: row for row in _job_spans(frame).iter_rows(named=True)}
    pairs: set[tuple[str, str]] = set()
    for column in ("model_hash_prefix", "code_commit", "dataset_fingerprint", "operator"):
        groups = frame.group_by(column).agg(pl.col("job_id").unique().sort().head(4 * limit))
        for members in groups["job_id"].to_list():
            pairs.update((a, b) for i, a in enumerate(members) for b in members[i + 1 :])
    scored = [_pair(spans[a], spans[b]) for a, b in pairs]
    scored.sort(key=lambda p: (-len(p["shared"]), -p["combined_flops"], p["jobs"]))
    return scored[:limit]


def _pair(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    shared = {
        key: sorted(set(a[key]) & set(b[key]))[:3]
        for key in ("models", "commits", "datasets", "operators")
        if set(a[key]) & set(b[key])
    }
    gap = max(a["start"], b["start"]) - min(a["end"], b["end"])
    return {
        "jobs": [a["job_id"], b["job_id"]],
        "shared": shared,
        "gap_hours": round(gap / 3600.0, 3),
        "combined_flops": a["flops"] + b["flops"],
    }


def _changes(frame: pl.DataFrame, limit: int) -> list[dict[str, Any]]:
    """Per job and field, the first record of each value after the job's first value."""
    out: list[dict[str, Any]] = []
    for column in CHANGE_FIELDS:
        firsts = (
            frame.sort(["ws", "row"])
            .group_by("job_id", column, maintain_order=True)
            .agg(
                pl.col("record_id").first(), pl.col("ws").first(), pl.col("config_hash").first().alias("cfg")
            )
            .with_columns(pl.col(column).shift(1).over("job_id").alias("previous"))
            .filter(pl.col("previous").is_not_null())
        )
        for row in firsts.head(limit).iter_rows(named=True):
            out.append(
                {
                    "job_id": row["job_id"],
                    "field": column,
                    "from": row["previous"],
                    "to": row[column],
                    "record_id": row["record_id"],
                    "time": format_time(row["ws"]),
                    "config_hash": row["cfg"],
                }
            )
    return out[:limit]


def _suspicious_batch(frame: pl.DataFrame, limit: int) -> dict[str, Any]:
    capacity = (pl.col("batch_size") * pl.col("sequence_length")).cast(pl.Float64)
    bad = frame.filter(capacity > SUSPICIOUS_BATCH_RATIO * pl.col("tokens_processed")).sort(["ws", "row"])
    by_op = bad.group_by("op_type").len().sort("op_type")
    return {
        "rule": f"batch_size*sequence_length > {SUSPICIOUS_BATCH_RATIO:g}*tokens_processed",
        "count": bad.height,
        "by_op_type": dict(by_op.iter_rows()),
        "record_ids": bad["record_id"].head(limit).to_list(),
    }


def _finding(v: Any, limit: int) -> dict[str, Any]:
    total = v.count if v.count is not None else len(v.record_ids)
    return {
        "rule_id": v.rule_id,
        "kind": v.kind,
        "message": v.message,
        "record_ids": list(v.record_ids[: min(limit, 10)]),
        "record_count": total,
    }


def _cited(frame: pl.DataFrame, findings: list[Any], jobs: list[dict[str, Any]], limit: int) -> list[dict]:
    """Full records behind the findings and each top job's first record."""
    wanted = [v.record_ids[0] for v in findings if v.record_ids] + [j["first_record"] for j in jobs]
    wanted = list(dict.fromkeys(wanted))[: max(1, limit // 2)]
    return fetch_records(frame, wanted)


def _properties(run: dict[str, Any], limit: int) -> dict[str, Any]:
    """Telemetry property findings per phase (P1 op type, P2 size, P3 fine-tune, FLOPs,
    consistency): decision and score, not the full evidence; each phase's outcome and the
    properties that decided it (``decided_by``: those whose decision is the outcome).
    Phase names and claims come from the prover's labels, so they are clipped like every
    prover string."""
    phases = []
    for phase in run.get("phases", [])[:limit]:
        found = [
            {
                "property": f.get("property"),
                "decision": f.get("decision"),
                "score": (f.get("evidence") or {}).get("score"),
                "flagged_record_ids": list((f.get("evidence") or {}).get("flagged_record_ids", []))[:5],
            }
            for f in phase.get("findings", [])
        ]
        outcome = phase.get("outcome")
        decided = [f["property"] for f in found if outcome is not None and f["decision"] == outcome]
        phases.append(
            {k: phase.get(k) for k in ("phase", "claimed", "verdict", "confidence", "outcome")}
            | {"decided_by": decided, "unverifiable": list(phase.get("unverifiable", [])), "findings": found}
        )
    head = {k: run.get(k) for k in ("verdict", "outcome", "policy")}
    return clip(
        head
        | {"reasons": list(run.get("reasons", []))[:limit], "missing_streams": run.get("missing_streams", [])}
        | {"phases": phases}
    )


def _property_signals(section: dict[str, Any]) -> list[str]:
    return [f"property:{p['phase']}:{f['property']}" for p in section["phases"] for f in p["findings"]]


def fetch_records(frame: pl.DataFrame, record_ids: list[str]) -> list[dict[str, Any]]:
    """Records by id, in the order asked, every schema field (strings clipped)."""
    from inspectorate.trace import FIELDS

    columns = [c for c in FIELDS if c in frame.columns]
    found = frame.filter(pl.col("record_id").is_in(record_ids)).unique("record_id", keep="first")
    by_id = {row["record_id"]: row for row in found.select(columns).iter_rows(named=True)}
    return [clip(by_id[i]) for i in record_ids if i in by_id]
