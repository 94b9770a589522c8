"""The serving-log writer never accepts what ``read_log`` rejects (issue 18 item 4):
whatever ``write_log`` writes reads back equal; what it would write unreadably
(an empty log, an unknown precision, NaN projections, non-JSON server fields) it
refuses before the file exists."""

from __future__ import annotations

import math

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inspectorate.difr import LogHeader, ProjectionSpec, SamplingConfig, SequenceRecord, read_log, write_log
from inspectorate.errors import InputError

VOCAB = "abcdefgh"


@st.composite
def logs(draw):
    dim = draw(st.none() | st.integers(1, 3))
    projection = None if dim is None else ProjectionSpec(seed=draw(st.integers(0, 99)), layer=0, dim=dim)
    sampling = SamplingConfig(
        temperature=draw(st.floats(0, 2)),
        top_k=draw(st.none() | st.integers(1, 8)),
        top_p=draw(st.none() | st.floats(0.01, 1)),
        seed=draw(st.none() | st.integers(0, 2**31)),
    )
    header = LogHeader(
        model_hash="sha256:" + "0" * 16,
        vocab=VOCAB,
        sampling=sampling,
        precision=draw(st.sampled_from(["float32", "bfloat16"])),
        projection=projection,
        server={"name": draw(st.text(max_size=6))},
        vocab_size=draw(st.integers(len(VOCAB), 16)),
    )
    ids = st.lists(st.integers(0, header.n_ids - 1), min_size=1, max_size=5)
    sequences = []
    for index in range(draw(st.integers(1, 4))):
        tokens = tuple(draw(ids))
        rows = None
        if dim is not None:
            row = st.tuples(*[st.floats(-1e6, 1e6, allow_nan=False)] * dim)
            rows = tuple(draw(row) for _ in tokens)
        sequences.append(SequenceRecord(index, tuple(draw(ids)), tokens, rows))
    return header, sequences


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(log=logs())
def test_a_written_log_reads_back_equal(tmp_path_factory, log):
    header, sequences = log
    path = write_log(tmp_path_factory.mktemp("log") / "log.jsonl", header, sequences)
    back = read_log(path)
    assert back.header == header and list(back.sequences) == sequences


def _header(**kw):
    return LogHeader(model_hash="sha256:0", vocab=VOCAB, sampling=SamplingConfig(), **kw)


@pytest.mark.parametrize(
    "header,sequences",
    [
        (_header(), []),
        (_header(precision="float64"), [SequenceRecord(0, (1,), (2,))]),
        (_header(server={"when": object()}), [SequenceRecord(0, (1,), (2,))]),
        (
            _header(projection=ProjectionSpec(seed=1, layer=0, dim=1)),
            [SequenceRecord(0, (1,), (2,), ((math.nan,),))],
        ),
    ],
    ids=["empty", "precision", "server", "nan"],
)
def test_what_read_log_would_refuse_is_refused_when_written(tmp_path, header, sequences):
    path = tmp_path / "log.jsonl"
    with pytest.raises(InputError):
        write_log(path, header, sequences)
    if path.exists():  # written up to the bad line at most: never a log read_log accepts
        with pytest.raises(InputError):
            read_log(path)
