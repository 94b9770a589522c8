"""Append-only, hash-chained JSONL writer that survives being killed mid-write.

Why this shape: a record is one canonical-JSON line written with a single ``os.write``
on an ``O_APPEND`` descriptor, so a SIGKILL can only ever leave a *torn tail* (a
partial last line) and never a half-interleaved record; the page cache keeps what
``write`` returned for, so killing the process loses at most the record in flight.
Power loss is a different matter: that is what the ``fsync_every`` policy is for.

On reopen the writer reads only the file's last complete line to continue the chain,
and cuts a torn tail off so the next record starts on a clean line.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from inspectorate.errors import InputError
from inspectorate.trace._canonical import GENESIS, canonical_bytes, record_hash
from inspectorate.trace.streams import is_complete_line

PREV_FIELD = "prev_record_hash"
_CHUNK = 1 << 16


def _parse_line(raw: bytes, path: Path, line: int) -> dict[str, Any]:
    """One JSON object from one complete line, or an InputError naming the line."""
    try:
        record = json.loads(raw)
    except ValueError as exc:
        raise InputError(f"not valid JSON ({exc})", path, line) from None
    if not isinstance(record, dict):
        raise InputError("a record must be a JSON object", path, line)
    return record


def _count_newlines(fd: int, size: int) -> int:
    """Lines in the file, by counting newline bytes chunk by chunk (no parsing)."""
    count, offset = 0, 0
    while offset < size:
        chunk = os.pread(fd, min(_CHUNK, size - offset), offset)
        if not chunk:
            break
        count += chunk.count(b"\n")
        offset += len(chunk)
    return count


def _last_newline_before(fd: int, end: int) -> int:
    """Offset of the last b"\\n" strictly before ``end`` (-1 if none), reading backwards."""
    pos = end
    while pos > 0:
        start = max(0, pos - _CHUNK)
        chunk = os.pread(fd, pos - start, start)
        idx = chunk.rfind(b"\n")
        if idx >= 0:
            return start + idx
        pos = start
    return -1


class ChainWriter:
    """Context manager appending hash-chained records, one line each, thread-safe.

    ``fsync_every``: 0 syncs only on close; N>0 syncs after every N records (1 is the
    paranoid setting; each fsync costs a disk flush). ``on_append(stored, head, count)``
    runs after each record is written, under the lock, so heads reach it in order (the
    sensor's head signer, ``ledger.HeadSigner.observe``).
    """

    def __init__(
        self,
        path: Path | str,
        *,
        fsync_every: int = 0,
        on_append: Callable[[dict[str, Any], str, int], None] | None = None,
    ) -> None:
        self.path = Path(path)
        self.fsync_every = fsync_every
        self.on_append = on_append
        self.torn_tail_repaired = False
        self._lock = threading.Lock()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fd: int | None = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            self.head, self.count = self._recover()
        except BaseException:
            os.close(self._fd)
            self._fd = None
            raise
        self._since_sync = 0

    def _recover(self) -> tuple[str, int]:
        """Continue an existing file: cut a torn tail, hash the last complete line."""
        assert self._fd is not None
        size = os.fstat(self._fd).st_size
        if size == 0:
            return GENESIS, 0
        last_byte = os.pread(self._fd, 1, size - 1)
        if last_byte != b"\n":
            cut = _last_newline_before(self._fd, size)
            tail = os.pread(self._fd, size - cut - 1, cut + 1)
            if is_complete_line(tail):
                os.write(self._fd, b"\n")  # complete record that only lacked its newline
                size += 1
            else:
                os.ftruncate(self._fd, cut + 1)
                self.torn_tail_repaired = True
                size = cut + 1
        return self._head_of(size)

    def _head_of(self, size: int) -> tuple[str, int]:
        """Hash of the last complete record in the first ``size`` bytes, and line count."""
        assert self._fd is not None
        if size == 0:
            return GENESIS, 0
        count = _count_newlines(self._fd, size)
        end = size - 1  # the final newline
        while end > 0:
            start = _last_newline_before(self._fd, end) + 1
            raw = os.pread(self._fd, end - start, start)
            if raw.strip():
                return record_hash(_parse_line(raw, self.path, count)), count
            end, count = start - 1, count - 1
        return GENESIS, 0

    def append(self, record: Mapping[str, Any], *, id_prefix: str | None = None) -> dict[str, Any]:
        """Chain ``record`` to the previous one, write it as one line, return what was stored.

        ``id_prefix`` sets ``record_id`` to prefix + the record's 0-based index in the
        file, assigned under the same lock as the hash so ids stay unique across threads.
        """
        stored = dict(record)
        with self._lock:
            if self._fd is None:
                raise ValueError(f"{self.path}: writer is closed")
            if id_prefix is not None:
                stored["record_id"] = f"{id_prefix}{self.count:08d}"
            stored[PREV_FIELD] = self.head
            line = canonical_bytes(stored) + b"\n"
            self._write_all(line)
            self.head = hashlib.sha256(line[:-1]).hexdigest()  # record_hash, without encoding twice
            self.count += 1
            self._maybe_sync()
            if self.on_append is not None:
                self.on_append(stored, self.head, self.count)
        return stored

    def _write_all(self, data: bytes) -> None:
        """One os.write; a regular file takes it whole, the loop only guards odd filesystems."""
        assert self._fd is not None
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def _maybe_sync(self) -> None:
        if self.fsync_every > 0:
            self._since_sync += 1
            if self._since_sync >= self.fsync_every:
                os.fsync(self._fd)  # type: ignore[arg-type]
                self._since_sync = 0

    def close(self) -> None:
        """Sync and close; idempotent."""
        with self._lock:
            if self._fd is not None:
                os.fsync(self._fd)
                os.close(self._fd)
                self._fd = None

    @property
    def closed(self) -> bool:
        return self._fd is None

    def __enter__(self) -> ChainWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
