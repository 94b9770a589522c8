"""The verifier-owned checkpoint watcher: what weights this host wrote, and when.

A replay claim is the prover's file: a real run computed elsewhere replays as well as
the run the phase made. The watcher runs in the sensor's process (``inspectorate sensor
--watch DIR``), outside the workload, and records every file the workload finishes
writing under the watched directories into its own hash-chained stream,
``RUN/sensor_ckpt.jsonl``, which the prover does not write:

    {"schema": "inspectorate.ckpt_watch/1", "kind": "written", "t": 1712.3,
     "path": "claims/p/ckpt_000004.pt", "event": "moved_to", "size": 38112,
     "file_sha256": "...", "weights_sha256": "..." | null, "weights_error": "..."?}

``weights_sha256`` is the content fingerprint: SHA-256 of the tensors (the project's
``weights_sha256``: sorted names, dtype, shape, bytes), so re-serialising the same
weights keeps it while the file hash changes. verify binds a replay to the phase only
for checkpoints whose fingerprint was seen written during the phase's window
(``verify._replay_run``).

Linux inotify through ctypes (no dependency): ``IN_CLOSE_WRITE`` and ``IN_MOVED_TO``
(``save_checkpoint`` writes a temp file and renames it), recursive (a new subdirectory
is watched, then scanned for what was written before its watch existed). Races: a file
rewritten after its close closes again and is recorded again; a file that changed while
it was hashed says so (its next close is recorded too); a file opened for writing and
never closed by the time the watcher stops is reported ``unclosed``; a kernel queue
overflow is recorded (``overflow``: events were lost, so the stream is incomplete).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import queue
import select
import struct
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inspectorate.capture._chain_writer import ChainWriter
from inspectorate.capture._fingerprint import WholeReader, content_fingerprint
from inspectorate.errors import WatchError

SCHEMA = "inspectorate.ckpt_watch/1"
STREAM = "sensor_ckpt.jsonl"

IN_MODIFY, IN_ATTRIB, IN_CLOSE_WRITE, IN_MOVED_FROM, IN_MOVED_TO = 0x2, 0x4, 0x8, 0x40, 0x80
IN_CREATE, IN_DELETE, IN_Q_OVERFLOW, IN_IGNORED, IN_ISDIR = 0x100, 0x200, 0x4000, 0x8000, 0x40000000
IN_NONBLOCK, IN_CLOEXEC = 0o4000, 0o2000000
MASK = IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
_EVENT = struct.Struct("iIII")
RENAME_GRACE_S = 0.05
BUFFER_KEEP_S = 10.0  # the read buffer outlives a file by this long (a job checkpointing again)
WRITER_WAIT_S = 1.0  # the fanotify event of a close may be read after inotify's


class _Inotify:
    """The ctypes binding: one inotify descriptor, watches by directory."""

    def __init__(self) -> None:
        if not sys.platform.startswith("linux"):
            raise WatchError("inotify needs Linux")
        self.libc = ctypes.CDLL(None, use_errno=True)
        fd = self.libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            raise WatchError(ctypes.get_errno(), "inotify_init1 failed")
        self.fd = fd
        self.dirs: dict[int, Path] = {}

    def add(self, path: Path) -> None:
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(path), MASK)
        if wd < 0:
            raise WatchError(ctypes.get_errno(), f"inotify_add_watch {path} failed")
        self.dirs[wd] = path

    def read(self, timeout_s: float) -> list[tuple[int, Path | None]]:
        """(mask, path) of the events that arrived within ``timeout_s``."""
        ready, _, _ = select.select([self.fd], [], [], timeout_s)
        if not ready:
            return []
        try:
            buf = os.read(self.fd, 1 << 16)
        except BlockingIOError:
            return []
        out: list[tuple[int, Path | None]] = []
        off = 0
        while off + _EVENT.size <= len(buf):
            wd, mask, _cookie, length = _EVENT.unpack_from(buf, off)
            name = buf[off + _EVENT.size : off + _EVENT.size + length].rstrip(b"\0")
            off += _EVENT.size + length
            base = self.dirs.get(wd)
            if mask & IN_IGNORED:
                self.dirs.pop(wd, None)
            out.append((mask, base / os.fsdecode(name) if base is not None and name else None))
        return out

    def close(self) -> None:
        os.close(self.fd)


class CheckpointWatcher:
    """Watch ``roots`` (created if missing) and chain what is written into ``out/STREAM``.

    Two daemon threads: the reader stamps each event with the time it arrived and never
    waits on a hash (under load, loading the tensors of a file takes seconds: the record
    must say when the file was written, not when it was hashed); the hasher reads the
    file and records it with the event's time, unless the file changed after that event
    (a later event then stands for the new content). ``stop()`` drains both, reports
    files still open for writing, writes a ``stop`` record and closes."""

    def __init__(
        self,
        out: Path | str,
        roots: list[Path | str],
        poll_s: float = 0.2,
        workload: dict[str, Any] | None = None,
    ) -> None:
        self.out = Path(out)
        self.workload = workload  # {"pid": N} or {"cgroup": DIR}: whose writes are the workload's
        self.roots = [Path(r).resolve() for r in roots]
        self.poll_s = poll_s
        self.writer = ChainWriter(self.out / STREAM)
        self.ino = _Inotify()
        self.dirty: set[Path] = set()  # opened for writing, not yet closed
        self.changed: dict[Path, float] = {}  # path -> arrival time of its latest change
        self.jobs: queue.Queue[tuple[float, Path, str] | None] = queue.Queue()
        # when the reader last found the queue empty: a batch read later was queued after
        # it (a reader starved on a loaded host reads events late; the write lies between)
        self.quiet_t = time.time()
        self.queued_after: dict[Path, float] = {}
        self.seen = 0
        self.superseded = 0
        self.reader = WholeReader()  # one read buffer, reused while files keep coming
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def start(self) -> CheckpointWatcher:
        from inspectorate.capture._writers import Writers

        for root in self.roots:
            root.mkdir(parents=True, exist_ok=True)
        fan = Writers.open(self.roots, self.workload)
        self.fan = fan if isinstance(fan, Writers) else None
        writers = "fanotify" if self.fan is not None else f"unchecked: {fan}"
        self._record(
            "start",
            roots=[self._rel(r) for r in self.roots],
            pid=os.getpid(),
            writers=writers,
            workload=self.workload,
        )
        for root in self.roots:
            self._watch_tree(root)
        self._threads = [
            threading.Thread(target=self._read_loop, name="ckpt-watch", daemon=True),
            threading.Thread(target=self._hash_loop, name="ckpt-hash", daemon=True),
        ]
        if self.fan is not None:
            self._threads.append(threading.Thread(target=self._fan_loop, name="ckpt-writers", daemon=True))
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._threads[0].join()
        self._drain(0.0)
        self.jobs.put(None)
        self._threads[1].join()
        if self.fan is not None:
            self._threads[2].join()
            if self.fan.overflowed:
                self._record("overflow", detail="fanotify queue overflowed: writers were missed")
            self.fan.close()
        for path in sorted(self.dirty):
            self._record("unclosed", path=self._rel(path), **_stat(path))
        self._record("stop", files_recorded=self.seen, unclosed=len(self.dirty), superseded=self.superseded)
        self.writer.close()
        self.ino.close()

    def __enter__(self) -> CheckpointWatcher:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _read_loop(self) -> None:
        while not self._stop.is_set():
            self._drain(self.poll_s)

    def _fan_loop(self) -> None:
        assert self.fan is not None
        while not self._stop.is_set():
            self.fan.poll(self.poll_s)
        self.fan.poll(0.0)

    def _writers(self, st: os.stat_result) -> list[dict[str, Any]] | None:
        """Who closed this inode after writing it (None: not checked here); waits briefly
        for the fanotify thread, which may read the event after inotify's."""
        if self.fan is None:
            return None
        deadline = time.monotonic() + WRITER_WAIT_S
        while not (found := self.fan.writers_of(st)) and time.monotonic() < deadline:
            if not self._threads[2].is_alive():  # stopping: read what is left here
                self.fan.poll(0.0)
                return self.fan.writers_of(st)
            time.sleep(0.02)
        return found

    def _hash_loop(self) -> None:
        # torch is imported at the first checkpoint, not up front: importing it holds the
        # GIL for seconds on a loaded host and would starve the sensor's sampling thread
        while True:
            try:
                job = self.jobs.get(timeout=BUFFER_KEEP_S)
            except queue.Empty:  # a quiet spell: give the read buffer back
                self.reader.release()
                continue
            if job is None:
                self.reader.release()
                return
            self._hash(*job)

    def _drain(self, timeout_s: float) -> None:
        while True:
            events = self.ino.read(timeout_s)
            if not events:
                self.quiet_t = time.time()
                return
            t = time.time()
            for _m, p in events:
                if p is not None:
                    self.queued_after[p] = self.quiet_t
            if any(m & IN_CLOSE_WRITE for m, _ in events):  # its rename usually follows at once
                events += self.ino.read(RENAME_GRACE_S)
            self._handle(events, t)
            timeout_s = 0.0

    def _handle(self, events: list[tuple[int, Path | None]], t: float) -> None:
        # a temp file closed then renamed in the same batch is hashed once, at its new name
        moved_away = {p for m, p in events if m & IN_MOVED_FROM and p is not None}
        for mask, path in events:
            if mask & IN_Q_OVERFLOW:
                self._record("overflow", detail="kernel event queue overflowed: writes were missed")
            if path is None:
                continue
            if mask & IN_ISDIR:
                if mask & (IN_CREATE | IN_MOVED_TO):
                    self._watch_tree(path)
                continue
            if mask & (IN_CREATE | IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_TO):
                self.changed[path] = t
            if mask & (IN_CREATE | IN_MODIFY):
                self.dirty.add(path)
            elif mask & (IN_MOVED_FROM | IN_DELETE):
                self.dirty.discard(path)
            elif mask & IN_CLOSE_WRITE:
                self.dirty.discard(path)
                if path not in moved_away:
                    self.jobs.put((t, path, "close_write"))
            elif mask & IN_MOVED_TO:
                self.dirty.discard(path)
                self.jobs.put((t, path, "moved_to"))

    def _watch_tree(self, root: Path) -> None:
        """Watch ``root`` and its subdirectories; record files already there (written
        before the watch existed: a new directory's first files race its watch)."""
        try:
            self.ino.add(root)
        except WatchError as exc:
            self._record("watch_failed", path=self._rel(root), detail=str(exc))
            return
        now = time.time()
        for entry in sorted(root.iterdir(), key=lambda p: p.name):
            if entry.is_dir() and not entry.is_symlink():
                self._watch_tree(entry)
            elif entry.is_file():
                self.changed[entry] = now
                self.jobs.put((now, entry, "scan"))

    def _hash(self, t: float, path: Path, event: str) -> None:
        """Record the file as of event time ``t`` (the hash may come seconds later)."""
        try:
            with open(path, "rb", buffering=0) as fh:
                before = os.fstat(fh.fileno())
                data = self.reader.read(fh, before.st_size)
                after = os.fstat(fh.fileno())
        except OSError as exc:  # gone already (a rename chain, a delete): say so
            self._record("vanished", t=t, path=self._rel(path), event=event, detail=exc.strerror or str(exc))
            return
        weights, why = content_fingerprint(data)
        if self.changed.get(path, t) > t:  # changed since this event: its later event records it
            self.superseded += 1
            return
        fields: dict[str, Any] = {
            "path": self._rel(path),
            "event": event,
            "size": len(data),
            "mtime_ns": after.st_mtime_ns,
            "file_sha256": hashlib.sha256(data).hexdigest(),
            "weights_sha256": weights,
            "hashed_t": time.time(),
        }
        queued = self.queued_after.get(path)
        if event != "scan" and queued is not None and queued < t:
            fields["queued_after"] = queued  # written in [queued_after, t]
        writers = self._writers(after)
        if writers is not None:
            fields["writers"] = writers  # [{"pid", "comm", "in_workload"}]; [] none seen
        if why is not None:
            fields["weights_error"] = why
        if (before.st_size, before.st_mtime_ns) != (after.st_size, after.st_mtime_ns):
            fields["changed_while_hashing"] = True  # its next close is recorded again
        self.seen += 1
        self._record("written", t=t, **fields)

    def _record(self, kind: str, t: float | None = None, **fields: Any) -> None:
        when = time.time() if t is None else t
        self.writer.append({"schema": SCHEMA, "kind": kind, "t": when, **fields})

    def _rel(self, path: Path) -> str:
        try:
            return path.resolve().relative_to(self.out.resolve()).as_posix()
        except ValueError:
            return str(path)


def _stat(path: Path) -> dict[str, Any]:
    try:
        return {"size": path.stat().st_size}
    except OSError:
        return {"size": None}


@dataclass(frozen=True)
class WatchLog:
    """The watcher's stream as verify reads it: what was written, and whether the stream
    can be trusted whole (an intact chain, no lost events, a stop record)."""

    written: list[dict[str, Any]]
    problems: list[str]  # a broken chain, a lost-events overflow, unreadable lines
    stopped: bool
    writers: str = "unchecked: a watcher stream from before the writer check"  # "fanotify" or why not
    ingress: Ingress | None = None  # the host's receive bytes from the sensor stream


def read_watch(run_path: Path | str) -> WatchLog | None:
    """``RUN/sensor_ckpt.jsonl`` read and chain-checked; None when the run has none."""
    from inspectorate.capture._chain_read import read_chained

    path = Path(run_path) / STREAM
    if not path.is_file():
        return None
    records, problems = read_chained(path)
    if any(r.get("kind") == "overflow" for r in records):
        problems.append(f"{STREAM}: the watcher lost events (queue overflow)")
    written = [r for r in records if r.get("kind") == "written" and isinstance(r.get("t"), (int, float))]
    start = next((r for r in records if r.get("kind") == "start"), {})
    writers = str(start.get("writers") or WatchLog.writers)
    stopped = any(r.get("kind") == "stop" for r in records)
    return WatchLog(written, problems, stopped, writers, read_ingress(Path(run_path)))


@dataclass(frozen=True)
class Ingress:
    """Bytes received from outside, cumulative from the sensor's first sample (the
    challenge is issued with it): every interface of the host's namespace but loopback
    (``net``), plus the workload namespace's interfaces but its loopback (``wl_net``).
    Loopback carries what the machine sends itself (ranks of one host talking), never
    bytes computed elsewhere. ``t0``: the sensor's start (when the challenge went out)."""

    t0: float
    times: list[float]
    cumulative: list[float]

    def by(self, t: float) -> float:
        """Bytes received from the start to the first sample at or after ``t`` (the last
        sample when none is later: the bytes up to ``t`` are then all counted)."""
        import bisect

        i = bisect.bisect_left(self.times, t)
        return self.cumulative[min(i, len(self.cumulative) - 1)]


def read_ingress(run_path: Path) -> Ingress | None:
    """The sensor stream's receive counters as an ``Ingress``; None without a stream or
    without traffic counters (nothing then bounds what entered the host)."""
    from inspectorate.capture._chain_read import read_chained

    path = run_path / "sensor.jsonl"
    if not path.is_file():
        return None
    records, _ = read_chained(path)
    start = next((r for r in records if r.get("kind") == "start"), None)
    samples = [r for r in records if r.get("kind") == "sample" and isinstance(r.get("net"), dict)]
    if start is None or not samples:
        return None
    times, cum, total = [], [], 0.0
    prev: dict[str, float] = {}
    for i, r in enumerate(samples):
        now = _rx(r)
        if i:  # a counter that fell (an interface re-created) restarts from 0
            total += sum(
                max(v - prev.get(k, 0.0), 0.0) if v >= prev.get(k, 0.0) else v for k, v in now.items()
            )
        prev = now
        times.append(float(r["t"]))
        cum.append(total)
    return Ingress(float(start.get("t", times[0])), times, cum)


def _rx(sample: dict[str, Any]) -> dict[str, float]:
    out = {f"host/{k}": float(v[0]) for k, v in sample["net"].items() if k != "lo" and v}
    if sample.get("net_scope") == "netns" and isinstance(sample.get("wl_net"), dict):
        out.update({f"ns/{k}": float(v[0]) for k, v in sample["wl_net"].items() if k != "lo" and v})
    return out
