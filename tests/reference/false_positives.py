"""The reference's own false positives: classes of findings an honest trace shows.

Each class names the honest trace that shows it (``witnesses``, bases of the suite; a
test checks that the reference flags it under that kind and we do not) and a predicate that
decides, from the mutated records and the commitment alone, whether a finding falls
in the class. A predicate says what the trace *is* (e.g. "no chip's windows overlap"),
never "ours did not flag it", so a mutation that adds a real problem of the same kind
makes the predicate false and shows up as a gap.
"""

from __future__ import annotations

import fnmatch
import functools
import math
from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from parity_harness import Exception_

from inspectorate.trace import parse_time

Records = list[dict[str, Any]]

# The reference's implicit peak: CHIP_PEAK_FLOPS (1e15 FLOP/s) x WINDOW_SECONDS (60) x 1.02,
# per record whatever the window's length. Ours: 2.5e15 FLOP/s (H100/H200 dense FP8,
# 1.98e15, with headroom) times the record's own window.
OUR_DEFAULT_PEAK = 2.5e15


def _rules(commitment: dict[str, Any], kind: str) -> list[dict[str, Any]]:
    return [r for r in commitment.get("deterministic_rules", []) if r["kind"] == kind]


_parse = functools.lru_cache(maxsize=65536)(parse_time)


def _span(record: dict[str, Any]) -> tuple[float, float]:
    return _parse(record["window_start"]), _parse(record["window_end"])


def time_order_holds(records: Records, commitment: dict[str, Any]) -> bool:
    """Taken in time order, no chip's windows overlap: only the file order is unsorted."""
    by_chip: dict[str, list[tuple[float, float]]] = defaultdict(list)
    for r in records:
        by_chip[r["chip_id"]].append(_span(r))
    for spans in by_chip.values():
        spans.sort()
        if any(b[0] < a[1] for a, b in zip(spans, spans[1:])):
            return False
    return True


def _peak(chip: str, commitment: dict[str, Any]) -> float:
    """The chip's peak FLOP/s: the commitment's declaration (first matching glob), else
    an H100/H200 at dense FP8 with headroom."""
    for rule in _rules(commitment, "flop_physically_possible"):
        for pattern, peak in rule.get("peak_flops", {}).items():
            if fnmatch.fnmatchcase(chip, pattern):
                return float(peak)
    return OUR_DEFAULT_PEAK


def within_real_peak(records: Records, commitment: dict[str, Any]) -> bool:
    """Every record the reference's fixed per-record limit flags stays within its chip's
    peak over its own window (long windows; chips faster than 1 PFLOP/s)."""
    for r in records:
        if r["flops"] > 1e15 * 60 * 1.02:
            start, end = _span(r)
            if r["flops"] > _peak(r["chip_id"], commitment) * (end - start):
                return False
    return True


def evolving(records: Iterable[dict[str, Any]]) -> bool:
    """The hashes are one model whose weights change: on every chip each hash is one
    unbroken run (none returns), and no two hashes are reported at the same time
    (each hash's first window starts after the previous hash's last window started)."""
    runs: dict[str, list[str]] = defaultdict(list)
    first: dict[str, float] = {}
    last: dict[str, float] = {}
    for r in sorted(records, key=lambda r: _parse(r["window_start"])):
        h, t = r["model_hash_prefix"], _parse(r["window_start"])
        seq = runs[r["chip_id"]]
        if not seq or seq[-1] != h:
            if h in seq:
                return False
            seq.append(h)
        first.setdefault(h, t)
        last[h] = t
    order = sorted(first, key=first.__getitem__)
    return all(first[b] > last[a] for a, b in zip(order, order[1:]))


def _grouped(records: Records, keys: tuple[str, ...]) -> dict[tuple, Records]:
    out: dict[tuple, Records] = defaultdict(list)
    for r in records:
        out[tuple(r[k] for k in keys)].append(r)
    return out


def training_evolves_per_job(records: Records, commitment: dict[str, Any]) -> bool:
    """Each job's records of the rule's op_type are one evolving model."""
    for rule in _rules(commitment, "model_uniqueness_per_job"):
        wanted = rule.get("op_type", "training")
        for group in _grouped([r for r in records if r["op_type"] == wanted], ("job_id",)).values():
            if not evolving(group):
                return False
    return True


def model_changes_are_evolution(records: Records, commitment: dict[str, Any]) -> bool:
    """Within each (job, operator, code_commit): at most ``max_distinct_configs``
    configs; under each config, training is one evolving model and every other record
    uses a hash that training produced (or, without training, one hash)."""
    for rule in _rules(commitment, "model_hash_consistency"):
        limit = int(rule.get("max_distinct_configs", 2))
        for group in _grouped(records, ("job_id", "operator", "code_commit")).values():
            configs = _grouped(group, ("config_hash",))
            if len(configs) > limit:
                return False
            for under in configs.values():
                training = [r for r in under if r["op_type"] == "training"]
                trained = {r["model_hash_prefix"] for r in training}
                others = {r["model_hash_prefix"] for r in under if r["op_type"] != "training"}
                if not evolving(training) or (others - trained if trained else len(others) > 1):
                    return False
    return True


def slots_filled_within_declaration(records: Records, commitment: dict[str, Any]) -> bool:
    """Every record lies inside the declared range on a declared chip, and every
    (chip, slot) holds the start of a record: the windows are only off the grid."""
    for rule in _rules(commitment, "window_completeness"):
        start, end = _parse(rule["expected_window_start"]), _parse(rule["expected_window_end"])
        width = float(rule.get("window_seconds", 60))
        chips = set(rule["expected_chips"])
        slots = math.ceil((end - start) / width - 1e-9)
        seen = set()
        for r in records:
            s, e = _span(r)
            if r["chip_id"] not in chips or s < start or e > end:
                return False
            seen.add((r["chip_id"], math.floor((s - start) / width + 1e-9)))
        if any((chip, k) not in seen for chip in chips for k in range(slots)):
            return False
    return True


def fingerprints_unique_over_work(records: Records, commitment: dict[str, Any]) -> bool:
    """Counting only records that do work (not idle), no (model, code, dataset)
    fingerprint spans more jobs than allowed."""
    for rule in _rules(commitment, "cross_job_fingerprint_consistency"):
        limit = int(rule.get("max_jobs_per_fingerprint", 1))
        jobs: dict[tuple, set[str]] = defaultdict(set)
        for r in records:
            if r["op_type"] != "idle":
                jobs[(r["model_hash_prefix"], r["code_commit"], r["dataset_fingerprint"])].add(r["job_id"])
        if any(len(j) > limit for j in jobs.values()):
            return False
    return True


EXCEPTIONS: dict[str, Exception_] = {
    e.kind: e
    for e in (
        Exception_(
            "timestamp_monotonic",
            "the reference compares each window with the previous record of its chip in file "
            "order; real logs are not written in time order, and only an overlap in time "
            "counts compute twice",
            ("bloom_real",),
            time_order_holds,
        ),
        Exception_(
            "flop_physically_possible",
            "the reference caps every record at 1 PFLOP/s x 60 s whatever its window's length "
            "and chip; a 5-minute window, or an H100 above 1 PFLOP/s (dense FP8 peak 1.98e15), "
            "is physically possible",
            ("gen-h100-300s", "gen-h100-fp8"),
            within_real_peak,
        ),
        Exception_(
            "model_uniqueness_per_job",
            "training changes the weights: one model shows as a sequence of hashes",
            ("real_laptop_clean", "bloom_real"),
            training_evolves_per_job,
        ),
        Exception_(
            "model_hash_consistency",
            "training changes the weights without a config change: one model shows as a "
            "sequence of hashes under one config",
            ("real_laptop_clean", "bloom_real"),
            model_changes_are_evolution,
        ),
        Exception_(
            "window_completeness",
            "the reference wants every window to start exactly on the declared grid; real "
            "windows jitter and vary in length, and one record starting in each slot is "
            "what completeness needs",
            ("real_laptop_clean",),
            slots_filled_within_declaration,
        ),
        Exception_(
            "cross_job_fingerprint_consistency",
            "the reference counts idle records: a chip parked under a pool job while it "
            "reports the model it last served does no work, so it splits no run",
            ("gen-mixed-4",),
            fingerprints_unique_over_work,
        ),
    )
}
