"""A ``torch.save`` zip read without torch: its structure and where each storage lies.

The checkpoint watcher fingerprints every checkpoint a workload writes, in the sensor's
process. Importing torch there cost ~1.05 CPU-s per capture (more than hashing a 100 MB
checkpoint), only to learn each tensor's name, dtype, shape and place in the file. That
structure is a small pickle (``<prefix>/data.pkl``) whose tensors are calls to
``torch._utils._rebuild_tensor_v2`` on storages named by a persistent id; the storages'
bytes are uncompressed zip members (``<prefix>/data/<key>``).

``read_structure`` unpickles that pickle with an allowlist of five kinds of global (an
``OrderedDict``, the two rebuild functions, parameters, the legacy typed storage classes
that name a dtype) bound to stand-ins that record metadata: no torch code and nothing
else runs, and anything outside the list raises ``Refused``, upon which the caller loads
the file with torch itself (``torch.load(weights_only=True)``). So the fast path only
ever speaks for files it fully understands.
"""

from __future__ import annotations

import collections
import io
import pickle
import zipfile
from dataclasses import dataclass
from typing import Any

from inspectorate.errors import LayoutRefused as Refused  # the file holds what this reader does not model

_LOCAL_HEADER = 30  # fixed part of a zip local file header
_MAGIC = b"PK\x03\x04"

# the legacy typed storage classes torch.save names (one per dtype): dtype as torch
# prints it, bytes per element
DTYPES = {
    "FloatStorage": ("torch.float32", 4),
    "DoubleStorage": ("torch.float64", 8),
    "HalfStorage": ("torch.float16", 2),
    "BFloat16Storage": ("torch.bfloat16", 2),
    "LongStorage": ("torch.int64", 8),
    "IntStorage": ("torch.int32", 4),
    "ShortStorage": ("torch.int16", 2),
    "CharStorage": ("torch.int8", 1),
    "ByteStorage": ("torch.uint8", 1),
    "BoolStorage": ("torch.bool", 1),
    "ComplexFloatStorage": ("torch.complex64", 8),
    "ComplexDoubleStorage": ("torch.complex128", 16),
}


@dataclass(frozen=True)
class StorageType:
    name: str


@dataclass(frozen=True)
class StorageRef:
    key: str
    dtype: str
    itemsize: int
    numel: int


@dataclass(frozen=True)
class TensorRef:
    """A tensor as the pickle describes it: a view of a storage."""

    storage: StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]

    @property
    def dtype(self) -> str:
        return self.storage.dtype

    @property
    def numel(self) -> int:
        n = 1
        for d in self.size:
            n *= d
        return n

    def contiguous(self) -> bool:
        """torch's ``is_contiguous``: C order, dimensions of size 1 ignored."""
        expected = 1
        for dim, step in zip(reversed(self.size), reversed(self.stride), strict=True):
            if dim != 1 and step != expected:
                return False
            expected *= dim
        return True


def _ints(value: Any) -> tuple[int, ...]:
    if not isinstance(value, tuple) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise Refused("a size or stride that is not a tuple of ints")
    return value


def _rebuild_tensor(storage: Any, offset: Any, size: Any, stride: Any, *_rest: Any) -> TensorRef:
    if not isinstance(storage, StorageRef) or not isinstance(offset, int):
        raise Refused("a tensor not rebuilt from a storage")
    size, stride = _ints(size), _ints(stride)
    if len(size) != len(stride):
        raise Refused("size and stride differ in length")
    return TensorRef(storage, offset, size, stride)


def _rebuild_parameter(data: Any, *_rest: Any) -> Any:
    return data


class _MetaUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor
        if module == "torch._utils" and name in ("_rebuild_parameter", "_rebuild_parameter_with_state"):
            return _rebuild_parameter
        if module == "torch" and name in DTYPES:
            return StorageType(name)
        raise Refused(f"global {module}.{name}")

    def persistent_load(self, pid: Any) -> StorageRef:
        if not (isinstance(pid, tuple) and len(pid) == 5 and pid[0] == "storage"):
            raise Refused("an unknown persistent id")
        _, kind, key, _location, numel = pid
        if not isinstance(kind, StorageType) or not isinstance(numel, int):
            raise Refused("a storage of an unknown type")
        dtype, itemsize = DTYPES[kind.name]
        return StorageRef(str(key), dtype, itemsize, numel)


def read_structure(data: memoryview, file: Any) -> tuple[Any, dict[str, tuple[int, int]]]:
    """(the unpickled object, tensors as ``TensorRef``; {storage key: (offset of its
    bytes in ``data``, size)}) from an open view ``file`` of ``data``. ``Refused`` for
    anything this reader does not model."""
    with zipfile.ZipFile(file) as zf:
        infos = zf.infolist()
        pkl = [i for i in infos if i.filename.endswith("/data.pkl") or i.filename == "data.pkl"]
        if len(pkl) != 1:
            raise Refused("not one data.pkl")
        prefix = pkl[0].filename[: -len("data.pkl")]
        names = {i.filename for i in infos}
        if prefix + "byteorder" in names and zf.read(prefix + "byteorder").strip() != b"little":
            raise Refused("not little-endian")
        obj = _MetaUnpickler(io.BytesIO(zf.read(pkl[0]))).load()
        records: dict[str, tuple[int, int]] = {}
        for info in infos:
            if not info.filename.startswith(prefix + "data/"):
                continue
            if info.compress_type != zipfile.ZIP_STORED or info.file_size != info.compress_size:
                continue  # a compressed storage: not where its bytes would be read
            head = info.header_offset
            local = bytes(data[head : head + _LOCAL_HEADER])
            if len(local) < _LOCAL_HEADER or not local.startswith(_MAGIC):
                continue
            start = head + _LOCAL_HEADER + int.from_bytes(local[26:28], "little")
            start += int.from_bytes(local[28:30], "little")
            records[info.filename[len(prefix) + len("data/") :]] = (start, info.file_size)
    return obj, records
