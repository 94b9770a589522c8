"""The sensor's per-tick reads of the workload's processes and the host, through
descriptors kept open (``_procfs.Pread``).

Cost model (one torch process, measured with ``time.process_time`` on this host): a tick
used to cost ~1.8 ms of CPU, of which ~0.8 ms was ``smaps_rollup`` (7-10 ms a read,
once a second) and most of the rest ``pathlib`` and ``open``. What changed, and why the
evidence is the same:

* ``stat``/``status``/``io`` of every process, the host's ``/proc/stat`` and
  ``/proc/net/dev`` and (pid mode) each thread's ``children`` file are opened once and
  re-read with ``pread``: the same numbers, every tick.
* PSS (``smaps_rollup`` walks every mapping) is re-read when the process's RSS has moved
  by more than ``PSS_SLACK_B`` (32 MiB) since the last read (at most once
  a second, as before) and at least every ``PSS_MAX_AGE_S``; between reads the sensor
  reports the last PSS plus the RSS change since (capped by RSS). The workload's only
  process (the common light case) is re-read when its file-backed and shared memory
  (RssFile + RssShmem) moved, and at least every ``PSS_MAX_AGE_ALONE_S``: its anonymous
  memory is private (an exec'd process shares no anonymous page, and shared anonymous
  mappings count as RssShmem), so an anonymous change moves PSS exactly as RSS and the
  carried value is exact for it; what the longer age leaves stale is only the share of
  file pages other processes of the host map (a neighbour starting torch halves the
  workload's share of libtorch's pages), which is the neighbour's doing, not the
  workload's. (Each read costs 6-10 ms for a torch process: at 10 s that alone was
  ~1 ms/s, the whole 2% of a 0.05-core workload.) Private growth and
  shrinkage, what a footprint is made of, move PSS and RSS alike, so the carried value is
  exact for them; shared pages can make it off by at most the slack before a re-read.
  Pages also change hands without any RSS moving when a process that shares them starts
  or exits (a forked helper, a dataloader worker): then every process is re-read (at
  most once a second), so a sharer that exits cannot leave the survivor's PSS at half.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from inspectorate.capture._procfs import Pread, net_dev_bytes, pss_b, read_once

PSS_MIN_AGE_S = 1.0  # never re-read smaps_rollup of a process more often than this
PSS_MAX_AGE_S = 10.0  # ... nor less often than this
PSS_MAX_AGE_ALONE_S = 60.0  # ... for the workload's only process (see the module doc)
PSS_SLACK_B = 32 << 20  # RSS moved by more than this since the last read: re-read PSS


@dataclass
class ProcFiles:
    """One process's kept-open files and its PSS bookkeeping."""

    pid: int
    stat: Pread
    status: Pread | None
    io: Pread | None
    kids: dict[str, Pread] = field(default_factory=dict)  # tid -> task/TID/children
    pss: int | None = None
    pss_rss: int = 0  # RSS when PSS was last read
    pss_file: int = 0  # RssFile + RssShmem when PSS was last read
    pss_t: float = float("-inf")

    @classmethod
    def open(cls, pid: int) -> ProcFiles | None:
        stat = Pread.open(f"/proc/{pid}/stat")
        if stat is None:
            return None
        return cls(pid, stat, Pread.open(f"/proc/{pid}/status"), Pread.open(f"/proc/{pid}/io"))

    def texts(self) -> tuple[bytes, bytes | None, bytes | None] | None:
        stat = self.stat.read()
        if not stat:
            return None
        return stat, self.status.read() if self.status else None, self.io.read() if self.io else None

    def children(self) -> list[int] | None:
        """Children of every thread; None when the kernel has no ``children`` files."""
        try:
            tids = os.listdir(f"/proc/{self.pid}/task")
        except OSError:
            return []
        for gone in set(self.kids) - set(tids):
            self.kids.pop(gone).close()
        out: list[int] = []
        found = False
        for tid in tids:
            f = self.kids.get(tid)
            if f is None:
                f = Pread.open(f"/proc/{self.pid}/task/{tid}/children")
                if f is None:
                    continue
                self.kids[tid] = f
            text = f.read()
            if text is not None:
                found = True
                out.extend(int(c) for c in text.split())
        return out if found else None

    def pss_now(
        self,
        rss: int,
        now: float,
        others_changed: bool = False,
        *,
        file_b: int | None = None,
        alone: bool = False,
    ) -> int | None:
        """PSS read or carried (see the module doc). ``others_changed``: a process of the
        workload appeared or exited, so pages shared with it changed hands without this
        process's RSS moving (a sharer that exits leaves its half to the survivor).
        ``alone``: this is the workload's only process, so its anonymous memory is its own
        and only file-backed and shared memory (``file_b``) can move PSS apart from RSS."""
        age = now - self.pss_t
        if alone and file_b is not None:
            moved = others_changed or abs(file_b - self.pss_file) > PSS_SLACK_B
            max_age = PSS_MAX_AGE_ALONE_S
        else:
            moved = others_changed or abs(rss - self.pss_rss) > PSS_SLACK_B
            max_age = PSS_MAX_AGE_S
        if age >= max_age or (moved and age >= PSS_MIN_AGE_S):
            self.pss = pss_b(read_once(f"/proc/{self.pid}/smaps_rollup"))
            self.pss_rss, self.pss_file, self.pss_t = rss, file_b or 0, now
        if self.pss is None:
            return None
        grown = rss - self.pss_rss
        if alone and file_b is not None:
            # anonymous change counts whole (private); file pages faulted in since the
            # read count at the share the process's file pages had then (they are the
            # same libraries, shared as widely): counted whole, a warming-up torch
            # process's carried PSS crept ~9 MB above the truth within a minute
            d_file = file_b - self.pss_file
            anon_then = self.pss_rss - self.pss_file
            share = (self.pss - anon_then) / self.pss_file if self.pss_file > 0 else 1.0
            grown = grown - d_file + int(d_file * min(max(share, 0.0), 1.0))
        return max(0, min(rss, self.pss + grown))

    def close(self) -> None:
        for f in (self.stat, self.status, self.io, *self.kids.values()):
            if f is not None:
                f.close()
        self.kids.clear()


class ProcTable:
    """Kept-open files of every process the sensor has seen alive, by PID."""

    def __init__(self) -> None:
        self.files: dict[int, ProcFiles] = {}

    def get(self, pid: int) -> ProcFiles | None:
        f = self.files.get(pid)
        if f is None:
            f = ProcFiles.open(pid)
            if f is not None:
                self.files[pid] = f
        return f

    def texts(self, pid: int) -> tuple[bytes, bytes | None, bytes | None] | None:
        """Current texts; a descriptor of an exited process (its PID maybe reused) is
        dropped and the PID opened afresh once."""
        f = self.get(pid)
        texts = f.texts() if f is not None else None
        if texts is None and f is not None:
            self.drop(pid)
            f = self.get(pid)
            texts = f.texts() if f is not None else None
        return texts

    def tree(self, root: int, exclude: set[int], scan: object) -> list[int]:
        """``root`` and its descendants minus ``exclude``; ``scan(pid)`` (a full ``/proc``
        scan) where the kernel lacks ``children`` files."""
        seen: list[int] = []
        stack = [root]
        while stack:
            pid = stack.pop()
            if pid in exclude or pid in seen:
                continue
            seen.append(pid)
            f = self.get(pid)
            kids = f.children() if f is not None else []
            stack.extend(kids if kids is not None else scan(pid))  # type: ignore[operator]
        return seen

    def keep_only(self, alive: set[int]) -> None:
        for pid in set(self.files) - alive:
            self.drop(pid)

    def drop(self, pid: int) -> None:
        f = self.files.pop(pid, None)
        if f is not None:
            f.close()

    def close(self) -> None:
        for pid in list(self.files):
            self.drop(pid)


class HostFiles:
    """The host's ``/proc/stat`` and ``/proc/net/dev`` (shown beside the workload's own)."""

    def __init__(self, clk_tck: float) -> None:
        self.clk_tck = clk_tck
        self.stat = Pread("/proc/stat")
        self.net = Pread("/proc/net/dev")

    def cpu(self) -> tuple[float, int]:
        """(busy CPU-seconds of the whole host since boot, logical CPUs)."""
        text = self.stat.read() or b""
        first = text[: text.index(b"\n")] if b"\n" in text else text
        vals = [int(v) for v in first.split()[1:9]]
        busy = sum(vals) - vals[3] - vals[4]  # minus idle and iowait
        return busy / self.clk_tck, text.count(b"\ncpu")

    def nics(self) -> dict[str, list[int]]:
        return net_dev_bytes(self.net.read()) or {}

    def close(self) -> None:
        self.stat.close()
        self.net.close()
