"""The compiled canonicaliser spells and hashes exactly what json.dumps + hashlib give,
over adversarial values; the pure-Python fallback gives the same answers."""

from __future__ import annotations

import hashlib
import json
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspectorate.trace import FIELDS, Trace, _ccols, canonical_json, rechain
from inspectorate.trace._fastchain import _compiled_digests, canonical_lines, frame_chain_breaks

# every Unicode plane (astral characters need surrogate pairs in ensure_ascii output),
# control characters, quotes and backslashes; lone surrogates cannot live in a frame
text = st.text(st.characters(exclude_categories=["Cs"]), max_size=10) | st.sampled_from(
    ['"', "\\", "\x00", "\x1f", "\x7f", "\u2028", "😀", "é\n\t\b\f\r", "/"]
)
HARD = [
    0.0,
    -0.0,
    1e16,
    1e15,
    1e-7,
    1e-4,
    1.5e-5,
    5e-324,
    2.2250738585072014e-308,
    1.7976931348623157e308,
    9007199254740993.0,
    0.1,
    1 / 3,
    1e22,
    123456789012345678.0,
    2.5e-05,
]
floats = st.floats(allow_nan=False, allow_infinity=False) | st.sampled_from(HARD)
json_leaf = st.none() | st.booleans() | st.integers(-(2**80), 2**80) | floats | text
json_value = st.recursive(
    json_leaf,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=6,
)


@st.composite
def records(draw):
    out = {
        name: draw(text)
        for name in (
            "record_id",
            "chip_id",
            "job_id",
            "operator",
            "cluster_region",
            "op_type",
            "model_hash_prefix",
            "dataset_fingerprint",
            "code_commit",
            "config_hash",
        )
    }
    out.update(
        prev_record_hash="0" * 64,
        window_start="2026-01-01T00:00:00Z",
        window_end="2026-01-01T00:01:00Z",
        flops=draw(
            st.floats(min_value=0, allow_nan=False, allow_infinity=False)
            | st.integers(0, 2**70)
            | st.sampled_from([h for h in HARD if h >= 0])
        ),
        tokens_processed=draw(st.integers(0, 2**63 - 1)),
        batch_size=draw(st.integers(0, 10**6)),
        sequence_length=draw(st.integers(0, 10**6)),
        upstream_refs=draw(st.lists(text, max_size=3)),
        data_source_tags=draw(st.lists(text, max_size=3)),
    )
    out.update(draw(st.dictionaries(st.sampled_from(["_x", "zz", "Aa", "flopsy"]), json_value, max_size=2)))
    return out


def _expected(recs):
    return [json.dumps(r, sort_keys=True, separators=(",", ":")) for r in recs]


def test_the_extension_is_built():
    # `pip install` (editable or wheel) compiles it; a missing compiler leaves the fallback
    assert _ccols.compiled()


@settings(max_examples=150, deadline=None)
@given(st.lists(records(), min_size=1, max_size=5))
def test_compiled_spelling_and_digests_equal_json(recs):
    recs = rechain(recs)
    trace = Trace.from_records(recs)
    assert canonical_lines(trace.frame) == _expected(recs)
    want = b"".join(hashlib.sha256(line.encode()).digest() for line in _expected(recs))
    assert _compiled_digests(trace.frame) == want
    assert frame_chain_breaks(trace.frame) == []


@settings(max_examples=300, deadline=None)
@given(st.lists(floats, min_size=1, max_size=20))
def test_float_spelling_is_repr(values):
    import polars as pl

    frame = pl.DataFrame({"flops": values}, schema={"flops": pl.Float64})
    data, offsets, bad = _ccols.spell(frame, ["flops"])
    got = [data[offsets[i] : offsets[i + 1]].decode() for i in range(len(values))]
    assert not bad.any()
    assert got == [json.dumps({"flops": v}, separators=(",", ":")) for v in values]
    assert all(math.copysign(1, float(g[9:-1])) == math.copysign(1, v) for g, v in zip(got, values))


@settings(max_examples=60, deadline=None)
@given(st.lists(records(), min_size=1, max_size=4), st.integers(0, 3))
def test_a_changed_record_breaks_the_chain_in_both_paths(recs, which):
    recs = rechain(recs)
    which %= len(recs)
    tampered = [dict(r) for r in recs]
    tampered[which]["batch_size"] += 1
    trace = Trace.from_records(tampered)
    compiled = frame_chain_breaks(trace.frame)
    saved = _ccols._ext
    try:
        _ccols._ext = None
        fallback = frame_chain_breaks(trace.frame)
    finally:
        _ccols._ext = saved
    expected = list(trace.chain_breaks())  # the dict path (records kept)
    assert compiled == fallback == expected
    assert (which < len(recs) - 1) == bool(expected)


@pytest.fixture
def pure_python(monkeypatch):
    monkeypatch.setattr(_ccols, "_ext", None)
    assert not _ccols.compiled()


@settings(max_examples=40, deadline=None)
@given(recs=st.lists(records(), min_size=1, max_size=4))
def test_fallback_spells_the_same(recs):
    saved = _ccols._ext
    try:
        _ccols._ext = None
        recs = rechain(recs)
        trace = Trace.from_records(recs)
        assert canonical_lines(trace.frame) == _expected(recs)
        assert frame_chain_breaks(trace.frame) == []
    finally:
        _ccols._ext = saved


@pytest.mark.parametrize("compiled", [True, False])
def test_every_ascii_control_and_del_is_escaped_as_json_does(compiled, monkeypatch):
    """json.dumps(ensure_ascii=True) escapes 0x00-0x1f and DEL (0x7f); hypothesis found the
    Polars fallback spelling DEL raw, which would have hashed a different chain."""
    if not compiled:
        monkeypatch.setattr(_ccols, "_ext", None)
    seed = json.loads(_seed_lines()[0])
    base = {k: seed[k] for k in FIELDS}  # no extra fields: those always take the json path
    recs = rechain([dict(base, config_hash=chr(c) + "x", record_id=f"r{c}") for c in (*range(32), 0x7F)])
    trace = Trace.from_records(recs)
    assert canonical_lines(trace.frame) == _expected(recs)
    assert frame_chain_breaks(trace.frame) == []


def test_fallback_is_used_when_forced(pure_python):
    recs = rechain([json.loads(line) for line in _seed_lines()])
    trace = Trace.from_records(recs)
    assert frame_chain_breaks(trace.frame) == []
    assert canonical_lines(trace.frame) == [canonical_json(r) for r in recs]


def test_environment_switch_forces_the_fallback():
    import subprocess
    import sys

    code = "from inspectorate.trace import _ccols; print(_ccols.compiled())"
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env={**__import__("os").environ, "INSPECTORATE_PURE_PYTHON": "1"},
        check=True,
    )
    assert out.stdout.strip() == "False"


def _seed_lines():
    from inspectorate.data import seed_path

    return seed_path("real_laptop_clean").read_text().splitlines()


def test_sliced_frames_stay_on_the_compiled_path():
    """Slices carry Arrow offsets (floats and their text differ): no row may fall to json."""
    from inspectorate.trace import GenSpec, generate_trace
    from inspectorate.trace._fastchain import _SORTED
    from inspectorate.trace._frame import records_from_frame

    frame = generate_trace(GenSpec(chips=5, hours=1)).frame
    for lo, size in [(37, 100), (1, 299), (150, 150)]:
        part = frame.slice(lo, size)
        assert _ccols._column(part["flops"])[6] is not None  # Polars' float text is passed
        digests, bad = _ccols.canonical_digests(part, _SORTED)
        assert not bad.any()
        want = b"".join(hashlib.sha256(canonical_json(r).encode()).digest() for r in records_from_frame(part))
        assert digests == want


def test_hashing_through_hashlib_objects_gives_the_same_digests():
    """Where OpenSSL cannot be found by dlsym, C hashes through hashlib objects instead."""
    import _hashlib

    from inspectorate.trace import GenSpec, generate_trace
    from inspectorate.trace._fastchain import _SORTED

    frame = generate_trace(GenSpec(chips=3, hours=0.5)).frame
    fast, _ = _ccols.canonical_digests(frame, _SORTED)
    assert _ccols._ext.use_libcrypto(None) is False
    try:
        slow, bad = _ccols.canonical_digests(frame, _SORTED)
    finally:
        assert _ccols._ext.use_libcrypto(_hashlib.__file__) is True
    assert slow == fast and not bad.any()
