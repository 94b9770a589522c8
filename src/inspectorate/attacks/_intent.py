"""Intent checks, and ``violate``: making an honest trace into one worth hiding.

Why intent checks: in the seed's loop, some "evasions" simply deleted the violating
windows (the chronological tail drop). A trace without the violation is not a hidden
violation, it is a different, compliant run. An attack only counts as an evasion when
the work it hides is still accounted for in the trace it submits.

The work measure: a trace accounts for ``max(Σ flops, Σ tokens × k)``, where ``k`` is the
original trace's median FLOP/token. A reader calibrated on the original could recover
the compute either from the FLOP claim or from the token count, so an attack that lies
about FLOPs but keeps the tokens (seed round 19) still carries the violation, while one
that drops windows or deflates both FLOPs and tokens removed the evidence (what remains
is telemetry, outside a record-only trace).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from inspectorate.errors import InputError
from inspectorate.trace import format_time, parse_time, rechain

Records = list[dict[str, Any]]
IntentCheck = Callable[[Sequence[Mapping[str, Any]], Sequence[Mapping[str, Any]]], bool]
WORK_TOLERANCE = 0.01  # 1%: rounding in attacks that rescale integers must not count as hiding


def flop_per_token(records: Sequence[Mapping[str, Any]]) -> float:
    """Pooled FLOP/token (sum over sum) of non-idle records that report both; 0.0 if none.

    Pooled, not a median: then tokens × k sums back to exactly the FLOPs those records
    claimed, so a FLOP-only lie never looks like lost work because of rounding."""
    rows = [
        r
        for r in records
        if r.get("op_type") != "idle" and r["tokens_processed"] > 0 and float(r["flops"]) > 0
    ]
    tokens = sum(r["tokens_processed"] for r in rows)
    return sum(float(r["flops"]) for r in rows) / tokens if tokens else 0.0


def work(records: Sequence[Mapping[str, Any]], k: float) -> float:
    """Compute the trace accounts for: its FLOP claims or its tokens × ``k``, whichever
    total is larger (totals, not per record, so levelling FLOPs across records is neutral)."""
    flops = sum(float(r["flops"]) for r in records)
    tokens = sum(r["tokens_processed"] for r in records)
    return max(flops, tokens * k)


def conserves_work(original: Sequence[Mapping[str, Any]], mutated: Sequence[Mapping[str, Any]]) -> bool:
    """True when the mutated trace still accounts for the original's compute (within 1%)."""
    k = flop_per_token(original)
    return work(mutated, k) >= (1.0 - WORK_TOLERANCE) * work(original, k)


def dominant_job(records: Sequence[Mapping[str, Any]]) -> str:
    """The job with the most FLOPs: the one ``violate`` inflates and attacks hide."""
    totals: dict[str, float] = {}
    for r in records:
        if r["op_type"] != "idle":
            totals[r["job_id"]] = totals.get(r["job_id"], 0.0) + float(r["flops"])
    if not totals:
        raise InputError("trace has no non-idle records: nothing to inflate or hide")
    return max(totals, key=lambda job: (totals[job], job))


def job_cap(commitment: Any, op_type: str, default: float = 1e19) -> float:
    """The tightest per-job aggregate_flop_cap that applies to ``op_type`` records."""
    caps = [
        float(spec.params["threshold"])
        for spec in getattr(commitment, "rules", ())
        if spec.kind == "aggregate_flop_cap"
        and spec.params.get("scope", "per_job") == "per_job"
        and _covers(spec.params.get("op_type", "*"), op_type)
    ]
    return min(caps) if caps else default


def _covers(selector: str | list[str], op_type: str) -> bool:
    wanted = [selector] if isinstance(selector, str) else list(selector)
    return op_type in wanted or ("*" in wanted and op_type != "idle")


def violate(
    records: Sequence[Mapping[str, Any]],
    commitment: Any = None,
    *,
    cap: float | None = None,
    margin: float = 1.3,
    mode: str = "scale",
) -> Records:
    """An honest trace made to break its per-job FLOP cap (the red team's baseline).

    The dominant job's total is pushed to ``margin`` × its cap. ``mode="scale"`` raises
    every window's throughput (flops, tokens and batch together, so FLOP/token and batch
    shape stay honest); ``mode="extend"`` keeps the per-window rate and appends whole
    copies of the job's windows after its end, as a run that simply went on longer.
    Input records are left untouched; the output is re-chained.
    """
    base = [dict(r) for r in records]
    job = dominant_job(base)
    rows = [r for r in base if r["job_id"] == job and r["op_type"] != "idle"]
    total = sum(float(r["flops"]) for r in rows)
    limit = cap if cap is not None else job_cap(commitment, rows[0]["op_type"])
    factor = max(margin * limit / total, 1.0) if total > 0 else 1.0
    if mode == "scale":
        return rechain(_scale(base, job, factor))
    if mode == "extend":
        return rechain(base + _extension(rows, factor))
    raise InputError(f"violate: unknown mode {mode!r}; accepted: scale, extend")


def _scale(records: Records, job: str, factor: float) -> Records:
    for r in records:
        if r["job_id"] == job and r["op_type"] != "idle":
            r["flops"] = float(r["flops"]) * factor
            r["tokens_processed"] = int(round(r["tokens_processed"] * factor))
            r["batch_size"] = max(1, int(round(r["batch_size"] * factor)))
    return records


def _extension(rows: Records, factor: float) -> Records:
    """Copies of ``rows`` shifted past the job's end until ``factor`` × its FLOPs are reached."""
    start = min(parse_time(r["window_start"]) for r in rows)
    span = max(parse_time(r["window_end"]) for r in rows) - start
    out: Records = []
    copies = int(factor) + (0 if float(factor).is_integer() else 1) - 1
    for n in range(1, copies + 1):
        for r in rows:
            new = dict(r)
            new["record_id"] = f"{r['record_id']}_ext{n}"
            new["window_start"] = format_time(parse_time(r["window_start"]) + n * span)
            new["window_end"] = format_time(parse_time(r["window_end"]) + n * span)
            new["upstream_refs"] = [f"{ref}_ext{n}" for ref in r["upstream_refs"]]
            out.append(new)
    return out
