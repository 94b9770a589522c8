"""lineage_flop_cap: one logical run capped across the job ids it is booked under."""

from __future__ import annotations

from builders import chained
from inspectorate.commitment import check_rule
from inspectorate.commitment._check import run_rule
from inspectorate.commitment._model import RuleSpec, validate_params
from inspectorate.trace import format_time

T0 = 1777021200.0


def run(chip_jobs, gap_after=None, cut_refs=False):
    """Chips x 6 windows of 4e17 FLOP; ``chip_jobs`` maps window -> job; optional gap (s)."""
    rows, shift = [], 0.0
    for chip in ("c0", "c1"):
        prev = None
        shift = 0.0
        for m, job in enumerate(chip_jobs):
            if gap_after is not None and m == gap_after:
                shift = 3600.0
            new_job = prev is not None and rows[prev]["job_id"] != job
            refs = [] if prev is None or (cut_refs and new_job) else [rows[prev]["record_id"]]
            rows.append(
                {
                    "record_id": f"rec_{chip}_{m}",
                    "prev_record_hash": "",
                    "chip_id": chip,
                    "job_id": job,
                    "operator": "lab",
                    "cluster_region": "eu",
                    "window_start": format_time(T0 + 60 * m + shift),
                    "window_end": format_time(T0 + 60 * (m + 1) + shift),
                    "op_type": "training",
                    "flops": 4e17,
                    "tokens_processed": 1000,
                    "batch_size": 1,
                    "sequence_length": 1000,
                    "model_hash_prefix": f"sha256:{job}",
                    "dataset_fingerprint": "sha256:d",
                    "upstream_refs": refs,
                    "data_source_tags": [],
                    "code_commit": "git:x@1234567",
                    "config_hash": "sha256:c",
                }
            )
            prev = len(rows) - 1
    return chained(rows)


SPLIT = ["a"] * 3 + ["b"] * 3  # 2.4e18 per job, 4.8e18 together


def fired(trace, **params):
    params = {"threshold": 3e18, **params}
    spec = RuleSpec(
        "lineage_flop_cap", "lineage_flop_cap", validate_params("lineage_flop_cap", params, "test")
    )
    return run_rule(spec, trace)


def test_conformance():
    check_rule("lineage_flop_cap", run(SPLIT), run(["a"] * 6, gap_after=None), {"threshold": 3e18})


def test_linked_by_refs_or_by_handover():
    assert len(fired(run(SPLIT))) == 1  # refs cross the split and the chips go straight on
    assert len(fired(run(SPLIT, cut_refs=True))) == 1  # handover alone
    assert fired(run(SPLIT, cut_refs=True), handover_s=0) == []  # documented: nothing links them
    assert fired(run(SPLIT, gap_after=3, cut_refs=True)) == []  # a real pause: two runs
    assert len(fired(run(SPLIT, gap_after=3))) == 1  # a pause, but lineage says one run


def test_one_job_over_the_cap_is_left_to_aggregate_flop_cap():
    assert fired(run(["a"] * 6)) == []
    (v,) = fired(run(SPLIT))
    assert v.evidence["jobs"] == ["a", "b"] and v.evidence["total_flops"] == 4.8e18


def test_job_fragmentation_counts_windows_when_asked():
    # one-window jobs padded with a second record on another chip in the same window
    padded = run(["a", "b", "c", "d", "e", "f"])  # chips c0 and c1 each hold jobs a..f, one window each
    spec = RuleSpec(
        "job_fragmentation",
        "job_fragmentation",
        validate_params("job_fragmentation", {"min_windows_per_job": 2}, "test"),
    )
    plain = RuleSpec(
        "job_fragmentation", "job_fragmentation", validate_params("job_fragmentation", {}, "test")
    )
    assert run_rule(plain, padded) == []  # two records per job: not short by records
    (v,) = run_rule(spec, padded)
    assert v.evidence["short_jobs"] == 6 and "2 windows" in v.message
    assert run_rule(spec, run(["a"] * 3 + ["b"] * 3)) == []
