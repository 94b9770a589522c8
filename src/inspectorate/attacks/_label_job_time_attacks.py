"""Record attacks on labels, job identity, completeness and time.

Each function receives a private copy of the records (the registry deep-copies them)
and may edit it in place; the registry re-chains the result. "Victims" are the
dominant job's non-idle records: the run ``violate`` inflated past its cap.
"""

from __future__ import annotations

import random

from inspectorate.attacks._registry import attack
from inspectorate.attacks._util import (
    Records,
    chunks,
    part,
    seconds_of,
    shift_window,
    victims,
)
from inspectorate.trace import format_time, parse_time

WHERE = ["head", "middle", "tail"]


@attack(
    "relabel_op_type",
    intent="training FLOPs booked under another op_type",
    targets=["aggregate_flop_cap"],
    space={"to": ["inference", "eval"], "fraction": [0.3, 0.5, 1.0], "where": WHERE},
    hints={"to": "allowed_non_training_op_types"},
    seed_round="10, 23",
)
def relabel_op_type(
    records: Records, rng: random.Random, to: str = "inference", fraction: float = 1.0, where: str = "tail"
) -> Records:
    """Relabel part of the run as ``to``: the seed's eval-masquerade (round 10) and
    eval-beneath-honesty-threshold (round 23). FLOP/token stays training-shaped."""
    for i in part(victims(records), fraction, where):
        records[i]["op_type"] = to
    return records


@attack(
    "relabel_new_label",
    intent="training FLOPs under an op_type no cap names",
    targets=["aggregate_flop_cap"],
    space={"label": ["preprocessing", "staging", "distillation"], "fraction": [0.3, 0.5]},
    seed_round="18",
)
def relabel_new_label(
    records: Records, rng: random.Random, label: str = "preprocessing", fraction: float = 0.5
) -> Records:
    """Invent a label outside the op-typed caps (the seed's preprocessing masquerade, round 18)."""
    for i in part(victims(records), fraction, "tail"):
        records[i]["op_type"] = label
    return records


@attack(
    "idle_laundering",
    intent="training FLOPs reported in windows labelled idle",
    targets=["aggregate_flop_cap"],
    space={"fraction": [0.2, 0.3, 0.5], "where": WHERE},
    seed_round="1",
)
def idle_laundering(
    records: Records, rng: random.Random, fraction: float = 0.3, where: str = "tail"
) -> Records:
    """Label busy windows idle so op-typed caps skip them; idle is excluded from the "*"
    cap too (ghost-chip-idle-laundering, round 1)."""
    for i in part(victims(records), fraction, where):
        records[i]["op_type"] = "idle"
    return records


def _split(records: Records, parts: int, fields: dict[str, str]) -> Records:
    """Give each time-contiguous fragment of the run its own value of ``fields``."""
    for k, chunk in enumerate(chunks(victims(records), parts)):
        if k == 0:
            continue
        for i in chunk:
            for name, suffix in fields.items():
                records[i][name] = f"{records[i][name]}{suffix}{k}"
    return records


@attack(
    "split_jobs",
    intent="one run booked as several job_ids, each under the cap",
    targets=["aggregate_flop_cap"],
    space={"parts": [2, 3, 4]},
    seed_round="24, 31",
)
def split_jobs(records: Records, rng: random.Random, parts: int = 2) -> Records:
    """Cut the run in time into ``parts`` job ids (job fragmentation, rounds 24 and 31)."""
    return _split(records, parts, {"job_id": "-part"})


@attack(
    "split_operators",
    intent="one run split across jobs run by different operators",
    targets=["aggregate_flop_cap", "operator_op_type_uniqueness"],
    space={"parts": [2, 3]},
    seed_round="31",
)
def split_operators(records: Records, rng: random.Random, parts: int = 2) -> Records:
    """Fragments get their own job and operator (team), defeating per-operator limits."""
    return _split(records, parts, {"job_id": "-part", "operator": "-team"})


@attack(
    "split_regions",
    intent="one run presented as jobs in different regions on different chips",
    targets=["aggregate_flop_cap", "chip_job_stability"],
    space={"parts": [2, 3]},
)
def split_regions(records: Records, rng: random.Random, parts: int = 2) -> Records:
    """Fragments move to another region: new job, region and chip names (geo-split)."""
    return _split(records, parts, {"job_id": "-r", "cluster_region": "-alt", "chip_id": "-r"})


@attack(
    "operator_rotation",
    intent="the responsible operator changes mid-job",
    targets=["operator_op_type_uniqueness"],
    space={"parts": [2, 3]},
    seed_round="57",
)
def operator_rotation(records: Records, rng: random.Random, parts: int = 2) -> Records:
    """Rotate the operator within one job (operator-rotation-within-job, round 57)."""
    return _split(records, parts, {"operator": "-rot"})


def _drop(records: Records, gone: set[int]) -> Records:
    """Remove records and scrub references to them (a careful forger leaves no dangling refs)."""
    gone_ids = {records[i]["record_id"] for i in gone}
    kept = [r for i, r in enumerate(records) if i not in gone]
    for r in kept:
        r["upstream_refs"] = [ref for ref in r["upstream_refs"] if ref not in gone_ids]
    return kept


@attack(
    "drop_head",
    intent="remove the run's first windows",
    targets=["aggregate_flop_cap"],
    space={"fraction": [0.2, 0.4]},
)
def drop_head(records: Records, rng: random.Random, fraction: float = 0.3) -> Records:
    """Drop the first windows of the run. Removes the violation rather than hiding it."""
    return _drop(records, set(part(victims(records), fraction, "head")))


@attack(
    "drop_tail",
    intent="remove the run's last windows",
    targets=["aggregate_flop_cap"],
    space={"fraction": [0.2, 0.4]},
    seed_round="tail-drop (2026-04-25)",
)
def drop_tail(records: Records, rng: random.Random, fraction: float = 0.3) -> Records:
    """The seed's chronological tail drop: the windows that cross the cap vanish."""
    return _drop(records, set(part(victims(records), fraction, "tail")))


@attack(
    "drop_middle",
    intent="remove windows from the middle of the run",
    targets=["aggregate_flop_cap"],
    space={"fraction": [0.2, 0.4]},
)
def drop_middle(records: Records, rng: random.Random, fraction: float = 0.3) -> Records:
    """Drop a block in the middle: the chain is re-written, so only coverage can tell."""
    return _drop(records, set(part(victims(records), fraction, "middle")))


@attack("drop_violating", intent="remove every record of the violating job", targets=["aggregate_flop_cap"])
def drop_violating(records: Records, rng: random.Random) -> Records:
    """Delete the whole violating job, idle windows too (the canonical intent-False attack)."""
    job = records[victims(records)[0]]["job_id"]
    return _drop(records, {i for i, r in enumerate(records) if r["job_id"] == job})


@attack(
    "truncate",
    intent="submit only a prefix of the log",
    targets=["aggregate_flop_cap"],
    space={"keep": [0.5, 0.7]},
)
def truncate(records: Records, rng: random.Random, keep: float = 0.6) -> Records:
    """Keep the first ``keep`` fraction of the file (what a crash or a lie looks like)."""
    return records[: max(1, int(len(records) * keep))]


@attack(
    "time_shift",
    intent="part of the run moved outside the audited time range",
    targets=["audit_window_uniqueness", "aggregate_flop_cap"],
    space={"fraction": [0.3, 0.5], "seconds": [-86400.0, -7 * 86400.0, 86400.0]},
)
def time_shift(
    records: Records, rng: random.Random, fraction: float = 0.5, seconds: float = -86400.0
) -> Records:
    """Move the run's tail by ``seconds`` (to another audit window); file order is kept so refs stay backward."""
    for i in part(victims(records), fraction, "tail"):
        shift_window(records[i], seconds)
    return records


@attack(
    "compress_windows",
    intent="the same FLOPs claimed in shorter windows, the run looks brief",
    targets=["window_completeness"],
    space={"factor": [0.5, 0.8]},
)
def compress_windows(records: Records, rng: random.Random, factor: float = 0.5) -> Records:
    """Shrink each window to ``factor`` of its length, starting at the same time."""
    for i in victims(records):
        r = records[i]
        r["window_end"] = format_time(parse_time(r["window_start"]) + seconds_of(r) * factor)
    return records


@attack(
    "overlap_windows",
    intent="late windows stacked onto earlier ones: the run looks half as long",
    targets=["window_completeness", "time-based rules"],
    space={"fraction": [0.3, 0.5]},
)
def overlap_windows(records: Records, rng: random.Random, fraction: float = 0.5) -> Records:
    """Shift the tail back so its windows overlap the earlier windows of the same chips."""
    idx = victims(records)
    tail = part(idx, fraction, "tail")
    if not tail:
        return records
    back = parse_time(records[tail[0]]["window_start"]) - parse_time(records[idx[0]]["window_start"])
    for i in tail:
        shift_window(records[i], -back)
    return records


@attack("reorder_records", intent="file order shuffled, content unchanged", targets=["hash_chain_intact"])
def reorder_records(records: Records, rng: random.Random) -> Records:
    """Shuffle the file: with a re-computed chain, only time checks notice."""
    rng.shuffle(records)
    return records


@attack(
    "relabel_chips",
    intent="the run's chips renamed so per-chip history breaks",
    targets=["chip_job_stability", "window_completeness"],
    space={"fraction": [0.5, 1.0]},
)
def relabel_chips(records: Records, rng: random.Random, fraction: float = 0.5) -> Records:
    """Rename the chips of the run's tail (a chip swap the inventory does not know)."""
    for i in part(victims(records), fraction, "tail"):
        records[i]["chip_id"] = f"{records[i]['chip_id']}-b"
    return records
