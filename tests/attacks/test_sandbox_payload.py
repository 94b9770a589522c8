"""Hostile output: whatever bytes the child writes and however it exits, ``run_sandboxed``
returns a result (``run_mutation`` raises only ``SandboxError``), and accepts records only
from one well-formed frame of valid window records after a zero exit.

Payloads are injected by a test-only child: code run with the Python layer off that
writes the given bytes to the runner's result pipe and exits with the given status,
before the runner can answer, so the real supervisor and parser read them.
"""

from __future__ import annotations

import json
import math

import pytest
from attack_data import small_trace
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inspectorate.attacks import Limits, SandboxError, SandboxResult, run_mutation, run_sandboxed
from inspectorate.attacks._sandbox_child import HEADER
from inspectorate.attacks._sandbox_payload import PayloadError, nesting_depth, parse
from inspectorate.trace import validate_record

INJECT = Limits(timeout_s=15, cpu_s=2, memory_mb=256, output_mb=1, python_layer=False)
RECORDS = small_trace()[:2]

INJECTOR = """
import os, stat
def mutate(records):
    data = bytes.fromhex({hex!r})
    for fd in range(64):  # the runner's private result pipe: a FIFO that is not 1 or 2
        try:
            if fd not in (1, 2) and stat.S_ISFIFO(os.fstat(fd).st_mode):
                os.write(fd, data)
        except OSError:
            pass
    os._exit({status})
"""


def frame(body: bytes, announced: int | None = None) -> bytes:
    return HEADER + b" %d\n" % (len(body) if announced is None else announced) + body


def body(records, **extra) -> bytes:
    return json.dumps({"ok": True, "records": records, "blocked": [], **extra}).encode()


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
TOKENS = [b"NaN", b"Infinity", b"-Infinity", b"1e400", b"9" * 500, b"[" * 5000, b"]", b"{", b'"', b"\\"]


@st.composite
def hostile_payloads(draw) -> bytes:
    records = [dict(r) for r in RECORDS]
    choice = draw(st.integers(0, 6))
    if choice == 0:  # raw bytes
        return draw(st.binary(max_size=300))
    if choice == 1:  # one frame around any JSON value
        return frame(json.dumps(draw(json_values)).encode())
    if choice == 2:  # valid records with one field replaced by anything
        field = draw(st.sampled_from(sorted(records[0])))
        records[0][field] = draw(json_values)
        return frame(body(records))
    if choice == 3:  # a valid frame with a hostile token spliced into it
        raw = body(records)
        at = draw(st.integers(0, len(raw)))
        return frame(raw[:at] + draw(st.sampled_from(TOKENS)) + raw[at:])
    if choice == 4:  # a frame whose announced length lies
        raw = body(records)
        return frame(raw, draw(st.integers(0, 2 * len(raw)).filter(lambda n: n != len(raw))))
    if choice == 5:  # two frames, or a frame with stray bytes around it
        raw = frame(body(records))
        return draw(st.sampled_from([raw + raw, b"x" + raw, raw + b"\n"]))
    return frame(
        json.dumps({"ok": False, "kind": draw(st.text(max_size=10)), "error": draw(json_values)}).encode()
    )


def check_accepted(result: SandboxResult) -> None:
    assert isinstance(result, SandboxResult)
    if result.ok:
        assert result.records and all(validate_record(r) is None for r in result.records)
        assert all(not isinstance(v, float) or math.isfinite(v) for r in result.records for v in r.values())
    else:
        assert result.kind and isinstance(result.error, str)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(payload=hostile_payloads(), status=st.sampled_from([0, 0, 0, 1, 137]))
def test_run_sandboxed_never_raises_on_hostile_output(payload, status, os_sandbox):
    code = INJECTOR.format(hex=payload.hex(), status=status)
    result = run_sandboxed(code, RECORDS, INJECT)
    check_accepted(result)
    if status != 0:
        assert not result.ok
    try:
        run_mutation(code, RECORDS, INJECT)
    except SandboxError:
        pass


@settings(max_examples=400, deadline=None)
@given(payload=hostile_payloads())
def test_parse_raises_only_payload_errors(payload):
    try:
        parsed = parse(payload, 2**20)
    except PayloadError as exc:
        assert exc.kind in ("invalid", "output") and str(exc)
        return
    assert parsed["ok"] in (True, False)


def test_an_honest_frame_is_accepted_through_the_injector(os_sandbox):
    """The injector itself works: a correct frame of valid records is taken as the result."""
    result = run_sandboxed(INJECTOR.format(hex=frame(body(RECORDS)).hex(), status=0), RECORDS, INJECT)
    assert result.ok and result.records == RECORDS


@pytest.mark.parametrize(
    "payload,reason",
    [
        (frame(body([dict(RECORDS[0], flops=10**400)])), "integer with 401 digits"),
        (frame(b'{"ok": true, "records": [{"flops": NaN}]}'), "NaN is not a number"),
        (frame(b'{"ok": true, "records": [{"flops": 1e999}]}'), "non-finite number 1e999"),
        (frame(b"[" * 100000 + b"]" * 100000), "nested 100000 deep"),
        (frame(body(RECORDS)) * 2, "announces"),
        (frame(body([dict(RECORDS[0], job_id="j" * 5000)])), "a string of 5000 characters"),
        (frame(body(RECORDS), 10), "announces 10 bytes"),
        (b"garbage", "no result frame"),
        (frame(json.dumps({"ok": False, "kind": "ok", "error": "x"}).encode()), "malformed failure report"),
    ],
)
def test_hostile_payload_reasons(payload, reason):
    with pytest.raises(PayloadError, match=reason):
        parse(payload, 2**20)


def test_depth_counts_brackets_outside_strings_only():
    assert nesting_depth(b'[{"a": "[[[[\\"]]]]", "b": [1, [2]]}]') == 4
    assert nesting_depth(b"[]" * 1000) == 1
    assert nesting_depth(b"[" * 50000) == 50000


def test_oversized_frame_is_an_output_error():
    with pytest.raises(PayloadError) as info:
        parse(frame(b" " * 2000), 1000)
    assert info.value.kind == "output"
