"""``upstream_refs_dag_validity`` on a Dask cluster: a hash-partitioned join.

On one machine the rule resolves refs against every record id held as sorted hashes
(12 bytes a record). At 10^10 records that is 120 GB, more than a worker holds, so the
cluster splits both sides by the same hash of the id string:

- map (per row range): record ids -> bucket ``hash(record_id) % B``; each ref (row, its
  position in the list, the ref string) -> bucket ``hash(ref) % B``. A ref and the id it
  names always land in the same bucket.
- per bucket: the first row of each id, the records whose id is not unique, and the
  refs that name no id of the bucket (phantoms) or a row not before their own.
- reduce: the buckets' findings in file order, turned into violations by the same
  ``dag_violations`` the rule itself uses.

Every worker holds one bucket of ids and refs: 1/B of the trace.
"""

from __future__ import annotations

import operator
from typing import Any

import polars as pl

from inspectorate.commitment._registry import Violation
from inspectorate.commitment.rules.provenance import BAD_EDGE, dag_violations
from inspectorate.trace import Trace
from inspectorate.trace._trace import row_group_batches

_NO_IDS = pl.DataFrame(schema={"record_id": pl.Utf8, "row": pl.UInt32})
_NO_REFS = pl.DataFrame(schema={"row": pl.UInt32, "upstream_refs": pl.Utf8, "_pos": pl.Int64})


def _ids_map(part: pl.DataFrame, buckets: int) -> dict[int, pl.DataFrame]:
    keyed = part.select("record_id", "row").with_columns((pl.col("record_id").hash() % buckets).alias("_b"))
    return {int(k[0]): v.drop("_b") for k, v in keyed.partition_by("_b", as_dict=True).items()}


def _refs_map(part: pl.DataFrame, buckets: int) -> dict[int, pl.DataFrame]:
    edges = (
        part.select("row", "upstream_refs")
        .with_columns(pl.int_ranges(pl.col("upstream_refs").list.len()).alias("_pos"))
        .explode(["upstream_refs", "_pos"])
        .filter(pl.col("upstream_refs").is_not_null())
        .with_columns((pl.col("upstream_refs").hash() % buckets).alias("_b"))
    )
    return {int(k[0]): v.drop("_b") for k, v in edges.partition_by("_b", as_dict=True).items()}


def _refs_of_groups(path: str, groups: list[int], offset: int) -> pl.DataFrame:
    """(row, upstream_refs) of some Parquet row groups, read by the worker (lean traces)."""
    import pyarrow.parquet as pq

    table = pq.ParquetFile(path).read_row_groups(groups, columns=["upstream_refs"])
    refs = pl.DataFrame(pl.from_arrow(table)).select(pl.col("upstream_refs").cast(pl.List(pl.Utf8)))
    return refs.with_row_index("row", offset=offset)


def _bucket(
    ids: list[pl.DataFrame | None], refs: list[pl.DataFrame | None]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One bucket's findings: (dupes: record_id, row), (bad edges: row, _pos, upstream_refs, ref_row).
    A map that put nothing in this bucket gave None."""
    id_frame = pl.concat([f for f in ids if f is not None] or [_NO_IDS])
    ref_frame = pl.concat([f for f in refs if f is not None] or [_NO_REFS])
    firsts = id_frame.group_by("record_id").agg(
        pl.col("row").min().cast(pl.Int64).alias("ref_row"), pl.len().alias("n")
    )
    shared = firsts.filter(pl.col("n") > 1).select("record_id")
    dupes = id_frame.join(shared, on="record_id", how="semi")
    targets = firsts.select(pl.col("record_id").alias("upstream_refs"), "ref_row")
    bad = ref_frame.join(targets, on="upstream_refs", how="left").filter(BAD_EDGE)
    return dupes, bad


def submit_dag(client: Any, trace: Trace, ranges: list, parts: int) -> list:
    """Futures of every bucket's findings (``ranges``: the scattered row ranges)."""
    buckets = max(parts, 1)
    id_maps = [client.submit(_ids_map, part, buckets, pure=False) for part in ranges]
    if trace.lean:  # the refs are not in memory: workers read them from the file
        path = str(trace._backing_path())
        sources = [
            client.submit(_refs_of_groups, path, groups, first, pure=False)
            for groups, first in row_group_batches(path, parts)
        ]
    else:
        sources = ranges
    ref_maps = [client.submit(_refs_map, part, buckets, pure=False) for part in sources]

    def pick(maps: list, b: int) -> list:
        return [client.submit(operator.methodcaller("get", b), m, pure=False) for m in maps]

    return [client.submit(_bucket, pick(id_maps, b), pick(ref_maps, b), pure=False) for b in range(buckets)]


def reduce_dag(found: list[tuple[pl.DataFrame, pl.DataFrame]], trace: Trace) -> list[Violation]:
    """The buckets' findings in file order, judged by the rule's own ``dag_violations``."""
    dupes = pl.concat([d for d, _ in found]).sort("row")
    bad = pl.concat([e for _, e in found]).sort(["row", "_pos"]).drop("_pos")
    return list(dag_violations(dupes, bad, trace.frame["record_id"]))
