"""The content fingerprint of a checkpoint the watcher saw written: SHA-256 of its tensors.

``weights_sha256`` hashes sorted names, each ``name|dtype|shape|`` then the tensor's raw
bytes: the construction of ``models._checkpoint.weights_sha256`` (capture sits below
models, so it is restated here; a test holds the two equal). Re-serialising the same
weights keeps it while the file's own hash changes.

The watcher hashes every checkpoint twice (the file, then its tensors), and that is most
of what capture costs a workload that hands over often. Loading the checkpoint to hash
its tensors copied every byte into fresh storages and then into a ``bytes`` per tensor:
half the time went to copies. ``torch.save``'s zip stores each storage uncompressed, so
the tensors' bytes are already in the buffer the watcher read: it loads only the
structure (``map_location="meta"``: names, dtypes, shapes, strides and each storage's
offset in the file, no data) and hashes slices of the buffer in place. Any record that
is not stored plainly where torch would read it (compressed, out of bounds, an offset
the zip directory does not confirm) falls back to a full load, so the fingerprint is
always what ``torch.load`` would give.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from typing import Any

_TORCH_MAGIC = b"PK\x03\x04"  # torch.save's zip container
_LOCAL_HEADER = 30  # fixed part of a zip local file header


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

    Reads with ``weights_only=True`` (no code runs); the tensors are the file's
    ``state_dict`` (the project's checkpoint format) or the file itself when it is a
    flat name -> tensor mapping."""
    if bytes(data[:4]) != _TORCH_MAGIC:
        return None, "not a torch checkpoint"
    try:
        import torch
    except ImportError:
        return None, "torch is not installed: no content fingerprint"
    try:
        fast = _in_place(data)
    except Exception:  # anything odd about the layout: the full load decides
        fast = None
    if fast is not None:
        return fast
    try:
        blob = torch.load(_file(data), map_location="cpu", weights_only=True)
    except Exception as exc:  # any unreadable file is a fact to record, not a crash
        return None, f"unreadable checkpoint ({type(exc).__name__})"
    state = _state_of(blob)
    if state is None:
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
        digest.update(_header(name, tensor))
        digest.update(tensor.detach().contiguous().reshape(-1).cpu().view(torch.uint8).numpy().data)
    return digest.hexdigest()


def _header(name: str, tensor: Any) -> bytes:
    return f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode()


def _state_of(blob: Any) -> dict[str, Any] | None:
    import torch

    state = blob.get("state_dict", blob) if isinstance(blob, dict) else None
    if not isinstance(state, dict) or not any(isinstance(v, torch.Tensor) for v in state.values()):
        return None
    return state


def _stored_records(data: memoryview) -> dict[int, int]:
    """{offset of the bytes: size} of every uncompressed member of the zip, from its
    central directory and local headers (what torch's reader would read)."""
    out: dict[int, int] = {}
    with zipfile.ZipFile(_file(data)) as zf:
        for info in zf.infolist():
            if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
                continue
            head = info.header_offset
            local = bytes(data[head : head + _LOCAL_HEADER])
            if len(local) < _LOCAL_HEADER or not local.startswith(_TORCH_MAGIC):
                continue
            name_len = int.from_bytes(local[26:28], "little")
            extra_len = int.from_bytes(local[28:30], "little")
            out[head + _LOCAL_HEADER + name_len + extra_len] = info.file_size
    return out


def _in_place(data: Buffer) -> tuple[str | None, str | None] | None:
    """The fingerprint hashed from ``data`` itself, or None where the layout is not the
    plain one (the caller then loads the file whole)."""
    import torch

    view = memoryview(data).cast("B")
    blob = torch.load(_file(view), map_location="meta", weights_only=True)
    state = _state_of(blob)
    if state is None:
        return None, "no tensors"
    records = _stored_records(view)
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name]
        if not isinstance(tensor, torch.Tensor):
            continue
        chunk = _tensor_bytes(tensor, view, records)
        if chunk is None:
            return None
        digest.update(_header(name, tensor))
        digest.update(chunk)
    return digest.hexdigest(), None


def _tensor_bytes(tensor: Any, view: memoryview, records: dict[int, int]) -> Any:
    """The bytes of a meta tensor's values as they lie in the file (a slice of ``view``
    for a contiguous tensor, a copy for a strided view), or None if unsure."""
    import torch

    if tensor.numel() == 0:
        return b""
    storage = tensor.untyped_storage()
    offset = getattr(storage, "_checkpoint_offset", None)
    if not isinstance(offset, int) or records.get(offset) != storage.nbytes():
        return None
    size = tensor.element_size()
    if tensor.is_contiguous():
        start = offset + tensor.storage_offset() * size
        return view[start : start + tensor.numel() * size]
    raw = torch.frombuffer(bytearray(view[offset : offset + storage.nbytes()]), dtype=torch.uint8)
    values = raw.view(tensor.dtype).as_strided(tensor.shape, tensor.stride(), tensor.storage_offset())
    return values.contiguous().reshape(-1).view(torch.uint8).numpy()
