"""The rule kinds that close three evasions (a prefix of the log, training relabelled
idle, confetti jobs): each against a plain-Python oracle on random traces, and each
against the competent attack from the library, which passes the commitment without it."""

from __future__ import annotations

import random
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from builders import base, chained
from inspectorate.attacks import check_attack, get_attack, violate
from inspectorate.commitment import RuleSpec, check, check_rule, load_commitment
from inspectorate.commitment._check import run_rule
from inspectorate.data import SEED_TRACES, commitment_path, seed_path
from inspectorate.trace import GenSpec, Trace, format_time, generate_trace, parse_time, read_trace, rechain

NEW_KINDS = {"require_head", "window_slots_to_end", "idle_record_honesty", "job_fragmentation"}


def flagged(kind: str, records: list[dict], **params) -> dict[str, set[str]]:
    """message stem (what the violation is about) -> the ids it flags."""
    found = run_rule(RuleSpec(kind, kind, params), chained(records))
    return {_stem(v.message): set(v.record_ids) for v in found}


def _stem(message: str) -> str:
    for stem in (
        "work shape",
        "identity",
        "inside a running",
        "fewer than",
        "distinct",
        "no record for",
        "at or after",
    ):
        if stem in message:
            return stem
    return message


# -- oracles: the rules' definitions, record at a time -------------------------------


def idle_oracle(records: list[dict], allow_pauses: bool = False) -> dict[str, set[str]]:
    idle = [r for r in records if r["op_type"] == "idle"]
    train = [r for r in records if r["op_type"] == "training"]
    out: dict[str, set[str]] = {}
    shaped = {r["record_id"] for r in idle if r["tokens_processed"] > 0 or r["batch_size"] > 0}
    jobs = {r["job_id"] for r in train}
    pairs = {(r["model_hash_prefix"], r["dataset_fingerprint"]) for r in train}
    named = {
        r["record_id"]
        for r in idle
        if r["job_id"] in jobs or (r["model_hash_prefix"], r["dataset_fingerprint"]) in pairs
    }
    inside = set()
    for r in idle:
        t = parse_time(r["window_start"])
        on_chip = [x for x in train if x["chip_id"] == r["chip_id"]]
        before = [x for x in on_chip if parse_time(x["window_start"]) < t]
        after = [x for x in on_chip if parse_time(x["window_start"]) > t]
        if not before or not after:
            continue
        key = lambda x: (parse_time(x["window_start"]), records.index(x))  # noqa: E731
        prev_job, next_job = max(before, key=key)["job_id"], min(after, key=key)["job_id"]
        if prev_job != next_job:
            continue
        if allow_pauses:
            end = parse_time(r["window_end"])
            busy = [
                x
                for x in train
                if x["job_id"] == prev_job
                and x["chip_id"] != r["chip_id"]
                and parse_time(x["window_start"]) < end
                and parse_time(x["window_end"]) > t
            ]
            if not busy:
                continue
        inside.add(r["record_id"])
    for stem, ids in (("work shape", shaped), ("identity", named), ("inside a running", inside)):
        if ids:
            out[stem] = ids
    return out


def fragmentation_oracle(records: list[dict], min_records: int, max_short: int) -> dict[str, set[str]]:
    sizes: dict[str, int] = {}
    for r in records:
        if r["op_type"] == "training":
            sizes[r["job_id"]] = sizes.get(r["job_id"], 0) + 1
    short = {j for j, n in sizes.items() if n < min_records}
    if len(short) <= max_short:
        return {}
    return {
        "fewer than": {r["record_id"] for r in records if r["op_type"] == "training" and r["job_id"] in short}
    }


def slots_oracle(records: list[dict], end: float, width: float = 60.0) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    late = {r["record_id"] for r in records if parse_time(r["window_start"]) >= end}
    if late:
        out["at or after"] = late
    missing: set[str] = set()
    for chip in sorted({r["chip_id"] for r in records}):
        mine = [r for r in records if r["chip_id"] == chip and parse_time(r["window_start"]) < end]
        if not mine:
            continue
        have = {int(parse_time(r["window_start"]) // width) for r in mine}
        first, last = min(have), int(-(-end // width)) - 1
        gaps = [s for s in range(first, last + 1) if s not in have]
        if gaps:
            before = [r for r in mine if parse_time(r["window_start"]) < gaps[0] * width]
            last_rec = max(before, key=lambda r: (parse_time(r["window_start"]), records.index(r)))
            missing.add(last_rec["record_id"])
    if missing:
        out["no record for"] = missing
    return out


@st.composite
def mutated(draw):
    chips, windows = draw(st.integers(1, 3)), draw(st.integers(2, 6))
    records = base(chips=chips, windows=windows)
    for r in records:
        choice = draw(st.sampled_from(["keep"] * 5 + ["idle", "idle_scrub", "idle_shaped", "job", "drop"]))
        if choice.startswith("idle"):
            r.update(op_type="idle", flops=0.0, tokens_processed=0, batch_size=0)
            if choice == "idle_scrub":
                r.update(job_id="job-idle", model_hash_prefix="sha256:9", dataset_fingerprint="sha256:8")
            if choice == "idle_shaped":
                r.update(batch_size=4, job_id="job-idle", model_hash_prefix="sha256:9")
        elif choice == "job":
            r["job_id"] = draw(st.sampled_from(["job-b", "job-c", f"job-{r['record_id']}"]))
        elif choice == "drop":
            r["record_id"] = "DROP"
    return [r for r in records if r["record_id"] != "DROP"] or base(chips=1, windows=1)


@settings(max_examples=60, deadline=None)
@given(mutated(), st.booleans())
def test_idle_record_honesty_matches_its_oracle(records, allow_pauses):
    assert flagged(
        "idle_record_honesty", records, allow_pauses=allow_pauses, op_type="training"
    ) == idle_oracle(records, allow_pauses)


@settings(max_examples=60, deadline=None)
@given(mutated(), st.integers(1, 3), st.integers(0, 2))
def test_job_fragmentation_matches_its_oracle(records, min_records, max_short):
    params = {"op_type": "training", "min_records_per_job": min_records, "max_short_jobs": max_short}
    assert flagged("job_fragmentation", records, **params) == fragmentation_oracle(
        records, min_records, max_short
    )


@settings(max_examples=60, deadline=None)
@given(mutated(), st.integers(-1, 3))
def test_window_slots_to_end_matches_its_oracle(records, extra_windows):
    last = max(parse_time(r["window_start"]) for r in records)
    end = last + 60 * extra_windows
    found = run_rule(
        RuleSpec("s", "window_slots_to_end", {"audit_window_end": format_time(end), "window_seconds": 60.0}),
        chained(records),
    )
    merged: dict[str, set[str]] = {}
    for v in found:
        merged.setdefault(_stem(v.message), set()).update(v.record_ids)
    assert merged == slots_oracle(records, end)


# -- require_head -------------------------------------------------------------------


def test_require_head_flags_an_unpinned_log_and_passes_a_pinned_one():
    spec = RuleSpec("require_head", "require_head", {})
    unpinned = chained(base())
    (found,) = run_rule(spec, unpinned)
    assert "prefix" in found.message and found.record_ids == ("r0007",)
    pinned = Trace(unpinned.frame, None, "<pinned>", head="ab" * 32)
    assert run_rule(spec, pinned) == []
    check_rule("require_head", unpinned, Trace.from_records(rechain(base()), head="ab" * 32))


# -- the competent attacks ----------------------------------------------------------

CAP = 3.0e18  # per job; the honest 4-chip, 30-minute run does about 2.3e18


def _commitment(new: bool) -> object:
    """frontier-training-cap at this scale; ``new=False`` drops the kinds under test."""
    data = load_commitment(commitment_path("demo-training-cap")).to_dict()
    rules = []
    for r in data["deterministic_rules"]:
        if not new and r["kind"] in NEW_KINDS | {"op_type_flop_ratio"}:
            continue
        if not new and r["kind"] == "aggregate_flop_cap" and r.get("scope") == "global":
            continue
        if r["kind"] == "aggregate_flop_cap":
            r = dict(r, threshold=CAP * (1.5 if r.get("op_type") == "*" else 1.0))
        if r["kind"] == "window_slots_to_end":
            r = dict(r, audit_window_end="2026-04-24T09:30:00Z")
        rules.append(r)
    return load_commitment({**data, "deterministic_rules": rules})


@pytest.fixture(scope="module")
def violating() -> list[dict]:
    honest = generate_trace(GenSpec(chips=4, hours=0.5, scenario="training", seed=3)).records
    return violate(honest, cap=CAP)


@pytest.mark.parametrize(
    "name, params, closes",
    [
        ("prefix_at_slot", {"keep": 0.7}, {"require_head", "window_slots_to_end"}),
        (
            "idle_inside_job",
            {"identity": "scrub", "where": "spread", "fraction": 0.35},
            {"idle_record_honesty"},
        ),
        (
            "idle_inside_job",
            {"identity": "keep", "where": "middle", "fraction": 0.35},
            {"idle_record_honesty"},
        ),
        ("confetti_jobs", {"fraction": 1.0}, {"job_fragmentation", "training_total_cap"}),
    ],
)
def test_attack_evades_without_the_new_rules_and_is_caught_with_them(violating, name, params, closes):
    old, new = _commitment(new=False), _commitment(new=True)
    assert not check(Trace.from_records(violating), old).compliant  # there is something to hide
    out = check_attack(name, violating, **params)
    assert get_attack(name).intent_preserved(violating, out), (
        "the attack removed the work instead of hiding it"
    )
    before = check(Trace.from_records(out), old)
    assert before.compliant, f"{name} no longer evades the old rules: {before.rationale}"
    after = check(Trace.from_records(out), new)
    assert closes <= {v.rule_id for v in after.violations}, after.rationale


def test_a_run_cut_short_at_its_end_is_not_counted_as_hidden(violating):
    """The intent check is not a rubber stamp: idle windows after a chip's last step hide
    nothing a record can show (the run ended early), so the evasion does not count."""
    cut = rechain([dict(r) for r in violating])
    last = max(parse_time(r["window_start"]) for r in cut)
    for r in cut:
        if parse_time(r["window_start"]) > last - 600:
            r.update(op_type="idle", flops=0.0, tokens_processed=0, batch_size=0, job_id="job-idle")
    assert not get_attack("idle_inside_job").intent_preserved(violating, rechain(cut))


# -- honest traces stay compliant ---------------------------------------------------

SHARED = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "seed-traces"


@pytest.mark.parametrize("name", [n for n in SEED_TRACES if n != "bloom_real"])
def test_honest_seed_traces_comply_with_the_shipped_frontier_cap(name):
    commitment = load_commitment(commitment_path("frontier-training-cap"))
    assert NEW_KINDS & {spec.kind for spec in commitment.rules}  # the new kinds are in it
    paths = [seed_path(name)] + ([SHARED / f"{name}.jsonl"] if (SHARED / f"{name}.jsonl").exists() else [])
    for path in paths:
        verdict = check(read_trace(path), commitment)
        assert verdict.compliant, f"{path}: {verdict.rationale}"


@pytest.mark.parametrize("scenario", ["training", "mixed", "inference"])
def test_honest_generated_traces_comply_with_both_shipped_caps(scenario, tmp_path):
    from inspectorate.trace import write_generated

    path = tmp_path / "t.jsonl"
    write_generated(
        GenSpec(chips=8, hours=2, scenario=scenario, seed=random.Random(scenario).randint(0, 99)), path
    )
    for name in ("frontier-training-cap", "demo-training-cap"):
        verdict = check(read_trace(path), load_commitment(commitment_path(name)))
        assert verdict.compliant, f"{name}: {verdict.rationale}"
