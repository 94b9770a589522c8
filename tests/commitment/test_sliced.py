"""Group-bys computed over row slices (bounded memory at 10^7 records) give the
verdicts and violations of one group-by over the whole trace, for every rule kind on
every generator scenario, with slices far smaller than a group."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import inspectorate.commitment.rules._common as common
from inspectorate.commitment import check, load_commitment
from inspectorate.data import commitment_path, seed_path
from inspectorate.trace import SCENARIOS, GenSpec, generate_trace, read_trace

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
from check_throughput import all_rules_commitment


def _facts(verdict):
    return verdict.verdict, [(v.rule_id, v.message, v.record_ids, v.count) for v in verdict.violations]


def _both(monkeypatch, trace, commitment):
    whole = check(trace, commitment)
    monkeypatch.setattr(common, "SLICE_ROWS", 7)
    sliced = check(trace, commitment)
    monkeypatch.undo()
    return _facts(whole), _facts(sliced)


@pytest.mark.parametrize("scenario", SCENARIOS)
def test_sliced_group_bys_give_the_same_verdicts(monkeypatch, scenario):
    spec = GenSpec(chips=5, hours=0.4, scenario=scenario, seed=2)
    body = all_rules_commitment(spec.chips, spec.hours)
    body["deterministic_rules"].append(
        {"kind": "no_splitting", "threshold": 1e18, "window_hours": 72, "id": "tight_split"}
    )
    whole, sliced = _both(monkeypatch, generate_trace(spec), load_commitment(body))
    assert sliced == whole
    if scenario == "fragmented_jobs":
        assert whole[0] == 0


@pytest.mark.parametrize("name", ["real_laptop_clean", "bloom_real", "alibaba_real"])
def test_sliced_group_bys_on_shipped_traces(monkeypatch, name):
    commitment = load_commitment(commitment_path("frontier-training-cap"))
    whole, sliced = _both(monkeypatch, read_trace(seed_path(name)), commitment)
    assert sliced == whole


def test_slices_keep_first_appearance_order(monkeypatch):
    """A job swaps its commit and swaps back: the flagged records are those of the value
    first seen later, however the slices cut the job's records."""
    from builders import base, chained

    records = base(chips=2, windows=12)
    for record in records[8:12]:
        record["code_commit"] = "swapped"
        record["dataset_fingerprint"] = "sha256:other"
    commitment = load_commitment(
        {
            "id": "t",
            "deterministic_rules": [
                {"kind": "code_commit_per_job_stable"},
                {"kind": "dataset_provenance"},
                {"kind": "no_splitting", "threshold": 1.0},
            ],
        }
    )
    whole, sliced = _both(monkeypatch, chained(records), commitment)
    assert sliced == whole
    flagged = {rule: ids for rule, _, ids, _ in whole[1]}
    assert list(flagged["code_commit_per_job_stable"]) == [r["record_id"] for r in records[8:12]]
