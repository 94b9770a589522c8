"""How a rule kind partitions on a cluster: metadata the rule declares on ``@rule``.

A distributed engine (``inspectorate.scale``) reads it instead of knowing rules by
name, so a plugin's rule scales out exactly like a built-in one. The declaration is a
promise about the rule's semantics, which the engine relies on for correctness:

- ``"record"``: a record's verdict depends on that record alone (a cap on FLOP/token,
  a forbidden tag). The engine runs the rule on row ranges, then once more on the
  records any range flagged.
- ``"keyed:COLUMN"``: a verdict depends on the records sharing one value of
  ``COLUMN`` (a job, a chip, an operator). The engine hash-partitions rows by the
  column so every group is whole in one partition, then re-runs the rule on the
  flagged groups.
- ``"global"``: the rule needs the whole trace (cross-job comparisons, a cap over the
  trace, window completeness); it runs once, over everything. Always correct, never
  parallel: the safe choice when unsure.
- ``"chain"``: the rule reads only ``trace.chain_breaks()``; the engine checks the
  chain by ranges and hands the rule the stitched breaks.
- ``"driver"``: the rule reads only the trace's metadata (its published head), which
  the driver holds and the workers' copies of the frame do not: it runs on the driver.
- ``"dag"``: the upstream-ref DAG, judged by ``provenance.dag_violations`` over a
  hash-partitioned join of refs and record ids (the built-in DAG rule's semantics).

A partition that depends on a parameter (``aggregate_flop_cap``'s ``scope``) is
declared with ``by_param("scope", per_job="keyed:job_id", ...)``. Malformed metadata
is a ``PluginError`` when the decorator runs.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, get_args, get_origin

from inspectorate.errors import PluginError
from inspectorate.trace._schema import FIELD_SET

HOWS = ("record", "keyed", "global", "chain", "dag", "driver")


@dataclass(frozen=True)
class Partition:
    """One resolved partitioning: ``how`` (one of HOWS) and, for ``keyed``, the column."""

    how: str
    key: str | None = None

    def __str__(self) -> str:
        return f"keyed:{self.key}" if self.how == "keyed" else self.how


@dataclass(frozen=True)
class ByParam:
    """A partitioning chosen by the value of one rule parameter (see ``by_param``)."""

    param: str
    choices: Mapping[Any, Partition]
    otherwise: Partition | None = None

    def resolve(self, value: Any) -> Partition:
        if value in self.choices:
            return self.choices[value]
        if self.otherwise is None:
            raise PluginError(f"no partition declared for {self.param}={value!r}")
        return self.otherwise


def by_param(param: str, otherwise: str | None = None, **choices: str) -> ByParam:
    """Partition by the value of ``param``: ``choices`` maps a value to a declaration
    (``"record"``, ``"keyed:COLUMN"``, ``"global"``, ...), ``otherwise`` covers the rest."""
    return ByParam(
        param,
        {value: parse_partition(text, f"{param}={value}") for value, text in choices.items()},
        None if otherwise is None else parse_partition(otherwise, f"{param} (otherwise)"),
    )


def parse_partition(text: object, where: str = "partition") -> Partition:
    """``"record"`` | ``"keyed:COLUMN"`` | ``"global"`` | ``"chain"`` | ``"dag"`` -> Partition;
    anything else (an unknown word, a column that is not a record field) is a PluginError."""
    if isinstance(text, Partition):
        return text
    if not isinstance(text, str):
        raise PluginError(f"{where}: partition must be a string like 'keyed:job_id', got {text!r}")
    how, _, key = text.partition(":")
    if how not in HOWS:
        raise PluginError(
            f"{where}: unknown partition {text!r}; known: record, keyed:COLUMN, global, chain, dag, driver"
        )
    if how == "keyed":
        if key not in FIELD_SET:
            raise PluginError(f"{where}: partition {text!r} must name a record field to key by, got {key!r}")
        return Partition(how, key)
    if key:
        raise PluginError(f"{where}: partition {how!r} takes no column, got {text!r}")
    return Partition(how)


def declare(
    name: str, partition: str | ByParam | None, params: Mapping[str, inspect.Parameter]
) -> Partition | ByParam | None:
    """The rule's checked declaration (None: undeclared, which engines run globally). A
    ``by_param`` must name a parameter of the rule and cover every value of a Literal one."""
    where = f"rule kind {name!r}"
    if partition is None:
        return None
    if not isinstance(partition, ByParam):
        return parse_partition(partition, where)
    if partition.param not in params:
        raise PluginError(f"{where}: partition by {partition.param!r}, which is not a parameter of the rule")
    annotation = params[partition.param].annotation
    if get_origin(annotation) is Literal and partition.otherwise is None:
        missing = [v for v in get_args(annotation) if v not in partition.choices]
        if missing:
            raise PluginError(f"{where}: no partition declared for {partition.param}={missing[0]!r}")
    return partition


def resolve(
    declared: Partition | ByParam | None, params: Mapping[str, Any], defaults: Mapping[str, Any]
) -> Partition:
    """The partitioning of one configured rule (an undeclared rule runs globally)."""
    if declared is None:
        return Partition("global")
    if isinstance(declared, Partition):
        return declared
    value = params.get(declared.param, defaults.get(declared.param))
    return declared.resolve(value)
