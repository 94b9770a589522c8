"""Dishonest training claims for tests and the benchmark, each by a competent prover that
keeps its claim self-consistent (every fingerprint it writes matches the files it ships).

- ``metric_inflated``: the reported metric is better than the final checkpoint reaches.
- ``checkpoint_swapped``: checkpoint ``k`` is another run's (fingerprints updated).
- ``steps_skipped``: one segment ran only part of its steps (the compute was not spent).
- ``data_substituted``: trained on other text while claiming the declared split.
- ``state_crafted``: the optimizer state handed over at the start of the last segment is
  rewritten (its first moment scaled), so that segment's claimed steps carry the weights
  further than the run's own optimizer would; the last checkpoint, its fingerprints and
  the metric are recomputed from the crafted state, so the last segment replays exactly.
"""

from __future__ import annotations

import shutil
from dataclasses import replace
from pathlib import Path

from inspectorate.models._checkpoint import file_sha256, load_checkpoint, weights_sha256
from inspectorate.models._corpus import Corpus
from inspectorate.replay._claim import TrainingClaim, _save, checkpoint_steps, read_claim, record_run
from inspectorate.replay._train import TrainSpec, evaluate, train_steps


def metric_inflated(claim: TrainingClaim, out: Path, delta: float = 0.05) -> TrainingClaim:
    forged = _copy(claim, out)
    if forged.metric is None:
        raise ValueError("the claim reports no metric to inflate")
    forged.metric = {**forged.metric, "value": forged.metric["value"] - delta}
    forged.write()
    return forged


def checkpoint_swapped(claim: TrainingClaim, donor: TrainingClaim, k: int, out: Path) -> TrainingClaim:
    """Checkpoint ``k`` replaced by the donor run's checkpoint at the same step."""
    forged = _copy(claim, out)
    ref = forged.checkpoints[k]
    shutil.copyfile(donor.path_of(donor.checkpoints[k]), forged.path_of(ref))
    path = forged.path_of(ref)
    forged.checkpoints[k] = replace(
        ref,
        weights_sha256=weights_sha256(load_checkpoint(path).model.state_dict()),
        file_sha256=file_sha256(path),
    )
    forged.write()
    return forged


def steps_skipped(
    spec: TrainSpec, corpus: Corpus, out: Path, segment: int, keep: float = 0.5
) -> TrainingClaim:
    stops = checkpoint_steps(spec)
    done = max(1, int((stops[segment + 1] - stops[segment]) * keep))
    return record_run(spec, corpus, out, segment_steps={segment: done})


def data_substituted(spec: TrainSpec, corpus: Corpus, out: Path, split: str = "finetune") -> TrainingClaim:
    return record_run(spec, corpus, out, train_tokens=corpus.split(split))


def state_crafted(claim: TrainingClaim, corpus: Corpus, out: Path, scale: float = 50.0) -> TrainingClaim:
    """The testbed's format (a GPT claim without a manifest): checkpoint n-1's Adam first
    moment times ``scale``, then segment n-1 trained from it and checkpoint n rewritten."""
    from inspectorate.replay._replay import _resume

    forged = _copy(claim, out)
    k = len(forged.checkpoints) - 2
    start, end = forged.checkpoints[k], forged.checkpoints[k + 1]
    model, opt = _resume(forged, start)
    for slot in opt.state.values():
        slot["exp_avg"].mul_(scale)
    forged.checkpoints[k] = _save(forged.base, forged.spec, model, opt, corpus, start.step)
    train_steps(model, opt, corpus.split(forged.data["split"]), forged.spec, start.step, end.step)
    forged.checkpoints[k + 1] = _save(forged.base, forged.spec, model, opt, corpus, end.step)
    if forged.metric is not None:
        value = evaluate(model, corpus.split(forged.spec.eval_split), forged.spec)
        forged.metric = {**forged.metric, "value": value}
    forged.write()
    return forged


def _copy(claim: TrainingClaim, out: Path) -> TrainingClaim:
    out = Path(out)
    shutil.copytree(claim.base, out, dirs_exist_ok=True)
    return read_claim(out / "claim.json")
