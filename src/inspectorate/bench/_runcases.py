"""Run-directory cases (tracks b-e) from testbed runs.

Each phase of a run becomes one case per track it bears on. The run directory an entrant
sees is a copy with the truth stripped: ``truth``, ``truth_op``, ``model``, ``n_params``
and ``truth_note`` are removed from the labels, and phase names (the testbed's names say
``adv_...``) are replaced by neutral ``p01``, ``p02``... in every file that carries them
(step records are re-chained after the rename, as a competent prover could do anyway).
Run folders are numbered ``r01``... so the folder name does not say which prover wrote it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from inspectorate.bench._case import CONSISTENT, INCONSISTENT, Answer, Case
from inspectorate.errors import InputError
from inspectorate.trace import rechain

TRUTH_KEYS = ("truth", "truth_op", "model", "n_params", "truth_note")
IDLE_OR_SERVING = ("idle", "inference")


def phase_truths(run_dir: Path) -> list[dict[str, Any]]:
    """Start events of ``workload_labels.jsonl`` in time order (truth included: host side)."""
    path = run_dir / "workload_labels.jsonl"
    if not path.is_file():
        raise InputError("not a testbed run directory (workload_labels.jsonl missing)", run_dir)
    events = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    starts = [e for e in events if e.get("event") == "start"]
    if any("truth" not in e for e in starts):
        raise InputError("labels carry no truth: build suites from testbed runs", path)
    return sorted(starts, key=lambda e: float(e["t"]))


def _rename(value: Any, names: dict[str, str]) -> Any:
    """``value`` with every ``"phase"`` field renamed (only that key: a claimed label such
    as ``idle`` can equal a phase name and must stay as it is)."""
    if isinstance(value, list):
        return [_rename(v, names) for v in value]
    if isinstance(value, dict):
        return {
            k: names.get(v, v) if k == "phase" and isinstance(v, str) else _rename(v, names)
            for k, v in value.items()
        }
    return value


def _jsonl_rows(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _dump_jsonl(path: Path, rows: list[dict[str, Any]]) -> None:
    path.write_text("".join(json.dumps(r, sort_keys=True, separators=(",", ":")) + "\n" for r in rows))


def neutral_copy(src: Path, dst: Path) -> dict[str, str]:
    """Copy ``src`` to ``dst`` with the truth stripped and phases renamed; the mapping."""
    names = {e["phase"]: f"p{i:02d}" for i, e in enumerate(phase_truths(src), 1)}
    dst.mkdir(parents=True)
    for f in sorted(src.iterdir()):
        if f.is_dir() and f.name == "claims":
            for sub in sorted(f.iterdir()):
                shutil.copytree(sub, dst / "claims" / names.get(sub.name, sub.name))
        elif f.is_dir() or f.suffix in (".pt",):
            continue  # checkpoints are not evidence a suite ships
        elif f.name == "workload_labels.jsonl":
            rows = [{k: v for k, v in r.items() if k not in TRUTH_KEYS} for r in _jsonl_rows(f)]
            _dump_jsonl(dst / f.name, _rename(rows, names))
        elif f.name.startswith("steps") and f.suffix == ".jsonl":
            _dump_jsonl(dst / f.name, rechain(_rename(_jsonl_rows(f), names)))
        elif f.name.startswith("collectives") and f.suffix == ".jsonl":
            _dump_jsonl(dst / f.name, _rename(_jsonl_rows(f), names))
        elif f.name == "provenance.json":
            obj = _rename(json.loads(f.read_text(encoding="utf-8")), names)
            (dst / f.name).write_text(json.dumps(obj, indent=1, sort_keys=True))
        else:
            shutil.copy2(f, dst / f.name)
    for claim in (dst / "claims").glob("*/claim.json"):
        claim.write_text(json.dumps(_rename(json.loads(claim.read_text()), names), sort_keys=True))
    return names


def _op(label: str) -> str:
    head = label.partition(":")[0]
    return {"pretrain": "training", "finetune": "training"}.get(head, head)


def _tracks_of(start: dict[str, Any]) -> dict[str, str]:
    """Track -> truth for one phase (a phase is a case only in tracks it bears on)."""
    claimed, truth = str(start["claimed"]), str(start["truth"])
    c_op, t_op = _op(claimed), _op(truth)
    out = {"op_type": INCONSISTENT if c_op != t_op else CONSISTENT}
    if c_op in IDLE_OR_SERVING:
        # undeclared work: anything beyond what the idle/serving claim explains
        out["undeclared_work"] = INCONSISTENT if truth != claimed else CONSISTENT
    c_size, t_size = claimed.partition(":")[2], truth.partition(":")[2]
    if c_size and c_op == t_op:  # size questions only where the op claim holds
        out["model_size"] = INCONSISTENT if c_size != t_size else CONSISTENT
    if claimed.startswith(("pretrain", "finetune")) and t_op == "training":
        out["finetune"] = INCONSISTENT if claimed.partition(":")[0] != truth.partition(":")[0] else CONSISTENT
    return out


def run_cases(
    suite: Path, runs: list[tuple[str, str, Path]], tracks: set[str]
) -> tuple[list[Case], list[Answer]]:
    """Cases and answers for ``runs`` (host, variant, run dir), copied under ``suite/runs``."""
    cases: list[Case] = []
    answers: list[Answer] = []
    for k, (host, variant, src) in enumerate(runs, 1):
        rel = f"runs/r{k:02d}"
        names = neutral_copy(src, suite / rel)
        for start in phase_truths(src):
            phase = names[start["phase"]]
            claim: dict[str, Any] = {
                key: start[key]
                for key in ("claimed", "claimed_op", "claimed_model", "claimed_n_params", "world_size")
                if key in start
            }
            for track, truth in _tracks_of(start).items():
                if track not in tracks:
                    continue
                cid = f"{track}/r{k:02d}/{phase}"
                cases.append(Case(cid, track, rel, claim, phase=phase, host=host))
                lie = start["truth"] != start["claimed"]
                family = (
                    (start["phase"] + ("+competent" if variant == "competent" else "")) if lie else "honest"
                )
                detail = {"truth_label": start["truth"], "n_params": start.get("n_params"), "run": rel}
                answers.append(Answer(cid, truth, family, variant if lie else "honest", detail))
    return cases, answers
