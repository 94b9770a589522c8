"""What the workload touched and left unchanged: the still part of its working set.

The working set (``capture._workset``) says how much memory the tree touched, and a
large batch's activations make that number honest at any size, so it can only excuse.
What tells serving from training is *which* memory is touched: a forward pass reads the
weights and leaves them as they were; a training step writes them (and its gradients
and optimizer moments) every step. An inference phase of an ``n``-parameter model
therefore touches, in any interval holding a whole forward pass, at least its weights'
bytes without changing them; a training phase touches almost nothing it leaves
unchanged (activations, gradients, moments and weights are all rewritten).

The probe estimates that *still* set without any page-level accessed bit (this kernel
has neither idle-page tracking nor soft-dirty): at the start of an interval it reads
``K`` resident data pages drawn uniformly from the tree's data mappings (the weights of
the draw are each mapping's resident bytes; a page's presence comes from
``/proc/PID/pagemap``) through ``/proc/PID/mem``, and keeps their bytes. At the end it
reads them again. The pages found identical estimate ``same_b``, the bytes resident at
the start and unchanged at the end. Every page resident and untouched at the end was
resident and unchanged throughout (a page cannot change, nor newly appear, without
being touched), so

    still_b  =  same_b  -  (rss_b - referenced_b)      (data mappings, at the end)

is an unbiased estimate of a lower bound on the bytes touched and left unchanged. Its
error is ``rss / K`` bytes per sampled page: the standard deviation is reported
(``ws_still_sd_b``) so the verifier can allow for it.

What the prover can do: hold a decoy of the weights' size and read it every interval.
That costs a model's worth of resident memory, which the footprint rule bounds; it
cannot lower ``rss - referenced`` (the MMU sets the bits) nor make a rewritten page read
as unchanged (the bytes are compared, not a hash it could steer, and it cannot know
which pages are drawn). Data mappings exclude executable mappings and shared libraries
(their read-only data is touched by every process for free) and the kernel's own pages;
a memory-mapped weights file counts, as an honest server may map its checkpoint.

The page contents stay in the sensor's memory for one interval and are never written
anywhere: the sensor compares them and drops them.
"""

from __future__ import annotations

import bisect
import os
import random
import re
from dataclasses import dataclass, field

import numpy as np

PAGE = 4096
SAMPLE_PAGES = 2048  # drawn per interval across the tree: 8 MB read twice
_KERNEL_AREAS = (b"[vvar]", b"[vdso]", b"[vsyscall]", b"[vvar_vclock]")


@dataclass
class Mapping:
    start: int
    end: int
    rss: int
    referenced: int


@dataclass
class ProcMemory:
    """One process's smaps, split into all mappings and the data mappings."""

    rss: int = 0
    referenced: int = 0
    data: list[Mapping] = field(default_factory=list)

    @property
    def data_rss(self) -> int:
        return sum(m.rss for m in self.data)

    @property
    def data_referenced(self) -> int:
        return sum(m.referenced for m in self.data)


_SMAPS = re.compile(
    rb"^([0-9a-f]+)-([0-9a-f]+) (\S+) \S+ \S+ \S+[ \t]*([^\n]*)$|^Rss:\s+(\d+)|^Referenced:\s+(\d+)", re.M
)


def read_smaps(pid: int) -> ProcMemory | None:
    """Totals of ``/proc/PID/smaps`` (Rss, Referenced) and its data mappings; None if gone."""
    try:
        with open(f"/proc/{pid}/smaps", "rb") as fh:
            text = fh.read()
    except OSError:
        return None
    out = ProcMemory()
    current: Mapping | None = None
    seen = False
    for m in _SMAPS.finditer(text):
        lo, hi, perms, path, rss, ref = m.groups()
        if lo is not None:
            current = None if _not_data(perms, path.strip()) else Mapping(int(lo, 16), int(hi, 16), 0, 0)
            if current is not None:
                out.data.append(current)
        elif rss is not None:
            out.rss += int(rss) * 1024
            if current is not None:
                current.rss = int(rss) * 1024
        else:
            seen = True
            out.referenced += int(ref) * 1024
            if current is not None:
                current.referenced = int(ref) * 1024
    if not seen:
        return None
    out.data = [m for m in out.data if m.rss > 0]
    return out


def _not_data(perms: bytes, path: bytes) -> bool:
    """Code, shared libraries and the kernel's own areas are not data mappings."""
    return b"x" in perms or path in _KERNEL_AREAS or b".so" in path


def draw_pages(pid: int, maps: list[Mapping], k: int, rng: random.Random) -> list[int]:
    """``k`` addresses of resident pages, uniform over the resident pages of ``maps``."""
    total = sum(m.rss for m in maps)
    if k <= 0 or total <= 0:
        return []
    counts = np.random.default_rng(rng.getrandbits(64)).multinomial(k, [m.rss / total for m in maps])
    out: list[int] = []
    try:
        fd = os.open(f"/proc/{pid}/pagemap", os.O_RDONLY)
    except OSError:
        return []
    try:
        for m, c in zip(maps, counts, strict=True):
            if c:
                out += _present(fd, m, int(c), rng)
    finally:
        os.close(fd)
    return out


def _present(fd: int, m: Mapping, count: int, rng: random.Random) -> list[int]:
    """``count`` resident page addresses of one mapping (uniform, with replacement).

    A mostly resident mapping is sampled by rejection (one 8-byte ``pagemap`` read per
    candidate page); a sparse one by reading its whole ``pagemap`` (a kernel walk of
    every page it spans, ~0.1 us a page)."""
    first, pages = m.start // PAGE, (m.end - m.start) // PAGE
    if m.rss * 4 >= m.end - m.start:
        out: list[int] = []
        for _ in range(8 * count):
            page = first + rng.randrange(pages)
            try:
                entry = int.from_bytes(os.pread(fd, 8, page * 8), "little")
            except OSError:
                return out
            if entry >> 63:
                out.append(page * PAGE)
                if len(out) == count:
                    break
        return out
    try:
        raw = os.pread(fd, pages * 8, first * 8)
    except OSError:
        return []
    present = np.flatnonzero(np.frombuffer(raw, dtype=np.uint64) >> np.uint64(63))
    if present.size == 0:
        return []
    return [(first + int(present[rng.randrange(present.size)])) * PAGE for _ in range(count)]


def read_pages(pid: int, addrs: list[int]) -> list[bytes | None]:
    """Each page's bytes through ``/proc/PID/mem`` (None where it cannot be read)."""
    try:
        fd = os.open(f"/proc/{pid}/mem", os.O_RDONLY)
    except OSError:
        return [None] * len(addrs)
    out: list[bytes | None] = []
    try:
        for a in addrs:
            try:
                out.append(os.pread(fd, PAGE, a))
            except OSError:
                out.append(None)
    finally:
        os.close(fd)
    return out


# A page of fp32 values that a small step moved: of every NUDGE_STRIDE-th word (256 of
# its 1024: the decision is a share, and a quarter of the words cost a quarter of the
# ~40 ms all of them took on 1,400 changed pages), at least NUDGE_WORDS changed, and
# NUDGE_CLOSE of the changed ones are plausible weights (a magnitude in PLAUSIBLE) that
# moved by at most NUDGE_REL of their old value.
NUDGE_STRIDE = 4
NUDGE_WORDS = 64
NUDGE_REL = 0.25
NUDGE_CLOSE = 0.75
PLAUSIBLE = (1e-12, 1e4)


def nudged_pages(pairs: list[tuple[bytes, bytes]]) -> int:
    """How many of the (before, after) pages read as fp32 values nudged in place.

    Why: an optimizer step moves every weight it trains by a small fraction of itself
    (SGD's ``lr * grad``; AdamW's ~``lr``, 0.1-10% of a weight; its second moment, an
    EMA, by ~0.1%), so a trained copy's pages change in nearly every word and stay
    close in value. What an honest server rewrites (activations, a KV cache, buffers
    the allocator hands out again) takes values unrelated to the old ones: two
    independent normal values fall within 25% of each other ~8% of the time, and only
    values correlated above ~0.999 across the interval would pass. Pointers and
    integers fail as floats: a counter is a denormal, a pointer's low word has a random
    exponent. Memory is read as little-endian fp32 only: bf16/fp16 weights are not
    judged here."""
    if not pairs:
        return 0
    a, b = (
        np.ascontiguousarray(
            np.frombuffer(b"".join(p[k] for p in pairs), dtype="<f4").reshape(len(pairs), -1)[
                :, ::NUDGE_STRIDE
            ]
        )
        for k in (0, 1)
    )
    changed = a.view("<u4") != b.view("<u4")
    n = np.count_nonzero(changed, axis=1)
    rows = np.flatnonzero(n >= NUDGE_WORDS)
    if rows.size == 0:
        return 0
    a, b, changed = a[rows], b[rows], changed[rows]
    with np.errstate(invalid="ignore", over="ignore"):
        mag = np.abs(a)
        close = changed & (mag > PLAUSIBLE[0]) & (mag < PLAUSIBLE[1]) & (np.abs(b - a) <= NUDGE_REL * mag)
    return int(np.count_nonzero(np.count_nonzero(close, axis=1) >= NUDGE_CLOSE * n[rows]))


def _inside(maps: list[Mapping], starts: list[int], addr: int) -> bool:
    """Whether ``addr`` lies in one of ``maps`` (sorted by start, as smaps lists them)."""
    i = bisect.bisect_right(starts, addr) - 1
    return i >= 0 and addr < maps[i].end


class StillSampler:
    """The drawn pages of one interval, per process, and the estimate at its end."""

    def __init__(self, seed: int | None = None) -> None:
        self.rng = random.Random(seed if seed is not None else int.from_bytes(os.urandom(8), "big"))
        self.drawn: dict[int, tuple[list[int], list[bytes | None]]] = {}
        self.bytes_per_page = 0.0  # resident data bytes each drawn page stands for
        self.data_rss = 0  # the tree's data mappings' resident bytes at the interval's start

    @property
    def is_open(self) -> bool:
        """Whether pages were drawn for the interval now running."""
        return bool(self.drawn)

    def drop(self) -> None:
        """No estimate for the interval that starts now."""
        self.drawn = {}

    def close(self, mems: dict[int, ProcMemory]) -> dict[str, float] | None:
        """The interval's estimate from the pages drawn at its start (None if none).

        Stratified by mapping: a data mapping nothing touched (``Referenced`` 0 at the
        end) holds no still byte, exactly, so its drawn pages and its untouched bytes
        both leave the sum; only mappings touched in part carry sampling error. (A fork
        of the workload, a DataLoader worker, holds its parent's pages and touches few:
        without this its untouched memory would dominate the error.)"""
        if not self.drawn or self.bytes_per_page <= 0:
            return None
        same = total = 0
        moved: list[tuple[bytes, bytes]] = []  # pages rewritten in place (for ``nudged_pages``)
        untouched = 0  # of the processes drawn from: a newer one's pages were never drawn
        for pid, (addrs, before) in self.drawn.items():
            total += len(addrs)
            mem = mems.get(pid)
            if mem is None:
                continue
            touched = [m for m in mem.data if m.referenced > 0]
            starts = [m.start for m in touched]
            keep = [i for i, a in enumerate(addrs) if _inside(touched, starts, a)]
            after = read_pages(pid, [addrs[i] for i in keep])
            for i, b in zip(keep, after, strict=True):
                old = before[i]
                if old is not None and old == b:
                    same += 1
                elif old is not None and b is not None and len(old) == len(b) == PAGE:
                    moved.append((old, b))
            untouched += sum(m.rss - m.referenced for m in touched)
        w = self.bytes_per_page
        p = same / total if total else 0.0
        q = nudged_pages(moved) / total if total else 0.0
        return {
            "ws_still_b": round(same * w - untouched),
            "ws_still_sd_b": round(w * (total * p * (1 - p)) ** 0.5),
            # of the drawn pages, those a small step moved (an optimizer's update):
            # an unbiased estimate of the resident bytes nudged in place, and its sd
            "ws_nudged_b": round(q * total * w),
            "ws_nudged_sd_b": round(w * (total * q * (1 - q)) ** 0.5),
            "ws_data_b": sum(m.data_referenced for m in mems.values()),
            # how much the tree's data grew: pages that arrived during the interval (a
            # model loaded, a mapped file read in) cannot have been drawn, so cannot be still
            "ws_grew_b": sum(m.data_rss for m in mems.values()) - self.data_rss,
        }

    def open(self, mems: dict[int, ProcMemory], k: int = SAMPLE_PAGES) -> None:
        """Draw and read the pages of the interval that starts now, uniformly over every
        data mapping. (Drawing only from the mappings the closing interval touched cut
        the error little and missed the weights of a server that had been idle: a phase
        of serving after an idle one read 25 MB still of its 77 MB of weights.)"""
        self.drawn = {}
        self.data_rss = sum(m.data_rss for m in mems.values())
        total = self.data_rss
        self.bytes_per_page = 0.0
        if not total:
            return
        for pid, mem in mems.items():
            share = round(k * mem.data_rss / total)
            addrs = draw_pages(pid, mem.data, share, self.rng)
            if addrs:
                self.drawn[pid] = (addrs, read_pages(pid, addrs))
        # each drawn page stands for its share of the processes actually drawn from (a
        # process whose pages could not be read counts no still byte, and no error)
        drawn = sum(len(a) for a, _ in self.drawn.values())
        covered = sum(mems[pid].data_rss for pid in self.drawn)
        self.bytes_per_page = covered / drawn if drawn else 0.0
