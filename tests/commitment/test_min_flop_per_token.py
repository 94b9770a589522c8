"""min_flop_per_token: a floor scoped to the declared model's records when ``models`` is given."""

from __future__ import annotations

from builders import TOKENS, N, base, chained
from inspectorate.commitment import RuleSpec
from inspectorate.commitment._check import run_rule
from inspectorate.commitment._model import validate_params


def _run(records, **params):
    return run_rule(
        RuleSpec("floor", "min_flop_per_token", validate_params("min_flop_per_token", params, "t")),
        chained(records),
    )


def test_floor_scoped_to_declared_models():
    records = base()
    records[2]["flops"] = 6 * N * TOKENS / 2  # under-reported by half on the declared model
    records[5]["model_hash_prefix"] = "sha256:bbbbbbbbbbbbbbbb"  # another, smaller model trained honestly
    records[5]["flops"] = 6 * N * TOKENS / 10
    found = _run(records, floor=5.5 * N, models=["sha256:aaaaaaaaaaaaaaaa"])
    assert [v.record_ids for v in found] == [(records[2]["record_id"],)]
    assert "1 record(s) report under" in found[0].message
    unscoped = _run(records, floor=5.5 * N)
    assert sorted(unscoped[0].record_ids) == sorted([records[2]["record_id"], records[5]["record_id"]])
    assert _run(base(), floor=5.5 * N, models=["sha256:aaaaaaaaaaaaaaaa"]) == []
