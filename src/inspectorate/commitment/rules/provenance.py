"""Rule kinds about where work came from: data, operators, lineage, registries."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import polars as pl

from inspectorate.commitment._partial import Suspects, mergeable
from inspectorate.commitment._registry import Violation, rule, violation
from inspectorate.commitment.rules import _mergeable as mg
from inspectorate.commitment.rules._common import (
    OpTypes,
    by_value,
    first_rows,
    glob_regex,
    ids,
    op_mask,
    ref_count,
    rows,
    sliced_agg,
)
from inspectorate.trace import Trace


def _named(column: pl.Expr, names: list[str]) -> pl.Expr:
    """The value is one of ``names`` literally or matches one as a glob."""
    return column.is_in(names) | column.str.contains(glob_regex(names))


@rule("forbidden_data_source_tags", partition="record")
def forbidden_data_source_tags(trace: Trace, tags: list[str]) -> Iterator[Violation]:
    """No record may carry a data_source_tag equal to or matching any of ``tags``
    (shell-style globs: ``corpus:cbrn-*``; a name is also taken literally, so
    ``corpus:x[1]`` forbids that very tag)."""
    # Match the distinct tags (a handful), then find the records holding a matched one:
    # no per-record tag strings are built.
    distinct = trace.frame.select(pl.col("data_source_tags").explode().unique().cast(pl.Utf8).alias("t"))
    found = sorted(distinct.filter(_named(pl.col("t"), tags).fill_null(False))["t"].to_list())
    if found:
        holds = pl.col("data_source_tags").list.eval(pl.element().is_in(found)).list.any()
        flagged = rows(trace, holds, "data_source_tags")
        yield violation(
            f"{flagged.height} record(s) use forbidden data sources: {', '.join(found)}",
            ids(flagged),
            tags=found,
            patterns=tags,
        )


@rule("forbidden_operators", partition="record")
def forbidden_operators(trace: Trace, operators: list[str]) -> Iterator[Violation]:
    """No record may name an operator equal to or matching any of ``operators`` (globs;
    a name is also taken literally, so ``ops[red-team]`` forbids that very operator)."""
    named = by_value(trace, "operator", _named(pl.col("v"), operators).fill_null(False), pl.Boolean())
    bad = rows(trace, named, "operator")
    if bad.height:
        yield violation(
            f"{bad.height} record(s) from forbidden operator(s) {sorted(set(bad['operator'].to_list()))}",
            ids(bad),
            operators=sorted(set(bad["operator"].to_list())),
            patterns=operators,
        )


@rule("require_upstream_refs", partition="keyed:job_id")
def require_upstream_refs(trace: Trace, op_types: OpTypes = "*") -> Iterator[Violation]:
    """Lineage is declared: every ``op_types`` record except the first of its job in the
    append-only file must list at least one upstream_ref. The job's first record may
    be a root: nothing was written before it that it could cite. (Time order is not
    used: a record appended later cannot be the root the earlier ones descend from.)"""
    frame = rows(
        trace, op_mask(op_types), "job_id", "n_refs" if "n_refs" in trace.frame.columns else "upstream_refs"
    )
    roots = frame.filter(ref_count(frame) == 0)
    firsts = sliced_agg(frame, ["job_id"], [pl.col("row").min()], [pl.col("row").min()])
    bad = roots.join(firsts.select("row"), on="row", how="anti").sort(["ws", "row"])
    if bad.height:
        yield violation(
            f"{bad.height} record(s) after their job's first declare no upstream_refs",
            ids(bad),
            jobs=sorted(set(bad["job_id"].to_list())),
        )


@rule("upstream_refs_dag_validity", partition="dag")
def upstream_refs_dag_validity(trace: Trace) -> Iterator[Violation]:
    """upstream_refs form a valid provenance DAG: record ids are unique, every ref names
    a record present in the trace, and points backwards in the append-only log (to a
    record earlier in file order). Backward-only edges rule out cycles, self-references
    and references to the future."""
    record_ids = trace.frame["record_id"]
    targets = _LazyTargets(trace.frame)
    edges = pl.concat([_bad_edges(part, record_ids, targets) for part in _ref_chunks(trace)])
    yield from dag_violations(_duplicates(record_ids), edges, record_ids)


# An edge that names no record (null) or the record itself or a later one.
BAD_EDGE = pl.col("ref_row").is_null() | (pl.col("ref_row") >= pl.col("row"))


def dag_violations(dupes: pl.DataFrame, edges: pl.DataFrame, record_ids: pl.Series) -> Iterator[Violation]:
    """The DAG rule's verdict from its two findings, however they were computed (here, or
    by the Dask engine's hash-partitioned join): ``dupes`` (record_id, row) of records
    sharing an id, and the bad ``edges`` (row, upstream_refs, ref_row) in file order.
    ``record_ids``: every record's id, by row (unused when ``edges`` carry their own
    ``record_id``, as the out-of-core engine's buckets do)."""
    if dupes.height:
        yield violation(
            f"{dupes.height} records share record_ids, so references are ambiguous",
            ids(dupes),
            duplicate_ids=sorted(set(dupes["record_id"].to_list()))[:20],
        )
    if "record_id" not in edges.columns:
        edges = edges.with_columns(record_ids.gather(edges["row"]).alias("record_id"))
    phantom = edges.filter(pl.col("ref_row").is_null())
    if phantom.height:
        yield violation(
            f"{phantom.height} reference(s) to records not in the trace",
            ids(phantom.unique("row", maintain_order=True)),
            missing=sorted(set(phantom["upstream_refs"].to_list()))[:20],
        )
    forward = edges.filter(pl.col("ref_row") >= pl.col("row"))
    if forward.height:
        yield violation(
            f"{forward.height} reference(s) point to the record itself or to a later record "
            "(cycle or causality violation)",
            ids(forward.unique("row", maintain_order=True)),
            refs=sorted(set(forward["upstream_refs"].to_list()))[:20],
        )


def _ref_chunks(trace: Trace) -> Iterator[pl.DataFrame]:
    """(row, upstream_refs) in file order; streamed from the file for lean traces."""
    if "upstream_refs" in trace.frame.columns:
        yield trace.frame.select("row", "upstream_refs")
        return
    from inspectorate.trace._io import iter_parquet_columns

    offset = 0
    for part in iter_parquet_columns(trace._backing_path(), ["upstream_refs"]):
        yield part.with_row_index("row", offset=offset)
        offset += part.height


_FEW = 8  # resolve by the sorted hashes when more than 1/_FEW of the records have other refs
_NO_EDGES = {"row": pl.UInt32, "upstream_refs": pl.Utf8, "ref_row": pl.Int64}


def _bad_edges(part: pl.DataFrame, record_ids: pl.Series, targets: _LazyTargets) -> pl.DataFrame:
    """The bad edges (row, upstream_refs, ref_row) of some records, in file order.

    A ref naming the record just before its own (an append-only log's usual link) is
    confirmed on the id strings and is good: the id's first occurrence is at or before
    that row, so before the ref's own. Only the other refs are resolved, by the sorted
    hashes of every id when many are left, else by one pass over the id hashes."""
    edges = part.explode("upstream_refs").filter(pl.col("upstream_refs").is_not_null())
    if edges.height == 0:
        return pl.DataFrame(schema=_NO_EDGES)
    before = edges["row"].cast(pl.Int64) - 1
    linked = (before >= 0) & (record_ids.gather(before.clip(0)) == edges["upstream_refs"])
    rest = edges.filter(~linked.fill_null(False)) if linked.any() else edges
    if rest.height == 0:
        return pl.DataFrame(schema=_NO_EDGES)
    if rest.height * _FEW > record_ids.len():
        return targets.get().resolve_edges(rest).filter(BAD_EDGE)
    return _resolve_few(rest, record_ids).filter(BAD_EDGE)


def _resolve_few(edges: pl.DataFrame, record_ids: pl.Series) -> pl.DataFrame:
    """``edges`` with the row of the first record whose id equals the ref (null: none),
    for a few edges: the ids whose hash a ref has, confirmed on the strings."""
    queries = edges.with_columns(
        pl.col("upstream_refs").hash().alias("_h"), pl.int_range(pl.len()).alias("_e")
    )
    keys = pl.DataFrame({"_h": record_ids.hash()}).with_row_index("ref_row")
    found = keys.filter(pl.col("_h").is_in(queries["_h"].unique().implode()))
    found = found.with_columns(record_ids.gather(found["ref_row"]).alias("_id"))
    first = (
        queries.select("_e", "_h", "upstream_refs")
        .join(found, on="_h")
        .filter(pl.col("_id") == pl.col("upstream_refs"))
        .group_by("_e")
        .agg(pl.col("ref_row").min().cast(pl.Int64))
    )
    return queries.join(first, on="_e", how="left", maintain_order="left").select(
        "row", "upstream_refs", "ref_row"
    )


def _duplicates(record_ids: pl.Series) -> pl.DataFrame:
    """(record_id, row) of every record whose id another record also has, file order:
    rows whose id hash repeats (one parallel sort of the hashes: is_duplicated builds a
    hash table, 3-5x slower), confirmed on the strings. Ids in sorted order (a counter,
    a ULID, a timestamp prefix) hold their duplicates side by side: then one comparison
    of neighbours finds them, without hashing or sorting (0.45 -> 0.05 CPU-s at 10^7)."""
    if record_ids.null_count() == 0 and record_ids.is_sorted():
        same = record_ids.slice(1) == record_ids.slice(0, max(record_ids.len() - 1, 0))
        rows = np.flatnonzero(same.to_numpy())  # row i+1 repeats row i
        rows = np.unique(np.concatenate([rows, rows + 1])) if rows.size else rows
        return pl.DataFrame(
            {"record_id": record_ids.gather(rows), "row": pl.Series(rows, dtype=pl.UInt32)},
            schema={"record_id": pl.Utf8, "row": pl.UInt32},
        )
    hashes = record_ids.hash()
    keys, ordered = hashes.to_numpy(), hashes.sort().to_numpy()
    repeated = ordered[1:][ordered[1:] == ordered[:-1]]
    rows = np.flatnonzero(np.isin(keys, repeated)) if repeated.size else np.zeros(0, dtype=np.int64)
    candidates = pl.DataFrame(
        {"record_id": record_ids.gather(rows), "row": pl.Series(rows, dtype=pl.UInt32)},
        schema={"record_id": pl.Utf8, "row": pl.UInt32},
    )
    return candidates.filter(pl.col("record_id").is_duplicated())


class _LazyTargets:
    """``_Targets`` built on first use (most traces never need the sorted id hashes)."""

    def __init__(self, frame: pl.DataFrame):
        self.frame = frame
        self.built: _Targets | None = None

    def get(self) -> _Targets:
        if self.built is None:
            self.built = _Targets(self.frame.select("record_id", "row"))
        return self.built


class _Targets:
    """Record ids as sorted 64-bit hashes, 12 bytes a record (no table of strings): refs
    resolve by a merge of sorted hashes, and every match is confirmed on the strings, so
    a collision cannot hide a phantom. Duplicate ids resolve to their first occurrence
    (the sort is stable, so equal hashes stay in file order)."""

    def __init__(self, frame: pl.DataFrame):
        keys = frame["record_id"].hash().to_numpy()
        order = np.argsort(keys, kind="stable")  # numpy, in arrays of its own: half the peak of a frame sort
        self.keys, self.rows = keys[order], frame["row"].to_numpy()[order]
        self.ids = frame["record_id"]

    def duplicates(self) -> pl.DataFrame:
        """(record_id, row) of every record whose id another record also has, file order."""
        same = np.flatnonzero(self.keys[1:] == self.keys[:-1])
        if same.size == 0:
            return pl.DataFrame({"record_id": [], "row": []}, schema={"record_id": pl.Utf8, "row": pl.UInt32})
        rows = np.unique(np.concatenate([self.rows[same], self.rows[same + 1]]))
        candidates = pl.DataFrame({"row": rows}).with_columns(self.ids.gather(rows).alias("record_id"))
        return candidates.filter(pl.col("record_id").is_duplicated()).select(
            "record_id", pl.col("row").cast(pl.UInt32)
        )

    def resolve(self, part: pl.DataFrame) -> pl.DataFrame:
        """Edges (row -> ref) with the referenced record's row, null when absent."""
        return self.resolve_edges(part.explode("upstream_refs").filter(pl.col("upstream_refs").is_not_null()))

    def resolve_edges(self, edges: pl.DataFrame) -> pl.DataFrame:
        """``resolve`` of edges already exploded (row, upstream_refs)."""
        wanted = edges["upstream_refs"].hash().to_numpy()
        order = np.argsort(wanted)  # sorted queries walk the sorted keys once, cache-friendly
        pos = np.empty_like(order)
        pos[order] = np.searchsorted(self.keys, wanted[order])
        pos = np.clip(pos, 0, max(len(self.keys) - 1, 0))
        hit = self.keys[pos] == wanted if len(self.keys) else np.zeros(len(wanted), dtype=bool)
        rows = np.where(hit, self.rows[pos], 0)
        same = self.ids.gather(pl.Series(rows, dtype=pl.UInt32)) == edges["upstream_refs"]
        ref_row = pl.Series("ref_row", rows, dtype=pl.Int64)
        return edges.with_columns(pl.when(pl.Series(hit) & same).then(ref_row).alias("ref_row"))


@rule("allowed_dataset_fingerprints", partition="record")
def allowed_dataset_fingerprints(trace: Trace, allowed: list[str]) -> Iterator[Violation]:
    """Only dataset fingerprints in the approved registry ``allowed`` may appear."""
    bad = rows(trace, ~pl.col("dataset_fingerprint").is_in(allowed), "dataset_fingerprint")
    if bad.height:
        found = sorted(set(bad["dataset_fingerprint"].to_list()))
        yield violation(
            f"{bad.height} record(s) use unregistered dataset fingerprints {found[:5]}",
            ids(bad),
            fingerprints=found,
        )


@rule("allowed_op_types", partition="record")
def allowed_op_types(trace: Trace, allowed: list[str]) -> Iterator[Violation]:
    """op_type is a closed enumeration: labels outside ``allowed`` escape op-typed caps."""
    bad = rows(trace, ~pl.col("op_type").is_in(allowed), "op_type")
    if bad.height:
        found = sorted(set(bad["op_type"].to_list()))
        yield violation(
            f"{bad.height} record(s) use op_types outside {allowed}: {found}", ids(bad), op_types=found
        )


@rule("training_base_models", partition="keyed:job_id")
def training_base_models(
    trace: Trace, allowed: list[str], op_type: OpTypes = "training"
) -> Iterator[Violation]:
    """Fine-tune only: every ``op_type`` job must start (its earliest record) from a model
    hash in the registry ``allowed`` of approved base checkpoints. A pretraining run
    starts from fresh weights, whose hash no registry holds."""
    frame = rows(trace, op_mask(op_type), "job_id", "model_hash_prefix")
    starts = first_rows(frame, "job_id")
    bad = starts.filter(~pl.col("model_hash_prefix").is_in(allowed)).sort(["ws", "row"])
    if bad.height:
        yield violation(
            f"{bad.height} {op_type} job(s) start from an unregistered model: "
            f"{sorted(set(bad['model_hash_prefix'].to_list()))[:5]}",
            ids(bad),
            jobs=bad["job_id"].to_list(),
            allowed=allowed,
        )


# ---------------------------------------------------------------- mergeable partials


def _roots_merge(frame: pl.DataFrame, **_: object) -> pl.DataFrame:
    return frame.group_by("job_id").agg(pl.col("first").min(), pl.col("roots").sum(), pl.col("root").min())


def _roots_suspects(merged: pl.DataFrame, **_: object) -> Suspects:
    """Jobs with a record without refs that is not the job's first."""
    bad = merged.filter(
        (pl.col("roots") > 1) | ((pl.col("roots") == 1) & (pl.col("root") != pl.col("first")))
    )
    return bad.select("job_id") if bad.height else None


@mergeable("require_upstream_refs", merge=_roots_merge, suspects=_roots_suspects)
def require_upstream_refs_partial(trace: Trace, op_types: OpTypes = "*") -> pl.DataFrame:
    """Per job: its first row, its records without refs and the first of them."""
    frame = rows(
        trace, op_mask(op_types), "job_id", "n_refs" if "n_refs" in trace.frame.columns else "upstream_refs"
    )
    root = ref_count(frame) == 0
    return mg.as_text(
        frame.group_by("job_id").agg(
            pl.col("row").min().cast(pl.Int64).alias("first"),
            root.sum().cast(pl.Int64).alias("roots"),
            pl.col("row").filter(root).min().cast(pl.Int64).alias("root"),
        ),
        ["job_id"],
    )


def _first_merge(frame: pl.DataFrame, **_: object) -> pl.DataFrame:
    return frame.sort(["ws", "row"]).group_by("job_id", maintain_order=True).first()


def _base_suspects(merged: pl.DataFrame, allowed: list[str], **_: object) -> Suspects:
    bad = merged.filter(~pl.col("model_hash_prefix").is_in(allowed))
    return bad.select("job_id") if bad.height else None


@mergeable("training_base_models", merge=_first_merge, suspects=_base_suspects)
def training_base_models_partial(
    trace: Trace, allowed: list[str], op_type: OpTypes = "training"
) -> pl.DataFrame:
    """Each job's first record (earliest window, then file order) in this part."""
    frame = rows(trace, op_mask(op_type), "job_id", "model_hash_prefix")
    firsts = frame.select(
        "job_id", "model_hash_prefix", pl.col("ws").cast(pl.Float64), pl.col("row").cast(pl.Int64)
    )
    return _first_merge(mg.as_text(firsts, ["job_id", "model_hash_prefix"]))
