"""The Dask planner reads how a rule partitions from the rule's own ``@rule`` metadata:
every registered kind declares it, and a plugin kind scales out like a built-in one."""

from __future__ import annotations

import threading

import polars as pl
import pytest

from inspectorate.commitment import RULES, check, load_commitment, rule, violation
from inspectorate.commitment._model import RuleSpec
from inspectorate.scale._dask import plan
from inspectorate.trace import GenSpec, Trace, generate_trace, rechain


def test_every_registered_rule_declares_its_partition():
    undeclared = [name for name in RULES.names() if RULES[name].partition is None]
    assert undeclared == []


@pytest.mark.parametrize(
    ("kind", "params", "expected"),
    [
        ("idle_must_be_zero", {}, "record"),
        ("timestamp_monotonic", {}, "chip_id"),
        ("aggregate_flop_cap", {"threshold": 1.0}, "job_id"),  # the default scope
        ("aggregate_flop_cap", {"threshold": 1.0, "scope": "per_operator"}, "operator"),
        ("aggregate_flop_cap", {"threshold": 1.0, "scope": "global"}, None),
        ("hash_chain_intact", {}, "chain"),
        ("upstream_refs_dag_validity", {}, "dag"),
        ("window_completeness", {}, None),
    ],
)
def test_the_planner_follows_the_declaration(kind, params, expected):
    assert plan(RuleSpec(kind, kind, params)) == expected


SEEN: list[int] = []  # frame heights the plugin rule was called on
_LOCK = threading.Lock()


@pytest.fixture()
def keyed_plugin():
    """A third party's rule kind, keyed by job: a job with more than ``limit`` records."""

    @rule("test_plugin_job_size", partition="keyed:job_id")
    def job_size(trace, limit: int = 10):
        """Test only: a job whose record count exceeds ``limit`` (needs every record of the job)."""
        with _LOCK:
            SEEN.append(trace.frame.height)
        counts = trace.frame.group_by("job_id").len().filter(pl.col("len") > limit).sort("job_id")
        for job, n in counts.iter_rows():
            ids = trace.frame.filter(pl.col("job_id") == job)["record_id"]
            yield violation(f"job {job!r} has {n} records", ids, job=job, records=n, limit=limit)

    SEEN.clear()
    yield "test_plugin_job_size"
    RULES._entries.pop("test_plugin_job_size")


def test_a_plugin_rule_with_partition_metadata_runs_partitioned_on_dask(keyed_plugin):
    pytest.importorskip("distributed")
    from distributed import Client, LocalCluster

    from inspectorate.scale import check_distributed

    records = generate_trace(GenSpec(chips=8, hours=0.5, scenario="training", seed=3)).records
    for i, record in enumerate(records):  # eight jobs of uneven sizes
        record["job_id"] = f"job-{i % 11 % 8}"
    trace = Trace.from_records(rechain(records))
    jobs = trace.frame.group_by("job_id").len()
    limit = int(jobs["len"].min())  # the larger jobs fire, the smallest do not
    commitment = load_commitment({"id": "t", "deterministic_rules": [{"kind": keyed_plugin, "limit": limit}]})
    assert plan(commitment.rules[0]) == "job_id"
    local = check(trace, commitment)
    assert local.verdict == 0 and 0 < len(local.violations) < jobs.height
    SEEN.clear()
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, dashboard_address=None) as cluster:
        with Client(cluster) as client:
            distributed = check_distributed(trace, commitment, client=client, partitions=3)
    facts = [(v.rule_id, v.message, v.record_ids, v.count) for v in distributed.violations]
    assert (distributed.verdict, facts) == (
        local.verdict,
        [(v.rule_id, v.message, v.record_ids, v.count) for v in local.violations],
    )
    # the map saw hash partitions of the trace, never the whole of it
    assert len(SEEN) > 3 and max(SEEN[:3]) < len(trace)
