"""Cases, answers and tracks: the typed records a suite is made of.

A *case* is what an entrant sees: evidence (a trace file, a run directory or a serving
log, relative to the suite), the claim or commitment, and for run-directory cases the
phase it is about. The *answer* is what the host keeps: the truth, the attack family
and the variant of the prover. They live in separate files (``cases.jsonl`` and
``answers.jsonl``) so a suite can be published without its answers.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from inspectorate.errors import InputError

CASE_SCHEMA = "inspectorate.bench.case/1"
ANSWER_SCHEMA = "inspectorate.bench.answer/1"

# Decision strings (the values of the project's Decision enum; plain strings here).
CONSISTENT, INCONSISTENT, UNVERIFIABLE = "consistent", "inconsistent", "unverifiable"
COMPLIANT, VIOLATION = "compliant", "violation"
ERROR = "error"  # the harness's own mark for a crashed, hung or malformed entry


@dataclass(frozen=True)
class Track:
    """One challenge task: what a case holds, what the decision means, what the forger may touch."""

    name: str
    title: str
    question: str
    evidence: str  # trace | run_dir | serving_log
    negative: str  # the decision for an honest case (compliant / consistent)
    positive: str  # the decision for a lie (violation / inconsistent)
    budget: str  # the adversarial budget: what the forger may touch
    signals: tuple[str, ...] = ()

    @property
    def decisions(self) -> tuple[str, ...]:
        return (self.negative, self.positive, UNVERIFIABLE)


_RUN_BUDGET = (
    "naive prover: runs the real workload and lies only in the label; competent prover: "
    "also rewrites every prover-owned stream (window/step records, collective log, labels, "
    "provenance, replay claims) to agree with the claim and re-chains them; neither may "
    "touch the verifier-owned sensor, NIC or host counters, nor change what ran"
)

TRACKS: dict[str, Track] = {
    t.name: t
    for t in (
        Track(
            "compliance",
            "(a) commitment compliance",
            "Do the window records comply with the commitment (FLOP caps, splitting, provenance)?",
            "trace",
            COMPLIANT,
            VIOLATION,
            "the forger owns every window record: any field, any number of records, chain rebuilt; "
            "the violating work itself (the dominant job's FLOPs) must stay in the trace "
            "(each attacked case passed its attack's intent check)",
            ("window records", "commitment"),
        ),
        Track(
            "op_type",
            "(b) training vs inference vs idle",
            "Is the phase's claimed op type (training / inference / eval / idle) what ran?",
            "run_dir",
            CONSISTENT,
            INCONSISTENT,
            _RUN_BUDGET,
            ("CPU/GPU utilisation", "gradient-sync bytes on the NIC", "memory slope", "collective log"),
        ),
        Track(
            "undeclared_work",
            "(c) undeclared work",
            "Does a phase claimed as idle or serving hide compute it does not declare?",
            "run_dir",
            CONSISTENT,
            INCONSISTENT,
            _RUN_BUDGET,
            ("process-tree CPU-seconds vs the claimed work", "busy processes", "NIC bytes"),
        ),
        Track(
            "model_size",
            "(d) model size",
            "Is the phase's model the declared size?",
            "run_dir",
            CONSISTENT,
            INCONSISTENT,
            _RUN_BUDGET,
            ("memory footprint", "gradient all-reduce bytes per step"),
        ),
        Track(
            "finetune",
            "(e) fine-tune vs pre-train",
            "Is a phase claimed as pre-training really a fresh pre-training (not a fine-tune)?",
            "run_dir",
            CONSISTENT,
            INCONSISTENT,
            _RUN_BUDGET,
            ("lr schedule", "frozen groups", "loss level", "replayed checkpoints"),
        ),
        Track(
            "served_identity",
            "(f) served-model identity",
            "Were the logged outputs sampled from the declared model with the declared settings?",
            "serving_log",
            CONSISTENT,
            INCONSISTENT,
            "the server writes the whole serving log (tokens, seeds, settings); it may swap the "
            "model, quantise it, change temperature/top-k or steer a covert channel in the tokens",
            ("per-token divergence from the reference model (DiFR)",),
        ),
    )
}


def get_track(name: str) -> Track:
    if name not in TRACKS:
        raise InputError(f"unknown track {name!r}; known: {', '.join(TRACKS)}")
    return TRACKS[name]


@dataclass(frozen=True)
class Case:
    """What an entrant sees. Paths are relative to the suite directory."""

    id: str
    track: str
    evidence: str
    claim: dict[str, Any] = field(default_factory=dict)
    phase: str | None = None
    commitment: str | None = None
    host: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"schema": CASE_SCHEMA, **asdict(self)}


@dataclass(frozen=True)
class Answer:
    """What only the host sees: the truth, the attack family and the prover variant."""

    id: str
    truth: str
    family: str
    variant: str = "honest"
    detail: dict[str, Any] = field(default_factory=dict)

    @property
    def adversarial(self) -> bool:
        return self.truth in (INCONSISTENT, VIOLATION)

    def to_dict(self) -> dict[str, Any]:
        return {"schema": ANSWER_SCHEMA, **asdict(self)}


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InputError("file not found", path)
    out = []
    for i, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as e:
            raise InputError(f"not JSON ({e})", path, i) from None
        if not isinstance(obj, dict):
            raise InputError("expected a JSON object", path, i)
        out.append(obj)
    return out


def read_cases(path: Path) -> list[Case]:
    cases = []
    for i, obj in enumerate(_read_jsonl(path), 1):
        obj.pop("schema", None)
        try:
            case = Case(**obj)
        except TypeError as e:
            raise InputError(f"bad case record ({e})", path, i) from None
        get_track(case.track)
        cases.append(case)
    return cases


def read_answers(path: Path) -> dict[str, Answer]:
    out = {}
    for i, obj in enumerate(_read_jsonl(path), 1):
        obj.pop("schema", None)
        try:
            ans = Answer(**obj)
        except TypeError as e:
            raise InputError(f"bad answer record ({e})", path, i) from None
        out[ans.id] = ans
    return out


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    text = "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in rows)
    path.write_text(text, encoding="utf-8")
