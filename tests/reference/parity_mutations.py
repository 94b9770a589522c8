"""Seeded mutations of honest traces, each re-chained with the project's ``rechain``.

A mutation is what a competent prover could submit: it edits its own records and
rebuilds the hash chain, so only the content rules can object. Families: single-field
edits of every field type, inserted and removed records, records outside the declared
window or on undeclared chips, duplicated slots, time shifts, split and merged jobs.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from typing import Any

from inspectorate.trace import format_time, parse_time, rechain

Records = list[dict[str, Any]]
Mutator = Callable[[Records, random.Random], Records | None]

NUMBER_FIELDS = ("flops", "tokens_processed", "batch_size", "sequence_length")
FACTORS = (10.0, 0.0, -1.0)
STRING_FIELDS = (
    "record_id",
    "chip_id",
    "job_id",
    "operator",
    "cluster_region",
    "model_hash_prefix",
    "dataset_fingerprint",
    "code_commit",
    "config_hash",
)
OP_TYPES = ("training", "inference", "eval", "idle", "preprocessing")


def _copy(records: Records) -> Records:
    """Shallow copies: a mutator replaces a field, never edits a shared list in place."""
    return [dict(r) for r in records]


def _pick(records: Records, rng: random.Random) -> int:
    return rng.randrange(len(records))


def _shift(record: dict[str, Any], seconds: float, end_too: bool = True) -> None:
    record["window_start"] = format_time(parse_time(record["window_start"]) + seconds)
    if end_too:
        record["window_end"] = format_time(parse_time(record["window_end"]) + seconds)


def scale(field: str, factor: float) -> Mutator:
    def mutate(records: Records, rng: random.Random) -> Records:
        out = _copy(records)
        i = _pick(out, rng)
        value = out[i][field] * factor
        out[i][field] = float(value) if field == "flops" else int(round(value))
        return out

    mutate.__name__ = f"{field}*{factor:g}"
    return mutate


def swap_string(field: str, fresh: bool) -> Mutator:
    """Set one record's ``field`` to another value the trace uses, or to a new one."""

    def mutate(records: Records, rng: random.Random) -> Records | None:
        out = _copy(records)
        i = _pick(out, rng)
        others = sorted({r[field] for r in records} - {out[i][field]})
        if fresh or not others:
            out[i][field] = f"{out[i][field]}-mut{rng.randrange(10**6)}"
        else:
            out[i][field] = rng.choice(others)
        return out

    mutate.__name__ = f"{field}:{'fresh' if fresh else 'swap'}"
    return mutate


def relabel(op_type: str) -> Mutator:
    def mutate(records: Records, rng: random.Random) -> Records | None:
        candidates = [i for i, r in enumerate(records) if r["op_type"] != op_type]
        if not candidates:
            return None
        out = _copy(records)
        out[rng.choice(candidates)]["op_type"] = op_type
        return out

    mutate.__name__ = f"op_type->{op_type}"
    return mutate


def add_tag(tag: str) -> Mutator:
    def mutate(records: Records, rng: random.Random) -> Records:
        out = _copy(records)
        i = _pick(out, rng)
        out[i]["data_source_tags"] = [*out[i]["data_source_tags"], tag]
        return out

    mutate.__name__ = f"tag+{tag}"
    return mutate


def clear_tags(records: Records, rng: random.Random) -> Records:
    out = _copy(records)
    out[_pick(out, rng)]["data_source_tags"] = []
    return out


def ref_phantom(records: Records, rng: random.Random) -> Records:
    out = _copy(records)
    i = _pick(out, rng)
    out[i]["upstream_refs"] = [*out[i]["upstream_refs"], "rec_does_not_exist"]
    return out


def ref_self(records: Records, rng: random.Random) -> Records:
    out = _copy(records)
    i = _pick(out, rng)
    out[i]["upstream_refs"] = [out[i]["record_id"]]
    return out


def ref_forward(records: Records, rng: random.Random) -> Records | None:
    if len(records) < 2:
        return None
    out = _copy(records)
    i = rng.randrange(len(out) - 1)
    out[i]["upstream_refs"] = [out[rng.randrange(i + 1, len(out))]["record_id"]]
    return out


def ref_drop(records: Records, rng: random.Random) -> Records | None:
    candidates = [i for i, r in enumerate(records) if r["upstream_refs"]]
    if not candidates:
        return None
    out = _copy(records)
    out[rng.choice(candidates)]["upstream_refs"] = []
    return out


def ref_other_job(records: Records, rng: random.Random) -> Records | None:
    out = _copy(records)
    i = rng.randrange(1, len(out)) if len(out) > 1 else 0
    earlier = [r["record_id"] for r in out[:i] if r["job_id"] != out[i]["job_id"]]
    if not earlier:
        return None
    out[i]["upstream_refs"] = [rng.choice(earlier)]
    return out


def set_operator(name: str) -> Mutator:
    """One record names an operator the commitment forbids (a literal name, even one
    with glob characters in it)."""

    def mutate(records: Records, rng: random.Random) -> Records:
        out = _copy(records)
        out[_pick(out, rng)]["operator"] = name
        return out

    mutate.__name__ = f"operator={name}"
    return mutate


def malformed(how: str) -> Mutator:
    """A record that breaks the schema: a field dropped, set to null, or a number
    written as a string. We reject the input (exit 2); the reference may raise."""

    def mutate(records: Records, rng: random.Random) -> Records:
        out = _copy(records)
        r = out[_pick(out, rng)]
        if how == "drop":
            del r[rng.choice(("flops", "chip_id", "upstream_refs"))]
        elif how == "null":
            r[rng.choice(("flops", "op_type", "window_end"))] = None
        else:
            r["tokens_processed"] = str(r["tokens_processed"])
        return out

    mutate.__name__ = f"malformed:{how}"
    return mutate


def respell_time(records: Records, rng: random.Random) -> Records:
    """The same instant spelled with an explicit offset instead of ``Z``."""
    out = _copy(records)
    i = _pick(out, rng)
    out[i]["window_start"] = format_time(parse_time(out[i]["window_start"])).replace("Z", "+00:00")
    return out


def shift(seconds: float, end_too: bool = True) -> Mutator:
    def mutate(records: Records, rng: random.Random) -> Records:
        out = _copy(records)
        _shift(out[_pick(out, rng)], seconds, end_too)
        return out

    mutate.__name__ = f"shift{seconds:+g}{'' if end_too else ':start'}"
    return mutate


def zero_length(records: Records, rng: random.Random) -> Records:
    out = _copy(records)
    i = _pick(out, rng)
    out[i]["window_end"] = out[i]["window_start"]
    return out


def _new_id(records: Records, rng: random.Random) -> str:
    return f"rec_ins_{rng.randrange(10**8):08d}"


def insert(where: str) -> Mutator:
    """A copy of a record with a new id: same slot, after the end, before the start, on
    an undeclared chip, or at a random place in the file."""

    def mutate(records: Records, rng: random.Random) -> Records:
        out = _copy(records)
        i = _pick(out, rng)
        new = dict(out[i], record_id=_new_id(out, rng))
        if where == "after_end":
            last = max(parse_time(r["window_end"]) for r in out)
            _shift(new, last - parse_time(new["window_start"]) + 60 * rng.randrange(0, 3))
        elif where == "before_start":
            t0 = min(parse_time(r["window_start"]) for r in out)
            _shift(new, t0 - parse_time(new["window_end"]) - 60 * rng.randrange(0, 3))
        elif where == "undeclared_chip":
            new["chip_id"] = f"gpu-undeclared-{rng.randrange(100):02d}"
        pos = i + 1 if where == "same_slot" else rng.randrange(len(out) + 1)
        if where in ("after_end", "undeclared_chip"):
            pos = len(out) if rng.random() < 0.5 else pos
        if out:
            new["upstream_refs"] = [out[pos - 1]["record_id"]] if pos > 0 else []
        out.insert(pos, new)
        return out

    mutate.__name__ = f"insert:{where}"
    return mutate


def remove(which: str) -> Mutator:
    def mutate(records: Records, rng: random.Random) -> Records | None:
        if len(records) < 2:
            return None
        out = _copy(records)
        i = {"first": 0, "last": len(out) - 1}.get(which, _pick(out, rng))
        gone = out.pop(i)
        if which == "stretch":  # widen the chip's previous window over the dropped one
            before = [r for r in out[:i] if r["chip_id"] == gone["chip_id"]]
            if not before:
                return None
            before[-1]["window_end"] = gone["window_end"]
        return out

    mutate.__name__ = f"remove:{which}"
    return mutate


def drop_tail(records: Records, rng: random.Random) -> Records | None:
    """The chronological tail-drop: the last k records of the file disappear."""
    if len(records) < 4:
        return None
    return _copy(records[: len(records) - rng.randrange(1, max(len(records) // 4, 2))])


def move(records: Records, rng: random.Random) -> Records | None:
    """A record moved elsewhere in the file (same content)."""
    if len(records) < 3:
        return None
    out = _copy(records)
    moved = out.pop(_pick(out, rng))
    out.insert(rng.randrange(len(out) + 1), moved)
    return out


def duplicate_slot(records: Records, rng: random.Random) -> Records:
    """Two records for one (chip, window): the second reports the same window again."""
    out = _copy(records)
    i = _pick(out, rng)
    out.insert(len(out), dict(out[i], record_id=_new_id(out, rng), upstream_refs=[out[-1]["record_id"]]))
    return out


def _jobs(records: Records) -> list[str]:
    return sorted({r["job_id"] for r in records})


def split_job(also: tuple[str, ...]) -> Mutator:
    """Records of one job after a cut time move to a new job (and new identifiers)."""

    def mutate(records: Records, rng: random.Random) -> Records | None:
        job = rng.choice(_jobs(records))
        times = sorted({parse_time(r["window_start"]) for r in records if r["job_id"] == job})
        if len(times) < 2:
            return None
        cut = times[rng.randrange(1, len(times))]
        out = _copy(records)
        for r in out:
            if r["job_id"] == job and parse_time(r["window_start"]) >= cut:
                r["job_id"] = f"{job}-part2"
                for name in also:
                    r[name] = f"{r[name]}-part2"
        return out

    mutate.__name__ = "split_job" + "".join(f"+{a}" for a in also)
    return mutate


def split_by_chip(records: Records, rng: random.Random) -> Records | None:
    chips = sorted({r["chip_id"] for r in records})
    if len(chips) < 2:
        return None
    moved = set(rng.sample(chips, len(chips) // 2))
    out = _copy(records)
    for r in out:
        if r["chip_id"] in moved:
            r["job_id"] = f"{r['job_id']}-shard"
    return out


def merge_jobs(records: Records, rng: random.Random) -> Records | None:
    jobs = _jobs(records)
    if len(jobs) < 2:
        return None
    a, b = rng.sample(jobs, 2)
    out = _copy(records)
    for r in out:
        if r["job_id"] == b:
            r["job_id"] = a
    return out


def scale_job(factor: float) -> Mutator:
    """Every record of one job reports ``factor`` times the FLOPs (over a cap)."""

    def mutate(records: Records, rng: random.Random) -> Records:
        job = rng.choice(_jobs(records))
        out = _copy(records)
        for r in out:
            if r["job_id"] == job:
                r["flops"] = float(r["flops"] * factor)
        return out

    mutate.__name__ = f"scale_job*{factor:g}"
    return mutate


def relabel_job(op_type: str) -> Mutator:
    def mutate(records: Records, rng: random.Random) -> Records:
        job = rng.choice(_jobs(records))
        out = _copy(records)
        for r in out:
            if r["job_id"] == job:
                r["op_type"] = op_type
        return out

    mutate.__name__ = f"relabel_job->{op_type}"
    return mutate


def rename_chip(records: Records, rng: random.Random) -> Records:
    chip = rng.choice(sorted({r["chip_id"] for r in records}))
    out = _copy(records)
    for r in out:
        if r["chip_id"] == chip:
            r["chip_id"] = "gpu-undeclared-rename"
    return out


def model_midpoint(records: Records, rng: random.Random) -> Records | None:
    """The model hash changes on every chip at a cut time (the seed's round-9 split)."""
    times = sorted({parse_time(r["window_start"]) for r in records})
    if len(times) < 2:
        return None
    cut = times[rng.randrange(1, len(times))]
    out = _copy(records)
    for r in out:
        if parse_time(r["window_start"]) >= cut:
            r["model_hash_prefix"] = "sha256:midpoint-split"
    return out


def model_per_chip(records: Records, rng: random.Random) -> Records | None:
    """One chip trains another model for the whole run (two models at once)."""
    chip = rng.choice(sorted({r["chip_id"] for r in records}))
    out = _copy(records)
    for r in out:
        if r["chip_id"] == chip:
            r["model_hash_prefix"] = "sha256:second-model"
    return out


FIELD_EDITS: list[Mutator] = [
    *(scale(f, k) for f in NUMBER_FIELDS for k in FACTORS),
    *(swap_string(f, fresh) for f in STRING_FIELDS for fresh in (False, True)),
    *(relabel(op) for op in OP_TYPES),
    add_tag("corpus:cbrn-nerve-agents"),
    add_tag("corpus:weapons-uplift-kit"),
    add_tag("corpus:benign-extra"),
    clear_tags,
    ref_phantom,
    ref_self,
    ref_forward,
    ref_drop,
    ref_other_job,
    set_operator("shadow-lab"),
    set_operator("ops[red-team]"),
    respell_time,
    malformed("drop"),
    malformed("null"),
    malformed("string"),
    shift(30),
    shift(-30),
    shift(60),
    shift(-60),
    shift(3600),
    shift(30, end_too=False),
    zero_length,
]
RECORD_EDITS: list[Mutator] = [
    insert("same_slot"),
    insert("after_end"),
    insert("before_start"),
    insert("undeclared_chip"),
    insert("anywhere"),
    remove("any"),
    remove("first"),
    remove("last"),
    remove("stretch"),
    drop_tail,
    move,
    duplicate_slot,
]
JOB_EDITS: list[Mutator] = [
    split_job(()),
    split_job(("operator",)),
    split_job(("code_commit",)),
    split_job(("model_hash_prefix",)),
    split_job(("operator", "code_commit", "model_hash_prefix", "dataset_fingerprint", "config_hash")),
    split_by_chip,
    merge_jobs,
    scale_job(3.0),
    scale_job(30.0),
    relabel_job("eval"),
    relabel_job("inference"),
    rename_chip,
    model_midpoint,
    model_per_chip,
]
# Edits left un-chained: what a careless prover submits (the chain must object).
UNCHAINED: list[Mutator] = [scale("flops", 0.5), remove("any"), move]
FAMILIES = {"field": FIELD_EDITS, "records": RECORD_EDITS, "jobs": JOB_EDITS, "unchained": UNCHAINED}


def mutations(records: Records, seed: int, rounds: int) -> Iterator[tuple[str, str, Records]]:
    """(family, label, records): ``rounds`` seeded draws of every mutator, each result
    re-chained except the ``unchained`` family."""
    rng = random.Random(seed)
    for round_ in range(rounds):
        for family, mutators in FAMILIES.items():
            for mutator in mutators:
                mutated = mutator(records, rng)
                if mutated is not None:
                    label = f"{mutator.__name__}#{round_}"
                    yield family, label, mutated if family == "unchained" else rechain(mutated)
