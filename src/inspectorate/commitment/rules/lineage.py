"""Rule kinds that follow one logical run across job ids (compound attacks, issue 21)."""

from __future__ import annotations

from collections.abc import Iterator

import polars as pl

from inspectorate.commitment._partial import Suspects, mergeable
from inspectorate.commitment._registry import Violation, rule, violation
from inspectorate.commitment.rules import _mergeable as mg
from inspectorate.commitment.rules._common import OpTypes, ids, op_label, op_mask, rows
from inspectorate.trace import Trace, format_time


class _Runs:
    """Union-find over job ids: jobs joined by any link are one logical run."""

    def __init__(self, jobs: list[str]) -> None:
        self.parent = {job: job for job in jobs}

    def find(self, job: str) -> str:
        while self.parent[job] != job:
            self.parent[job] = self.parent[self.parent[job]]
            job = self.parent[job]
        return job

    def join(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[max(ra, rb)] = min(ra, rb)


def _ref_links(frame: pl.DataFrame) -> list[tuple[str, str]]:
    """(job, job) pairs where a record of one lists a record of the other upstream.

    Joined on 64-bit hashes of the ids (a string join over every ref cost 0.6-1 s at
    10^6 records), kept only across jobs, then checked on the ids themselves, so a hash
    collision links nothing."""
    owner = frame.select(
        pl.col("record_id").hash().alias("key"),
        pl.col("record_id").alias("owner_id"),
        pl.col("job_id").alias("to"),
    )
    edges = (
        frame.select(pl.col("job_id").alias("frm"), pl.col("upstream_refs").alias("ref"))
        .explode("ref")
        .drop_nulls("ref")
        .with_columns(pl.col("ref").hash().alias("key"))
        .join(owner, on="key", how="inner")
        .filter(pl.col("frm") != pl.col("to"))
        .filter(pl.col("ref") == pl.col("owner_id"))
        .select(pl.col("frm").cast(pl.Utf8), pl.col("to").cast(pl.Utf8))
        .unique()
    )
    return list(edges.iter_rows())


def _handover_links(frame: pl.DataFrame, handover_s: float) -> list[tuple[str, str]]:
    """(job, job) pairs where, on one chip, one job's last window ends at most
    ``handover_s`` before the other's first window starts (the chip went straight on)."""
    spans = (
        frame.group_by(["chip_id", "job_id"])
        .agg(pl.col("ws").min().alias("start"), pl.col("we").max().alias("end"))
        .with_columns(pl.col("job_id").cast(pl.Utf8), pl.col("chip_id").cast(pl.Utf8))
        .sort(["chip_id", "start"])
    )
    # each span against the one before it on its chip (by start), as columns
    before = spans.with_columns(
        pl.col("job_id").shift().over("chip_id").alias("prev_job"),
        pl.col("end").shift().over("chip_id").alias("prev_end"),
    )
    linked = before.filter(
        (pl.col("prev_job") != pl.col("job_id")) & (pl.col("start") - pl.col("prev_end") <= handover_s)
    )
    return list(linked.select("prev_job", "job_id").iter_rows())


@rule("lineage_flop_cap", partition="global")  # runs join jobs across the whole trace
def lineage_flop_cap(
    trace: Trace, threshold: float, op_type: OpTypes = "training", handover_s: float = 300.0
) -> Iterator[Violation]:
    """One logical run is capped however many job ids it is booked under: jobs of
    ``op_type`` joined by lineage (a record listing another job's record in its
    upstream_refs) or by a chip handover (on one chip, a job's first window starts at
    most ``handover_s`` after another's last window ends; 0 disables) form one run, and
    its total FLOPs must stay at or below ``threshold``. Closes split_jobs combined with
    model-hash, code-commit or operator rotation: each part alone is caught by a
    per-job identity rule or by cross_job_fingerprint_consistency, but fragments with
    fresh identities pass every per-job rule and every fingerprint rule. Only runs of
    two or more jobs are reported (one job over the cap is aggregate_flop_cap's). An
    honest lab running separate runs back to back on the same chips has their sum
    capped too: declare a pause longer than ``handover_s`` between them."""
    # a layout that keeps only ref counts (no ref ids) links by handover alone
    has_refs = "upstream_refs" in trace.frame.columns
    frame = rows(
        trace, op_mask(op_type), "job_id", "chip_id", "flops", "we", *(["upstream_refs"] if has_refs else [])
    )
    if frame.height == 0:
        return
    jobs = sorted(frame["job_id"].cast(pl.Utf8).unique().to_list())
    if len(jobs) < 2:  # only runs of two or more jobs are reported: nothing to link
        return
    runs = _Runs(jobs)
    links = (_ref_links(frame) if has_refs else []) + (
        _handover_links(frame, handover_s) if handover_s > 0 else []
    )
    for a, b in links:
        runs.join(a, b)
    run_of = {job: runs.find(job) for job in jobs}
    tagged = frame.with_columns(
        pl.col("job_id").cast(pl.Utf8).replace_strict(run_of, return_dtype=pl.Utf8).alias("_run")
    )
    totals = tagged.group_by("_run").agg(
        pl.col("flops").sum().alias("total"), pl.col("job_id").cast(pl.Utf8).unique().sort().alias("jobs")
    )
    over = totals.filter((pl.col("total") > threshold) & (pl.col("jobs").list.len() > 1)).sort("_run")
    for run, total, members in over.iter_rows():
        ordered = tagged.filter(pl.col("_run") == run).sort(["ws", "row"])
        crossed = ordered.filter(pl.col("flops").cum_sum() > threshold)
        crossed = crossed if crossed.height else ordered.tail(1)
        yield violation(
            f"{len(members)} {op_label(op_type)} jobs joined by lineage or chip handover are one run: "
            f"{total:.4g} FLOP exceeds the cap {threshold:.4g}",
            ids(crossed),
            jobs=list(members)[:20],
            total_flops=total,
            threshold=threshold,
            handover_s=handover_s,
            first_over_cap=format_time(crossed["ws"][0]),
        )


# ---------------------------------------------------------------- mergeable partials


def _lineage_suspects(merged: pl.DataFrame, threshold: float, **_: object) -> Suspects:
    """A run joined by lineage sums no more than every positive FLOP together."""
    return mg.sum_over(merged, threshold)


@mergeable("lineage_flop_cap", merge=mg.merge_sum, suspects=_lineage_suspects)
def lineage_flop_cap_partial(
    trace: Trace, threshold: float, op_type: OpTypes = "training", handover_s: float = 300.0
) -> pl.DataFrame:
    """The part's sum of positive ``op_type`` FLOPs."""
    return mg.positive_total(trace, op_mask(op_type))
