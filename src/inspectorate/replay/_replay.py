"""Replay a claimed training run, whole or by segments (Proof-of-Learning style).

A segment ``k`` starts from claimed checkpoint ``k`` (weights and AdamW state), runs the
claimed steps with the claimed data order, and must land within ``tolerance.weight`` of
claimed checkpoint ``k+1``, measured as ``||w_replayed - w_claimed|| / ||w_claimed -
w_start||`` (relative to how far the segment moved, so it means the same early and late
in training). The claim's ``code_commit`` must name the code the verifier replays with
(by default :func:`code_fingerprint`), else the replay is unverifiable: reproducing a
run with other code proves nothing about the claimed one. Checkpoint 0 must be the claimed seed's initialisation, every checkpoint
file must hash to what the claim says, and the reported metric must be what the final
checkpoint scores. A full replay checks every segment; the verifier may instead draw
``r`` segments at random, which catches an attack confined to ``b`` of ``S`` segments
with probability ``1 - C(S-b, r) / C(S, r)``.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inspectorate.decisions import Decision
from inspectorate.errors import InputError
from inspectorate.models._checkpoint import file_sha256, load_checkpoint, weights_sha256
from inspectorate.models._corpus import Corpus
from inspectorate.replay._claim import CheckpointRef, TrainingClaim
from inspectorate.replay._code import code_fingerprint, modules_for
from inspectorate.replay._family import load_optimizer_state, read_manifest
from inspectorate.replay._train import evaluate, init_model, make_optimizer, train_steps

CONSISTENT, INCONSISTENT, UNVERIFIABLE = Decision.CONSISTENT, Decision.INCONSISTENT, Decision.UNVERIFIABLE
INDETERMINATE = UNVERIFIABLE  # the old name (older results wrote "indeterminate")


@dataclass(frozen=True)
class Tolerance:
    """Largest honest disagreement allowed: relative weight distance, metric difference.

    The defaults are ~10x the largest honest disagreements measured by bench/replay.py
    (weights 1.1e-3 replaying under 2 threads a run recorded under 1; metric 0): use
    :func:`calibrate_tolerance` on an honest run of the model and machine at hand."""

    weight: float = 1e-2
    metric: float = 1e-4
    basis: dict[str, Any] = field(default_factory=dict)

    def save(self, path: Path | str) -> Path:
        Path(path).write_text(json.dumps(asdict(self), indent=2), encoding="utf-8")
        return Path(path)

    @classmethod
    def load(cls, path: Path | str) -> Tolerance:
        try:
            return cls(**json.loads(Path(path).read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError) as exc:
            raise InputError(f"bad tolerance file ({exc})", path) from None


@dataclass
class SegmentResult:
    segment: int
    start_step: int
    end_step: int
    exact: bool
    distance: float
    agree: bool
    # the replayed optimizer state against the end checkpoint's (relative; None when the
    # end checkpoint carries none: the last one, a target never resumed)
    state_distance: float | None = None


@dataclass
class ReplayResult:
    decision: str
    reasons: list[str]
    segments: list[SegmentResult]
    metric: dict[str, float]
    tolerance: Tolerance
    n_segments: int
    code: dict[str, str] = field(default_factory=dict)  # {"claimed", "replayed_with"}
    claim: dict[str, Any] = field(default_factory=dict)  # TrainingClaim.summary() + start_checked

    @property
    def exit_code(self) -> int:
        return 0 if self.decision == CONSISTENT else 1

    @property
    def steps_replayed(self) -> int:
        """Training steps the replayed segments cover (not the claim's total)."""
        return sum(s.end_step - s.start_step for s in self.segments)

    def covered(self) -> str:
        """The steps covered, for a person: ``"steps 0-20, 40-60 (40 of 100)"``."""
        spans = ", ".join(f"{s.start_step}-{s.end_step}" for s in self.segments) or "none"
        total = self.claim.get("steps")
        return f"steps {spans} ({self.steps_replayed} of {total if total is not None else '?'})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "decision": self.decision,
            "steps_replayed": self.steps_replayed,
            "steps_total": self.claim.get("steps"),
            "reasons": self.reasons,
            "segments_replayed": [asdict(s) for s in self.segments],
            "segments_total": self.n_segments,
            "metric": self.metric,
            "tolerance": asdict(self.tolerance),
            "code_commit": self.code,
            "claim": self.claim,
        }


def choose_segments(n_segments: int, count: int, seed: int) -> list[int]:
    """The verifier's random draw of ``count`` distinct segments (PoL); at least one."""
    if count < 1:
        raise InputError(f"--segments must be >= 1 (zero replays no training step), got {count}")
    count = min(count, n_segments)
    return sorted(
        int(i) for i in np.random.default_rng([seed, 0x9013]).choice(n_segments, count, replace=False)
    )


def replay_claim(
    claim: TrainingClaim,
    corpus: Corpus,
    segments: list[int] | None = None,
    tolerance: Tolerance | None = None,
    *,
    code: str | None = None,
) -> ReplayResult:
    """Check the code, the data, files, initialisation, the chosen segments (all when
    None) and the metric. ``code`` is what the verifier replays with (default: this
    installation's :func:`code_fingerprint`; a verifier that checked out the claimed
    commit declares it here)."""
    tol = tolerance or Tolerance()
    n = len(claim.checkpoints) - 1
    chosen = list(range(n)) if segments is None else sorted(set(segments))
    if any(not 0 <= k < n for k in chosen):
        raise InputError(f"segments must be in 0..{n - 1}")
    mine = code if code is not None else code_fingerprint(modules_for(claim.spec))
    codes = {"claimed": claim.code_commit, "replayed_with": mine}
    if claim.code_commit != mine:
        reason = (
            f"the claim names code {claim.code_commit!r}, the verifier replays with {mine!r}: cannot replay"
        )
        return ReplayResult(UNVERIFIABLE, [reason], [], {}, tol, n, codes, claim.summary())
    if corpus.fingerprint(claim.data["split"]) != claim.data["fingerprint"]:
        reason = "the verifier's copy of the data does not match the claimed fingerprint: cannot replay"
        return ReplayResult(UNVERIFIABLE, [reason], [], {}, tol, n, codes, claim.summary())
    reasons = _file_reasons(claim, sorted({0, n, *chosen, *(k + 1 for k in chosen)}))
    if reasons:
        return ReplayResult(INCONSISTENT, reasons, [], {}, tol, n, codes, claim.summary())
    start_checked = segments is None or 0 in chosen
    summary = {**claim.summary(), "start_checked": start_checked}
    if start_checked:
        reasons += _init_reasons(claim)
    results = [replay_segment(claim, corpus, k, tol) for k in chosen]
    reasons += [_disagreement(r, tol) for r in results if not r.agree]
    metric = check_metric(claim, corpus)
    if claim.metric is not None and metric and abs(metric["difference"]) > tol.metric:
        reasons.append(
            f"reported {claim.metric['name']} {metric['reported']:.6g}, the final checkpoint scores {metric['recomputed']:.6g}"
        )
    return ReplayResult(
        INCONSISTENT if reasons else CONSISTENT, reasons, results, metric, tol, n, codes, summary
    )


def _disagreement(r: SegmentResult, tol: Tolerance) -> str:
    where = f"segment {r.segment} (steps {r.start_step}-{r.end_step})"
    if r.exact or r.distance <= tol.weight:
        return (
            f"{where} lands on its checkpoint's weights, but its optimizer state lands {r.state_distance:.3g}"
            f" from the checkpoint's (tolerance {tol.weight:.3g}): the next segment would resume from a state"
            " this one does not produce"
        )
    return f"{where} lands {r.distance:.3g} from its checkpoint (tolerance {tol.weight:.3g})"


def replay_segment(claim: TrainingClaim, corpus: Corpus, k: int, tol: Tolerance) -> SegmentResult:
    start, end = claim.checkpoints[k], claim.checkpoints[k + 1]
    model, opt = _resume(claim, start)
    w0 = _flat(model)
    tokens = corpus.split(claim.data["split"])
    manifest = _manifest(claim, tokens)
    train_steps(model, opt, tokens, claim.spec, start.step, end.step, manifest)
    replayed = weights_sha256(model.state_dict())
    target = _load(claim, end)[0]
    w1, w = _flat(target), _flat(model)
    moved = float(torch.linalg.vector_norm(w1 - w0))
    distance = float(torch.linalg.vector_norm(w - w1)) / max(moved, 1e-12)
    exact = replayed == end.weights_sha256
    gap = _state_distance(claim, end, model, opt)
    agree = (exact or distance <= tol.weight) and (gap is None or gap <= tol.weight)
    return SegmentResult(k, start.step, end.step, exact, distance, agree, gap)


def _state_distance(
    claim: TrainingClaim, end: CheckpointRef, model: Any, opt: torch.optim.Optimizer
) -> float | None:
    """Relative distance of the replayed optimizer state from the end checkpoint's (over
    every state tensor: Adam's moments, a momentum buffer). The weights alone do not
    chain the segments: a next segment resumes from the checkpoint's state, and a state
    crafted to carry the weights anywhere in one claimed step would replay that segment
    exactly; the segment before it, replayed, ends on the honest state instead."""
    state = _load(claim, end)[1]
    if state is None:
        return None
    target = make_optimizer(model, claim.spec)
    if claim.spec.optimizer is not None:
        load_optimizer_state(target, state, claim.spec.optimizer, end.file)
    else:
        try:
            target.load_state_dict(state)
        except (ValueError, KeyError) as exc:
            raise InputError(f"checkpoint {end.file}: optimizer state does not fit ({exc})") from None
    diff = norm = 0.0
    for p in (q for group in opt.param_groups for q in group["params"]):
        mine, theirs = opt.state.get(p, {}), target.state.get(p, {})
        for key in sorted(set(mine) | set(theirs)):
            a, b = mine.get(key), theirs.get(key)
            if not isinstance(a, torch.Tensor) or not isinstance(b, torch.Tensor) or a.dim() == 0:
                if (a is None) != (b is None):
                    return float("inf")  # a slot one side has and the other lacks
                continue  # step counters are checked by the steps themselves
            if a.shape != b.shape:
                return float("inf")
            diff += float(torch.sum((a.double() - b.double()) ** 2))
            norm += float(torch.sum(b.double() ** 2))
    return (diff**0.5) / max(norm**0.5, 1e-12) if norm > 0 or diff > 0 else 0.0


def check_metric(claim: TrainingClaim, corpus: Corpus) -> dict[str, float]:
    """Reported vs recomputed metric of the final checkpoint ({} when none is claimed)."""
    if claim.metric is None:
        return {}
    final = _load(claim, claim.checkpoints[-1])[0]
    value = evaluate(final, corpus.split(claim.spec.eval_split), claim.spec)
    reported = float(claim.metric["value"])
    return {"reported": reported, "recomputed": value, "difference": reported - value}


def _resume(claim: TrainingClaim, ref: CheckpointRef) -> tuple[Any, torch.optim.Optimizer]:
    model, state = _load(claim, ref)
    if claim.spec.freeze_embeddings:
        model.freeze_embeddings()
    opt = make_optimizer(model, claim.spec)
    if state is None:
        raise InputError(f"checkpoint {ref.file} holds no optimizer state: a segment cannot resume")
    if claim.spec.optimizer is not None:  # a workload's state: mapped by position, declared hyper-parameters
        load_optimizer_state(opt, state, claim.spec.optimizer, ref.file)
        return model, opt
    try:
        opt.load_state_dict(state)
    except (ValueError, KeyError) as exc:
        raise InputError(f"checkpoint {ref.file}: optimizer state does not fit ({exc})") from None
    return model, opt


def _load(claim: TrainingClaim, ref: CheckpointRef) -> tuple[Any, dict[str, Any] | None]:
    """(module, optimizer state) of a checkpoint: the testbed's format for a GPT claim, a
    weights file (``inspectorate.weights``) of the declared model for a family claim."""
    family = claim.spec.family
    if family is None:
        ckpt = load_checkpoint(claim.path_of(ref))
        return ckpt.model, ckpt.optimizer
    from inspectorate.models._weights import load_weights

    w = load_weights(claim.path_of(ref))
    if w.spec.to_dict() != family.to_dict():
        raise InputError(f"checkpoint {ref.file} describes another model than the claim", claim.base)
    return w.module, w.optimizer


def _manifest(claim: TrainingClaim, tokens: np.ndarray) -> list[list[np.ndarray]] | None:
    s = claim.spec
    if s.manifest is None:
        return None
    out = read_manifest(claim.base / s.manifest, s.steps, s.world_size, s.seq_len, len(tokens))
    if any(len(r) != s.batch_size for ranks in out for r in ranks):
        raise InputError(f"every manifest batch must hold {s.batch_size} sequences", claim.base / s.manifest)
    return out


def _flat(model: torch.nn.Module) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1).double() for p in model.parameters()])


def _file_reasons(claim: TrainingClaim, indices: list[int]) -> list[str]:
    """Every checkpoint a replay reads must be the file and the weights the claim names."""
    reasons = []
    for i in indices:
        ref = claim.checkpoints[i]
        path = claim.path_of(ref)
        if not path.exists():
            raise InputError(f"checkpoint file {ref.file} is missing", claim.base)
        if file_sha256(path) != ref.file_sha256:
            reasons.append(f"checkpoint {ref.file} does not hash to the claimed file fingerprint")
        elif weights_sha256(_load(claim, ref)[0].state_dict()) != ref.weights_sha256:
            reasons.append(f"checkpoint {ref.file} weights do not match the claimed weight fingerprint")
    return reasons


def _init_reasons(claim: TrainingClaim) -> list[str]:
    """Step 0 must be the claimed start: the named model, or the seed's initialisation."""
    if claim.start is not None:
        if claim.start["weights_sha256"] != claim.checkpoints[0].weights_sha256:
            return [f"checkpoint 0 is not the claimed start model {claim.start.get('name') or ''}".rstrip()]
        return []
    expected = weights_sha256(init_model(claim.spec).state_dict())
    if expected != claim.checkpoints[0].weights_sha256:
        return ["checkpoint 0 is not the claimed seed's initialisation"]
    return []


def calibrate_tolerance(
    claim: TrainingClaim, corpus: Corpus, threads: tuple[int, ...] = (1, 2), factor: float = 10.0
) -> Tolerance:
    """Replay every segment of an honest claim under each thread count; the tolerance is
    ``factor`` x the largest honest disagreement (weights and metric), floored at 1e-7."""
    saved = torch.get_num_threads()
    dists, metrics = [], []
    try:
        for t in threads:
            torch.set_num_threads(t)
            dists += [
                replay_segment(claim, corpus, k, Tolerance()).distance
                for k in range(len(claim.checkpoints) - 1)
            ]
            metrics.append(abs(check_metric(claim, corpus)["difference"]))
    finally:
        torch.set_num_threads(saved)
    basis = {
        "threads": list(threads),
        "honest_max_distance": max(dists),
        "honest_max_metric": max(metrics),
        "factor": factor,
    }
    return Tolerance(max(factor * max(dists), 1e-7), max(factor * max(metrics), 1e-7), basis)
