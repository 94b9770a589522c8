"""``check`` out of core: every rule over on-disk partitions, never the whole frame.

The rule functions are the registered ones; what each call sees follows the rule kind's
``partition`` declaration (``commitment/_partition.py``), as on the Dask engine:

- **map** (one task per part: some row groups of a file, or some layout files; the
  worker reads its own part): count each rule's matched records; run the ``record``
  rules and keep the records they flag (all the part's records when a violation names
  fewer ids than it counts); scatter the rows, hash-bucketed by each ``keyed`` rule's
  column, to spill files; write (row, record_id, hash, prev hash) to spill files
  bucketed by row range for the chain, and record ids and refs, bucketed by a hash of the
  id string, for the DAG.
- **reduce**: a ``record`` rule runs once more on the records the parts flagged; a
  ``keyed`` rule runs on each key bucket (every group whole in one; read in batches of
  whole groups), then once more on the groups any bucket flagged; keyed and global
  kinds with a mergeable partial are folded and settled instead (``_partials``); the
  chain's row ranges are each checked by a task and stitched in order; the DAG's
  buckets are joined one at a time (``scale/_dag.py``'s ``_bucket``) and judged by the
  rule's own ``dag_violations``. ``driver`` rules read the published head and count.
- kinds with no partition and no partial run on every record, read back from a spill.

Memory is one part (``PART_ROWS``) or one spill bucket (``SPILL_ROWS``), plus the records
some rule flags. In the layout a record's row is its ``seq``; if the seqs are not exactly
0..N-1 (a layout edited by hand) the rows differ from the single-chain reader's, and
the check falls back to the in-memory engine, which is exact by construction.
"""

from __future__ import annotations

import math
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, NamedTuple

import polars as pl

from inspectorate.commitment._check import Verdict, assemble, matched_counts, rule_plan, run_rule
from inspectorate.commitment._model import Commitment, RuleSpec
from inspectorate.commitment._registry import Violation
from inspectorate.commitment.rules.provenance import dag_violations
from inspectorate.errors import InputError, NotPositional
from inspectorate.scale._dag import _bucket
from inspectorate.scale._dask import _chain_part, _flagged, plan
from inspectorate.scale._partials import (
    Folded,
    gather_part,
    judge_merged,
    merged_rules,
    owned,
    part_states,
    rule_paths,
)
from inspectorate.scale._parts import (
    PART_ROWS,
    Part,
    Source,
    layout_source,
    load_part,
    parquet_source,
    rule_frame,
)
from inspectorate.scale._parts import (
    read_spill as _read,
)
from inspectorate.scale._parts import (
    write_spill as _write,
)
from inspectorate.trace import Trace
from inspectorate.trace._canonical import GENESIS, ChainBreak
from inspectorate.trace._fastchain import frame_hashes
from inspectorate.trace._frame import records_from_frame

SPILL_ROWS = 2_000_000  # records per spill bucket (key, chain and DAG buckets)
# A single Parquet file above this many records is checked out of core by default.
OUTCORE_ABOVE = 5_000_000


@dataclass(frozen=True)
class Plan:
    """What every task needs: the rules, how each partitions, where spills go."""

    specs: tuple[RuleSpec, ...]
    hows: tuple[str | None, ...]  # plan(spec): record | chain | dag | driver | a key column | None
    buckets: int
    chain_buckets: int
    spill: str
    chain_rows: int
    ordered: bool = False  # parts are row ranges in order: each checks its own chain range
    # rule i is a keyed or global kind with a mergeable partial (``commitment/_partial``):
    # its parts' states are merged, and only its suspect groups' records are gathered
    merged: tuple[bool, ...] = ()

    def bucketed(self) -> list[tuple[int, str | None]]:
        """(index, how) of the rules on the spill path (no partial)."""
        return [(i, h) for i, h in enumerate(self.hows) if not (self.merged and self.merged[i])]

    def keys(self) -> list[str]:
        special = ("record", "chain", "dag", "driver", None)
        return list(dict.fromkeys(h for _, h in self.bucketed() if h is not None and h not in special))

    def has(self, how: str | None) -> bool:
        return how in [h for _, h in self.bucketed()]


class PartCost(NamedTuple):
    """One map task: its records, wall and CPU seconds, and the process that ran it."""

    rows: int
    wall_s: float
    cpu_s: float
    pid: int


class _OutOfCoreTrace(Trace):
    """What driver and chain rules read: the record count, the head, the chain's breaks
    (checked from the spills) and the last record; its frame is the last row only."""

    def __init__(self, source: Source, frame: pl.DataFrame, breaks: list[ChainBreak], last: dict[str, Any]):
        super().__init__(frame, None, source.path, source.head)
        self.head_records = source.head_records
        self._count, self._breaks, self._last = source.records, breaks, last
        self.phases: dict[str, float] = {}  # seconds per phase (map, reduce, ...), for benches
        self.paths: dict[str, str] = {}  # rule id -> how the engine judged it (partial, bucket, whole)
        self.parts = len(source.parts)
        self.part_costs: list[PartCost] = []  # per map task, for benches and projections

    def __len__(self) -> int:
        return self._count

    def _chain_breaks(self) -> list[ChainBreak]:
        return list(self._breaks)

    def last_record(self) -> dict[str, Any]:
        return dict(self._last)


def open_source(path: Path, head: str | None = None, part_rows: int = PART_ROWS) -> Source:
    """The trace at ``path`` (a partitioned layout or a Parquet file) as parts, with its
    published head (``head``, else a single file's sidecar)."""
    from inspectorate.trace._io import read_head_sidecar

    if (path / "manifest.json").is_file():
        return replace(layout_source(path, part_rows), head=head)
    if path.suffix != ".parquet" or not path.is_file():
        raise InputError("out-of-core check reads a Parquet file or a partitioned layout", path)
    published, covers = read_head_sidecar(path) if head is None else (head, None)
    return replace(parquet_source(path, part_rows), head=published, head_records=covers)


def wants_out_of_core(path: Path) -> bool:
    """A partitioned layout, or a Parquet file above ``OUTCORE_ABOVE`` records."""
    if (path / "manifest.json").is_file():
        return True
    if path.suffix != ".parquet" or not path.is_file():
        return False
    import pyarrow.parquet as pq

    try:
        return pq.ParquetFile(path).metadata.num_rows > OUTCORE_ABOVE
    except (OSError, ValueError):
        return False  # the reader names the problem


# ---------------------------------------------------------------- map (one part)


def _suspects(violations: list[Violation], frame: pl.DataFrame, key: str | None) -> pl.DataFrame:
    """The rows a reduce must see again: those named (every group they belong to, for a
    keyed rule), or all of ``frame`` when some flagged record went unnamed."""
    named = _flagged(violations)
    if named is None:
        return frame
    hit = frame.filter(pl.col("record_id").is_in(pl.Series(sorted(named), dtype=pl.Utf8).implode()))
    if key is None:
        return hit
    return frame.filter(pl.col(key).is_in(hit[key].unique().implode()))


def _scatter(frame: pl.DataFrame, column: str, buckets: int, spill: str, name: str, part: int) -> None:
    """``frame`` split by a hash of ``column``'s string into ``buckets`` spill folders."""
    bucket = (pl.col(column).cast(pl.Utf8).hash() % buckets).alias("_b")
    for (b,), rows in frame.with_columns(bucket).partition_by("_b", as_dict=True).items():
        _write(rows.drop("_b"), spill, f"{name}/b={b}", part)


def _chain_spill(frame: pl.DataFrame, plan_: Plan, part: int) -> None:
    """(row, record_id, hash, prev hash) by row range, for a source whose parts are not
    row ranges (the layout): ``chain_breaks`` reads the ranges back in order."""
    rows = frame.select(
        "row", "record_id", pl.Series("h", frame_hashes(frame), dtype=pl.Utf8), "prev_record_hash"
    )
    rows = rows.with_columns((pl.col("row") // plan_.chain_rows).alias("_b"))
    for (b,), chunk in rows.partition_by("_b", as_dict=True).items():
        _write(chunk.drop("_b"), plan_.spill, f"chain/b={b}", part)


def _dag_spill(rules: pl.DataFrame, plan_: Plan, part: int) -> None:
    """Ids bucketed by their hash, refs by the hash of the id they name: a ref and its
    target always meet in one bucket."""
    _scatter(rules.select("record_id", "row"), "record_id", plan_.buckets, plan_.spill, "dag/ids", part)
    edges = (
        rules.select("row", "record_id", "upstream_refs")
        .with_columns(pl.int_ranges(pl.col("upstream_refs").list.len()).alias("_pos"))
        .explode(["upstream_refs", "_pos"])
        .filter(pl.col("upstream_refs").is_not_null())
    )
    _scatter(edges, "upstream_refs", plan_.buckets, plan_.spill, "dag/refs", part)


def map_part(part: Part, plan_: Plan) -> dict[str, Any]:
    """One part, read by the task that judges it: matched counts, the record rules'
    suspects, and the spills of the keyed, chain, DAG and global work."""
    wall, cpu = time.perf_counter(), time.process_time()
    frame = load_part(part)
    rules = rule_frame(frame)
    trace = Trace(rules, None, "<partition>")
    for i, (spec, how) in enumerate(zip(plan_.specs, plan_.hows)):
        if how == "record":
            found = run_rule(spec, trace)
            if found:
                _write(_suspects(found, rules, None), plan_.spill, f"record/{i}", part.index)
    if plan_.keys():
        # the refs as their count, as in the lean frame rules already read (``n_refs``):
        # a group's rules never resolve ref ids, and the lists are most of a spill's bytes
        counted = rules.with_columns(pl.col("upstream_refs").list.len().alias("n_refs")).drop("upstream_refs")
        for key in plan_.keys():
            _scatter(counted, key, plan_.buckets, plan_.spill, f"key={key}", part.index)
    chain = _chain_part(frame) if plan_.ordered else None
    if not plan_.ordered:
        _chain_spill(frame, plan_, part.index)
    if plan_.has("dag"):
        _dag_spill(rules, plan_, part.index)
    if plan_.has(None):
        _write(rules, plan_.spill, "global", part.index)
    # a copy that owns its buffers: a filtered row can keep the part's list buffers
    # alive (≈ 200 bytes a record held by the driver across parts, measured at 10^7)
    last = frame.filter(pl.col("row") == pl.col("row").max()).head(1)
    last = owned(last)
    out = {
        "index": part.index,
        "states": part_states(trace, plan_),
        "matched": matched_counts(trace, list(plan_.specs)),
        "chain": None if chain is None else (*chain, frame["record_id"][0], frame["record_id"][-1]),
        "rows": frame.height,
        "last": (int(last["row"][0]), records_from_frame(last)[0], rule_frame(last)),
    }
    # the part's cost where it ran (a worker's pid is not the driver's), for projections
    out["cost"] = PartCost(frame.height, time.perf_counter() - wall, time.process_time() - cpu, os.getpid())
    return out


# ---------------------------------------------------------------- reduce


def _batches(files: list[Path], column: str, rows: int) -> list[list[Any] | None]:
    """The bucket's groups in batches of at most ``rows`` records (a larger group alone;
    ``[None]``: read it whole): a bucket of few groups can hold far more than its share
    (10^8 records, 1,000 chips in 50 buckets: 1.6x), and a keyed rule judges each group
    alone, so any split into whole groups is exact."""
    key = pl.col(column).cast(pl.Utf8)
    counts = pl.scan_parquet(files).group_by(key).len().collect().sort(column)
    if counts["len"].sum() <= rows:
        return [None]
    batches: list[list[Any]] = [[]]
    held = 0
    for value, n in counts.iter_rows():
        if batches[-1] and held + n > rows:
            batches.append([])
            held = 0
        batches[-1].append(value)
        held += n
    return list(batches)


def reduce_key_bucket(bucket: int, column: str, plan_: Plan) -> dict[int, pl.DataFrame]:
    """Every keyed rule on ``column`` over one bucket (its groups whole), read in batches
    of whole groups of at most ``chain_rows`` (the spill size) records: the rows of the groups each rule
    flagged, by rule index."""
    files = sorted((Path(plan_.spill) / f"key={column}" / f"b={bucket}").glob("p-*.parquet"))
    if not files:
        return {}
    found_rows: dict[int, list[pl.DataFrame]] = {}
    for batch in _batches(files, column, plan_.chain_rows):
        lazy = pl.scan_parquet(files)
        if batch is not None:
            lazy = lazy.filter(pl.col(column).cast(pl.Utf8).is_in(pl.Series(batch, dtype=pl.Utf8).implode()))
        rows = lazy.collect().sort("row")
        trace = Trace(rows, None, "<bucket>")
        for i, (spec, how) in enumerate(zip(plan_.specs, plan_.hows)):
            if how == column:
                found = run_rule(spec, trace)
                if found:
                    found_rows.setdefault(i, []).append(_suspects(found, rows, column))
    return {i: pl.concat(frames).sort("row") for i, frames in found_rows.items()}


def reduce_dag_bucket(bucket: int, plan_: Plan) -> tuple[pl.DataFrame, pl.DataFrame]:
    """One DAG bucket's duplicate ids and bad edges (the edges keep their record_id)."""
    ids = _read(plan_.spill, f"dag/ids/b={bucket}")
    refs = _read(plan_.spill, f"dag/refs/b={bucket}")
    return _bucket([ids], [refs])


def stitched_breaks(
    source: Source, chains: list[tuple[str, str, int, list[ChainBreak], str, str]]
) -> list[ChainBreak]:
    """The chain of an ordered source from its parts' own checks (each from its first
    prev hash): their breaks, shifted to file rows, plus a break wherever a part does not
    start from the previous part's last hash, and at the head."""
    breaks: list[ChainBreak] = []
    prev_hash, prev_id = GENESIS, None
    for part, (first, last, _rows, internal, first_id, last_id) in zip(source.parts, chains):
        offset = part.offset
        if first != prev_hash:
            breaks.append(ChainBreak(offset, first_id, max(offset - 1, 0), prev_id, prev_hash, first))
        breaks += [
            replace(b, index=b.index + offset, suspect_index=max(b.index + offset - 1, 0)) for b in internal
        ]
        prev_hash, prev_id = last, last_id
    if source.head is not None and source.head != prev_hash:
        records = source.records
        breaks.append(ChainBreak(records, None, max(records - 1, 0), prev_id, source.head, prev_hash))
    return breaks


def check_chain_bucket(bucket: int, plan_: Plan) -> tuple[Any, ...] | None:
    """One row range of the chain spill checked from its own first prev hash: (first
    row, rows, first prev, first id, last hash, last id, internal breaks), or None."""
    rows = _read(plan_.spill, f"chain/b={bucket}")
    if rows is None:
        return None
    lo = int(rows["row"][0])
    if rows["row"][-1] != lo + rows.height - 1 or rows["row"].is_duplicated().any():
        raise NotPositional
    checked = rows.with_columns(
        pl.col("h").shift(1).alias("expected"), pl.col("record_id").shift(1).alias("suspect")
    ).slice(1)
    bad = checked.filter(pl.col("prev_record_hash") != pl.col("expected"))
    breaks = [
        ChainBreak(row, rid, max(row - 1, 0), suspect, exp, found)
        for row, rid, suspect, exp, found in bad.select(
            "row", "record_id", "suspect", "expected", "prev_record_hash"
        ).iter_rows()
    ]
    first = (rows["prev_record_hash"][0], rows["record_id"][0])
    return lo, rows.height, *first, rows["h"][-1], rows["record_id"][-1], breaks


def chain_breaks(
    plan_: Plan, records: int, head: str | None, runner: Any = None
) -> tuple[list[ChainBreak], str]:
    """The chain's breaks from the row-range spills: each range checked by a task of its
    own (``check_chain_bucket``, on a worker under Dask), stitched here in row order
    (a break wherever a range does not start from the previous range's last hash)."""
    runner = runner or _Serial()
    breaks: list[ChainBreak] = []
    prev_hash, prev_id, expect = GENESIS, None, 0
    for found in runner.map(check_chain_bucket, list(range(plan_.chain_buckets)), plan_=plan_):
        if found is None:
            continue
        lo, height, first_prev, first_id, last_hash, last_id, internal = found
        if lo != expect:
            raise NotPositional
        if first_prev != prev_hash:
            breaks.append(ChainBreak(lo, first_id, max(lo - 1, 0), prev_id, prev_hash, first_prev))
        breaks += internal
        prev_hash, prev_id, expect = last_hash, last_id, expect + height
    if expect != records:
        raise NotPositional
    if head is not None and head != prev_hash:
        breaks.append(ChainBreak(records, None, max(records - 1, 0), prev_id, head, prev_hash))
    return breaks, prev_hash


# ---------------------------------------------------------------- the driver


class _Serial:
    """Tasks run one after another in this process (the local out-of-core engine)."""

    def map(self, fn: Callable[..., Any], items: list[Any], **kwargs: Any) -> list[Any]:
        return [fn(item, **kwargs) for item in items]

    def each(self, fn: Callable[..., Any], items: list[Any], **kwargs: Any) -> Iterator[Any]:
        return (fn(item, **kwargs) for item in items)


class _OnDask:
    """Tasks as Dask futures: a worker reads its own part or bucket from disk (the spill
    folder must be on a file system every worker sees)."""

    def __init__(self, client: Any):
        self.client = client

    def map(self, fn: Callable[..., Any], items: list[Any], **kwargs: Any) -> list[Any]:
        # (no keyword may be named ``key``: Client.map takes it as the tasks' name)
        if not items:
            return []
        return list(self.client.gather(self.client.map(fn, items, pure=False, **kwargs)))

    def each(self, fn: Callable[..., Any], items: list[Any], **kwargs: Any) -> Iterator[Any]:
        """Results as they complete, each future released once read."""
        from distributed import as_completed

        for future in as_completed(self.client.map(fn, items, pure=False, **kwargs)):
            result = future.result()
            future.release()
            yield result


def check_out_of_core(
    path: str | Path,
    commitment: Commitment,
    *,
    head: str | None = None,
    client: Any = None,
    part_rows: int = PART_ROWS,
    spill_rows: int = SPILL_ROWS,
    spill_dir: str | Path | None = None,
    on_rule: Callable[[str], None] | None = None,
) -> tuple[Verdict, Trace]:
    """``check`` of the Parquet file or partitioned layout at ``path`` over its on-disk
    parts (on ``client``'s Dask workers when given, else here, one task at a time). Returns
    the verdict and a trace standing for the records (count, head, last record) for the
    report; the verdict and violations are the in-memory engine's."""
    path = Path(path)
    source = open_source(path, head, part_rows)
    if source.records == 0:
        raise InputError("empty trace (no records)", path)
    started = time.perf_counter()
    specs = rule_plan(commitment)
    spill = Path(tempfile.mkdtemp(prefix="inspectorate-spill-", dir=spill_dir))
    try:
        plan_ = Plan(
            tuple(specs),
            tuple(plan(s) for s in specs),
            max(math.ceil(source.records / spill_rows), 1),
            max(math.ceil(source.records / spill_rows), 1),
            str(spill),
            spill_rows,
            source.ordered,
            merged_rules(specs, [plan(s) for s in specs]),
        )
        runner = _OnDask(client) if client is not None else _Serial()
        return _run(source, commitment, plan_, runner, started, on_rule)
    except NotPositional:
        from inspectorate.commitment import check
        from inspectorate.trace import read_trace

        trace = read_trace(path, head=head)  # exact, in memory: the layout's seqs have gaps
        return check(trace, commitment, on_rule=on_rule), trace
    finally:
        shutil.rmtree(spill, ignore_errors=True)


def _run(
    source: Source,
    commitment: Commitment,
    plan_: Plan,
    runner: Any,
    started: float,
    on_rule: Callable[[str], None] | None,
) -> tuple[Verdict, Trace]:
    t_start = time.perf_counter()
    folded = Folded(plan_)
    matched = dict.fromkeys((s.id for s in plan_.specs), 0)
    chains: dict[int, Any] = {}
    costs: list[PartCost] = []
    final: tuple[int, dict[str, Any], pl.DataFrame] | None = None
    # folded as they arrive: O(groups) states and a few numbers per part, not every result
    for m in runner.each(map_part, list(source.parts), plan_=plan_):
        folded.add(m["states"])
        for rule_id, count in m["matched"].items():
            matched[rule_id] += count
        if m["chain"] is not None:
            chains[m["index"]] = m["chain"]
        if final is None or m["last"][0] > final[0]:
            final = m["last"]
        costs.append(m["cost"])
    t_map = time.perf_counter()
    suspects = folded.settle()
    if suspects:
        runner.map(gather_part, list(source.parts), plan_=plan_, wanted=suspects)
    t_settle = time.perf_counter()
    assert final is not None  # a source has at least one part
    _, last, tail = final
    keyed: dict[int, list[pl.DataFrame]] = {}
    for key in plan_.keys():
        for found in runner.map(reduce_key_bucket, list(range(plan_.buckets)), column=key, plan_=plan_):
            for i, rows in found.items():
                keyed.setdefault(i, []).append(rows)
    dag = runner.map(reduce_dag_bucket, list(range(plan_.buckets)), plan_=plan_) if plan_.has("dag") else []
    t_buckets = time.perf_counter()
    if plan_.ordered:
        breaks = stitched_breaks(source, [chains[p.index] for p in source.parts])
    else:
        breaks, _ = chain_breaks(plan_, source.records, source.head, runner)
    whole = _read(plan_.spill, "global") if plan_.has(None) else None
    meta = _OutOfCoreTrace(source, tail, breaks, last)
    meta.paths = rule_paths(plan_, suspects)
    meta.part_costs = costs
    t_chain = time.perf_counter()
    violations: list[Violation] = []
    timings: dict[str, float] = {}
    for i, (spec, how) in enumerate(zip(plan_.specs, plan_.hows)):
        t0 = time.perf_counter()
        if plan_.merged[i]:
            violations.extend(judge_merged(i, spec, plan_, suspects, meta))
        else:
            violations.extend(_judge(i, spec, how, plan_, keyed, dag, whole, meta))
        timings[spec.id] = time.perf_counter() - t0
        if on_rule is not None:
            on_rule(spec.id)
    meta.phases = {
        "map": t_map - t_start,
        "partials": t_settle - t_map,
        "buckets": t_buckets - t_settle,
        "chain_and_global_read": t_chain - t_buckets,
        "judge": time.perf_counter() - t_chain,
    }
    verdict = assemble(
        commitment, list(plan_.specs), violations, source.records, time.perf_counter() - started, timings
    )
    verdict = replace(
        verdict,
        matched=matched,
        rule_kinds={s.id: s.kind for s in plan_.specs},
        head_checked=source.head is not None,
    )
    return verdict, meta


def _judge(
    i: int,
    spec: RuleSpec,
    how: str | None,
    plan_: Plan,
    keyed: dict[int, list[pl.DataFrame]],
    dag: list[tuple[pl.DataFrame, pl.DataFrame]],
    whole: pl.DataFrame | None,
    meta: _OutOfCoreTrace,
) -> list[Violation]:
    """One rule's violations from what the map and the buckets left for it."""
    if how in ("chain", "driver"):
        return run_rule(spec, meta)
    if how == "dag":
        return [replace(v, rule_id=spec.id, kind=spec.kind) for v in _dag_verdict(dag)]
    if how is None:
        assert whole is not None
        return run_rule(spec, Trace(whole, None, meta.source, meta.head))
    if how == "record":
        rows = _read(plan_.spill, f"record/{i}")
    else:
        rows = pl.concat(keyed[i]).sort("row") if i in keyed else None
    return run_rule(spec, Trace(rows, None, meta.source)) if rows is not None else []


def _dag_verdict(found: list[tuple[pl.DataFrame, pl.DataFrame]]) -> list[Violation]:
    dupes = pl.concat([d for d, _ in found], how="diagonal_relaxed").sort("row")
    bad = (
        pl.concat([e for _, e in found if e.height], how="diagonal_relaxed")
        if any(e.height for _, e in found)
        else found[0][1].with_columns(pl.lit(None, dtype=pl.Utf8).alias("record_id"))
    )
    bad = bad.sort(["row", "_pos"]).drop("_pos")
    return list(dag_violations(dupes, bad, pl.Series("record_id", [], dtype=pl.Utf8)))


def check_on_cluster(
    path: str | Path,
    commitment: Commitment,
    *,
    head: str | None = None,
    scheduler: str | None = None,
    on_rule: Callable[[str], None] | None = None,
) -> tuple[Verdict, Trace]:
    """``check_out_of_core`` with its tasks on a Dask cluster (``scheduler``, else a
    LocalCluster of worker processes on this machine): each worker reads its own parts."""
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        from inspectorate.errors import MissingExtra

        raise MissingExtra(exc.name or "distributed", "scale") from exc
    try:
        client = Client(scheduler) if scheduler else Client(LocalCluster(n_workers=2, threads_per_worker=1))
    except OSError as exc:
        raise InputError(f"cannot reach the Dask scheduler {scheduler} ({exc})") from None
    try:
        return check_out_of_core(path, commitment, head=head, client=client, on_rule=on_rule)
    finally:
        cluster = client.cluster
        client.close()
        if cluster is not None:
            cluster.close()
