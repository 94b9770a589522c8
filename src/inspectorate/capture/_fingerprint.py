"""The content fingerprint of a checkpoint the watcher saw written: SHA-256 of its tensors.

``weights_sha256`` hashes sorted names, each ``name|dtype|shape|`` then the tensor's raw
bytes: the construction of ``models._checkpoint.weights_sha256`` (capture sits below
models, so it is restated here; a test holds the two equal). Re-serialising the same
weights keeps it while the file's own hash changes.

The watcher hashes every checkpoint twice (the file, then its tensors), and that is most
of what capture costs a workload that hands over often. Loading the checkpoint to hash
its tensors copied every byte into fresh storages and then into a ``bytes`` per tensor:
half the time went to copies. ``torch.save``'s zip stores each storage uncompressed, so
the tensors' bytes are already in the buffer the watcher read: it reads only the
structure (``_torchzip``, without importing torch: names, dtypes, shapes, strides and
each storage's offset in the file) and hashes slices of the buffer in place. Anything
else (a strided view, a compressed or missing record, a global the structure reader
does not model) falls back to ``torch.load``, so the fingerprint is always what a full
load gives.
"""

from __future__ import annotations

import hashlib
import io
from typing import Any

from inspectorate.capture._torchzip import Refused, TensorRef, read_structure

_TORCH_MAGIC = b"PK\x03\x04"  # torch.save's zip container


Buffer = bytes | bytearray | memoryview


class _ViewFile(io.RawIOBase):
    """A read-only, seekable file over a buffer, without copying it (``io.BytesIO``
    copies anything but ``bytes``)."""

    def __init__(self, data: Buffer) -> None:
        super().__init__()
        self.view = memoryview(data).cast("B")
        self.pos = 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        n = min(len(b), max(len(self.view) - self.pos, 0))
        b[:n] = self.view[self.pos : self.pos + n]
        self.pos += n
        return n

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: len(self.view)}[whence]
        self.pos = max(base + offset, 0)
        return self.pos

    def tell(self) -> int:
        return self.pos


def _file(data: Buffer) -> io.BufferedReader:
    return io.BufferedReader(_ViewFile(data))


class WholeReader:
    """Reads whole files into one buffer kept between files. The first touch of fresh
    memory is what reading costs (the kernel zeroes every new page: ~0.06 CPU-s per
    126 MB here, against ~0.03 s to copy the file into pages already touched), and a
    job that checkpoints writes files of the same size again and again. ``release``
    drops the buffer (the watcher does when its queue runs dry)."""

    def __init__(self) -> None:
        self.buf = bytearray()

    def read(self, fh: Any, size_hint: int) -> memoryview:
        """The whole of an open binary file; a file that grew past ``size_hint`` since
        its ``fstat`` is read to its end. The view is valid until the next call."""
        if len(self.buf) < size_hint + 1:
            self.buf = bytearray(size_hint + 1)
        buf, n = self.buf, 0
        while True:
            if n == len(buf):  # grew while read: a larger buffer, this file only
                buf = buf + bytes(max(len(buf), 1 << 20))
            got = fh.readinto(memoryview(buf)[n:])
            if not got:
                return memoryview(buf)[:n]
            n += got

    def release(self) -> None:
        self.buf = bytearray()


def content_fingerprint(data: Buffer) -> tuple[str | None, str | None]:
    """(weights_sha256, None) of a torch checkpoint's tensors, or (None, why not).

    The tensors are the file's ``state_dict`` (the project's checkpoint format) or the
    file itself when it is a flat name -> tensor mapping. Read without torch where the
    file is plain (``_torchzip``); otherwise with ``torch.load(weights_only=True)`` (no
    code runs either way)."""
    if bytes(data[:4]) != _TORCH_MAGIC:
        return None, "not a torch checkpoint"
    try:
        fast = _in_place(data)
    except Exception:  # anything odd about the layout: the full load decides
        fast = None
    if fast is not None:
        return fast
    try:
        import torch
    except ImportError:
        return None, "torch is not installed: no content fingerprint"
    try:
        blob = torch.load(_file(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file is a fact to record, not a crash
        return None, f"unreadable checkpoint ({type(exc).__name__})"
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        return None, "no tensors"
    return tensors_sha256(state), None


def tensors_sha256(state: dict[str, Any]) -> str:
    """SHA-256 over sorted names, each ``name|dtype|shape|`` then the raw bytes."""
    import torch

    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name]
        if not isinstance(tensor, torch.Tensor):
            continue
        digest.update(_header(name, tensor.dtype, tuple(tensor.shape)))
        digest.update(tensor.detach().contiguous().reshape(-1).cpu().view(torch.uint8).numpy().data)
    return digest.hexdigest()


def _header(name: str, dtype: Any, shape: tuple[int, ...]) -> bytes:
    return f"{name}|{dtype}|{shape}|".encode()


def _in_place(data: Buffer) -> tuple[str | None, str | None] | None:
    """The fingerprint hashed from ``data`` itself (the structure read by ``_torchzip``,
    the tensors as slices of the buffer), or None where the file is not the plain
    layout (a strided view, a compressed or missing record, a global the reader does
    not model): the caller then loads it with torch."""
    view = memoryview(data).cast("B")
    try:
        blob, records = read_structure(view, _file(view))
    except Refused:
        return None
    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict) or not any(isinstance(v, TensorRef) for v in state.values()):
        return None  # torch says whether it holds tensors after all
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name]
        if not isinstance(tensor, TensorRef):
            continue
        chunk = _tensor_bytes(tensor, view, records)
        if chunk is None:
            return None
        digest.update(_header(name, tensor.dtype, tensor.size))
        digest.update(chunk)
    return digest.hexdigest(), None


def _tensor_bytes(tensor: TensorRef, view: memoryview, records: dict[str, tuple[int, int]]) -> Any:
    """A contiguous tensor's bytes as a slice of ``view``; None if unsure."""
    if tensor.numel == 0:
        return b""
    found = records.get(tensor.storage.key)
    nbytes = tensor.storage.numel * tensor.storage.itemsize
    if found is None or found[1] != nbytes or found[0] + nbytes > len(view) or not tensor.contiguous():
        return None
    start = found[0] + tensor.offset * tensor.storage.itemsize
    end = start + tensor.numel * tensor.storage.itemsize
    if tensor.offset < 0 or end > found[0] + nbytes:
        return None
    return view[start:end]
