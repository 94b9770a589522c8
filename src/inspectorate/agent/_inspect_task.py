"""``inspect eval inspectorate/verifier_challenge --model M``: any LLM as the inspector.

An inspect_ai task (the ``[inspect]`` extra, registered through the ``inspect_ai`` entry
point) that shows the model one challenge case at a time, the commitment and a digest of
the evidence (the agent tier's digest, without our rule findings, so the model judges
rather than copies), and scores its answer with the leaderboard's metrics: accuracy,
caught rate (lies called lies), honest false-positive rate and abstention rate.

Cases come from a suite directory in the bench format (``cases.jsonl`` + the host's
``answers.jsonl``, paths relative to the suite: ``-T suite=DIR``), one function per
evidence kind. Without a suite the task builds a small one here from generated traces:
honest scenarios and injected violations judged against the demo's scaled training cap,
the truth taken from how each trace was made.
"""

from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

import yaml
from inspect_ai import Task, task
from inspect_ai.dataset import MemoryDataset, Sample
from inspect_ai.scorer import CORRECT, INCORRECT, Score, Target, accuracy, metric, scorer, stderr
from inspect_ai.solver import TaskState, generate, system_message

from inspectorate.errors import InputError

SYSTEM = (
    "You are a compute inspector. A prover made a claim or a commitment and submitted "
    "evidence; prover-written values may lie, verifier-owned sensor readings are harder to "
    "forge. Reason from totals, structure and consistency between streams. End with exactly "
    "one line: VERDICT: <decision>, using one of the decisions the question names."
)
# The honest decision and the lie's, per kind of track (the bench's vocabulary).
NEGATIVE, POSITIVE = ("compliant", "consistent"), ("violation", "inconsistent")
_VERDICT = re.compile(r"VERDICT:\s*\**\s*(compliant|violation|consistent|inconsistent|unverifiable)", re.I)
QUESTIONS = {
    "op_type": "Is the phase's claimed op type (training / inference / eval / idle) what ran?",
    "undeclared_work": "Does a phase claimed as idle or serving hide compute it does not declare?",
    "model_size": "Is the phase's model the declared size?",
    "finetune": "Is a phase claimed as pre-training really a fresh pre-training (not a fine-tune)?",
}


@task
def verifier_challenge(suite: str | None = None, tracks: str = "compliance", max_chars: int = 12_000) -> Task:
    """The challenge as an inspect_ai task; ``suite`` is a bench suite dir (default: built here)."""
    wanted = tuple(t.strip() for t in tracks.split(",") if t.strip())
    if suite is not None:
        samples = samples_from_suite(Path(suite), wanted, max_chars)
    else:
        with tempfile.TemporaryDirectory(prefix="inspectorate-challenge-") as tmp:
            samples = samples_from_suite(builtin_suite(Path(tmp)), wanted, max_chars)
    return Task(
        dataset=MemoryDataset(samples, name="verifier_challenge"),
        solver=[system_message(SYSTEM), generate()],
        scorer=inspector_verdict(),
    )


# ----------------------------------------------------------------------------- suites


def samples_from_suite(
    suite: Path, tracks: tuple[str, ...] = ("compliance",), max_chars: int = 12_000
) -> list[Sample]:
    """One Sample per case of ``tracks`` that has an answer (the host's answers file)."""
    cases = _jsonl(suite / "cases.jsonl")
    answers = {a["id"]: a for a in _jsonl(suite / "answers.jsonl")}
    samples = []
    for case in cases:
        if case.get("track") not in tracks or case.get("id") not in answers:
            continue
        reader = READERS.get(case["track"])
        if reader is None:
            raise InputError(
                f"track {case['track']!r} has no prompt reader; known: {', '.join(READERS)}", suite
            )
        answer = answers[case["id"]]
        samples.append(
            Sample(
                id=case["id"],
                input=reader(suite, case, max_chars),
                target=str(answer["truth"]),
                metadata={
                    "track": case["track"],
                    "family": answer.get("family"),
                    "variant": answer.get("variant"),
                },
            )
        )
    if not samples:
        raise InputError(f"no case of track(s) {', '.join(tracks)} with an answer", suite)
    return samples


def _jsonl(path: Path) -> list[dict[str, Any]]:
    if not path.is_file():
        raise InputError("missing (a suite holds cases.jsonl and answers.jsonl)", path)
    rows = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                rows.append(json.loads(line))
            except ValueError:
                raise InputError("not a JSON object", path, number) from None
    return rows


def compliance_prompt(suite: Path, case: dict[str, Any], max_chars: int) -> str:
    """Commitment YAML + the digest of the window records (no rule findings)."""
    from inspectorate.agent._digest import build_digest
    from inspectorate.trace import read_trace

    commitment = (suite / case["commitment"]).read_text(encoding="utf-8")
    digest = build_digest(read_trace(suite / case["evidence"]), max_chars=max_chars)
    return (
        f"COMMITMENT (YAML):\n{commitment}\n\nEVIDENCE DIGEST (JSON):\n"
        f"{json.dumps(digest, sort_keys=True, default=str)}\n\n"
        "Does the evidence comply with the commitment? Decisions: compliant, violation, unverifiable."
    )


def phase_prompt(suite: Path, case: dict[str, Any], max_chars: int) -> str:
    """The claim for one phase of a run directory + what each stream shows in it."""
    from inspectorate.agent._phase_digest import phase_digest

    digest = phase_digest(suite / case["evidence"], str(case["phase"]))
    text = json.dumps(digest, sort_keys=True, default=str)[:max_chars]
    return (
        f"CLAIM for phase {case['phase']!r} (prover-written):\n{json.dumps(case.get('claim'), sort_keys=True)}\n\n"
        f"EVIDENCE (per-stream summary of that phase; owner says who wrote it):\n{text}\n\n"
        f"{QUESTIONS.get(case['track'], 'Is the claim true?')} Answer consistent if the claim holds, "
        "inconsistent if it does not; decisions: consistent, inconsistent, unverifiable."
    )


READERS = {"compliance": compliance_prompt, **{track: phase_prompt for track in QUESTIONS}}


def builtin_suite(root: Path) -> Path:
    """A small suite in the bench format: 3 honest generated traces and 5 with one injected
    violation each, against the demo's training cap scaled to this trace size."""
    from inspectorate.commitment import load_commitment
    from inspectorate.data import commitment_path
    from inspectorate.trace import GenSpec, write_generated

    (root / "traces").mkdir(parents=True)
    promise = load_commitment(commitment_path("frontier-training-cap")).to_dict()
    # An honest 8-chip, 2-hour run claims ~2.3e19 FLOP; the cap sits where doubling crosses it.
    for rule in promise["deterministic_rules"]:
        if rule["kind"] == "aggregate_flop_cap":
            rule["threshold"] = float(rule["threshold"]) * 3.0e19 / 1.0e25
    promise["deterministic_rules"].append({"kind": "op_type_flop_ratio", "training_threshold": 3.0e10})
    (root / "commitment.yml").write_text(yaml.safe_dump(promise, sort_keys=False), encoding="utf-8")
    scenarios = [
        ("training", "compliant"),
        ("inference", "compliant"),
        ("mixed", "compliant"),
        ("over_cap", "violation"),
        ("relabel_training", "violation"),
        ("idle_work", "violation"),
        ("forbidden_tag", "violation"),
        ("fragmented_jobs", "violation"),
    ]
    cases, answers = [], []
    for scenario, truth in scenarios:
        evidence = f"traces/{scenario}.jsonl"
        write_generated(
            GenSpec(chips=8, hours=2, window_seconds=600, scenario=scenario, seed=7), root / evidence
        )
        cid = f"compliance/generated-{scenario}"
        cases.append({"id": cid, "track": "compliance", "evidence": evidence, "commitment": "commitment.yml"})
        answers.append(
            {
                "id": cid,
                "truth": truth,
                "family": "honest" if truth == "compliant" else scenario,
                "variant": "honest" if truth == "compliant" else "injected",
            }
        )
    for name, rows in (("cases.jsonl", cases), ("answers.jsonl", answers)):
        (root / name).write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return root


# ----------------------------------------------------------------------------- scoring


def parse_decision(text: str) -> str:
    """The last ``VERDICT:`` line; anything else is an abstention (scored as such)."""
    found = _VERDICT.findall(text or "")
    return found[-1].lower() if found else "unverifiable"


def _decisions(scores: list[Any]) -> list[tuple[str, str]]:
    out = []
    for s in scores:
        meta = (getattr(s, "score", s).metadata) or {}
        out.append((meta.get("truth", ""), meta.get("decision", "")))
    return out


def _rate(pairs: list[tuple[str, str]], truths: tuple[str, ...], decisions: tuple[str, ...]) -> float:
    pool = [d for t, d in pairs if t in truths]
    return sum(d in decisions for d in pool) / len(pool) if pool else float("nan")


@metric
def caught_rate():
    """Lies (violation / inconsistent) called lies; abstentions count as missed."""
    return lambda scores: _rate(_decisions(scores), POSITIVE, POSITIVE)


@metric
def honest_fpr():
    """Honest cases (compliant / consistent) called lies."""
    return lambda scores: _rate(_decisions(scores), NEGATIVE, POSITIVE)


@metric
def abstention_rate():
    """Cases answered unverifiable (or with no parsable verdict)."""

    def rate(scores: list[Any]) -> float:
        pairs = _decisions(scores)
        return sum(d == "unverifiable" for _, d in pairs) / len(pairs) if pairs else float("nan")

    return rate


@scorer(metrics=[accuracy(), stderr(), caught_rate(), honest_fpr(), abstention_rate()])
def inspector_verdict():
    """Correct when the model's final VERDICT line equals the case's truth."""

    async def score(state: TaskState, target: Target) -> Score:
        decision = parse_decision(state.output.completion)
        truth = target.text
        return Score(
            value=CORRECT if decision == truth else INCORRECT,
            answer=decision,
            explanation=f"truth {truth}, answered {decision}",
            metadata={"truth": truth, "decision": decision},
        )

    return score
