"""Compliance cases (track a): window-record traces + a commitment, truth by construction.

Three sources, all deterministic from the seed:
- the seed's honest ``legit_finetune`` trace against the reference commitment written for
  it (compliant), the same trace pushed over its per-job FLOP cap (``violate``, scaled and
  extended: violation), and that violation hidden by every registered record attack
  (the red team's library) at its default strength and, for ``full``, at parameter values
  drawn from the attack's search space. An attacked trace is a case only when the attack's
  own intent check says the violating work is still in it (otherwise the "attack" deleted
  the violation and the truth would be compliant);
- generated 4-chip traces: honest scenarios (compliant) and injected ones (violation)
  against the frontier cap scaled to the trace's size, as ``inspectorate demo`` does.
The truth never comes from our checker.
"""

from __future__ import annotations

import gzip
import json
import random
import tempfile
from pathlib import Path
from typing import Any

import yaml

from inspectorate.bench._case import COMPLIANT, VIOLATION, Answer, Case
from inspectorate.commitment import load_commitment
from inspectorate.data import commitment_path, seed_path
from inspectorate.trace import GenSpec, read_trace, write_generated

BASE_TRACE = "legit_finetune"
BASE_COMMITMENT = "reference-no-frontier-training"
GEN_HONEST = ("training", "inference", "mixed")
GEN_INJECTED = ("over_cap", "relabel_training", "idle_work", "fragmented_jobs", "tampered")
# An honest 8-chip 2-hour generated run does ~2.3e19 FLOP (demo.py); 4 chips x 1 h is a
# quarter of that, so the cap scales to 3e19 / 4 and doubling crosses it.
GEN_CAP = 3.0e19 / 4


def write_gz(records: list[dict[str, Any]], path: Path) -> None:
    """Canonical JSONL, gzip with a zero mtime and no file name: same records, same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in records)
    with (
        path.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as f,
    ):
        f.write(text.encode("utf-8"))


def _write_commitment(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=True), encoding="utf-8")


def _gen_commitment() -> dict[str, Any]:
    data = load_commitment(commitment_path("frontier-training-cap")).to_dict()
    scale = GEN_CAP / 1.0e25
    rules = [
        dict(r, threshold=r["threshold"] * scale) if r["kind"] == "aggregate_flop_cap" else r
        for r in data["deterministic_rules"]
    ]
    rules.append({"kind": "op_type_flop_ratio", "training_threshold": 3.0e10})
    return {**data, "id": data["id"] + "-scaled", "deterministic_rules": rules}


def _attack_params(atk: Any, rng: random.Random, size: str) -> list[dict[str, Any]]:
    """The default strength, plus (``full``) one draw from each searched parameter's space."""
    out: list[dict[str, Any]] = [{}]
    if size == "full" and atk.space:
        out.append({k: rng.choice(list(v)) for k, v in sorted(atk.space.items()) if len(v)})
    return out


def compliance_cases(suite: Path, seed: int, size: str) -> tuple[list[Case], list[Answer]]:
    from inspectorate.attacks import attack_names, get_attack, violate
    from inspectorate.attacks._facts import Facts

    cases: list[Case] = []
    answers: list[Answer] = []
    commitment = load_commitment(commitment_path(BASE_COMMITMENT))
    c_rel = f"commitments/{BASE_COMMITMENT}.yml"
    _write_commitment(suite / c_rel, commitment.to_dict())
    base = read_trace(seed_path(BASE_TRACE)).records

    def add(name: str, records: list[dict[str, Any]], truth: str, family: str, detail: dict) -> None:
        rel = f"traces/{name}.jsonl.gz"
        write_gz(records, suite / rel)
        cid = f"compliance/{name}"
        cases.append(Case(cid, "compliance", rel, {"commitment_id": commitment.id}, commitment=c_rel))
        answers.append(Answer(cid, truth, family, "honest" if truth == COMPLIANT else "forger", detail))

    add("seed-honest", base, COMPLIANT, "honest", {"source": BASE_TRACE})
    violated = violate(base, commitment)
    add("seed-violate-scale", violated, VIOLATION, "violate_scale", {})
    add("seed-violate-extend", violate(base, commitment, mode="extend"), VIOLATION, "violate_extend", {})
    rng = random.Random(seed)
    facts = Facts(commitment)
    for name in attack_names():
        atk = get_attack(name)
        for j, params in enumerate(_attack_params(atk, rng, size)):
            try:
                mutated = atk(violated, random.Random(rng.randrange(2**31)), facts, **params)
            except Exception:  # an attack that cannot apply to this trace makes no case
                continue
            if not atk.intent_preserved(violated, mutated):
                continue
            add(f"attack-{name}-{j}", mutated, VIOLATION, name, {"params": params})
    gen = _gen_commitment()
    gen_rel = f"commitments/{gen['id']}.yml"
    _write_commitment(suite / gen_rel, gen)
    for k, scenario in enumerate(GEN_HONEST + GEN_INJECTED):
        rel = f"traces/gen-{scenario}.jsonl.gz"
        with tempfile.TemporaryDirectory() as tmp:
            raw = Path(tmp) / "t.jsonl"
            write_generated(GenSpec(chips=4, hours=1, scenario=scenario, seed=seed * 100 + k), raw)
            lines = [
                json.loads(line) for line in raw.read_text(encoding="utf-8").splitlines() if line.strip()
            ]
        write_gz(lines, suite / rel)
        truth = COMPLIANT if scenario in GEN_HONEST else VIOLATION
        cid = f"compliance/gen-{scenario}"
        cases.append(Case(cid, "compliance", rel, {"commitment_id": gen["id"]}, commitment=gen_rel))
        honest = truth == COMPLIANT
        answers.append(
            Answer(
                cid, truth, "honest" if honest else f"gen_{scenario}", "honest" if honest else "generator", {}
            )
        )
    return cases, answers
