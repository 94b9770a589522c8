"""``check`` on a Dask distributed cluster: the chain and every rule over partitions.

The rule functions are the registered ones, never a second implementation. What changes
is what each call sees:

- **The chain**: the trace is cut into contiguous row ranges; each task verifies its
  range on its own (the range's first ``prev_record_hash`` as genesis) and returns its
  last hash and internal breaks; the reduce stitches ranges in order (a range whose first
  prev hash is not the previous range's last hash is a break). ``hash_chain_intact``
  then runs on the stitched breaks.
- **Record-local rules** (a record's verdict depends on that record alone: caps on
  FLOP/token, idle work, forbidden tags/operators, registries, physical peak): map =
  the rule on each row range; reduce = the same rule on the records any range flagged,
  which gives exactly the message and counts of a run on the whole trace.
- **Keyed rules** (a verdict depends on one group: a job, a chip, an operator): rows are
  hash-partitioned by that key so every group is whole in one partition; map = the rule
  on each partition; reduce = the same rule on all rows of the groups any partition
  flagged.
- **The DAG of upstream refs**: refs joined against record ids with both sides
  partitioned by a hash of the id string, one bucket per task (``scale/_dag.py``); the
  rule's own ``dag_violations`` turns the buckets' findings into violations.
- **Global rules** (need the whole trace: window completeness,
  cross-job and cross-model comparisons, a global cap) and kinds that declare no
  partition run once, on one worker, over the whole trace.

Which of these a rule gets is the rule kind's own declaration (``@rule(partition=...)``,
``commitment/_partition.py``), never a table of names here: a plugin's rule scales too.

A map whose violation lists more records than it names (``count`` above ``MAX_IDS``)
cannot tell the reduce every flagged group; that rule then runs globally. Verdicts and
violations equal the local engine's (tests compare them on every generator scenario).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import polars as pl

from inspectorate.commitment._check import Verdict, assemble, rule_plan, run_rule, with_coverage
from inspectorate.commitment._model import Commitment, RuleSpec
from inspectorate.commitment._registry import RULES, Violation, load_plugins
from inspectorate.errors import InputError, MissingExtra
from inspectorate.scale._dag import reduce_dag, submit_dag
from inspectorate.trace import Trace
from inspectorate.trace._canonical import GENESIS, ChainBreak
from inspectorate.trace._trace import row_group_batches


def plan(spec: RuleSpec) -> str | None:
    """How a rule is distributed: "chain", "dag", "record", a key column, or None
    (global), as the rule kind declares on ``@rule(partition=...)``: the engine knows
    no rule by name, so a plugin's kind scales like a built-in one."""
    load_plugins()
    part = RULES[spec.kind].partition_for(spec.params)
    if part.how == "keyed":
        return part.key
    return None if part.how == "global" else part.how


class _StitchedTrace(Trace):
    """A trace whose chain breaks were computed by the cluster."""

    def __init__(self, trace: Trace, breaks: list[ChainBreak]):
        super().__init__(trace.frame, None, trace.source, trace.head, trace.backing)
        self._breaks = breaks

    def chain_breaks(self) -> list[ChainBreak]:
        return list(self._breaks)


def _chain_part(frame: pl.DataFrame) -> tuple[str, str, int, list[ChainBreak]]:
    """One row range checked on its own: (first prev hash, last hash, rows, breaks)."""
    from inspectorate.trace import _ccols
    from inspectorate.trace._fastchain import _compiled_chain_breaks, chunk_chain_breaks, frame_hashes

    first = str(frame["prev_record_hash"][0])
    if _ccols.compiled():
        breaks, last = _compiled_chain_breaks(iter([frame]), None, first)
        return first, last, frame.height, breaks
    breaks = chunk_chain_breaks(iter([frame]), None, genesis=first)
    return first, frame_hashes(frame.tail(1))[0], frame.height, breaks


def _stitch(
    parts: list[tuple[str, str, int, list[ChainBreak]]], head: str | None, ids: pl.Series
) -> list[ChainBreak]:
    """The ranges' breaks in file order, plus a break wherever a range does not start
    from the previous range's last hash (``ids``: record_id in file order)."""
    breaks: list[ChainBreak] = []
    prev_hash, prev_id, offset = GENESIS, None, 0
    for first, last, rows, internal in parts:
        if first != prev_hash:
            breaks.append(ChainBreak(offset, ids[offset], max(offset - 1, 0), prev_id, prev_hash, first))
        breaks += [
            replace(b, index=b.index + offset, suspect_index=max(b.index + offset - 1, 0)) for b in internal
        ]
        prev_hash, prev_id, offset = last, ids[offset + rows - 1], offset + rows
    if head is not None and head != prev_hash:
        breaks.append(ChainBreak(offset, None, max(offset - 1, 0), prev_id, head, prev_hash))
    return breaks


def _map_rule(spec: RuleSpec, frame: pl.DataFrame) -> list[Violation]:
    return run_rule(spec, Trace(frame, None, "<partition>"))


def _flagged(violations: list[Violation]) -> set[str] | None:
    """Record ids the violations name; None when some were left unnamed (count > ids),
    or when a violation names none: its group cannot be told, so every row goes on."""
    out: set[str] = set()
    for v in violations:
        if (v.count is not None and v.count > len(v.record_ids)) or not v.record_ids:
            return None
        out.update(v.record_ids)
    return out


def _ranges(frame: pl.DataFrame, parts: int) -> list[pl.DataFrame]:
    size = max(-(-frame.height // parts), 1)
    return [frame.slice(lo, size) for lo in range(0, frame.height, size)]


def _by_key(frame: pl.DataFrame, key: str, parts: int) -> list[pl.DataFrame]:
    bucket = (pl.col(key).cast(pl.Utf8).hash() % parts).alias("_part")
    return [p.drop("_part") for p in frame.with_columns(bucket).partition_by("_part", maintain_order=True)]


def check_distributed(
    trace: Trace,
    commitment: Commitment,
    scheduler: str | None = None,
    partitions: int | None = None,
    client: Any = None,
    on_rule: Callable[[str], None] | None = None,
) -> Verdict:
    """``check`` with the chain and rules run as Dask tasks (``scheduler``: a
    distributed scheduler address; none: a LocalCluster in this process)."""
    if len(trace) == 0:
        raise InputError("empty trace (no records)", trace.source)
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise MissingExtra(exc.name or "distributed", "scale") from exc
    own = None
    if client is None:
        try:
            own = Client(scheduler) if scheduler else Client(LocalCluster(n_workers=2, processes=False))
        except OSError as exc:
            raise InputError(f"cannot reach the Dask scheduler {scheduler} ({exc})") from None
        client = own
    try:
        return _run(client, trace, commitment, partitions, on_rule)
    finally:
        if own is not None:
            cluster = own.cluster
            own.close()
            if cluster is not None:
                cluster.close()


def _chain_groups(path: str, groups: list[int]) -> tuple[str, str, int, list[ChainBreak]]:
    """A run of Parquet row groups checked by the worker that reads them (lean traces)."""
    from inspectorate.trace._fastchain import verify_row_groups

    first, last, rows, found = verify_row_groups(path, groups)
    breaks = [ChainBreak(i, rid, max(i - 1, 0), sid, exp, got) for i, rid, sid, exp, got in found]
    return first, last, rows, breaks


def _chain_tasks(client, trace: Trace, ranges: list, parts: int) -> list:
    """Lean traces (rule columns only in memory): workers read their row groups from the
    file; otherwise they check the scattered row ranges."""
    if not trace.lean:
        return [client.submit(_chain_part, part, pure=False) for part in ranges]
    path = str(trace._backing_path())
    return [
        client.submit(_chain_groups, path, groups, pure=False) for groups, _ in row_group_batches(path, parts)
    ]


def _map_global(spec: RuleSpec, frame: pl.DataFrame, source: str, backing: Any) -> list[Violation]:
    """A global rule over the whole trace (with its backing file: the DAG rule streams refs)."""
    return run_rule(spec, Trace(frame, None, source, backing=backing))


def _run(client, trace: Trace, commitment, partitions, on_rule) -> Verdict:
    started = time.perf_counter()
    parts = partitions or 2 * max(len(client.scheduler_info().get("workers", {})), 1)
    frame = trace.frame
    ranges = client.scatter(_ranges(frame, parts), hash=False)  # no tokenizing of frames
    keyed: dict[str, Any] = {}
    whole = client.scatter(frame, hash=False)
    specs = rule_plan(commitment)
    pending: dict[str, Any] = {}
    for spec in specs:  # submit every map first, so the cluster works on all rules at once
        how = plan(spec)
        if how == "chain":
            pending[spec.id] = _chain_tasks(client, trace, ranges, parts)
        elif how == "dag":
            pending[spec.id] = submit_dag(client, trace, ranges, parts)
        elif how == "driver":
            pending[spec.id] = run_rule(spec, trace)
        elif how == "record":
            pending[spec.id] = [client.submit(_map_rule, spec, part, pure=False) for part in ranges]
        elif how is not None:
            if how not in keyed:
                keyed[how] = client.scatter(_by_key(frame, how, parts), hash=False)
            pending[spec.id] = [client.submit(_map_rule, spec, part, pure=False) for part in keyed[how]]
        else:
            pending[spec.id] = client.submit(
                _map_global, spec, whole, trace.source, trace.backing, pure=False
            )
    violations: list[Violation] = []
    timings: dict[str, float] = {}
    for spec in specs:
        t0 = time.perf_counter()
        violations.extend(_reduce(spec, client.gather(pending[spec.id]), trace))
        timings[spec.id] = time.perf_counter() - t0
        if on_rule is not None:
            on_rule(spec.id)
    verdict = assemble(commitment, specs, violations, len(trace), time.perf_counter() - started, timings)
    return with_coverage(verdict, trace, specs)


def _reduce(spec: RuleSpec, mapped: Any, trace: Trace) -> list[Violation]:
    how = plan(spec)
    if how == "chain":
        return run_rule(spec, _StitchedTrace(trace, _stitch(mapped, trace.head, trace.frame["record_id"])))
    if how is None or how == "driver":
        return mapped
    if how == "dag":
        return [replace(v, rule_id=spec.id, kind=spec.kind) for v in reduce_dag(mapped, trace)]
    found = [v for part in mapped for v in part]
    if not found:
        return []
    flagged = _flagged(found)
    frame = trace.frame
    if flagged is None:  # some flagged records unnamed: judge this rule on the whole trace
        return run_rule(spec, trace)
    hit = pl.col("record_id").is_in(pl.Series(sorted(flagged), dtype=pl.Utf8).implode())
    if how != "record":
        groups = frame.filter(hit).select(how).unique()
        hit = pl.col(how).is_in(groups[how].implode())
    return run_rule(spec, Trace(frame.filter(hit), None, trace.source))  # no backing: the subset only
