"""Deterministic fallbacks for the seed's four semantic rules.

The reference commitment states four rules in prose for an LLM inspector
("no-splitting", "op-type-honesty", "dataset-provenance", "batch-token-sanity"). Each
is precise enough to implement directly, so ``check`` judges them offline; the LLM tier
(``inspectorate.agent``) is for semantic rules no fallback covers. ``FALLBACKS`` maps a
semantic rule id to the kind that judges it and how its parameters follow from the rest
of the commitment (the no-splitting cap is the commitment's own training cap).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import polars as pl

from inspectorate.commitment._partial import Suspects, mergeable
from inspectorate.commitment._registry import Violation, rule, violation
from inspectorate.commitment.rules import _mergeable as mg
from inspectorate.commitment.rules._common import (
    OpTypes,
    distinct_over,
    first_rows,
    ids,
    op_label,
    op_mask,
    packed_key,
    rows,
    sliced_agg,
)
from inspectorate.trace import Trace, format_time

HOURS = 3600.0


@rule("no_splitting", partition="global")
def no_splitting(
    trace: Trace, threshold: float, window_hours: float = 72.0, op_type: OpTypes = "training"
) -> Iterator[Violation]:
    """One logical run may not be split across job_ids to stay under a per-job cap.
    Jobs are one logical run when they share a (model_hash_prefix, code_commit) pair,
    share an operator, and their ``op_type`` spans lie within ``window_hours`` of each
    other (linked transitively). A run whose jobs together exceed ``threshold`` FLOPs
    flags the earliest record of every job after the first (in time): the first
    flagged id is the second job's earliest record."""
    # Identities stay categorical over the records (casting 10^7 of them to strings cost
    # seconds and gigabytes); only the per-job and per-group results become strings.
    frame = rows(
        trace, op_mask(op_type), "job_id", "operator", "model_hash_prefix", "code_commit", "flops", "we"
    )
    if frame.height == 0:
        return
    jobs = _job_table(frame)
    for run in _logical_runs(frame, jobs, window_hours * HOURS):
        members = jobs.filter(pl.col("job_id").is_in(run)).sort(["start", "first_row"])
        total = float(members["flops"].sum())
        if total <= threshold:
            continue
        firsts = members["first_id"].to_list()
        yield violation(
            f"jobs {members['job_id'].to_list()} are one logical {op_label(op_type)} run "
            f"(shared model hash and code commit, shared operator, within {window_hours:g} h): "
            f"{total:.4g} FLOP together exceeds the cap {threshold:.4g}",
            firsts[1:],
            jobs=members["job_id"].to_list(),
            job_flops=[float(f) for f in members["flops"]],
            total_flops=total,
            threshold=threshold,
            second_job_start=format_time(members["start"][1]),
        )


def _job_table(frame: pl.DataFrame) -> pl.DataFrame:
    """Per job: total FLOPs, time span, and its earliest record (time, then file order)."""
    if frame["ws"].null_count():
        totals = sliced_agg(
            frame,
            ["job_id"],
            [pl.col("flops").sum(), pl.col("ws").min().alias("start"), pl.col("we").max().alias("end")],
            [pl.col("flops").sum(), pl.col("start").min(), pl.col("end").max()],
        )
        first = first_rows(frame, "job_id").select(
            "job_id", pl.col("row").alias("first_row"), pl.col("record_id").alias("first_id")
        )
        return totals.join(first, on="job_id").with_columns(pl.col("job_id").cast(pl.Utf8)).sort("job_id")
    # One pass: a group keeps its rows in file order, and arg_min gives the first of equal
    # minima, so the row at the earliest start is first_rows' row (a slice's, then the
    # earliest slice's at the merge), found with the totals instead of in a second group-by.
    earliest = pl.col("first_row").get(pl.col("start").arg_min())
    totals = sliced_agg(
        frame,
        ["job_id"],
        [
            pl.col("flops").sum(),
            pl.col("ws").min().alias("start"),
            pl.col("we").max().alias("end"),
            pl.col("row").get(pl.col("ws").arg_min()).alias("first_row"),
        ],
        [pl.col("flops").sum(), pl.col("start").min(), pl.col("end").max(), earliest],
    )
    first_ids = frame.filter(pl.col("row").is_in(totals["first_row"].implode())).select(
        pl.col("row").alias("first_row"), pl.col("record_id").alias("first_id")
    )
    return (
        totals.join(first_ids, on="first_row", how="left")
        .with_columns(pl.col("job_id").cast(pl.Utf8))
        .sort("job_id")
    )


def _logical_runs(frame: pl.DataFrame, jobs: pl.DataFrame, gap: float) -> list[list[str]]:
    """Groups of two or more jobs linked by shared (model, commit), operator and time."""
    spans = {j: (s, e) for j, s, e in zip(jobs["job_id"], jobs["start"], jobs["end"])}
    as_text = pl.col("_v").cast(pl.List(pl.Utf8)).list.sort()
    per_job = _pairs(frame, "job_id", "operator").group_by("job_id").agg(pl.col("operator").alias("_v"))
    per_job = per_job.select(pl.col("job_id").cast(pl.Utf8), as_text)
    operators = {j: set(ops) for j, ops in per_job.iter_rows()}
    parent = {j: j for j in spans}

    def find(j: str) -> str:
        while parent[j] != j:
            parent[j] = parent[parent[j]]
            j = parent[j]
        return j

    pairs = _pairs(frame, "model_hash_prefix", "code_commit", "job_id")
    shared = pairs.group_by("model_hash_prefix", "code_commit").agg(pl.col("job_id").alias("_v"))
    for group in shared.select(as_text)["_v"].to_list():
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                near = max(spans[a][0], spans[b][0]) - min(spans[a][1], spans[b][1]) <= gap
                if near and operators[a] & operators[b]:
                    parent[find(b)] = find(a)
    runs: dict[str, list[str]] = {}
    for j in sorted(spans):
        runs.setdefault(find(j), []).append(j)
    return [members for members in runs.values() if len(members) > 1]


def _pairs(frame: pl.DataFrame, *columns: str) -> pl.DataFrame:
    """The distinct combinations of ``columns`` (a handful, in no set order): the first
    row of each distinct packed key (one hash pass), else found slice by slice."""
    key = packed_key(frame, list(columns))
    if key is not None:
        return frame.select(columns).gather(key.arg_unique())
    return sliced_agg(frame, list(columns), [pl.len().alias("_n")], [pl.col("_n").sum()]).drop("_n")


def _flop_per_token() -> pl.Expr:
    """FLOP per token; FLOPs with no tokens are infinitely dense (a zero-token window
    cannot hide training compute behind the ratio)."""
    tokens = pl.col("tokens_processed").cast(pl.Float64)
    dense = pl.when(pl.col("flops") > 0).then(float("inf")).otherwise(0.0)
    return pl.when(tokens > 0).then(pl.col("flops") / tokens).otherwise(dense)


@rule("op_type_honesty", partition="record")  # each record judged alone
def op_type_honesty(
    trace: Trace, max_flop_per_token: float = 5.0e10, op_types: OpTypes = ("inference",)
) -> Iterator[Violation]:
    """Records labelled ``op_types`` (inference by default) must have an inference-shaped
    FLOP/token ratio: flops / tokens_processed above ``max_flop_per_token`` is training
    relabelled to dodge a training cap. Flags every such record, in time order."""
    frame = rows(trace, op_mask(op_types), "op_type", "flops", "tokens_processed")
    bad = frame.with_columns(_flop_per_token().alias("fpt")).filter(pl.col("fpt") > max_flop_per_token)
    if bad.height:
        bad = bad.sort(["ws", "row"])
        worst = float(bad["fpt"].max())  # type: ignore[arg-type]
        yield violation(
            f"{bad.height} {op_label(op_types)} record(s) have a training-like FLOP/token ratio "
            f"(max {worst:.4g} > {max_flop_per_token:.4g})",
            ids(bad),
            max_flop_per_token=worst,
            threshold=max_flop_per_token,
        )


@rule("dataset_provenance", partition="keyed:job_id")  # groups: (job_id, config_hash)
def dataset_provenance(trace: Trace) -> Iterator[Violation]:
    """A job's dataset_fingerprint changes only with its config: within one (job_id,
    config_hash) every record uses one fingerprint. A second fingerprint under the same
    config is a silent dataset swap; the violation flags the first record (in time)
    that uses it. Comparing per config rather than with the previous record keeps
    interleaved chips honest and catches a swap back to an earlier config."""
    frame = rows(trace, None, "job_id", "config_hash", "dataset_fingerprint")
    swaps = distinct_over(frame, ["job_id", "config_hash"], "dataset_fingerprint", 1)
    for row in swaps.iter_rows(named=True):
        extra = row["extra_ids"] or []
        yield violation(
            f"job {row['job_id']!r} swaps dataset_fingerprint {row['values'][0]} -> {row['values'][1]} "
            f"without a config_hash change (config {row['config_hash']})",
            extra[:1],
            job_id=row["job_id"],
            config_hash=row["config_hash"],
            fingerprints=row["values"][:20],
            records_after_swap=len(extra),
        )


@rule("batch_token_sanity", partition="record")  # each record judged alone
def batch_token_sanity(
    trace: Trace, max_ratio: float = 10.0, op_types: OpTypes = ("training", "inference")
) -> Iterator[Violation]:
    """batch_size × sequence_length may not exceed ``max_ratio`` × tokens_processed on
    ``op_types`` records: a batch an order of magnitude larger than the tokens it
    produced is inflated to hide real throughput. Eval is excluded by default: honest
    scoring-only evals (the seed's eval sweep) report no generated tokens."""
    capacity = (pl.col("batch_size") * pl.col("sequence_length")).cast(pl.Float64)
    bad = rows(
        trace,
        op_mask(op_types) & (capacity > max_ratio * pl.col("tokens_processed")),
        "batch_size",
        "sequence_length",
        "tokens_processed",
    ).sort(["ws", "row"])
    if bad.height:
        ratio = (bad["batch_size"] * bad["sequence_length"]) / bad["tokens_processed"].clip(lower_bound=1)
        worst = float(ratio.max())  # type: ignore[arg-type]
        yield violation(
            f"{bad.height} record(s) claim batch_size × sequence_length above {max_ratio:g}× "
            f"tokens_processed (up to {worst:.4g}×)",
            ids(bad),
            max_ratio=max_ratio,
            worst_ratio=worst,
        )


def _training_cap(commitment: Any) -> dict[str, Any] | None:
    """The tightest per-job cap that counts training (training or "*"), if any."""
    caps = [
        spec.params["threshold"]
        for spec in commitment.rules
        if spec.kind == "aggregate_flop_cap"
        and spec.params.get("scope", "per_job") == "per_job"
        and _counts_training(spec.params.get("op_type", "*"))
    ]
    return {"threshold": min(caps)} if caps else None


def _counts_training(op_type: Any) -> bool:
    wanted = [op_type] if isinstance(op_type, str) else list(op_type)
    return "training" in wanted or "*" in wanted


# semantic rule id -> (kind, parameters from the commitment; None = cannot be judged)
FALLBACKS: dict[str, tuple[str, Callable[[Any], dict[str, Any] | None]]] = {
    "no-splitting": ("no_splitting", _training_cap),
    "op-type-honesty": ("op_type_honesty", lambda c: {}),
    "dataset-provenance": ("dataset_provenance", lambda c: {}),
    "batch-token-sanity": ("batch_token_sanity", lambda c: {}),
}


# ---------------------------------------------------------------- mergeable partials


def _splitting_suspects(merged: pl.DataFrame, threshold: float, **_: object) -> Suspects:
    """A run of jobs sums no more than every positive FLOP together."""
    return mg.sum_over(merged, threshold)


@mergeable("no_splitting", merge=mg.merge_sum, suspects=_splitting_suspects)
def no_splitting_partial(
    trace: Trace, threshold: float, window_hours: float = 72.0, op_type: OpTypes = "training"
) -> pl.DataFrame:
    """The part's sum of positive ``op_type`` FLOPs."""
    return mg.positive_total(trace, op_mask(op_type))


def _provenance_suspects(merged: pl.DataFrame) -> Suspects:
    return mg.over_limit(merged, ["job_id", "config_hash"], 1, "job_id")


@mergeable("dataset_provenance", merge=mg.merge_distinct, suspects=_provenance_suspects)
def dataset_provenance_partial(trace: Trace) -> pl.DataFrame:
    """Distinct (job, config, dataset fingerprint) of the part."""
    return mg.distinct(trace, None, ["job_id", "config_hash", "dataset_fingerprint"])
