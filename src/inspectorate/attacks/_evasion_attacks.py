"""Record attacks on what a record-only check cannot see without a commitment's help:
the log's end, the meaning of an idle window, and how many jobs a run is cut into.

Each is the competent version: the chain re-built (or, for a prefix, left exactly as
it was), every field consistent with the story told, nothing a cheap check catches.
The rule kinds that close them: ``require_head`` and ``window_slots_to_end`` (prefix),
``idle_record_honesty`` (idle relabelling), ``job_fragmentation`` with a
commitment-level ``aggregate_flop_cap`` at ``scope: global`` (confetti jobs).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from typing import Any

from inspectorate.attacks._intent import flop_per_token, work
from inspectorate.attacks._registry import attack
from inspectorate.attacks._util import Records, fake_commit, fake_hash, part, victims
from inspectorate.trace import parse_time

# -- a prefix of the log ------------------------------------------------------------


def is_strict_prefix(original: Sequence[Mapping[str, Any]], mutated: Sequence[Mapping[str, Any]]) -> bool:
    """The submitted records are the log's first records, unchanged, and some are left
    off. The violation is hidden, not removed: the records left off are still in the
    log, which a published head commits to and a declared window end demands."""
    return 0 < len(mutated) < len(original) and all(
        dict(m) == dict(o) for m, o in zip(mutated, original, strict=False)
    )


@attack(
    "prefix_at_slot",
    intent="submit the log up to a window boundary, before the cap is crossed, with no head",
    targets=["aggregate_flop_cap", "hash_chain_intact", "window_completeness"],
    space={"keep": [0.5, 0.7, 0.9]},
    intent_check=is_strict_prefix,
)
def prefix_at_slot(records: Records, rng: random.Random, keep: float = 0.7) -> Records:
    """Cut the log at a window boundary so every chip stops at the same instant (no
    ragged end that looks like a chip dropping out): the first records, in file order,
    whose windows start before the boundary at ``keep`` of the time span. Every record
    is the original, so the chain is intact; only a published head or a declared end
    of the audit window shows the tail is missing (the seed's logs publish no head)."""
    starts = sorted({parse_time(r["window_start"]) for r in records})
    boundary = starts[min(max(int(len(starts) * keep), 1), len(starts) - 1)] if len(starts) > 1 else None
    n = 0
    while n < len(records) and (boundary is None or parse_time(records[n]["window_start"]) < boundary):
        n += 1
    # a log not written in time order cannot be cut at one instant: cut by count
    if boundary is None or n == 0 or n == len(records):
        n = max(1, min(len(records) - 1, int(len(records) * keep)))
    return records[:n]


# -- training relabelled idle -------------------------------------------------------


def idle_work_recoverable(
    original: Sequence[Mapping[str, Any]], mutated: Sequence[Mapping[str, Any]]
) -> bool:
    """The work hidden in idle windows is still accounted for: an idle window on a chip
    between two records of one job on that chip is a window of that job, worth the
    job's mean FLOPs per record there. A run cut short at its end (idle after the last
    step) hides nothing a record can show; that one is telemetry's to find."""
    k = flop_per_token(original)
    recovered = work(mutated, k) + sum(_inside_idle_work(mutated))
    return recovered >= 0.99 * work(original, k)


def _inside_idle_work(records: Sequence[Mapping[str, Any]]) -> list[float]:
    per_chip: dict[str, list[Mapping[str, Any]]] = {}
    for r in records:
        per_chip.setdefault(r["chip_id"], []).append(r)
    out: list[float] = []
    for rows in per_chip.values():
        rows = sorted(rows, key=lambda r: parse_time(r["window_start"]))
        busy = [i for i, r in enumerate(rows) if r["op_type"] != "idle"]
        for i, r in enumerate(rows):
            if r["op_type"] != "idle":
                continue
            before = [j for j in busy if j < i]
            after = [j for j in busy if j > i]
            if before and after and rows[before[-1]]["job_id"] == rows[after[0]]["job_id"]:
                job = rows[before[-1]]["job_id"]
                mates = [float(rows[j]["flops"]) for j in busy if rows[j]["job_id"] == job]
                out.append(sum(mates) / len(mates))
    return out


@attack(
    "idle_inside_job",
    intent="training windows inside a running job relabelled idle with zero FLOPs",
    targets=["aggregate_flop_cap", "idle_must_be_zero"],
    space={"fraction": [0.2, 0.35], "identity": ["scrub", "keep"], "where": ["middle", "spread"]},
    intent_check=idle_work_recoverable,
)
def idle_inside_job(
    records: Records,
    rng: random.Random,
    fraction: float = 0.3,
    identity: str = "scrub",
    where: str = "spread",
) -> Records:
    """Relabel a ``fraction`` of the run's windows ``idle`` with zero FLOPs and tokens,
    batch and sequence length zeroed so idle_must_be_zero and every ratio rule see a
    truly idle window. ``identity="scrub"`` also moves them to an idle job with the
    serving model's identity, as an honest idle window carries; ``"keep"`` leaves the
    training job's identity (the lazy version). ``where``: a block in the ``middle``
    of the run, or ``spread`` (every k-th window), never the run's first or last
    window on a chip: inside the job, so the cut does not look like an early end."""
    idx = victims(records)
    chosen = _interior(records, idx, fraction, where)
    other = next((r for r in records if r["job_id"] != records[idx[0]]["job_id"]), None)
    idle_model = other["model_hash_prefix"] if other else fake_hash(rng)
    idle_data = other["dataset_fingerprint"] if other else fake_hash(rng)
    gone = {records[i]["record_id"] for i in chosen}
    cited = {r["record_id"]: list(r["upstream_refs"]) for r in records}
    for i in chosen:
        r = records[i]
        r.update(op_type="idle", flops=0.0, tokens_processed=0, batch_size=0, sequence_length=0)
        r["upstream_refs"] = []
        if identity == "scrub":
            r.update(job_id="job-idle", model_hash_prefix=idle_model, dataset_fingerprint=idle_data)
    _skip_refs(records, gone, cited)
    return records


def _interior(records: Records, idx: list[int], fraction: float, where: str) -> list[int]:
    """Per chip, windows strictly between the chip's first and last window of the run:
    a ``fraction`` of them as a ``middle`` block, or ``spread`` every k-th."""
    per_chip: dict[str, list[int]] = {}
    for i in idx:  # victims are in time order
        per_chip.setdefault(records[i]["chip_id"], []).append(i)
    out: list[int] = []
    step = max(int(round(1 / max(fraction, 1e-9))), 2)
    for rows in per_chip.values():
        inner = rows[1:-1]
        if not inner:
            continue
        out += part(inner, fraction, "middle") if where == "middle" else inner[::step]
    return sorted(out)


def _skip_refs(records: Records, gone: set[str], cited: dict[str, list[str]]) -> None:
    """Refs to a relabelled window point past it, to the job's record it cited (the
    job's lineage stays unbroken, as a forger who re-wrote the log would leave it)."""
    for r in records:
        if r["record_id"] in gone:
            continue
        refs: list[str] = []
        for ref in r["upstream_refs"]:
            target: str | None = ref
            seen: set[str] = set()
            while target is not None and target in gone and target not in seen:
                seen.add(target)
                target = next(iter(cited.get(target, [])), None)
            if target is not None and target not in gone:
                refs.append(target)
        r["upstream_refs"] = refs


# -- confetti jobs ------------------------------------------------------------------


@attack(
    "confetti_jobs",
    intent="the run cut into single-record jobs, each with its own model, code and data identity",
    targets=[
        "aggregate_flop_cap",
        "cross_job_fingerprint_consistency",
        "model_uniqueness_per_job",
        "training_unique_per_model",
    ],
    space={"fraction": [0.5, 1.0]},
)
def confetti_jobs(records: Records, rng: random.Random, fraction: float = 1.0) -> Records:
    """Every one of the run's last ``fraction`` of windows becomes a job of its own: a
    fresh job_id, model hash, code commit, dataset fingerprint and config, and no
    upstream refs (each is its job's root, which require_upstream_refs allows). Each
    job holds one window, so any per-job cap above one window's FLOPs passes, and no
    fingerprint, model or code is shared for the uniqueness rules to pair up."""
    chosen = part(victims(records), fraction, "tail")
    cut = {records[i]["record_id"] for i in chosen}
    for k, i in enumerate(chosen):
        r = records[i]
        r.update(
            job_id=f"{r['job_id']}-c{k:05d}",
            model_hash_prefix=fake_hash(rng),
            code_commit=fake_commit(r["code_commit"], rng),
            dataset_fingerprint=fake_hash(rng),
            config_hash=fake_hash(rng),
            upstream_refs=[],
        )
    for r in records:  # the remaining records cite nothing that left their job
        if r["record_id"] not in cut:
            r["upstream_refs"] = [ref for ref in r["upstream_refs"] if ref not in cut]
    return records
