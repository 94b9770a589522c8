"""Shared selectors for rule kinds (columnar; record-at-a-time only to explain)."""

from __future__ import annotations

import fnmatch
import math
from collections.abc import Iterable
from typing import Literal

import numpy as np
import polars as pl

# "*" means every op_type except idle, as in the seed's wildcard cap: idle windows are
# policed by idle_must_be_zero, and counting them would let a cap hide behind them.
# A Literal, so the loader rejects a misspelt label ("trainig") instead of running a
# rule whose filter matches nothing; the labels are the schema's (OP_TYPES_KNOWN).
OpType = Literal["training", "inference", "eval", "idle", "*"]
OpTypes = OpType | list[OpType] | tuple[OpType, ...]


def op_mask(op_type: OpTypes) -> pl.Expr:
    wanted = [op_type] if isinstance(op_type, str) else list(op_type)
    mask = pl.col("op_type").is_in([w for w in wanted if w != "*"])
    if "*" in wanted:
        mask = mask | (pl.col("op_type") != "idle")
    return mask


def rows(trace, mask: pl.Expr | None, *columns: str) -> pl.DataFrame:
    """The records matching ``mask``, with only the columns a rule reads (plus id, row
    and window start). Filtering the whole frame would copy every column: at 10^7
    records that is more memory than the rule needs by an order of magnitude."""
    wanted = list(dict.fromkeys(("record_id", "row", "ws", *columns)))
    frame = trace.frame
    # A mask that keeps every record (an honest training trace under a training rule) is
    # dropped: selecting columns shares their buffers, filtering would copy them all.
    if mask is None or frame.select(mask.all()).item():
        return frame.select(wanted)
    return frame.lazy().filter(mask).select(wanted).collect()


def by_value(trace, column: str, value: pl.Expr, dtype: pl.DataType) -> pl.Expr:
    """Per record, ``value`` evaluated on its ``column`` (as text, named ``v``), computed
    once per distinct value and looked up by categorical code: no per-record strings and
    no join. Identity columns hold thousands of distinct values over millions of records."""
    col = trace.frame[column]
    table = (
        col.unique()
        .to_frame()
        .with_columns(pl.col(column).cast(pl.Utf8).alias("v"))
        .with_columns(value.cast(dtype).alias("_out"))
    )
    if not isinstance(col.dtype, pl.Categorical) or col.len() == 0:
        return pl.lit(col.replace_strict(table[column], table["_out"], default=None, return_dtype=dtype))
    codes = col.to_physical()
    lookup = pl.repeat(None, int(codes.max()) + 1, dtype=dtype, eager=True)
    lookup.scatter(table[column].to_physical(), table["_out"])
    return pl.lit(lookup.gather(codes))


def ref_count(frame: pl.DataFrame) -> pl.Expr:
    """Number of upstream_refs (lean frames carry only the count, ``n_refs``)."""
    return pl.col("n_refs") if "n_refs" in frame.columns else pl.col("upstream_refs").list.len()


def op_label(op_type: OpTypes) -> str:
    return op_type if isinstance(op_type, str) else ",".join(op_type)


def glob_regex(patterns: Iterable[str]) -> str:
    """One anchored regex (valid for Polars and Python) matching any of the globs."""
    parts = [fnmatch.translate(p).removesuffix(r"\Z") for p in patterns]
    return "^(?:" + "|".join(parts) + ")$" if parts else "^$a"


def glob_match(patterns: Iterable[str], value: str) -> bool:
    return any(fnmatch.fnmatchcase(value, p) for p in patterns)


def ids(frame: pl.DataFrame) -> list[str]:
    return frame["record_id"].to_list()


def first_rows(frame: pl.DataFrame, key: str) -> pl.DataFrame:
    """The first record of each group (earliest window, then file order)."""
    at_start = pl.col("_r").filter(pl.col("ws") == pl.col("ws").min()).min()
    if frame["ws"].null_count() == 0:
        # a group keeps its rows in file order (polars' group_by guarantee), and arg_min
        # gives the first of equal minima: the same row without filtering each group
        # (3x faster with one big group)
        at_start = pl.col("_r").get(pl.col("ws").arg_min())
    firsts = sliced_agg(
        frame.select(key, "ws", pl.col("row").alias("_r")),
        [key],
        [pl.col("ws").min(), at_start],
        [pl.col("ws").min(), at_start],
    )
    return frame.filter(pl.col("row").is_in(firsts["_r"].implode()))


SLICE_ROWS = 2_000_000
_KEY = "_gkey"  # the packed group key's column (no schema field starts with "_g")


def packed_key(frame: pl.DataFrame, by: list[str]) -> pl.Series | None:
    """One UInt64 per row, equal for two rows exactly when their ``by`` values are: the
    columns' categorical codes (null: one code more) packed in mixed radix. None when a
    column is not categorical or the radices overflow 63 bits even with each column's
    codes made dense. Polars hashes a multi-column key row by row (row encoding) and
    even one categorical key slower than its codes; one integer key groups 2-5x
    faster, and packing is one parallel pass."""
    if frame.height == 0:
        return None
    if not all(isinstance(frame.schema[name], pl.Categorical) for name in by):
        return None
    packed = _packed(frame, by)
    if packed is not None:
        return frame.select(packed[0].alias(_KEY))[_KEY]
    return _dense_key(frame, by)


def _packed(frame: pl.DataFrame, by: list[str]) -> tuple[pl.Expr, list[int]] | None:
    """The mixed-radix key of categorical columns ``by`` (the last one least
    significant) and the radices, or None when they overflow 63 bits. A column holding
    one value and no null splits no group: it gets radix 1 and adds no arithmetic (an
    operator, commit or config column is often constant over a whole trace)."""
    code = [pl.col(name).to_physical() for name in by]
    stats = frame.select(
        *[c.max().alias(f"hi{i}") for i, c in enumerate(code)],
        *[c.min().alias(f"lo{i}") for i, c in enumerate(code)],
        *[c.null_count().alias(f"nn{i}") for i, c in enumerate(code)],
    ).row(0, named=True)
    constant = [stats[f"nn{i}"] == 0 and stats[f"hi{i}"] == stats[f"lo{i}"] for i in range(len(by))]
    radices = [1 if same else int(stats[f"hi{i}"] or 0) + 2 for i, same in enumerate(constant)]
    if math.prod(radices) >= 2**63:
        return None
    key: pl.Expr | None = None
    for c, radix, same in zip(code, radices, constant):
        if not same:
            digit = c.cast(pl.UInt64).fill_null(radix - 1)
            key = digit if key is None else key * radix + digit
    if key is None:  # every column constant: one group, keyed by a real column (a
        # literal key takes another summation path: float totals would differ in the last bit)
        key = code[0].cast(pl.UInt64)
    return key, radices


def _dense_key(frame: pl.DataFrame, by: list[str]) -> pl.Series | None:
    """``packed_key`` with each column's codes renumbered 0..k-1 first (many categories
    seen in the process, few in this frame)."""
    key: np.ndarray | None = None
    radix = 1
    for name in by:
        codes = frame[name].to_physical()
        top = int(codes.max() or 0) + 1  # type: ignore[arg-type]
        raw = codes.fill_null(top).to_numpy()
        seen = pl.Series(raw).unique().to_numpy()
        lookup = np.zeros(top + 1, dtype=np.uint64)
        lookup[seen] = np.arange(seen.size, dtype=np.uint64)
        radix *= seen.size
        if radix >= 2**63:
            return None
        dense = lookup[raw]
        key = dense if key is None else key * np.uint64(seen.size) + dense
    return pl.Series(_KEY, key, dtype=pl.UInt64)


def sliced_agg(frame: pl.DataFrame, by: list[str], aggs: list[pl.Expr], merge: list[pl.Expr]) -> pl.DataFrame:
    """``frame.group_by(by).agg(aggs)`` computed over row slices, then merged with
    ``merge`` (which must combine partial results exactly: min of mins, sum of counts).
    A group-by over 10^7 rows holds a hash table and row keys for all of them; slices
    bound that to SLICE_ROWS rows while the result stays one row per group. Several
    categorical keys are grouped by their ``packed_key`` (same groups, same columns)."""
    key = packed_key(frame, by)
    if key is None:
        return _sliced(frame, by, aggs, merge)
    keys = [pl.col(name).first() for name in by]
    out = _sliced(frame.with_columns(key), [_KEY], keys + aggs, keys + merge)
    return out.drop(_KEY)


def _sliced(frame: pl.DataFrame, by: list[str], aggs: list[pl.Expr], merge: list[pl.Expr]) -> pl.DataFrame:
    if frame.height <= SLICE_ROWS:
        return frame.group_by(by).agg(aggs)
    parts = [frame.slice(lo, SLICE_ROWS).group_by(by).agg(aggs) for lo in range(0, frame.height, SLICE_ROWS)]
    return pl.concat(parts).group_by(by).agg(merge)


def one_value_each(frame: pl.DataFrame, keys: list[str], value: str) -> bool:
    """True when every group of ``keys`` holds exactly one distinct ``value``: as many
    distinct (keys, value) packed keys as distinct keys. One pass for the distinct pair
    keys, 2-3x cheaper than the group-by with aggregates it spares; False when the
    columns cannot be packed (the caller then groups)."""
    columns = keys + [value]
    if frame.height == 0 or not all(isinstance(frame.schema[name], pl.Categorical) for name in columns):
        return False
    packed = _packed(frame, columns)
    if packed is None:
        return False
    # the distinct pairs (few), then their groups: the pair key less its last digit
    pairs = frame.select(packed[0].unique().alias(_KEY))[_KEY]
    return pairs.len() == (pairs // packed[1][-1]).n_unique()


def distinct_over(frame: pl.DataFrame, key: str | list[str], value: str, limit: int) -> pl.DataFrame:
    """Groups of ``key`` with more than ``limit`` distinct ``value``s, with the values in
    order of first appearance (time, then file order) and the records of every value
    beyond the first ``limit``. Aggregates first; touches records only for violators."""
    keys = [key] if isinstance(key, str) else key
    if limit >= 1 and one_value_each(frame, keys, value):  # the usual trace: no group over
        none = frame.head(0).group_by(keys).agg(pl.len().alias("n"))
        empty = pl.lit([]).cast(pl.List(pl.Utf8))
        return none.with_columns(empty.alias("values"), empty.alias("extra_ids"))
    firsts = sliced_agg(
        frame,
        keys + [value],
        [pl.col("ws").min().alias("_t"), pl.col("row").min().alias("_r")],
        [pl.col("_t").min(), pl.col("_r").min()],
    )
    counts = firsts.group_by(keys).agg(pl.len().alias("n"))
    over = counts.filter(pl.col("n") > limit)
    empty = pl.lit([]).cast(pl.List(pl.Utf8)).alias("extra_ids")
    if over.height == 0:
        return over.with_columns(pl.lit([]).cast(pl.List(pl.Utf8)).alias("values"), empty)
    ranked = (
        firsts.join(over.select(keys), on=keys, how="semi")
        .sort(keys + ["_t", "_r"])
        .with_columns(pl.int_range(pl.len()).over(keys).alias("_rank"))
    )
    values = ranked.group_by(keys, maintain_order=True).agg(pl.col(value).cast(pl.Utf8).alias("values"))
    beyond = ranked.filter(pl.col("_rank") >= limit).select(keys + [value])
    flagged = frame.join(beyond, on=keys + [value], how="semi").sort(["ws", "row"])
    extra = flagged.group_by(keys, maintain_order=True).agg(pl.col("record_id").alias("extra_ids"))
    return over.join(values, on=keys, how="left").join(extra, on=keys, how="left").sort(keys)


def model_counts(frame: pl.DataFrame, keys: list[str]) -> pl.DataFrame:
    """Distinct models per group of ``keys``, columnar (see ``lineage_count``).

    Training records count lineages: the peak number of model hashes whose time spans
    overlap by more than the group's longest window, at least 2 if a hash returns on a
    chip after another replaced it, and at least the number of hashes reported for
    windows that start at the same instant. Other records add each hash the group is
    not training."""
    h = "model_hash_prefix"
    training = frame.filter(pl.col("op_type") == "training")
    tol = training.group_by(keys).agg((pl.col("we") - pl.col("ws")).max().alias("tol"))
    spans = (
        training.group_by(keys + [h])
        .agg(pl.col("ws").min().alias("s"), pl.col("we").max().alias("e"))
        .join(tol, on=keys)
    )
    spans = spans.with_columns((pl.col("e") - pl.col("tol")).alias("end")).filter(pl.col("end") > pl.col("s"))
    events = pl.concat(
        [
            spans.select(keys + [pl.col("s").alias("t"), pl.lit(1).alias("d")]),
            spans.select(keys + [pl.col("end").alias("t"), pl.lit(-1).alias("d")]),
        ]
    )
    peak = (
        events.sort(keys + ["t", "d"])
        .with_columns(pl.col("d").cum_sum().over(keys).alias("depth"))
        .group_by(keys)
        .agg(pl.col("depth").max().alias("peak"))
    )
    on_chip = training.group_by(keys + ["chip_id", h]).agg(
        pl.col("ws").min().alias("cs"), pl.col("ws").max().alias("ce")
    )
    prev_end = pl.col("ce").cum_max().shift(1).over(keys + ["chip_id"])
    returning = (
        on_chip.sort(keys + ["chip_id", "cs"])
        .filter(pl.col("cs") < prev_end)
        .group_by(keys)
        .agg(pl.lit(2).alias("ret"))
    )
    simultaneous = (
        training.group_by(keys + ["ws"])
        .agg(pl.col(h).n_unique().alias("n"))
        .group_by(keys)
        .agg(pl.col("n").max().alias("simul"))
    )
    other = frame.filter(pl.col("op_type") != "training").select(keys + [h]).unique()
    extra = (
        other.join(training.select(keys + [h]).unique(), on=keys + [h], how="anti")
        .group_by(keys)
        .agg(pl.len().alias("extra"))
    )
    trains = training.select(keys).unique().with_columns(pl.lit(1).alias("trains"))
    groups = frame.select(keys).unique()
    out = (
        groups.join(peak, on=keys, how="left")
        .join(returning, on=keys, how="left")
        .join(simultaneous, on=keys, how="left")
        .join(extra, on=keys, how="left")
        .join(trains, on=keys, how="left")
    )
    lineages = pl.max_horizontal(
        pl.col("peak").fill_null(0),
        pl.col("ret").fill_null(0),
        pl.col("trains").fill_null(0),
        pl.col("simul").fill_null(0),
    )
    return out.with_columns((lineages + pl.col("extra").fill_null(0)).alias("models"))


def lineage_count(frame: pl.DataFrame, tolerance: float) -> tuple[int, list[str]]:
    """How many model lineages a set of records shows, and the records beyond one.

    Training changes the weights, so one model shows as a sequence of hashes that
    replace each other. Two lineages show as hashes active at the same time (their
    time spans overlap by more than ``tolerance`` seconds, the evidence's resolution),
    as a hash that comes back on a chip after another replaced it, or as two hashes
    reported for windows that start at the same instant: replicas of one model hold
    the same weights at the same time, whatever the windows' resolution.
    """
    if frame.height == 0:
        return 0, []
    spans = (
        frame.group_by("model_hash_prefix")
        .agg(pl.col("ws").min().alias("s"), pl.col("we").max().alias("e"))
        .sort(["s", "model_hash_prefix"])
    )
    # A span no longer than the tolerance overlaps nothing by more than it: no events.
    shrunk = [(s, e - tolerance) for s, e in zip(spans["s"], spans["e"]) if e - tolerance > s]
    events = sorted([(s, 1) for s, _ in shrunk] + [(e, -1) for _, e in shrunk], key=lambda ev: (ev[0], ev[1]))
    depth = peak = 0
    for _, step in events:
        depth += step
        peak = max(peak, depth)
    returning = _returning_hashes(frame)
    simultaneous = _simultaneous_hashes(frame)
    count = max(peak, 2 if returning else 1, simultaneous[0])
    if count <= 1:
        return count, []
    first_hash = spans["model_hash_prefix"][0]
    later = frame.filter(pl.col("model_hash_prefix") != first_hash)
    overlapping = _overlapping_hashes(spans, tolerance) | returning | simultaneous[1]
    return count, ids(
        later.filter(pl.col("model_hash_prefix").is_in(sorted(overlapping))).sort(["ws", "row"])
    )


def _overlapping_hashes(spans: pl.DataFrame, tolerance: float) -> set[str]:
    """Hashes that start before an earlier-starting hash has ended (spans sorted by start)."""
    out: set[str] = set()
    latest_end = float("-inf")
    for model, start, end in zip(spans["model_hash_prefix"], spans["s"], spans["e"]):
        if start < latest_end:
            out.add(model)
        latest_end = max(latest_end, end - tolerance)
    return out


def _returning_hashes(frame: pl.DataFrame) -> set[str]:
    """Hashes that reappear on a chip after a different hash was seen there."""
    ordered = frame.sort(["chip_id", "ws", "row"]).select("chip_id", "model_hash_prefix")
    changed = pl.col("model_hash_prefix") != pl.col("model_hash_prefix").shift(1).over("chip_id")
    segments = ordered.filter(changed.fill_null(True))
    again = segments.group_by("chip_id", "model_hash_prefix").len().filter(pl.col("len") > 1)
    return set(again["model_hash_prefix"].to_list())


def _simultaneous_hashes(frame: pl.DataFrame) -> tuple[int, set[str]]:
    """Most hashes reported for windows starting at one instant, and those hashes."""
    per_start = frame.group_by("ws").agg(pl.col("model_hash_prefix").unique().alias("hashes"))
    clashing = per_start.filter(pl.col("hashes").list.len() > 1)
    hashes = set(clashing["hashes"].explode().to_list()) if clashing.height else set()
    most = per_start.select(pl.col("hashes").list.len().max()).item()
    return int(most or 0), hashes
