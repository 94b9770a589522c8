"""Rule kinds about how much compute was done and whether the numbers add up."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Literal

import polars as pl

from inspectorate.commitment._partial import ALL, Suspects, mergeable
from inspectorate.commitment._partition import by_param
from inspectorate.commitment._registry import Violation, rule, violation
from inspectorate.commitment.rules import _mergeable as mg
from inspectorate.commitment.rules._common import (
    OpTypes,
    by_value,
    glob_regex,
    ids,
    op_label,
    op_mask,
    rows,
    sliced_agg,
)
from inspectorate.trace import Trace, format_time

_SCOPE_KEY = {"per_job": "job_id", "per_operator": "operator"}


@rule(
    "aggregate_flop_cap",
    partition=by_param("scope", per_job="keyed:job_id", per_operator="keyed:operator", otherwise="global"),
)
def aggregate_flop_cap(
    trace: Trace,
    threshold: float,
    op_type: OpTypes = "*",
    scope: Literal["per_job", "per_operator", "global"] = "per_job",
) -> Iterator[Violation]:
    """Total FLOPs of records with ``op_type`` (a label, a list, or "*" = every non-idle
    label) must stay at or below ``threshold`` within each job, operator, or the whole
    trace (``scope``). Flags, in time order, the record whose running total crosses the
    cap and every later record of that group."""
    key = _SCOPE_KEY.get(scope)
    frame = rows(trace, op_mask(op_type), "flops", *([key] if key else []))
    if key is None:
        if frame["flops"].sum() <= threshold:
            return
        frame, key = frame.with_columns(pl.lit("all").alias("_all")), "_all"
    totals = sliced_agg(frame, [key], [pl.col("flops").sum().alias("total")], [pl.col("total").sum()])
    totals = totals.filter(pl.col("total") > threshold)
    for group, total in totals.sort(key).iter_rows():
        ordered = frame.filter(pl.col(key) == group).sort(["ws", "row"])
        crossed = ordered.filter(pl.col("flops").cum_sum() > threshold)
        if crossed.height == 0:  # the total and the running sum rounded apart at the cap
            crossed = ordered.tail(1)
        label = "trace" if key == "_all" else f"{key} {group!r}"
        yield violation(
            f"{label}: {total:.4g} FLOP of {op_label(op_type)} exceeds the cap {threshold:.4g}",
            ids(crossed),
            group=group,
            scope=scope,
            op_type=op_type,
            total_flops=total,
            threshold=threshold,
            first_over_cap=format_time(crossed["ws"][0]),
        )


@rule("idle_must_be_zero", partition="record", selects=lambda p: pl.col("op_type") == "idle")
def idle_must_be_zero(trace: Trace, max_flops: float = 0.0) -> Iterator[Violation]:
    """Idle windows do no work: an ``idle`` record with flops above ``max_flops`` or any
    tokens processed is a violation (closes idle laundering: compute hidden in windows
    labelled idle)."""
    bad = rows(
        trace,
        (pl.col("op_type") == "idle") & ((pl.col("flops") > max_flops) | (pl.col("tokens_processed") > 0)),
        "flops",
        "tokens_processed",
    )
    if bad.height:
        yield violation(
            f"{bad.height} idle record(s) report work ({bad['flops'].sum():.4g} FLOP, "
            f"{bad['tokens_processed'].sum()} tokens)",
            ids(bad),
            max_flops=max_flops,
            flops=bad["flops"].sum(),
            tokens=bad["tokens_processed"].sum(),
        )


def _flop_per_token() -> pl.Expr:
    """FLOP per token; a window with FLOPs and no tokens is infinitely FLOP-dense."""
    tokens = pl.col("tokens_processed").cast(pl.Float64)
    return (
        pl.when(tokens > 0)
        .then(pl.col("flops") / tokens)
        .otherwise(pl.when(pl.col("flops") > 0).then(float("inf")).otherwise(0.0))
    )


@rule(
    "op_type_flop_ratio",
    partition="record",
    selects=lambda p: op_mask(p["op_types"]) & (pl.col("op_type") != "training"),
)
def op_type_flop_ratio(
    trace: Trace, training_threshold: float = 5.0e10, op_types: OpTypes = ("*", "idle")
) -> Iterator[Violation]:
    """Records labelled with a non-training ``op_types`` label (by default every label
    but training: idle and invented labels included) must not show a training-shaped
    FLOP/token ratio: flops / tokens_processed above ``training_threshold`` is treated
    as training relabelled to escape a cap. FLOPs with zero tokens count as an infinite
    ratio, except on eval records: scoring-only evals report no tokens (the seed's eval
    sweep) and their FLOPs are policed by the eval cap."""
    frame = rows(
        trace, op_mask(op_types) & (pl.col("op_type") != "training"), "op_type", "flops", "tokens_processed"
    )
    scoring_only = (pl.col("op_type") == "eval") & (pl.col("tokens_processed") == 0)
    bad = (
        frame.filter(~scoring_only)
        .with_columns(_flop_per_token().alias("fpt"))
        .filter(pl.col("fpt") > training_threshold)
    )
    if bad.height:
        yield violation(
            f"{bad.height} non-training record(s) have a training-shaped FLOP/token ratio "
            f"(max {bad['fpt'].max():.4g} > {training_threshold:.4g})",
            ids(bad),
            max_flop_per_token=bad["fpt"].max(),
            threshold=training_threshold,
            op_types=sorted(set(bad["op_type"].cast(pl.Utf8).to_list())),
        )


@rule("max_flop_per_token", partition="record")
def max_flop_per_token(
    trace: Trace, ceiling: float, op_types: OpTypes = ("training", "inference")
) -> Iterator[Violation]:
    """FLOP per token may not exceed the architectural ``ceiling`` (≈6N for training a
    model of N parameters) on ``op_types`` records: higher means over-reported compute
    or under-reported tokens."""
    frame = rows(trace, op_mask(op_types), "flops", "tokens_processed").with_columns(
        _flop_per_token().alias("fpt")
    )
    bad = frame.filter(pl.col("fpt") > ceiling)
    if bad.height:
        yield violation(
            f"{bad.height} record(s) exceed {ceiling:.4g} FLOP/token (max {bad['fpt'].max():.4g})",
            ids(bad),
            ceiling=ceiling,
            max_flop_per_token=bad["fpt"].max(),
        )


def _min_fpt_selects(p: dict) -> pl.Expr:
    mask = op_mask(p["op_types"]) & (pl.col("tokens_processed") > 0)
    return mask if p["models"] is None else mask & pl.col("model_hash_prefix").is_in(p["models"])


@rule("min_flop_per_token", partition="record", selects=_min_fpt_selects)
def min_flop_per_token(
    trace: Trace, floor: float, op_types: OpTypes = ("training",), models: list[str] | None = None
) -> Iterator[Violation]:
    """FLOP per token may not fall below ``floor`` (≈6N for training the declared model
    of N parameters, less a margin) on ``op_types`` records with tokens: lower means
    FLOPs under-reported to stay under a cap while the tokens show the real work (an
    evasion the offline red team found against the seed's commitment). ``models``
    (model_hash_prefix values) scopes the floor to the declared model's records, since
    the floor is a property of one model's size; without it every record is held to it."""
    tokens = pl.col("tokens_processed").cast(pl.Float64)
    mask = op_mask(op_types) & (tokens > 0)
    if models is not None:
        mask = mask & pl.col("model_hash_prefix").is_in(models)
    frame = rows(trace, mask, "flops", "tokens_processed").with_columns(
        (pl.col("flops") / tokens).alias("fpt")
    )
    bad = frame.filter(pl.col("fpt") < floor)
    if bad.height:
        yield violation(
            f"{bad.height} record(s) report under {floor:.4g} FLOP/token (min {bad['fpt'].min():.4g})",
            ids(bad),
            floor=floor,
            min_flop_per_token=bad["fpt"].min(),
        )


@rule("batch_token_consistency", partition="record")
def batch_token_consistency(
    trace: Trace, max_capacity_ratio: float = 5.0, op_types: OpTypes = ("training", "inference")
) -> Iterator[Violation]:
    """A window processes at least one batch: batch_size × sequence_length may not exceed
    ``max_capacity_ratio`` × tokens_processed on ``op_types`` records (an inflated batch
    hides real throughput). Eval is excluded by default: scoring-only evals report
    tokens differently."""
    capacity = pl.col("batch_size") * pl.col("sequence_length")
    bad = rows(
        trace,
        op_mask(op_types) & (capacity.cast(pl.Float64) > max_capacity_ratio * pl.col("tokens_processed")),
    )
    if bad.height:
        yield violation(
            f"{bad.height} record(s) claim a batch capacity above {max_capacity_ratio:g}× the tokens processed",
            ids(bad),
            max_capacity_ratio=max_capacity_ratio,
        )


# Dense peak FLOP/s per chip. The default covers an H100/H200 at dense FP8 (1.98e15)
# with headroom; commitments declare their hardware to tighten or widen it.
DEFAULT_PEAK = {"*": 2.5e15}


@rule("flop_physically_possible", implicit=True, partition="record")
def flop_physically_possible(
    trace: Trace, peak_flops: dict[str, float] = DEFAULT_PEAK, slack: float = 1.0
) -> Iterator[Violation]:
    """A chip cannot do more than its peak: flops ≤ peak × window seconds × ``slack``.
    ``peak_flops`` maps chip_id globs to FLOP/s (first match in the order given; "*" is
    the fallback, 2.5e15 by default). A zero-length window with FLOPs is impossible."""
    first_match = pl.lit(None, dtype=pl.Float64)
    for pattern, value in reversed(list(peak_flops.items())):
        first_match = (
            pl.when(pl.col("v").str.contains(glob_regex([pattern])))
            .then(pl.lit(value))
            .otherwise(first_match)
        )
    peak = by_value(trace, "chip_id", first_match, pl.Float64())
    secs = pl.col("we") - pl.col("ws")
    bad = rows(
        trace, peak.is_not_null() & (pl.col("flops") > peak * secs * slack), "flops", "we"
    ).with_columns(secs.alias("secs"))
    if bad.height:
        rate = (bad["flops"] / bad["secs"]).max()
        yield violation(
            f"{bad.height} record(s) report more FLOPs than their chip's peak allows "
            f"(up to {rate:.4g} FLOP/s)",
            ids(bad),
            max_flops_per_second=rate,
            peak_flops=peak_flops,
            slack=slack,
        )


def _is_idle(params: dict) -> pl.Expr:
    return pl.col("op_type") == "idle"


@rule("idle_record_honesty", partition="global", selects=_is_idle)
def idle_record_honesty(
    trace: Trace, op_type: OpTypes = "training", allow_pauses: bool = False
) -> Iterator[Violation]:
    """An idle record says its chip did nothing; three things betray work relabelled
    idle with zero FLOPs (idle_must_be_zero sees only FLOPs and tokens):
    (1) work shape: tokens_processed or batch_size above zero (a configured
    sequence_length is not work);
    (2) identity: the job_id, or the (model_hash_prefix, dataset_fingerprint) pair, of a
    job with ``op_type`` records (a training job's identity on an idle window);
    (3) position: the window lies on its chip between two records of one ``op_type``
    job on that chip, i.e. inside the job's run there. With ``allow_pauses`` (a cluster
    whose jobs really pause), (3) counts only windows during which the job has records
    on other chips: synchronous training steps every chip together, so one chip idling
    while its peers train is a step relabelled. Closes training relabelled ``idle``
    inside a running training job, identity scrubbed or not."""
    frame = rows(
        trace,
        None,
        "chip_id",
        "op_type",
        "job_id",
        "we",
        "tokens_processed",
        "batch_size",
        "model_hash_prefix",
        "dataset_fingerprint",
    )
    idle = frame.filter(pl.col("op_type") == "idle")
    if idle.height == 0:
        return
    shaped = idle.filter((pl.col("tokens_processed") > 0) | (pl.col("batch_size") > 0))
    if shaped.height:
        yield violation(
            f"{shaped.height} idle record(s) carry a work shape (tokens or a batch)",
            ids(shaped.sort(["ws", "row"])),
            tokens=shaped["tokens_processed"].sum(),
        )
    jobs = frame.filter(op_mask(op_type) & (pl.col("op_type") != "idle"))
    pairs = jobs.select("model_hash_prefix", "dataset_fingerprint").unique()
    named = idle.filter(pl.col("job_id").is_in(jobs["job_id"].unique().implode())).vstack(
        idle.join(pairs, on=["model_hash_prefix", "dataset_fingerprint"], how="semi")
    )
    named = named.unique("row").sort(["ws", "row"])
    if named.height:
        yield violation(
            f"{named.height} idle record(s) carry the identity of a {op_label(op_type)} job "
            f"({sorted(set(named['job_id'].to_list()))[:5]})",
            ids(named),
            jobs=sorted(set(named["job_id"].to_list()))[:20],
        )
    inside = _inside_runs(idle, jobs, allow_pauses)
    if inside.height:
        yield violation(
            f"{inside.height} idle record(s) sit inside a running {op_label(op_type)} job on their "
            f"chip (jobs {sorted(set(inside['run_job'].to_list()))[:5]})",
            ids(inside),
            jobs=sorted(set(inside["run_job"].to_list()))[:20],
            allow_pauses=allow_pauses,
        )


def _inside_runs(idle: pl.DataFrame, jobs: pl.DataFrame, allow_pauses: bool) -> pl.DataFrame:
    """Idle records whose chip has records of one job both before and after them."""
    work = jobs.select("chip_id", "ws", pl.col("job_id").alias("run_job")).sort("ws")
    probe = idle.select("record_id", "row", "chip_id", "ws", "we").sort("ws")
    before = probe.join_asof(
        work, on="ws", by="chip_id", strategy="backward", allow_exact_matches=False, check_sortedness=False
    )
    after = probe.select("row", "ws", "chip_id").join_asof(
        work.rename({"run_job": "next_job"}),
        on="ws",
        by="chip_id",
        strategy="forward",
        allow_exact_matches=False,
        check_sortedness=False,  # sorted by ws overall, so within each chip too
    )
    inside = before.join(after.select("row", "next_job"), on="row").filter(
        pl.col("run_job").is_not_null() & (pl.col("run_job") == pl.col("next_job"))
    )
    if allow_pauses and inside.height:
        # the job works on another chip during this idle window
        busy = jobs.select(pl.col("job_id").alias("run_job"), pl.col("chip_id").alias("other"), "ws", "we")
        overlap = inside.join(busy, on="run_job", suffix="_o").filter(
            (pl.col("other") != pl.col("chip_id"))
            & (pl.col("ws_o") < pl.col("we"))
            & (pl.col("we_o") > pl.col("ws"))
        )
        inside = inside.filter(pl.col("row").is_in(overlap["row"].implode()))
    return inside.sort(["ws", "row"])


# ---------------------------------------------------------------- mergeable partials


def _cap_suspects(
    merged: pl.DataFrame, threshold: float, op_type: OpTypes = "*", scope: str = "per_job"
) -> Suspects:
    """Groups whose FLOP total may cross the cap (every record, for the global scope)."""
    over = mg.totals_over(merged, threshold)
    if over.height == 0:
        return None
    key = _SCOPE_KEY.get(scope)
    return over.select(pl.col("_g").alias(key)) if key else ALL


@mergeable("aggregate_flop_cap", merge=mg.merge_totals, suspects=_cap_suspects)
def aggregate_flop_cap_partial(
    trace: Trace, threshold: float, op_type: OpTypes = "*", scope: str = "per_job"
) -> pl.DataFrame:
    """FLOP totals (and magnitudes) per scope group of the part."""
    return mg.flop_totals(trace, op_mask(op_type), _SCOPE_KEY.get(scope))


def _idle_suspects(merged: pl.DataFrame, **_: object) -> Suspects:
    return ALL if int(merged["idle"].sum()) else None


# Only a trace without idle records is cleared here: the position test (an idle window
# between two windows of one job on its chip) needs each chip's neighbours in time.
@mergeable(
    "idle_record_honesty",
    merge=lambda frame, **_: frame.select(pl.col("idle").sum()),
    suspects=_idle_suspects,
)
def idle_record_honesty_partial(
    trace: Trace, op_type: OpTypes = "training", allow_pauses: bool = False
) -> pl.DataFrame:
    """The part's count of idle records."""
    return trace.frame.select((pl.col("op_type") == "idle").sum().cast(pl.Int64).alias("idle"))
