"""The watcher's content fingerprint: hashed in place, always what a full load gives."""

from __future__ import annotations

import io
import zipfile

import pytest

torch = pytest.importorskip("torch")

from inspectorate.capture import _fingerprint  # noqa: E402
from inspectorate.capture._fingerprint import content_fingerprint, tensors_sha256  # noqa: E402
from inspectorate.models._checkpoint import weights_sha256  # noqa: E402


def _saved(obj: object) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _state() -> dict[str, object]:
    gen = torch.Generator().manual_seed(3)
    base = torch.randn(6, 10, generator=gen)
    return {
        "w": base,
        "tied": base,  # one storage, two names
        "t": base.t(),  # a strided view of it
        "row": base[2],  # a view at a storage offset
        "cols": base[:, 3:7],  # strided and offset
        "half": torch.randn(5, 3, generator=gen).to(torch.bfloat16),
        "mask": torch.rand(7, generator=gen) > 0.5,
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 4),
        "step": 11,  # not a tensor: skipped
    }


@pytest.mark.parametrize("wrap", [False, True], ids=["flat", "state_dict"])
def test_in_place_equals_a_full_load_and_the_models_fingerprint(wrap: bool) -> None:
    state = _state()
    data = _saved({"state_dict": state, "meta": {"n": 1}} if wrap else state)
    fast = _fingerprint._in_place(data)
    assert fast is not None and fast[1] is None  # the plain layout took the fast path
    full = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    loaded = full["state_dict"] if wrap else full
    assert fast[0] == tensors_sha256(loaded)
    tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
    assert content_fingerprint(data) == (weights_sha256(tensors), None)


def test_a_changed_value_changes_the_fingerprint() -> None:
    state = _state()
    before = content_fingerprint(_saved(state))[0]
    state["half"] = state["half"].clone()
    state["half"][0, 0] += 1
    assert content_fingerprint(_saved(state))[0] != before


def test_compressed_members_fall_back_to_what_torch_reads() -> None:
    data = _saved(_state())
    src = zipfile.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, src.read(info.filename))
    squeezed = out.getvalue()
    assert _fingerprint._in_place(squeezed) is None  # nothing hashed from compressed bytes
    weights, why = content_fingerprint(squeezed)
    if weights is None:  # torch's reader refuses compressed records: said, not guessed
        assert why is not None and why.startswith("unreadable checkpoint")
    else:
        assert weights == content_fingerprint(data)[0]


def test_damaged_files_are_recorded_not_raised() -> None:
    data = _saved(_state())
    assert content_fingerprint(data[: len(data) // 2]) == (None, "unreadable checkpoint (RuntimeError)")
    assert content_fingerprint(b"not a zip") == (None, "not a torch checkpoint")
    assert content_fingerprint(_saved({"a": 1})) == (None, "no tensors")


def test_the_reader_reads_whole_files_past_a_stale_size_hint(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "f.bin"
    payload = bytes(range(256)) * 5000
    path.write_bytes(payload)
    reader = _fingerprint.WholeReader()
    for hint in (0, 10, len(payload), len(payload) + 99, 3):  # the buffer is kept between files
        with open(path, "rb", buffering=0) as fh:
            assert bytes(reader.read(fh, hint)) == payload
    path.write_bytes(b"short")
    with open(path, "rb", buffering=0) as fh:
        assert bytes(reader.read(fh, 5)) == b"short"  # not the longer file's tail


def test_buffers_of_any_kind_give_the_same_fingerprint() -> None:
    data = _saved(_state())
    want = content_fingerprint(data)
    assert content_fingerprint(bytearray(data)) == want
    assert content_fingerprint(memoryview(data)) == want
