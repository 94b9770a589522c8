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


def _state(strided: bool = True) -> dict[str, object]:
    gen = torch.Generator().manual_seed(3)
    base = torch.randn(6, 10, generator=gen)
    views = {"t": base.t(), "cols": base[:, 3:7]} if strided else {}  # strided (and offset)
    return {
        "w": base,
        "tied": base,  # one storage, two names
        **views,
        "row": base[2],  # a contiguous view at a storage offset
        "param": torch.nn.Parameter(torch.randn(3, 2, generator=gen)),
        "half": torch.randn(5, 3, generator=gen).to(torch.bfloat16),
        "mask": torch.rand(7, generator=gen) > 0.5,
        "scalar": torch.tensor(2.5),
        "empty": torch.zeros(0, 4),
        "step": 11,  # not a tensor: skipped
    }


@pytest.mark.parametrize("strided", [False, True], ids=["plain", "strided"])
@pytest.mark.parametrize("wrap", [False, True], ids=["flat", "state_dict"])
def test_in_place_equals_a_full_load_and_the_models_fingerprint(wrap: bool, strided: bool) -> None:
    state = _state(strided)
    data = _saved({"state_dict": state, "meta": {"n": 1}} if wrap else state)
    fast = _fingerprint._in_place(data)
    if strided:  # a strided view is not modelled without torch: torch reads the file
        assert fast is None
    else:
        assert fast is not None and fast[1] is None  # read without torch
    full = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    loaded = full["state_dict"] if wrap else full
    assert content_fingerprint(data)[0] == tensors_sha256(loaded)
    tensors = {k: v.detach() for k, v in state.items() if isinstance(v, torch.Tensor)}
    assert content_fingerprint(data) == (weights_sha256(tensors), None)
    if not strided:
        assert fast == (weights_sha256(tensors), None)


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


def test_the_structure_reader_runs_no_global_it_does_not_model() -> None:
    """A pickle naming any other global is refused before anything is called, and torch
    (weights_only) decides instead."""
    import pickle
    import zipfile as zf

    from inspectorate.capture._torchzip import Refused, read_structure

    class Boom:
        def __reduce__(self):  # type: ignore[no-untyped-def]
            return (print, ("ran",))

    data = _saved({"w": torch.ones(2)})
    src = zf.ZipFile(io.BytesIO(data))
    out = io.BytesIO()
    with zf.ZipFile(out, "w", compression=zf.ZIP_STORED) as dst:
        for info in src.infolist():
            body = (
                pickle.dumps({"w": Boom()}, protocol=2)
                if info.filename.endswith("data.pkl")
                else src.read(info)
            )
            dst.writestr(info.filename, body)
    hostile = out.getvalue()
    view = memoryview(hostile)
    with pytest.raises(Refused):
        read_structure(view, _fingerprint._file(view))
    assert content_fingerprint(hostile)[0] is None  # torch's weights_only refuses it too


def test_the_sensor_fingerprints_a_plain_checkpoint_without_importing_torch(tmp_path) -> None:  # type: ignore[no-untyped-def]
    import subprocess
    import sys

    path = tmp_path / "ck.pt"
    path.write_bytes(_saved({"state_dict": _state(strided=False)}))
    code = (
        "import sys; from pathlib import Path;"
        "from inspectorate.capture._fingerprint import content_fingerprint;"
        f"w, why = content_fingerprint(Path({str(path)!r}).read_bytes());"
        "print(w, why, 'torch' in sys.modules)"
    )
    got = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.split()
    assert got[1:] == ["None", "False"] and got[0] == content_fingerprint(path.read_bytes())[0]
