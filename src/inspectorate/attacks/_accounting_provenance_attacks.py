"""Record attacks on FLOP accounting, provenance fields and lineage."""

from __future__ import annotations

import random
from typing import Any

from inspectorate.attacks._facts import Derived, sized
from inspectorate.attacks._registry import attack
from inspectorate.attacks._util import (
    Records,
    chain_refs,
    chunks,
    fake_commit,
    fake_hash,
    scale_work,
    seconds_of,
    shift_window,
    victims,
)

PEAK = 2.5e15  # FLOP/s the implicit physical check allows by default; attacks stay below it


@attack(
    "ghost_chips",
    intent="FLOPs moved onto invented chips in the same windows",
    targets=["flop_physically_possible", "chip_job_stability"],
    space={"ghosts": [2, 4, 8], "share": [0.3, 0.5]},
    seed_round="1",
)
def ghost_chips(records: Records, rng: random.Random, ghosts: int = 4, share: float = 0.5) -> Records:
    """Each window gives ``share`` of its work to one of ``ghosts`` invented chips
    (ghost-chip laundering, round 1): per-chip rates fall, totals stay."""
    out: Records = []
    for n, i in enumerate(victims(records)):
        r = records[i]
        ghost = dict(r)
        scale_work(ghost, share)
        scale_work(r, 1.0 - share)
        ghost["chip_id"] = f"{r['chip_id'].rsplit('-', 1)[0]}-ghost{n % ghosts:02d}"
        ghost["record_id"] = f"{r['record_id']}-g"
        ghost["upstream_refs"] = [r["record_id"]]
        out.append(ghost)
    return records + out


@attack(
    "smear_time",
    intent="FLOPs spread over extra windows after the run: lower per-window rate",
    targets=["flop_physically_possible", "max_flop_per_token"],
    space={"factor": [2, 3]},
)
def smear_time(records: Records, rng: random.Random, factor: int = 2) -> Records:
    """Split every window into ``factor`` windows of the same length, laid end to end
    after the run (the run claims to be ``factor`` times longer)."""
    idx = victims(records)
    extra: Records = []
    span = seconds_of(records[idx[0]]) * len(set(records[i]["window_start"] for i in idx))
    for i in idx:
        r = records[i]
        scale_work(r, 1.0 / factor)
        for k in range(1, factor):
            copy = dict(r)
            copy["record_id"] = f"{r['record_id']}-s{k}"
            shift_window(copy, k * span)
            extra.append(copy)
    return records + extra


@attack(
    "smear_chips",
    intent="FLOPs levelled across the run's chips per window",
    targets=["flop_physically_possible"],
)
def smear_chips(records: Records, rng: random.Random) -> Records:
    """Give every chip of a window the mean FLOPs of that window (hides a hot chip)."""
    by_window: dict[str, list[int]] = {}
    for i in victims(records):
        by_window.setdefault(records[i]["window_start"], []).append(i)
    for rows in by_window.values():
        mean = sum(float(records[i]["flops"]) for i in rows) / len(rows)
        for i in rows:
            records[i]["flops"] = mean
    return records


@attack(
    "deflate_flops",
    intent="FLOP claims divided, tokens kept",
    targets=["aggregate_flop_cap"],
    space={"factor": [1.5, 2.0, 3.0]},
)
def deflate_flops(records: Records, rng: random.Random, factor: float = 2.0) -> Records:
    """Under-report FLOPs only: the token count still betrays the work (6·N·D)."""
    for i in victims(records):
        records[i]["flops"] = float(records[i]["flops"]) / factor
    return records


@attack(
    "deflate_flops_inflate_tokens",
    intent="FLOPs under-reported, tokens over-reported",
    targets=["aggregate_flop_cap", "op_type_flop_ratio"],
    space={"factor": [1.5, 2.0]},
    seed_round="19",
)
def deflate_flops_inflate_tokens(records: Records, rng: random.Random, factor: float = 1.5) -> Records:
    """The seed's deflate-tokens-inflate-batch (round 19), turned toward the cap: FLOPs
    down and tokens up by ``factor``, so FLOP/token looks inference-shaped."""
    for i in victims(records):
        r = records[i]
        r["flops"] = float(r["flops"]) / factor
        r["tokens_processed"] = int(round(r["tokens_processed"] * factor))
    return records


@attack(
    "deflate_all",
    intent="FLOPs and tokens both under-reported",
    targets=["aggregate_flop_cap"],
    space={"factor": [1.5, 2.0]},
)
def deflate_all(records: Records, rng: random.Random, factor: float = 2.0) -> Records:
    """Scale the whole claim down: consistent, and the evidence of the work is gone
    from the records (intent check: violation removed, only telemetry would show it)."""
    for i in victims(records):
        scale_work(records[i], 1.0 / factor)
    return records


@attack(
    "inflate_tokens",
    intent="tokens over-reported so FLOP/token looks like inference",
    targets=["op_type_flop_ratio"],
    space={"factor": [1.5, 2.5, 4.0]},
    seed_round="23",
)
def inflate_tokens(records: Records, rng: random.Random, factor: float = 2.5) -> Records:
    """Pair with a relabel: a lower FLOP/token gets training under the ratio threshold."""
    for i in victims(records):
        records[i]["tokens_processed"] = int(round(records[i]["tokens_processed"] * factor))
    return records


@attack(
    "inflate_batch",
    intent="batch size inflated to hide real throughput",
    targets=["batch_token_consistency"],
    space={"factor": [4, 16]},
)
def inflate_batch(records: Records, rng: random.Random, factor: int = 16) -> Records:
    """The seed's batch-token-sanity case: batch_size × seq far above the tokens."""
    for i in victims(records):
        records[i]["batch_size"] = int(records[i]["batch_size"] * factor)
    return records


def _rotate(records: Records, rng: random.Random, parts: int, fieldname: str, make: Any) -> Records:
    for k, chunk in enumerate(chunks(victims(records), parts)):
        if k == 0:
            continue
        value = make(records[chunk[0]][fieldname], rng)
        for i in chunk:
            records[i][fieldname] = value
    return records


@attack(
    "rotate_code_commit",
    intent="code_commit changes mid-job so keyed rules see several runs",
    targets=["model_hash_consistency"],
    space={"parts": [2, 3]},
    seed_round="29",
)
def rotate_code_commit(records: Records, rng: random.Random, parts: int = 2) -> Records:
    """Model-evolve-within-job (round 29): the same job rotates its code_commit."""
    return _rotate(records, rng, parts, "code_commit", fake_commit)


@attack(
    "rotate_config",
    intent="config_hash rotated mid-job",
    targets=["model_hash_consistency"],
    space={"parts": [2, 3]},
    seed_round="15",
)
def rotate_config(records: Records, rng: random.Random, parts: int = 2) -> Records:
    """Hash-rotation-via-config-change (round 15)."""
    return _rotate(records, rng, parts, "config_hash", lambda _v, g: fake_hash(g))


@attack(
    "rotate_model_hash",
    intent="one run presented as several models",
    targets=["training_unique_per_model"],
    space={"parts": [2, 3]},
    seed_round="9, 41",
)
def rotate_model_hash(records: Records, rng: random.Random, parts: int = 2) -> Records:
    """Model-hash midpoint split (round 9) / model specialisation (round 41)."""
    return _rotate(records, rng, parts, "model_hash_prefix", lambda _v, g: fake_hash(g))


@attack(
    "forge_dataset_fingerprint",
    intent="the loaded dataset declared as another (registered) one",
    targets=["allowed_dataset_fingerprints", "cross_job_fingerprint_consistency"],
    space={"to": [None]},
    hints={"to": "allowed_dataset_fingerprints"},
    seed_round="52",
)
def forge_dataset_fingerprint(records: Records, rng: random.Random, to: str | None = None) -> Records:
    """Forbidden-data-false-provenance (round 52): claim a fingerprint the registry
    accepts (``to``; default an invented one)."""
    value = to or fake_hash(rng)
    for i in victims(records):
        records[i]["dataset_fingerprint"] = value
    return records


@attack(
    "launder_data_tags",
    intent="forbidden corpus tags renamed to innocuous ones",
    targets=["forbidden_data_source_tags"],
    space={"replacement": ["corpus:internal-refusal-pairs"]},
)
def launder_data_tags(
    records: Records, rng: random.Random, replacement: str = "corpus:internal-mix"
) -> Records:
    """Rewrite every ``corpus:`` tag of the run that names restricted material
    (cbrn, weapons, bio) to ``replacement``; other tags stay."""
    flagged = ("cbrn", "weapon", "bio")
    for i in victims(records):
        tags = records[i]["data_source_tags"]
        records[i]["data_source_tags"] = [replacement if any(f in t for f in flagged) else t for t in tags]
    return records


@attack(
    "phantom_refs",
    intent="lineage pointing at records that do not exist",
    targets=["require_upstream_refs"],
    seed_round="60",
)
def phantom_refs(records: Records, rng: random.Random) -> Records:
    """Phantom upstream refs (round 60): every ref renamed to a record nobody wrote."""
    for i in victims(records):
        records[i]["upstream_refs"] = [f"rec_phantom_{rng.randrange(10**6):06d}"]
    return records


@attack(
    "cyclic_refs",
    intent="lineage with circular causality",
    targets=["require_upstream_refs"],
    seed_round="61",
)
def cyclic_refs(records: Records, rng: random.Random) -> Records:
    """Circular causality (round 61): each record also names the next one."""
    idx = victims(records)
    for a, b in zip(idx, idx[1:]):
        records[a]["upstream_refs"] = list(records[a]["upstream_refs"]) + [records[b]["record_id"]]
    return records


@attack(
    "empty_refs",
    intent="lineage erased so fragments cannot be linked",
    targets=["upstream_refs_dag_validity"],
)
def empty_refs(records: Records, rng: random.Random) -> Records:
    """Remove every upstream ref of the run."""
    for i in victims(records):
        records[i]["upstream_refs"] = []
    return records


@attack(
    "fragment_fingerprints",
    intent="one run as several jobs, each with its own (model, code, dataset)",
    targets=["cross_job_fingerprint_consistency", "aggregate_flop_cap"],
    space={"parts": [2, 3]},
    seed_round="24, 38",
)
def fragment_fingerprints(records: Records, rng: random.Random, parts: int = 2) -> Records:
    """Job fragmentation per fingerprint (round 24) with every identity rotated (round 38)."""
    for k, chunk in enumerate(chunks(victims(records), parts)):
        if k == 0:
            continue
        model, commit = fake_hash(rng), fake_commit(records[chunk[0]]["code_commit"], rng)
        data, config = fake_hash(rng), fake_hash(rng)
        rows = [records[i] for i in chunk]
        for r in rows:
            r.update(
                job_id=f"{r['job_id']}-f{k}",
                model_hash_prefix=model,
                code_commit=commit,
                dataset_fingerprint=data,
                config_hash=config,
            )
        chain_refs(rows)
    return records


@attack(
    "excess_to_ghost_inference",
    intent="training over the cap moved to inference jobs on invented chips, each under the inference cap",
    targets=[
        "aggregate_flop_cap",
        "op_type_flop_ratio",
        "cross_job_fingerprint_consistency",
        "chip_job_stability",
    ],
    space={
        "keep": [0.7, Derived("training_job_cap", 0.9)],
        "shard_flops": [Derived("inference_job_cap", 0.5), Derived("inference_job_cap", 0.9)],
        "ratio": [
            Derived("training_flop_ratio_threshold", 0.5),
            Derived("training_flop_ratio_threshold", 0.8),
        ],
        "dataset": [None],
        "operator": ["same", "rotate"],
    },
    hints={"dataset": "allowed_dataset_fingerprints"},
)
def excess_to_ghost_inference(
    records: Records,
    rng: random.Random,
    keep: float = sized("training_job_cap", 0.9),
    shard_flops: float = sized("inference_job_cap", 0.9),
    ratio: float = sized("training_flop_ratio_threshold", 0.5),
    dataset: str | None = None,
    operator: str = "same",
) -> Records:
    """Compound by design (the seed never combined classes): keep ``keep`` FLOPs of
    training (a fraction if <= 1, else an absolute budget) on the declared chips, and
    book the rest as inference shards of at most ``shard_flops``, each its own job on
    its own invented chips and model hash, with an inference-shaped FLOP/token ``ratio``."""
    idx = victims(records)
    total = sum(float(records[i]["flops"]) for i in idx)
    budget = keep * total if keep <= 1 else min(keep, total)
    excess = total - budget
    if excess <= 0:
        return records
    for i in idx:
        scale_work(records[i], budget / total)
    windows = sorted({records[i]["window_start"] for i in idx})
    template = records[idx[0]]
    shards = _shards(template, windows, records, idx, excess, shard_flops, ratio, rng)
    for k, rows in enumerate(shards):
        for r in rows:
            r["dataset_fingerprint"] = dataset or r["dataset_fingerprint"]
            r["operator"] = r["operator"] if operator == "same" else f"{r['operator']}-svc{k}"
    return records + [r for rows in shards for r in rows]


def _shards(
    template: dict[str, Any],
    windows: list[str],
    records: Records,
    idx: list[int],
    excess: float,
    shard_flops: float,
    ratio: float,
    rng: random.Random,
) -> list[Records]:
    """Inference jobs carrying ``excess`` FLOPs over the run's windows, below peak per chip."""
    by_window = {records[i]["window_start"]: records[i] for i in idx}
    count = max(1, int(excess // shard_flops) + (1 if excess % shard_flops else 0))
    per_shard = excess / count
    per_window = per_shard / len(windows)
    chips = max(1, int(per_window // (PEAK * 0.5 * seconds_of(template))) + 1)
    out: list[Records] = []
    for k in range(count):
        model, rows = fake_hash(rng), []
        for w, start in enumerate(windows):
            for c in range(chips):
                r = dict(by_window[start])
                flops = per_window / chips
                r.update(
                    record_id=f"rec_svc{k:02d}_{w:04d}_{c}",
                    chip_id=f"svc-{k:02d}-{c:02d}",
                    job_id=f"job_serve_{k:02d}",
                    op_type="inference",
                    flops=flops,
                    tokens_processed=int(flops / ratio),
                    batch_size=1,
                    sequence_length=min(int(flops / ratio), by_window[start]["sequence_length"]) or 1,
                    model_hash_prefix=model,
                )
                rows.append(r)
        chain_refs(rows)
        out.append(rows)
    return out
