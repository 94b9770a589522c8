"""Whatever bytes a trace file holds, the reader returns a Trace or raises InputError."""

from __future__ import annotations

import json

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inspectorate.data import seed_path
from inspectorate.errors import InputError
from inspectorate.trace import read_trace

GOOD = json.loads(seed_path("legit_finetune").read_text().splitlines()[0])
values = (
    st.none()
    | st.booleans()
    | st.integers(-(2**70), 2**70)
    | st.floats()
    | st.text(max_size=8)
    | st.lists(st.integers(), max_size=2)
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(field=st.sampled_from(sorted(GOOD) + ["extra"]), value=values, drop=st.booleans())
def test_field_level_garbage(tmp_path, field, value, drop):
    record = dict(GOOD)
    if drop:
        record.pop(field, None)
    else:
        record[field] = value
    path = tmp_path / "t.jsonl"
    path.write_text(json.dumps(record) + "\n")
    _read_or_input_error(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(raw=st.binary(max_size=300))
def test_byte_level_garbage(tmp_path, raw):
    path = tmp_path / "t.jsonl"
    path.write_bytes(json.dumps(GOOD).encode()[: len(raw) % 200] + raw)
    _read_or_input_error(path)


def _read_or_input_error(path):
    try:
        read_trace(path).chain_breaks()
    except InputError as exc:
        assert exc.reason and "\n" not in exc.one_line()
