"""Rule kinds that pin identities together, closing fragmentation attacks.

Each closes a way of splitting one logical run so that per-job or per-model
accounting sees several small ones (the seed's red-team rounds 9-57).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import cast

import polars as pl

from inspectorate.commitment._partial import ALL, Suspects, mergeable
from inspectorate.commitment._registry import Violation, rule, violation
from inspectorate.commitment.rules import _mergeable as mg
from inspectorate.commitment.rules._common import (
    OpTypes,
    distinct_over,
    ids,
    lineage_count,
    model_counts,
    one_value_each,
    op_label,
    op_mask,
    rows,
    sliced_agg,
)
from inspectorate.trace import Trace


def _over_limit(
    trace: Trace,
    key: str | list[str],
    value: str,
    limit: int,
    what: str,
    op_type: OpTypes = "*",
    name: str | None = None,
) -> Iterator[Violation]:
    """Groups of ``key`` with more than ``limit`` distinct ``value``s (``name`` replaces
    the group's "key 'value'" label in the message)."""
    keys = [key] if isinstance(key, str) else key
    frame = rows(trace, op_mask(op_type), *keys, value)
    for row in distinct_over(frame, key, value, limit).iter_rows(named=True):
        label = name or ", ".join(f"{k} {row[k]!r}" for k in keys)
        yield violation(
            f"{label} has {row['n']} distinct {what} (limit {limit}): {row['values'][:5]}",
            row["extra_ids"] or [],
            group={k: row[k] for k in keys},
            distinct=row["n"],
            limit=limit,
            values=row["values"][:20],
        )


@rule(
    "cross_job_fingerprint_consistency", partition="keyed:model_hash_prefix"
)  # a fingerprint includes its model hash
def cross_job_fingerprint_consistency(
    trace: Trace, max_jobs_per_fingerprint: int = 1, op_types: OpTypes = "*"
) -> Iterator[Violation]:
    """One logical run has one job_id: records sharing a fingerprint (model_hash_prefix,
    code_commit, dataset_fingerprint) may span at most ``max_jobs_per_fingerprint`` jobs."""
    yield from _over_limit(
        trace,
        ["model_hash_prefix", "code_commit", "dataset_fingerprint"],
        "job_id",
        max_jobs_per_fingerprint,
        "jobs",
        op_types,
    )


@rule("code_commit_per_job_stable", partition="keyed:job_id")
def code_commit_per_job_stable(trace: Trace, max_commits_per_job: int = 1) -> Iterator[Violation]:
    """A job runs one code version: at most ``max_commits_per_job`` code_commits per job."""
    yield from _over_limit(trace, "job_id", "code_commit", max_commits_per_job, "code_commits", ["*", "idle"])


@rule("chip_job_stability", partition="keyed:chip_id")
def chip_job_stability(trace: Trace, max_jobs_per_chip: int = 1) -> Iterator[Violation]:
    """Chips don't job-hop within an audit window: at most ``max_jobs_per_chip`` jobs per chip."""
    yield from _over_limit(trace, "chip_id", "job_id", max_jobs_per_chip, "jobs", ["*", "idle"])


@rule("operator_op_type_uniqueness", partition="keyed:operator")
def operator_op_type_uniqueness(
    trace: Trace, op_type: OpTypes = "training", max_jobs_per_operator: int = 1
) -> Iterator[Violation]:
    """Each operator runs at most ``max_jobs_per_operator`` jobs of ``op_type``."""
    yield from _over_limit(trace, "operator", "job_id", max_jobs_per_operator, f"{op_type} jobs", op_type)


@rule("training_unique_per_model", partition="keyed:model_hash_prefix")
def training_unique_per_model(
    trace: Trace, op_type: OpTypes = "training", max_training_jobs_per_model: int = 1
) -> Iterator[Violation]:
    """A model is trained once: a model_hash_prefix appears in at most
    ``max_training_jobs_per_model`` jobs of ``op_type``."""
    yield from _over_limit(
        trace, "model_hash_prefix", "job_id", max_training_jobs_per_model, "training jobs", op_type
    )


@rule("audit_window_uniqueness", partition="global")
def audit_window_uniqueness(
    trace: Trace, op_type: OpTypes = "training", max_jobs: int = 1
) -> Iterator[Violation]:
    """At most ``max_jobs`` jobs of ``op_type`` in the whole audit window (the trace)."""
    frame = rows(trace, op_mask(op_type), "job_id", "op_type")
    if frame["job_id"].n_unique() <= max_jobs:
        return
    frame = frame.with_columns(pl.lit("audit window").alias("_window"))
    yield from _over_limit(
        Trace(frame, source=trace.source),
        "_window",
        "job_id",
        max_jobs,
        f"{op_type} jobs",
        ["*", "idle"],
        name="the audit window",
    )


@rule("operator_uniqueness_per_job", partition="keyed:job_id")
def operator_uniqueness_per_job(trace: Trace, max_operators_per_job: int = 1) -> Iterator[Violation]:
    """A job has one responsible team: at most ``max_operators_per_job`` operators per job."""
    yield from _over_limit(trace, "job_id", "operator", max_operators_per_job, "operators", ["*", "idle"])


def _at_most(frame: pl.DataFrame, keys: list[str], limit: int, value: str = "model_hash_prefix") -> bool:
    """Every group of ``keys`` has at most ``limit`` distinct ``value``s. A model count
    never exceeds the distinct hashes, so this settles most traces without counting."""
    if frame.height == 0 or (limit >= 1 and one_value_each(frame, keys, value)):
        return True
    combos = sliced_agg(frame, keys + [value], [pl.len().alias("_n")], [pl.col("_n").sum()])
    return int(combos.group_by(keys).len()["len"].max()) <= limit  # type: ignore[arg-type]


def _tolerance(frame: pl.DataFrame) -> float:
    """The evidence's time resolution: the longest window in the group."""
    return float(cast(float, (frame["we"] - frame["ws"]).max()) or 0.0)


def _models_in(frame: pl.DataFrame) -> tuple[int, list[str]]:
    """Distinct models: lineages for training (weights evolve), hashes otherwise."""
    training = frame.filter(pl.col("op_type") == "training")
    other = frame.filter(pl.col("op_type") != "training")
    count, flagged = lineage_count(training, _tolerance(training))
    trained = set(training["model_hash_prefix"].unique().to_list())
    # Evaluating or sampling the model being trained is not a second model.
    hashes = [h for h in other["model_hash_prefix"].unique(maintain_order=True).to_list() if h not in trained]
    keep = 0 if count else 1
    if len(hashes) > keep:
        flagged += other.filter(pl.col("model_hash_prefix").is_in(hashes[keep:]))["record_id"].to_list()
    return count + len(hashes), flagged


@rule("model_uniqueness_per_job", partition="keyed:job_id")
def model_uniqueness_per_job(
    trace: Trace, op_type: OpTypes = "training", max_models_per_job: int = 1
) -> Iterator[Violation]:
    """A job works on at most ``max_models_per_job`` models. Training legitimately
    changes the weights, so a hash that evolves along the job's checkpoints (each new
    hash replacing the last, across all chips) is one model; two hashes active at once,
    or a hash returning after being replaced, are two. Other op_types serve fixed
    weights: each distinct hash is a model."""
    frame = rows(
        trace,
        op_mask(op_type),
        "job_id",
        "operator",
        "code_commit",
        "config_hash",
        "model_hash_prefix",
        "chip_id",
        "op_type",
        "we",
    )
    if _at_most(frame, ["job_id"], max_models_per_job):
        return
    over = model_counts(frame, ["job_id"]).filter(pl.col("models") > max_models_per_job).sort("job_id")
    for job in over["job_id"].to_list():
        count, flagged = _models_in(frame.filter(pl.col("job_id") == job))
        if count > max_models_per_job:
            yield violation(
                f"job {job!r} works on {count} models (limit {max_models_per_job})",
                flagged,
                job_id=job,
                models=count,
                limit=max_models_per_job,
            )


@rule("model_hash_consistency", partition="keyed:job_id")  # groups: (job_id, operator, code_commit)
def model_hash_consistency(trace: Trace, max_distinct_configs: int = 2) -> Iterator[Violation]:
    """Within a (job_id, operator, code_commit) group the model may change only with
    the config: each config_hash carries one model (one evolving lineage for training,
    one fixed hash otherwise; idle and other non-training records may only name a hash
    the group trained, or the one model it serves), and the group uses at most
    ``max_distinct_configs`` config_hashes (closes hash rotation via config rotation)."""
    frame = rows(
        trace,
        None,
        "job_id",
        "operator",
        "code_commit",
        "config_hash",
        "model_hash_prefix",
        "chip_id",
        "op_type",
        "we",
    )
    keys = ["job_id", "operator", "code_commit"]
    if _at_most(frame, keys + ["config_hash"], 1) and _at_most(
        frame, keys, max_distinct_configs, "config_hash"
    ):
        return
    configs = frame.group_by(keys).agg(pl.col("config_hash").n_unique().alias("n"))
    per_config = model_counts(frame, keys + ["config_hash"]).filter(pl.col("models") > 1)
    suspects = (
        pl.concat([configs.filter(pl.col("n") > max_distinct_configs).select(keys), per_config.select(keys)])
        .unique()
        .sort(keys)
    )
    for job, operator, commit in suspects.iter_rows():
        group = frame.filter(
            (pl.col("job_id") == job) & (pl.col("operator") == operator) & (pl.col("code_commit") == commit)
        )
        yield from _explain_group(group, job, operator, commit, max_distinct_configs)


def _explain_group(
    group: pl.DataFrame, job: str, operator: str, commit: str, max_distinct_configs: int
) -> Iterator[Violation]:
    group = group.sort(["ws", "row"])
    configs = group["config_hash"].unique(maintain_order=True).to_list()
    where = dict(job_id=job, operator=operator, code_commit=commit)
    if len(configs) > max_distinct_configs:
        extra = group.filter(pl.col("config_hash").is_in(configs[max_distinct_configs:]))
        yield violation(
            f"job {job!r} rotates through {len(configs)} config_hashes (limit {max_distinct_configs})",
            extra["record_id"].to_list(),
            **where,
            configs=configs[:20],
        )
    for config in configs:
        count, flagged = _models_in(group.filter(pl.col("config_hash") == config))
        if count > 1:
            yield violation(
                f"job {job!r} changes model_hash_prefix without a config change "
                f"({count} models under config {config})",
                flagged,
                **where,
                config_hash=config,
                models=count,
            )


@rule("job_fragmentation", partition="global")
def job_fragmentation(
    trace: Trace,
    op_type: OpTypes = "training",
    min_records_per_job: int = 2,
    max_short_jobs: int = 0,
    max_jobs_per_chip: int | None = None,
    min_windows_per_job: int | None = None,
) -> Iterator[Violation]:
    """Work is not cut into confetti jobs to stay under per-job caps: at most
    ``max_short_jobs`` jobs of ``op_type`` may have fewer than ``min_records_per_job``
    records (a job of one window is a fragment, not a run: single-record jobs, each with
    fresh model, code and data identities, pass every per-job cap and fingerprint
    rule), and, when ``max_jobs_per_chip`` is set, no chip carries more than that many
    ``op_type`` jobs (a chip's time sliced into jobs). Larger fragments can still pass
    both; what they add up to is bounded by a commitment-level cap,
    aggregate_flop_cap with ``scope: global`` (all jobs of the op type together).
    ``min_windows_per_job`` also counts a job short when its records start in fewer
    distinct windows: a one-window job padded with a second record on an invented chip
    in the same window (confetti_jobs + ghost_chips) has two records but one window."""
    frame = rows(trace, op_mask(op_type), "job_id", "chip_id")
    sizes = sliced_agg(frame, ["job_id"], [pl.len().alias("n")], [pl.col("n").sum()])
    short = sizes.filter(pl.col("n") < min_records_per_job).select("job_id")
    what = f"{min_records_per_job} records"
    if min_windows_per_job is not None:
        windows = frame.group_by("job_id").agg(pl.col("ws").n_unique().alias("w"))
        few = windows.filter(pl.col("w") < min_windows_per_job).select("job_id")
        short = pl.concat([short, few.with_columns(pl.col("job_id").cast(short["job_id"].dtype))]).unique()
        what += f" or {min_windows_per_job} windows"
    if short.height > max_short_jobs:
        flagged = frame.join(short.select("job_id"), on="job_id", how="semi").sort(["ws", "row"])
        yield violation(
            f"{short.height} {op_label(op_type)} job(s) have fewer than {what} "
            f"(limit {max_short_jobs} such jobs): work fragmented into short jobs",
            ids(flagged),
            short_jobs=short.height,
            jobs=sorted(short["job_id"].cast(pl.Utf8).to_list())[:20],
            min_records_per_job=min_records_per_job,
            max_short_jobs=max_short_jobs,
            **({} if min_windows_per_job is None else {"min_windows_per_job": min_windows_per_job}),
        )
    if max_jobs_per_chip is not None:
        yield from _over_limit(
            trace, "chip_id", "job_id", max_jobs_per_chip, f"{op_label(op_type)} jobs", op_type
        )


# ---------------------------------------------------------------- mergeable partials
# Per part: the distinct (group, value) combinations; merged: their union. A group with
# no more distinct values than its limit yields nothing (``distinct_over``), exactly.

_FINGERPRINT = ["model_hash_prefix", "code_commit", "dataset_fingerprint"]
_ALL_OPS: OpTypes = ["*", "idle"]


def _limit_suspects(by: list[str], value: str, limit_param: str, key: str | None = None) -> mg.SuspectFn:
    def suspects(merged: pl.DataFrame, **params: object) -> Suspects:
        return mg.over_limit(merged, by, cast(int, params.get(limit_param, 1)), key or by[0])

    return suspects


@mergeable(
    "cross_job_fingerprint_consistency",
    merge=mg.merge_distinct,
    suspects=_limit_suspects(_FINGERPRINT, "job_id", "max_jobs_per_fingerprint", "model_hash_prefix"),
)
def cross_job_fingerprint_partial(
    trace: Trace, max_jobs_per_fingerprint: int = 1, op_types: OpTypes = "*"
) -> pl.DataFrame:
    """Distinct (fingerprint, job) pairs of the part's selected records."""
    return mg.distinct(trace, op_mask(op_types), [*_FINGERPRINT, "job_id"])


@mergeable(
    "code_commit_per_job_stable",
    merge=mg.merge_distinct,
    suspects=_limit_suspects(["job_id"], "code_commit", "max_commits_per_job"),
)
def code_commit_partial(trace: Trace, max_commits_per_job: int = 1) -> pl.DataFrame:
    """Distinct (job, code_commit) pairs of the part."""
    return mg.distinct(trace, op_mask(_ALL_OPS), ["job_id", "code_commit"])


@mergeable(
    "chip_job_stability",
    merge=mg.merge_distinct,
    suspects=_limit_suspects(["chip_id"], "job_id", "max_jobs_per_chip"),
)
def chip_job_partial(trace: Trace, max_jobs_per_chip: int = 1) -> pl.DataFrame:
    """Distinct (chip, job) pairs of the part."""
    return mg.distinct(trace, op_mask(_ALL_OPS), ["chip_id", "job_id"])


@mergeable(
    "operator_op_type_uniqueness",
    merge=mg.merge_distinct,
    suspects=_limit_suspects(["operator"], "job_id", "max_jobs_per_operator"),
)
def operator_op_type_partial(
    trace: Trace, op_type: OpTypes = "training", max_jobs_per_operator: int = 1
) -> pl.DataFrame:
    """Distinct (operator, job) pairs of the part's ``op_type`` records."""
    return mg.distinct(trace, op_mask(op_type), ["operator", "job_id"])


@mergeable(
    "training_unique_per_model",
    merge=mg.merge_distinct,
    suspects=_limit_suspects(["model_hash_prefix"], "job_id", "max_training_jobs_per_model"),
)
def training_unique_partial(
    trace: Trace, op_type: OpTypes = "training", max_training_jobs_per_model: int = 1
) -> pl.DataFrame:
    """Distinct (model hash, job) pairs of the part's ``op_type`` records."""
    return mg.distinct(trace, op_mask(op_type), ["model_hash_prefix", "job_id"])


@mergeable(
    "operator_uniqueness_per_job",
    merge=mg.merge_distinct,
    suspects=_limit_suspects(["job_id"], "operator", "max_operators_per_job"),
)
def operator_per_job_partial(trace: Trace, max_operators_per_job: int = 1) -> pl.DataFrame:
    """Distinct (job, operator) pairs of the part."""
    return mg.distinct(trace, op_mask(_ALL_OPS), ["job_id", "operator"])


def _audit_suspects(merged: pl.DataFrame, op_type: OpTypes = "training", max_jobs: int = 1) -> Suspects:
    return ALL if merged["job_id"].n_unique() > max_jobs else None


@mergeable("audit_window_uniqueness", merge=mg.merge_distinct, suspects=_audit_suspects)
def audit_window_partial(trace: Trace, op_type: OpTypes = "training", max_jobs: int = 1) -> pl.DataFrame:
    """Distinct jobs of the part's ``op_type`` records."""
    return mg.distinct(trace, op_mask(op_type), ["job_id"])


# model_uniqueness_per_job returns early when no job has more distinct hashes than its
# limit (``_at_most``); a job with more is judged on its records (lineages may still pass).
@mergeable(
    "model_uniqueness_per_job",
    merge=mg.merge_distinct,
    suspects=_limit_suspects(["job_id"], "model_hash_prefix", "max_models_per_job"),
)
def model_uniqueness_partial(
    trace: Trace, op_type: OpTypes = "training", max_models_per_job: int = 1
) -> pl.DataFrame:
    """Distinct (job, model hash) pairs of the part's ``op_type`` records."""
    return mg.distinct(trace, op_mask(op_type), ["job_id", "model_hash_prefix"])


_GROUP = ["job_id", "operator", "code_commit"]


def _consistency_suspects(merged: pl.DataFrame, max_distinct_configs: int = 2) -> Suspects:
    """Jobs of the groups ``model_hash_consistency``'s early return does not clear."""
    models = mg.over_limit(merged, [*_GROUP, "config_hash"], 1, "job_id")
    configs = mg.over_limit(
        merged.select(*_GROUP, "config_hash").unique(), _GROUP, max_distinct_configs, "job_id"
    )
    found = [g for g in (models, configs) if g is not None]
    return pl.concat(found).unique() if found else None


@mergeable("model_hash_consistency", merge=mg.merge_distinct, suspects=_consistency_suspects)
def model_hash_consistency_partial(trace: Trace, max_distinct_configs: int = 2) -> pl.DataFrame:
    """Distinct (job, operator, commit, config, model hash) of the part."""
    return mg.distinct(trace, None, [*_GROUP, "config_hash", "model_hash_prefix"])


# job_fragmentation: one state frame with a tag per table: ("n") records per job,
# ("w") distinct (job, window start), ("c") distinct (chip, job).
_FRAG = {"_t": pl.Utf8, "job_id": pl.Utf8, "chip_id": pl.Utf8, "ws": pl.Float64, "n": pl.Int64}


def _tagged(frame: pl.DataFrame, tag: str) -> pl.DataFrame:
    frame = frame.with_columns(pl.lit(tag).alias("_t"))
    return frame.select(
        [(pl.col(c) if c in frame.columns else pl.lit(None)).cast(t).alias(c) for c, t in _FRAG.items()]
    )


@mergeable(
    "job_fragmentation",
    merge=lambda frame, **_: _merge_fragments(frame),
    suspects=lambda merged, **p: _fragment_suspects(merged, **p),
)
def job_fragmentation_partial(
    trace: Trace,
    op_type: OpTypes = "training",
    min_records_per_job: int = 2,
    max_short_jobs: int = 0,
    max_jobs_per_chip: int | None = None,
    min_windows_per_job: int | None = None,
) -> pl.DataFrame:
    """Records per job, and the distinct (job, window) and (chip, job) pairs asked for."""
    frame = mg.as_text(rows(trace, op_mask(op_type), "job_id", "chip_id"), ["job_id", "chip_id"])
    out = [_tagged(frame.group_by("job_id").agg(pl.len().alias("n")), "n")]
    if min_windows_per_job is not None:
        out.append(_tagged(frame.select("job_id", "ws").unique(), "w"))
    if max_jobs_per_chip is not None:
        out.append(_tagged(frame.select("chip_id", "job_id").unique(), "c"))
    return pl.concat(out)


def _merge_fragments(frame: pl.DataFrame) -> pl.DataFrame:
    counts = frame.filter(pl.col("_t") == "n").group_by("_t", "job_id").agg(pl.col("n").sum())
    return pl.concat([_tagged(counts, "n"), frame.filter(pl.col("_t") != "n").unique()])


def _fragment_suspects(
    merged: pl.DataFrame,
    op_type: OpTypes = "training",
    min_records_per_job: int = 2,
    max_short_jobs: int = 0,
    max_jobs_per_chip: int | None = None,
    min_windows_per_job: int | None = None,
) -> Suspects:
    counts = merged.filter(pl.col("_t") == "n")
    short = set(counts.filter(pl.col("n") < min_records_per_job)["job_id"].to_list())
    if min_windows_per_job is not None:
        windows = merged.filter(pl.col("_t") == "w").group_by("job_id").len()
        short |= set(windows.filter(pl.col("len") < min_windows_per_job)["job_id"].to_list())
    if len(short) > max_short_jobs:
        return ALL
    if max_jobs_per_chip is not None:
        chips = merged.filter(pl.col("_t") == "c").select("chip_id", "job_id")
        if mg.over_limit(chips, ["chip_id"], max_jobs_per_chip, "chip_id") is not None:
            return ALL
    return None
