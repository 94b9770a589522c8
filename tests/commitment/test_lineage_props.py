"""The columnar model count (decides) and the per-job explanation (names records) agree."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from builders import base, chained
from inspectorate.commitment.rules._common import model_counts
from inspectorate.commitment.rules.uniqueness import _models_in

patterns = st.lists(
    st.tuples(st.sampled_from("abc"), st.sampled_from(["training", "training", "eval", "inference"])),
    min_size=6,
    max_size=6,
)


@settings(max_examples=150, deadline=None)
@given(patterns)
def test_model_counts_match_explanation(pattern):
    records = base(chips=2, windows=3)
    for record, (model, op) in zip(records, pattern):
        record["model_hash_prefix"] = f"sha256:{model * 16}"
        record["op_type"] = op
    frame = chained(records).frame
    columnar = model_counts(frame, ["job_id"])["models"].item()
    assert columnar == _models_in(frame)[0]
