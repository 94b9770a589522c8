"""Differential harness: run our checker and the reference checker on the same input.

The reference (``../shared/reference``, the Inspector Agents write-up's deterministic
checker) is a test oracle only: it is imported, never copied. Both checkers read the
same commitment dict: the one our loader produced from the YAML (YAML 1.2 floats, so
``1.0e19`` is a number; PyYAML's 1.1 resolver would hand the reference the string
``"1.0e19"``, which it passes through ``float()`` anyway). ``Commitment.to_dict()``
gives back exactly the keys the YAML set, so the reference sees no defaults of ours.
"""

from __future__ import annotations

import importlib
import json
import math
import os
import sys
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspectorate.commitment import Commitment, check, load_commitment
from inspectorate.errors import InputError
from inspectorate.trace import Trace, chain_head, rechain

REPO = Path(__file__).resolve().parents[2]
INPUT_ERROR = "input_error"  # our reader rejected the trace: `check` exits 2, never "compliant"
MALFORMED = "record_malformed"  # the reference raised inside a check: it could not judge


def shared_root() -> Path:
    """``$INSPECTORATE_SHARED`` or ``../shared`` next to the repository root."""
    return Path(os.environ.get("INSPECTORATE_SHARED") or REPO.parent / "shared")


def reference_runner() -> Callable[[dict[str, Any], list[dict[str, Any]]], list[Any]]:
    """The reference's ``run_deterministic`` (its directory goes on ``sys.path``)."""
    where = str(shared_root() / "reference")
    if where not in sys.path:
        sys.path.insert(0, where)
    return importlib.import_module("inspector.consistency_checks").run_deterministic


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def ref_kind(rule_id: str) -> str:
    """The reference names cap violations ``aggregate_flop_cap[training,per_job]``."""
    return rule_id.split("[", 1)[0]


@dataclass(frozen=True)
class Outcome:
    ref: frozenset[str]  # rule kinds the reference reports (without record_malformed)
    ref_raised: bool  # some reference check raised (could not judge that check)
    ours: frozenset[str]  # rule kinds we report, or {INPUT_ERROR}


def judge(
    run_reference: Callable,
    commitment: dict[str, Any],
    records: list[dict[str, Any]],
    loaded: Commitment | None = None,
) -> Outcome:
    """Both verdicts on one trace, as sets of rule kinds (``loaded``: ours, parsed once).
    The reference reads only the rules it understands fully (``reference_view``)."""
    found = run_reference(reference_view(commitment), records)
    kinds = {ref_kind(v.rule_id) for v in found}
    raised = MALFORMED in kinds
    try:
        trace = Trace.from_records(records)
        ours = frozenset(v.kind for v in check(trace, loaded or load_commitment(commitment)).violations)
    except InputError:
        ours = frozenset({INPUT_ERROR})
    return Outcome(frozenset(kinds - {MALFORMED}), raised, ours)


# What the reference reads of each rule kind it implements. A rule with a parameter it
# ignores (``op_types`` on several kinds) or an op_type list where it compares one
# label would be judged by a different rule, so the reference does not see that rule.
REFERENCE_READS: dict[str, set[str]] = {
    "aggregate_flop_cap": {"op_type", "scope", "threshold"},
    "forbidden_data_source_tags": {"tags"},
    "forbidden_operators": {"operators"},
    "require_upstream_refs": set(),
    "batch_token_consistency": {"max_capacity_ratio"},
    "window_completeness": {
        "expected_window_start",
        "expected_window_end",
        "expected_chips",
        "window_seconds",
    },
    "model_hash_consistency": {"max_distinct_configs"},
    "idle_must_be_zero": {"max_flops"},
    "op_type_flop_ratio": {"training_threshold"},
    "allowed_op_types": {"allowed"},
    "max_flop_per_token": {"ceiling", "op_types"},
    "cross_job_fingerprint_consistency": {"max_jobs_per_fingerprint"},
    "code_commit_per_job_stable": {"max_commits_per_job"},
    "chip_job_stability": {"max_jobs_per_chip"},
    "operator_op_type_uniqueness": {"op_type", "max_jobs_per_operator"},
    "training_unique_per_model": {"op_type", "max_training_jobs_per_model"},
    "audit_window_uniqueness": {"op_type", "max_jobs"},
    "model_uniqueness_per_job": {"op_type", "max_models_per_job"},
    "operator_uniqueness_per_job": {"max_operators_per_job"},
    "upstream_refs_dag_validity": set(),
    "allowed_dataset_fingerprints": {"allowed"},
}
SINGLE_LABEL = {
    "operator_op_type_uniqueness",
    "training_unique_per_model",
    "audit_window_uniqueness",
    "model_uniqueness_per_job",
}


def reference_readable(rule: dict[str, Any]) -> bool:
    kind, params = rule["kind"], set(rule) - {"kind", "id"}
    if kind not in REFERENCE_READS or not params <= REFERENCE_READS[kind]:
        return False
    return kind not in SINGLE_LABEL or isinstance(rule.get("op_type", "training"), str)


def reference_view(commitment: dict[str, Any]) -> dict[str, Any]:
    """The commitment without the rules the reference would misread."""
    rules = [r for r in commitment["deterministic_rules"] if reference_readable(r)]
    return {**commitment, "deterministic_rules": rules}


# --- how a reference finding may be matched by ours ------------------------------------

# reference kind -> {our kind: why it is the same finding}. Every entry needs a reason.
ALLOWED: dict[str, dict[str, str]] = {}


@dataclass(frozen=True)
class Exception_:
    """A class of reference findings that are its own false positives.

    ``applies`` decides from the mutated records and commitment whether a finding of
    ``kind`` belongs to the class; ``witnesses`` name the honest traces that show the
    class is honest (a test checks the reference flags it and we do not)."""

    kind: str
    reason: str
    witnesses: tuple[str, ...]
    applies: Callable[[list[dict[str, Any]], dict[str, Any]], bool]


@dataclass
class Tally:
    mutations: int = 0
    ref_flagged: int = 0  # mutations where the reference reports at least one kind
    ours_flagged: int = 0  # mutations where we report at least one kind (or reject input)
    ref_raised: int = 0
    by_kind: dict[str, Counter] = field(default_factory=lambda: defaultdict(Counter))
    ours_only: Counter = field(default_factory=Counter)  # our kinds the reference did not report
    gaps: list[tuple[str, str, str]] = field(default_factory=list)  # (kind, base, mutation)
    families: Counter = field(default_factory=Counter)
    ours_only_examples: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))

    def to_dict(self) -> dict[str, Any]:
        return {
            "mutations": self.mutations,
            "reference_flagged": self.ref_flagged,
            "ours_flagged": self.ours_flagged,
            "reference_raised": self.ref_raised,
            "families": dict(self.families),
            "by_reference_kind": {k: dict(v) for k, v in sorted(self.by_kind.items())},
            "ours_only_by_kind": dict(self.ours_only.most_common()),
            "ours_only_examples": dict(self.ours_only_examples),
            "gaps": [list(g) for g in self.gaps],
        }


def classify(
    outcome: Outcome,
    records: list[dict[str, Any]],
    commitment: dict[str, Any],
    exceptions: dict[str, Exception_],
) -> dict[str, str]:
    """For each kind the reference reports: how ours answers it (or ``gap``)."""
    out = {}
    for kind in sorted(outcome.ref):
        if kind in outcome.ours:
            out[kind] = "same_kind"
        elif outcome.ours & set(ALLOWED.get(kind, {})):
            out[kind] = "allowed_kind"
        elif INPUT_ERROR in outcome.ours:
            out[kind] = "input_rejected"
        elif kind in exceptions and exceptions[kind].applies(records, commitment):
            out[kind] = "reference_false_positive"
        else:
            out[kind] = "gap"
    return out


def tally(
    tally_: Tally,
    base: str,
    label: str,
    family: str,
    outcome: Outcome,
    records: list[dict[str, Any]],
    commitment: dict[str, Any],
    exceptions: dict[str, Exception_],
    baseline: Outcome,
) -> None:
    tally_.mutations += 1
    tally_.families[family] += 1
    tally_.ref_flagged += bool(outcome.ref)
    tally_.ours_flagged += bool(outcome.ours)
    tally_.ref_raised += outcome.ref_raised
    for kind, how in classify(outcome, records, commitment, exceptions).items():
        tally_.by_kind[kind]["flagged"] += 1
        tally_.by_kind[kind][how] += 1
        if how == "gap":
            tally_.gaps.append((kind, base, label))
    for kind in outcome.ours - outcome.ref - baseline.ours:
        tally_.ours_only[kind] += 1
        if len(tally_.ours_only_examples[kind]) < 5:
            tally_.ours_only_examples[kind].append(f"{base}: {label}")


def finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def first(items: Iterable[Any]) -> Any:
    return next(iter(items))


# --- commitments fitted to an honest trace ----------------------------------------------


def _group_totals(records: list[dict[str, Any]], op_type: Any, scope: str) -> float:
    ops = {op_type} if isinstance(op_type, str) else set(op_type)
    key = {"per_job": "job_id", "per_operator": "operator"}.get(scope)
    totals: Counter = Counter()
    for r in records:
        if r["op_type"] in ops or ("*" in ops and r["op_type"] != "idle"):
            totals[r[key] if key else "all"] += r["flops"]
    return max(totals.values(), default=0.0)


def _ratios(records: list[dict[str, Any]], ops: Iterable[str]) -> list[float]:
    wanted = set(ops)
    return [
        r["flops"] / r["tokens_processed"]
        for r in records
        if r["op_type"] in wanted and r["tokens_processed"] > 0
    ]


FORBIDDEN_OPERATORS = ["shadow-lab", "ops[red-team]"]


def fit_commitment(
    seed: dict[str, Any],
    records: list[dict[str, Any]],
    drop: tuple[str, ...] = (),
    extra: tuple[dict[str, Any], ...] = (),
) -> dict[str, Any]:
    """The seed commitment with its registries and caps fitted to an honest trace.

    The seed's registries (window range, chip inventory, dataset fingerprints) and its
    demo-scaled caps were written for ``legit_finetune``; the other honest traces
    legitimately fall outside them. Fitting keeps every rule kind and only widens what
    the trace shows, so a mutation is judged against a commitment the original meets.
    ``drop`` removes kinds a trace cannot meet by nature (a sample of a cluster log
    declares no slot inventory); ``extra`` adds rules only we read (the reference skips
    kinds it does not know), such as the peak of a chip that aggregates 384 GPUs.
    """
    from inspectorate.trace import format_time, parse_time

    out = json.loads(json.dumps(seed))
    starts = [parse_time(r["window_start"]) for r in records]
    ends = [parse_time(r["window_end"]) for r in records]
    for rule in out["deterministic_rules"]:
        kind = rule["kind"]
        if kind == "aggregate_flop_cap":
            rule["threshold"] = max(
                rule["threshold"], 2 * _group_totals(records, rule["op_type"], rule["scope"])
            )
        elif kind == "window_completeness":
            lengths = sorted(e - s for s, e in zip(starts, ends))
            width = max(rule.get("window_seconds", 60), round(lengths[len(lengths) // 2]))
            rule["window_seconds"] = width
            t0 = min(starts)
            slots = max(math.ceil((max(ends) - t0) / width), 1)
            rule["expected_window_start"] = format_time(t0)
            rule["expected_window_end"] = format_time(t0 + slots * width)
            rule["expected_chips"] = sorted({r["chip_id"] for r in records})
        elif kind == "allowed_dataset_fingerprints":
            rule["allowed"] = sorted({*rule["allowed"], *(r["dataset_fingerprint"] for r in records)})
        elif kind == "max_flop_per_token":
            rule["ceiling"] = max([rule["ceiling"], *(1.25 * x for x in _ratios(records, rule["op_types"]))])
        elif kind == "op_type_flop_ratio":
            others = {r["op_type"] for r in records} - {"training"}
            rule["training_threshold"] = max(
                [rule["training_threshold"], *(1.25 * x for x in _ratios(records, others))]
            )
    # caps in the scopes the seed does not use, at twice the honest totals
    for op_type, scope in ((["training", "eval"], "per_operator"), ("*", "global")):
        threshold = 2 * _group_totals(records, op_type, scope) or 1.0
        out["deterministic_rules"].append(
            {"kind": "aggregate_flop_cap", "op_type": op_type, "scope": scope, "threshold": threshold}
        )
    if not any(rule["kind"] == "forbidden_operators" for rule in out["deterministic_rules"]):
        # the seed lists none; one literal name with glob characters, one plain
        out["deterministic_rules"].append({"kind": "forbidden_operators", "operators": FORBIDDEN_OPERATORS})
    out["deterministic_rules"] = [r for r in out["deterministic_rules"] if r["kind"] not in drop]
    out["deterministic_rules"] += [dict(rule) for rule in extra]
    return out


# --- the differential run -----------------------------------------------------------------


@dataclass(frozen=True)
class Base:
    name: str
    records: list[dict[str, Any]]
    commitment: dict[str, Any]  # already through our loader (see module docstring)


# Per shared trace: kinds it cannot meet by nature, and rules only we read.
SHARED_FIT: dict[str, dict[str, Any]] = {
    # pods sampled from two weeks of a cluster trace: no slot inventory to declare
    "alibaba_real": {"drop": ("window_completeness",)},
    # 13 iterations sampled from months of logs, one chip_id aggregating 384 A100s
    "bloom_real": {
        "drop": ("window_completeness",),
        "extra": (
            {"kind": "flop_physically_possible", "peak_flops": {"*-384gpu": 384 * 312e12, "*": 2.5e15}},
        ),
    },
}


def shared_bases(data: Path, seed_commitment: dict[str, Any]) -> list[Base]:
    """Every shared honest trace with the seed commitment fitted to it."""
    out = []
    for path in sorted(data.glob("*.jsonl")):
        records = read_jsonl(path)
        fitted = fit_commitment(seed_commitment, records, **SHARED_FIT.get(path.stem, {}))
        out.append(Base(path.stem, records, canonical(fitted)))
    return out


# name -> generator spec of an honest trace (4 chips x 15 one-minute windows unless said)
GENERATED: dict[str, dict[str, Any]] = {
    "gen-training-1": {"scenario": "training", "seed": 1},
    "gen-inference-3": {"scenario": "inference", "seed": 3},
    "gen-mixed-4": {"scenario": "mixed", "seed": 4},
    # an H100 at 55% of its dense FP8 peak: above the reference's 1 PFLOP/s per chip
    "gen-h100-fp8": {"scenario": "training", "seed": 6, "peak_flops": 1.979e15, "mfu": 0.55},
    # five-minute windows at 40% of dense BF16: more than 60 s of a 1 PFLOP/s chip
    "gen-h100-300s": {"scenario": "training", "seed": 7, "chips": 2, "hours": 0.5, "window_seconds": 300},
}


def generated_bases(seed_commitment: dict[str, Any]) -> list[Base]:
    """Honest generated traces with fitted commitments."""
    from inspectorate.trace import GenSpec, generate_trace

    out = []
    for name, params in GENERATED.items():
        spec = GenSpec(**{"chips": 4, "hours": 0.25, **params})
        records = generate_trace(spec).records
        out.append(Base(name, records, canonical(fit_commitment(seed_commitment, records))))
    return out


# The project's own commitments, each on the honest traces it is written for.
PROJECT_PAIRS = (
    ("legit_finetune", "fine-tune-only"),
    ("gen-training-1", "frontier-training-cap"),
    ("legit_inference_serve", "inference-only"),
    ("alibaba_real", "inference-only"),
)


def project_bases(bases: dict[str, Base]) -> list[Base]:
    """The project's commitments (``inspectorate.data``) on the traces they fit."""
    from inspectorate.data import commitment_path

    return [
        Base(
            f"{trace}@{name}",
            bases[trace].records,
            canonical(load_commitment(commitment_path(name)).to_dict()),
        )
        for trace, name in PROJECT_PAIRS
    ]


def canonical(commitment: dict[str, Any]) -> dict[str, Any]:
    """The dict both checkers read: validated and coerced by our loader."""
    return load_commitment(commitment).to_dict()


def run_parity(
    bases: list[Base],
    run_reference: Callable,
    exceptions: dict[str, Exception_],
    rounds: int = 2,
    seed: int = 2026,
    result: Tally | None = None,
) -> Tally:
    """Mutate every base ``rounds`` times; tally how each reference finding is answered."""
    from parity_mutations import mutations

    result = result or Tally()
    for n, base in enumerate(bases):
        loaded = load_commitment(base.commitment)
        baseline = judge(run_reference, base.commitment, base.records, loaded)
        seen = {chain_head(base.records)}
        for family, label, records in mutations(base.records, seed + n, rounds):
            # a mutation that gives a trace already judged (removing the first record in
            # both rounds) is counted once; the chain head of the re-chained records
            # names their whole content
            head = chain_head(rechain(records) if family == "unchained" else records)
            if head in seen:
                continue
            seen.add(head)
            outcome = judge(run_reference, base.commitment, records, loaded)
            tally(result, base.name, label, family, outcome, records, base.commitment, exceptions, baseline)
    return result


def full_run(run_reference: Callable, bases: dict[str, Base]) -> Tally:
    """The suite's mutation run: the seed commitment fitted to every base (two rounds),
    then the project's commitments on the traces they fit (one round)."""
    from false_positives import EXCEPTIONS

    result = run_parity(list(bases.values()), run_reference, EXCEPTIONS, rounds=2)
    return run_parity(project_bases(bases), run_reference, EXCEPTIONS, rounds=1, seed=7, result=result)


def all_bases(data: Path) -> dict[str, Base]:
    seed = canonical(load_commitment(data / "no_frontier_training.yml").to_dict())
    return {b.name: b for b in shared_bases(data, seed) + generated_bases(seed)}
