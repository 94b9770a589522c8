"""The verifier re-computes every served log and eval claim a run hands over.

A serve or eval phase hands over, under ``RUN/claims/<phase>/``, the weights it ran
(``weights.pt``, ``inspectorate.models.save_weights`` format) and either the served log
(``served.jsonl``, ``inspectorate.difr`` serving-log format, its header naming the
weights by hash) or an eval claim (``eval.json`` + its batches, ``difr._evalcheck``).
``verify`` re-computes them whenever they are present, with no flag: they are the
prover's evidence, and a phase whose evidence the verifier could check and did not
would stay open for nothing. The cost is bounded by the verifier's draw (64 sequences,
16 eval batches a phase). Each finding is then bound to its phase
(``_recomputed.bind_served``) before it may settle anything.

A file that cannot be read is the prover's broken evidence: an inconsistent finding for
that phase, never a crash of the verifier. Needs torch (``[testbed]``).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from inspectorate.capture._nonce import derive_seed
from inspectorate.errors import InputError
from inspectorate.trace import RunDir
from inspectorate.verify._recomputed import _finding
from inspectorate.verify._registry import Finding

CLAIMS_DIR = "claims"
SERVED_LOG = "served.jsonl"
EVAL_CLAIM = "eval.json"
WEIGHTS = "weights.pt"


def served_key(phase: str) -> str:
    """The nonce key of a phase's sampling seed (``derive_seed(nonce, key)``)."""
    return f"serve:{phase}"


def handed_over_served(run: RunDir) -> dict[str, Path]:
    """Phase -> its served log or eval claim (phases that hand over neither are absent)."""
    root = Path(run.path) / CLAIMS_DIR
    found = {}
    for phase in run.phases():
        for name in (SERVED_LOG, EVAL_CLAIM):
            path = root / phase.name / name
            if path.is_file():
                found[phase.name] = path
                break
    return found


def served_run(
    run: RunDir, draw_seed: int | None = None, on_phase: Callable[[str], None] | None = None
) -> dict[str, list[Finding]]:
    """Re-compute every handed-over served log / eval claim of ``run``; phase -> finding."""
    out: dict[str, list[Finding]] = {}
    for phase, path in handed_over_served(run).items():
        try:
            data = _recompute(path, draw_seed)
        except InputError as exc:
            data = _unreadable(path, exc)
        data["evidence"]["file"] = str(path.relative_to(run.path))
        out[phase] = [_finding(data, path)]
        if on_phase is not None:
            on_phase(phase)
    return out


def _recompute(path: Path, draw_seed: int | None) -> dict[str, Any]:
    from inspectorate.difr._anymodel import any_finding, verify_weights_log
    from inspectorate.difr._evalcheck import check_eval, read_eval_claim
    from inspectorate.difr._log import read_log
    from inspectorate.models import load_weights

    if path.name == EVAL_CLAIM:
        claim = read_eval_claim(path)
        return check_eval(claim, load_weights(claim.weights), draw_seed=draw_seed)
    log = read_log(path)
    weights = load_weights(path.parent / str(log.header.server.get("weights", WEIGHTS)))
    report = verify_weights_log(log, weights, draw_seed=draw_seed)
    extra = {
        "seed": log.header.sampling.seed,
        "tokens": int(sum(len(s.tokens) for s in log.sequences)),
        # a server's windows may count the prompts it prefilled as processed tokens too
        "prompt_tokens": int(sum(len(s.prompt) for s in log.sequences)),
        "logged_sequences": len(log.sequences),
    }
    return any_finding(report, weights, extra)


def _unreadable(path: Path, exc: InputError) -> dict[str, Any]:
    prop = "eval_recompute" if path.name == EVAL_CLAIM else "served_model_identity"
    return {
        "property": prop,
        "decision": "inconsistent",
        "score": 1.0,
        "evidence": {"reasons": [f"the handed-over evidence cannot be checked: {exc.reason}"]},
    }


def expected_seed(nonce: str, phase: str) -> int:
    return derive_seed(nonce, served_key(phase))
