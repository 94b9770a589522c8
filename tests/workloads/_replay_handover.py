"""A workload hands over a replay claim of its own training phase (``RUN/claims/<phase>/``).

What a real prover would do with the public API only (``inspectorate.models``,
``inspectorate.replay``, ``inspectorate.capture``): start from the declared family's
initialisation under a seed derived from the sensor's challenge (so the verifier can
check step 0 is a fresh model, and that the run did not predate the challenge), record
every step's batch start offsets, write weights files (its own tensors mapped onto the
verifier's names by position, its optimizer state alongside) every ``seconds/5`` of the
phase so the sensor's checkpoint watcher sees them written, then the batch manifest and
the claim. The training itself stays the workload's own loop and module.

The workload provides ``model``, ``opt``, ``last_starts`` (the start offsets of its last
batch) and ``replay_decl()``: the model description, optimizer, rate, sequence length,
first scored position and sequences a step.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from corpus import CORPUS

CKPTS_PER_PHASE = 5
_FINGERPRINT: dict[str, str] = {}


def prepare(plan: dict[str, Any]) -> None:
    """Before any phase: the corpus split's fingerprint, when a phase will hand over
    (encoding the corpus is work no phase claimed)."""
    if any(ph.get("handover") for ph in plan.get("phases", [])) and not _FINGERPRINT:
        from inspectorate.models import load_corpus

        _FINGERPRINT["pretrain"] = load_corpus(CORPUS).fingerprint("pretrain")


def begin(workload: Any, phase: dict[str, Any], run_dir: str | None) -> Handover | None:
    """A handover for a train phase the plan marks ``"handover": true`` (else None)."""
    if not run_dir or phase.get("do") != "train" or not phase.get("handover"):
        return None
    return Handover(workload, phase["name"], Path(run_dir), float(phase["seconds"]))


def _nonce(run_dir: Path) -> str | None:
    """The challenge the sensor issued in its start record (it starts before the workload)."""
    try:
        with (run_dir / "sensor.jsonl").open(encoding="utf-8") as f:
            first = json.loads(f.readline())
    except (OSError, ValueError):
        return None
    return str(first["nonce"]) if isinstance(first, dict) and first.get("nonce") else None


class Handover:
    def __init__(self, workload: Any, phase: str, run_dir: Path, seconds: float) -> None:
        from inspectorate.models import spec_from_dict
        from inspectorate.replay import derive_seed

        self.w, self.phase = workload, phase
        self.decl = workload.replay_decl()
        self.spec = spec_from_dict(self.decl["model"])
        self.out = run_dir / "claims" / phase
        self.out.mkdir(parents=True, exist_ok=True)
        nonce = _nonce(run_dir)
        self.nonce_key = phase if nonce is not None else None
        self.seed = derive_seed(nonce, phase) if nonce is not None else 0
        self.every_s = seconds / CKPTS_PER_PHASE
        self.starts: list[list[list[int]]] = []
        self.refs: list[Any] = []
        self._fresh_start()
        self._save()

    def _fresh_start(self) -> None:
        """The declared family's initialisation under the seed, copied into the
        workload's own module by position; the optimizer starts empty."""
        torch.manual_seed(self.seed)
        built = self.spec.build().state_dict()
        self.names = list(built)  # the verifier's names, in position order
        ref, own = list(built.values()), list(self.w.model.state_dict().values())
        if len(ref) != len(own) or any(a.shape != b.shape for a, b in zip(ref, own, strict=True)):
            raise SystemExit(f"{self.phase}: the workload's module does not fit its declared model")
        with torch.no_grad():
            for a, b in zip(own, ref, strict=True):
                a.copy_(b)
        self.w.opt.state.clear()
        self.last_t = time.time()

    def step(self) -> None:
        """After each training step: its batch offsets; a checkpoint every ``every_s``."""
        self.starts.append([[int(s) for s in self.w.last_starts]])
        if time.time() - self.last_t >= self.every_s:
            self._save()

    def _save(self, optimizer: bool = True) -> None:
        from inspectorate.models import file_sha256, save_weights, weights_sha256
        from inspectorate.replay import CheckpointRef

        step = len(self.starts)
        # renamed by position (shapes were checked once in _fresh_start; save_weights
        # loads strictly): map_state_dict would build the model again for every file
        own = self.w.model.state_dict().values()
        state = {name: t.detach().clone() for name, t in zip(self.names, own, strict=True)}
        path = save_weights(
            self.out / f"ckpt_{step:06d}.pt",
            self.spec,
            state,
            optimizer=self.w.opt.state_dict() if optimizer else None,
        )
        self.refs.append(CheckpointRef(step, path.name, weights_sha256(state), file_sha256(path)))
        self.last_t = time.time()

    def finish(self) -> Path | None:
        """The last checkpoint, the manifest and the claim (None: no step was run)."""
        from inspectorate.replay import FAMILY_MODULES, TrainingClaim, TrainSpec, code_fingerprint
        from inspectorate.replay._family import write_manifest

        steps = len(self.starts)
        if steps == 0:
            return None
        if self.refs[-1].step != steps:
            self._save(optimizer=False)  # the last checkpoint is a target, never resumed from
        d = self.decl
        write_manifest(self.out / "batches.json", d["seq_len"], self.starts)
        spec = TrainSpec(
            model=self.spec.to_dict(),
            steps=steps,
            batch_size=d["batch_size"],
            seq_len=d["seq_len"],
            lr=d["lr"],
            warmup_steps=0,
            min_lr_frac=1.0,  # a constant rate: every step's is the declared one
            seed=self.seed,
            split="pretrain",
            checkpoint_every=max(steps // CKPTS_PER_PHASE, 1),
            sampler="manifest",
            manifest="batches.json",
            optimizer=d["optimizer"],
            loss_start=d["loss_start"],
            clip_grad_norm=None,
        )
        claim = TrainingClaim(
            spec=spec,
            data={"split": "pretrain", "fingerprint": _fingerprint()},
            metric=None,
            checkpoints=self.refs,
            code_commit=code_fingerprint(FAMILY_MODULES),
            base=self.out,
            nonce_key=self.nonce_key,
        )
        return claim.write()


def _fingerprint() -> str:
    if not _FINGERPRINT:
        from inspectorate.models import load_corpus

        _FINGERPRINT["pretrain"] = load_corpus(CORPUS).fingerprint("pretrain")
    return _FINGERPRINT["pretrain"]
