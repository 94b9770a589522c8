"""Replay claims for the testbed's training jobs: what a prover hands the verifier so that
it can re-run any segment of the run (``inspectorate replay``, Proof-of-Learning style).

Rank 0 of a data-parallel job checkpoints the weights and the AdamW state at step 0, at
steps 1, 4, 16, 64, ... and at the last step, records the learning rate of every step
(the testbed's schedule follows wall-clock progress, so the claim must carry it), and
after the job writes ``claims/<phase>/claim.json`` in the replay format. Everything
else a replay needs is in the spec: the seed that drew the initial weights and every
rank's batch stream, the batch and sequence per rank, the world size, the split, and
which parameters were frozen. A fine-tune names the model it started from (by weight
fingerprint); a pretraining run starts from the seed's initialisation.

The files are prover-written, like every claim: a replay that reproduces them shows
the claimed training is real and reproducible, and binding the replay to the phase
(model size, start, tokens) is the verifier's job (``verify._recomputed``).
Checkpoint steps grow geometrically so a job of any length writes O(log steps) files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from inspectorate.models._checkpoint import file_sha256, save_checkpoint, weights_sha256
from inspectorate.models._corpus import Corpus
from inspectorate.models._gpt import GPT
from inspectorate.replay._claim import CheckpointRef, TrainingClaim
from inspectorate.replay._train import TrainSpec, evaluate

GROWTH = 4  # checkpoint at steps 1, 4, 16, 64, ...


def is_checkpoint_step(step: int) -> bool:
    while step > 1 and step % GROWTH == 0:
        step //= GROWTH
    return step == 1


class ClaimWriter:
    """Rank 0's recorder of one training job as a replayable claim."""

    def __init__(
        self,
        out: Path,
        corpus: Corpus,
        code_commit: str,
        start_name: str | None,
        nonce_key: str | None = None,
    ) -> None:
        self.out, self.corpus, self.code_commit = out, corpus, code_commit
        self.start_name, self.nonce_key = start_name, nonce_key
        self.fields: dict[str, Any] | None = None
        self.lrs: list[float] = []
        self.refs: list[CheckpointRef] = []
        self.start: dict[str, str] | None = None
        self.model: GPT | None = None
        self.opt: torch.optim.Optimizer | None = None

    @property
    def started(self) -> bool:
        return self.fields is not None

    def begin(self, net: GPT, opt: torch.optim.Optimizer, **fields: Any) -> None:
        """Before the first step: the spec's fixed fields and checkpoint 0."""
        if self.started:  # a workload that builds a second trainer: keep the first job's claim
            return
        self.fields, self.model, self.opt = fields, net, opt
        if self.start_name is not None:
            self.start = {"name": self.start_name, "weights_sha256": weights_sha256(net.state_dict())}
        self._save(net, opt, 0)

    def after_step(self, step: int, lr: float) -> None:
        """``step`` steps are done, the last at rate ``lr``."""
        self.lrs.append(float(lr))
        if is_checkpoint_step(step):
            assert self.model is not None and self.opt is not None
            self._save(self.model, self.opt, step)

    def finish(self) -> Path | None:
        """Final checkpoint, the validation metric, ``claim.json``; None if no step ran."""
        model, opt = self.model, self.opt
        if self.fields is None or not self.lrs or model is None or opt is None:
            return None
        steps = len(self.lrs)
        if self.refs[-1].step != steps:
            self._save(model, opt, steps)
        spec = TrainSpec(
            **self.fields, steps=steps, checkpoint_every=steps, lr_schedule=tuple(self.lrs), sampler="stream"
        )
        claim = TrainingClaim(
            spec=spec,
            data={"split": spec.split, "fingerprint": self.corpus.fingerprint(spec.split)},
            metric={
                "name": f"{spec.eval_split}_loss",
                "value": evaluate(model, self.corpus.split("val"), spec),
            },
            checkpoints=self.refs,
            code_commit=self.code_commit,
            base=self.out,
            start=self.start,
            nonce_key=self.nonce_key,
        )
        return claim.write()

    def _save(self, model: GPT, opt: torch.optim.Optimizer, step: int) -> None:
        path = save_checkpoint(
            self.out / f"ckpt_{step:06d}.pt",
            model,
            self.corpus.vocab.chars,
            {"step": step},
            optimizer=opt.state_dict(),
        )
        self.refs.append(
            CheckpointRef(step, path.name, weights_sha256(model.state_dict()), file_sha256(path))
        )
