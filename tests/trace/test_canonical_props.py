"""Property tests: canonical JSON is the seed's json.dumps; the columnar path agrees."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from inspectorate.trace import Trace, canonical_json, chain_head, rechain, verify_chain
from inspectorate.trace._fastchain import canonical_lines

text = st.text(max_size=12)
finite = st.floats(min_value=0, max_value=1e30, allow_nan=False, allow_infinity=False)
json_leaf = st.none() | st.booleans() | st.integers(-(10**12), 10**12) | finite | text
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)

seconds = st.integers(0, 10**9)


@st.composite
def records(draw):
    start = draw(seconds)
    out = {
        "record_id": draw(text),
        "prev_record_hash": "0" * 64,
        "chip_id": draw(text),
        "job_id": draw(text),
        "operator": draw(text),
        "cluster_region": draw(text),
        "window_start": "2026-01-01T00:00:00Z",
        "window_end": f"2026-01-01T00:00:0{start % 10}Z",
        "op_type": draw(st.sampled_from(["training", "inference", "eval", "idle", 'x"y', "é"])),
        "flops": draw(finite | st.integers(0, 10**18)),
        "tokens_processed": draw(st.integers(0, 10**12)),
        "batch_size": draw(st.integers(0, 10**6)),
        "sequence_length": draw(st.integers(0, 10**6)),
        "model_hash_prefix": draw(text),
        "dataset_fingerprint": draw(text),
        "upstream_refs": draw(st.lists(text, max_size=3)),
        "data_source_tags": draw(st.lists(text, max_size=3)),
        "code_commit": draw(text),
        "config_hash": draw(text),
    }
    out.update(
        draw(
            st.dictionaries(st.sampled_from(["_extra", "_real_training", "Zz", "zz"]), json_value, max_size=2)
        )
    )
    return out


@given(st.dictionaries(text, json_value, max_size=6))
def test_canonical_json_is_the_seed_definition(obj):
    assert canonical_json(obj) == json.dumps(obj, sort_keys=True, separators=(",", ":"))


@settings(max_examples=60, deadline=None)
@given(st.lists(records(), min_size=1, max_size=6))
def test_columnar_canonical_lines_match_json(recs):
    trace = Trace.from_records(recs)
    assert canonical_lines(trace.frame) == [canonical_json(r) for r in recs]


@settings(max_examples=60, deadline=None)
@given(st.lists(records(), min_size=1, max_size=6), st.data())
def test_rechained_chain_verifies_and_any_edit_breaks_it(recs, data):
    chain = rechain(recs)
    head = chain_head(chain)
    assert verify_chain(chain, head) == []
    assert Trace.from_records(chain, head=head).frame.height == len(chain)
    index = data.draw(st.integers(0, len(chain) - 1))
    field = data.draw(st.sampled_from(sorted(chain[index])))
    edited = [dict(r) for r in chain]
    edited[index][field] = "tampered" if edited[index][field] != "tampered" else "other"
    assert verify_chain(edited, head)
