"""A workload hands over a replay claim of its own training phase (``RUN/claims/<phase>/``)
through the public ``inspectorate.handover.training`` (fresh start under the challenge
seed, per-step batch offsets, checkpoints every ``seconds/5`` of the phase, manifest,
claim). This file only adapts the workloads' shape to it: each provides ``model``,
``opt``, ``last_starts`` (its last batch's start offsets) and ``replay_decl()`` (the
model description, sequence length and first scored position).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from corpus import CORPUS

from inspectorate.errors import InputError
from inspectorate.handover import TrainingHandover
from inspectorate.handover._common import sensor_nonce
from inspectorate.handover._training import load_split

CKPTS_PER_PHASE = 5


def prepare(plan: dict[str, Any]) -> None:
    """Before any phase: the corpus split read and fingerprinted once, when a phase will
    hand over (encoding the corpus is work no phase claimed)."""
    if any(ph.get("handover") for ph in plan.get("phases", [])):
        load_split(CORPUS, "pretrain")


def begin(workload: Any, phase: dict[str, Any], run_dir: str | None) -> Handover | None:
    """A handover for a train phase the plan marks ``"handover": true`` (else None)."""
    if not run_dir or phase.get("do") != "train" or not phase.get("handover"):
        return None
    return Handover(workload, phase["name"], Path(run_dir), float(phase["seconds"]))


class Handover(TrainingHandover):
    """The public writer; ``step()`` reads the workload's last batch."""

    def __init__(self, workload: Any, phase: str, run_dir: Path, seconds: float) -> None:
        try:  # outside a captured run (unit tests): seed 0, bound to no challenge
            sensor_nonce(run_dir)
            seed = None
        except InputError:
            seed = 0
        decl = workload.replay_decl()
        self.w = workload
        super().__init__(
            phase,
            workload.model,
            workload.opt,
            decl["model"],
            corpus=CORPUS,
            seq_len=decl["seq_len"],
            loss_start=decl["loss_start"],
            checkpoint_every_s=seconds / CKPTS_PER_PHASE,
            run=run_dir,
            seed=seed,
        )

    def step(self, starts: Any = None, lr: float | None = None, inputs: Any = None) -> None:
        super().step(self.w.last_starts if starts is None else starts, lr, inputs)
