"""Rule behaviour the differential suite (tests/reference) found missing, one test each:
the rule fires on the smallest trace that breaks it, naming the records, and stays
quiet on the honest trace."""

from __future__ import annotations

from builders import base, chained, record
from inspectorate.commitment import RuleSpec, known_kinds
from inspectorate.commitment._check import run_rule
from inspectorate.commitment._model import validate_params
from inspectorate.trace import format_time, parse_time

known_kinds()  # registers the built-in kinds


def run(kind, records, **params):
    return run_rule(RuleSpec(kind, kind, validate_params(kind, params, "test")), chained(records))


def edit(records, index, **fields):
    records = [dict(r) for r in records]
    records[index].update(fields)
    return records


HONEST = base()  # 2 chips x 4 one-minute training windows, r0000..r0007
INVENTORY = {
    "expected_window_start": "2026-04-24T09:00:00Z",
    "expected_window_end": "2026-04-24T09:04:00Z",
    "expected_chips": ["gpu-00", "gpu-01"],
}


def test_window_completeness_quiet_on_the_honest_trace():
    assert run("window_completeness", HONEST, **INVENTORY) == []


def test_window_completeness_flags_a_record_after_the_declared_end():
    extra = record(8, chip=0, window=4, upstream_refs=["r0007"])
    [found] = run("window_completeness", [*HONEST, extra], **INVENTORY)
    assert found.record_ids == ("r0008",)
    assert "1 record(s) lie outside the declared window or chip inventory" in found.message
    assert "1 after 2026-04-24T09:04:00Z" in found.message


def test_window_completeness_flags_a_record_before_the_declared_start():
    early = record(8, chip=1, window=-1)
    [found] = run("window_completeness", [early, *HONEST], **INVENTORY)
    assert found.record_ids == ("r0008",)
    assert "1 before 2026-04-24T09:00:00Z" in found.message


def test_window_completeness_flags_records_on_an_undeclared_chip():
    ghost = [record(8 + w, chip=7, window=w, upstream_refs=["r0007"]) for w in range(2)]
    [found] = run("window_completeness", [*HONEST, *ghost], **INVENTORY)
    assert found.record_ids == ("r0008", "r0009")
    assert "2 on undeclared chips ['gpu-07']" in found.message
    assert found.evidence["undeclared_chips"] == ["gpu-07"]


def test_window_completeness_flags_a_dropped_window_hidden_by_a_stretched_neighbour():
    # chip 0's window 2 (r0004) is gone and r0002 now claims 09:01-09:03: every slot is
    # still covered in time, but slot 09:02 has no record of its own
    records = [dict(r) for r in HONEST if r["record_id"] != "r0004"]
    records[2]["window_end"] = "2026-04-24T09:03:00Z"
    [found] = run("window_completeness", records, **INVENTORY)
    assert found.record_ids == ("r0002",)
    assert "chip 'gpu-00' has no record for 1 of 4 slots" in found.message
    assert "first missing slot starts 2026-04-24T09:02:00Z" in found.message


def test_window_completeness_accepts_jitter_within_a_slot():
    records = [dict(r) for r in HONEST]
    start = parse_time(records[4]["window_start"]) + 20
    records[4]["window_start"] = format_time(start)
    assert run("window_completeness", records, **INVENTORY) == []


def test_op_type_flop_ratio_covers_invented_and_idle_labels_by_default():
    records = edit(edit(HONEST, 2, op_type="preprocessing"), 5, op_type="idle")
    [found] = run("op_type_flop_ratio", records, training_threshold=3e10)
    assert found.record_ids == ("r0002", "r0005")
    assert "2 non-training record(s) have a training-shaped FLOP/token ratio" in found.message
    assert found.evidence["op_types"] == ["idle", "preprocessing"]


def test_op_type_flop_ratio_exempts_scoring_only_evals_but_not_token_free_inference():
    evals = edit(HONEST, 3, op_type="eval", tokens_processed=0)
    assert run("op_type_flop_ratio", evals) == []
    serving = edit(HONEST, 3, op_type="inference", tokens_processed=0)
    [found] = run("op_type_flop_ratio", serving)
    assert found.record_ids == ("r0003",)
    assert "max inf" in found.message


def test_require_upstream_refs_exempts_only_the_job_s_first_record_in_the_file():
    # the job's root (earliest in time) appended after a record that already descends
    # from nothing written before it: only one record may be a root, the first written
    records = [dict(r) for r in HONEST]
    records.insert(0, records.pop(2))  # r0002 first in the file, with its ref to r0001
    records[0]["upstream_refs"] = []
    [found] = run("require_upstream_refs", records)
    assert found.record_ids == ("r0000",)
    assert "1 record(s) after their job's first declare no upstream_refs" in found.message


def test_model_hash_consistency_judges_idle_records():
    records = edit(
        HONEST, 7, op_type="idle", flops=0.0, tokens_processed=0, model_hash_prefix="sha256:" + "e" * 16
    )
    [found] = run("model_hash_consistency", records)
    assert found.record_ids == ("r0007",)
    assert "changes model_hash_prefix without a config change (2 models" in found.message
    quiet = edit(HONEST, 7, op_type="idle", flops=0.0, tokens_processed=0)
    assert run("model_hash_consistency", quiet) == []


def test_two_hashes_in_one_window_are_two_models():
    # the last window: chip 1 reports a new hash while chip 0 still reports the old one
    records = edit(HONEST, 7, model_hash_prefix="sha256:" + "b" * 16)
    [found] = run("model_uniqueness_per_job", records)
    assert found.record_ids == ("r0007",)
    assert "job 'job-a' works on 2 models (limit 1)" in found.message
    [found] = run("model_hash_consistency", records)
    assert found.record_ids == ("r0007",)
    # the same change on both chips at once is the model evolving: one model
    evolved = edit(
        edit(HONEST, 6, model_hash_prefix="sha256:" + "b" * 16), 7, model_hash_prefix="sha256:" + "b" * 16
    )
    assert run("model_uniqueness_per_job", evolved) == []
    assert run("model_hash_consistency", evolved) == []


def test_forbidden_operators_takes_a_listed_name_literally():
    # "ops[red-team]" as a glob matches "opsr", "opse", ... but not the name itself
    records = edit(HONEST, 4, operator="ops[red-team]")
    [found] = run("forbidden_operators", records, operators=["ops[red-team]"])
    assert found.record_ids == ("r0004",)
    assert "1 record(s) from forbidden operator(s) ['ops[red-team]']" in found.message
    assert run("forbidden_operators", HONEST, operators=["ops[red-team]"]) == []


def test_forbidden_tags_take_a_listed_name_literally():
    records = edit(HONEST, 1, data_source_tags=["corpus:web", "corpus:x[1]"])
    [found] = run("forbidden_data_source_tags", records, tags=["corpus:x[1]"])
    assert found.record_ids == ("r0001",)
    assert "forbidden data sources: corpus:x[1]" in found.message
    assert run("forbidden_data_source_tags", HONEST, tags=["corpus:x[1]"]) == []


def test_timestamp_monotonic_names_every_window_a_long_one_overlaps():
    # chip 0's first window stretched over its next two: both overlap it, not only the next
    records = [dict(r) for r in HONEST]
    records[0]["window_end"] = "2026-04-24T09:03:00Z"
    [found] = run("timestamp_monotonic", records)
    assert found.record_ids == ("r0002", "r0004")
    assert "2 window(s) overlap an earlier window on the same chip" in found.message
    assert run("timestamp_monotonic", HONEST) == []
