"""Building blocks of rules' mergeable partials (``commitment/_partial.py``).

Identities are cast to strings in every state: parts are read separately, so their
categorical codes do not agree, and a state holds groups, not records.
"""

from __future__ import annotations

import polars as pl

from inspectorate.commitment._partial import ALL, SuspectFn, Suspects
from inspectorate.commitment.rules._common import rows
from inspectorate.trace import Trace

# Float sums merged in another order than the in-memory sum differ in the last bits:
# a total this close to its cap (relative to the sum of magnitudes) is judged on rows.
SUM_MARGIN = 1e-6

__all__ = ["ALL", "SuspectFn", "Suspects"]  # re-exported for the rules' partials


def as_text(frame: pl.DataFrame, columns: list[str]) -> pl.DataFrame:
    return frame.with_columns([pl.col(c).cast(pl.Utf8) for c in columns])


def distinct(trace: Trace, mask: pl.Expr | None, columns: list[str]) -> pl.DataFrame:
    """The distinct combinations of ``columns`` among the records ``mask`` selects."""
    return as_text(rows(trace, mask, *columns).select(columns).unique(), columns)


def merge_distinct(frame: pl.DataFrame, **_: object) -> pl.DataFrame:
    return frame.unique()


def over_limit(merged: pl.DataFrame, by: list[str], limit: int, key: str) -> pl.DataFrame | None:
    """Values of ``key`` of the groups of ``by`` with more than ``limit`` distinct rows."""
    if merged.height == 0:
        return None
    bad = merged.group_by(by).len().filter(pl.col("len") > limit)
    return bad.select(key).unique() if bad.height else None


def any_group(groups: pl.DataFrame | None) -> Suspects:
    """A keyless rule: a suspect group means the rule must see every record."""
    return None if groups is None else ALL


def flop_totals(trace: Trace, mask: pl.Expr | None, key: str | None) -> pl.DataFrame:
    """Per ``key`` (one group when None): the sum of FLOPs and of their magnitudes."""
    frame = rows(trace, mask, "flops", *([key] if key else []))
    by = pl.col(key).cast(pl.Utf8) if key else pl.lit("all")
    return (
        frame.group_by(by.alias("_g"))
        .agg(pl.col("flops").sum().alias("total"), pl.col("flops").abs().sum().alias("mag"))
        .with_columns(pl.col("total").cast(pl.Float64), pl.col("mag").cast(pl.Float64))
    )


def merge_totals(frame: pl.DataFrame, **_: object) -> pl.DataFrame:
    return frame.group_by("_g").agg(pl.col("total").sum(), pl.col("mag").sum())


def totals_over(merged: pl.DataFrame, threshold: float) -> pl.DataFrame:
    """Groups whose total may exceed ``threshold`` (within the summation margin)."""
    return merged.filter(pl.col("total") > threshold - SUM_MARGIN * pl.col("mag"))


def positive_total(trace: Trace, mask: pl.Expr | None) -> pl.DataFrame:
    """The sum of the positive FLOPs: no subset of records (a run of jobs) sums higher."""
    frame = rows(trace, mask, "flops")
    return frame.select(pl.col("flops").clip(lower_bound=0).sum().cast(pl.Float64).alias("total"))


def merge_sum(frame: pl.DataFrame, **_: object) -> pl.DataFrame:
    return frame.select(pl.col("total").sum())


def sum_over(merged: pl.DataFrame, threshold: float) -> Suspects:
    total = float(merged["total"].sum())
    return ALL if total > threshold - SUM_MARGIN * abs(total) else None
