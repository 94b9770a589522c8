"""What a serve or eval phase hands over so the verifier can re-compute its outputs.

Written through the public ``inspectorate.handover`` (``served`` / ``evaluated``), to
the documented formats (docs/difr.md): under ``RUN/claims/<phase>/``

- ``weights.pt``: the ``inspectorate.weights`` v1 file of the model the phase declares
  (its description from ``RUN/models/<model>.json``, the workload's own tensors renamed
  to the verifier's module names by position; written once, at the phase's start);
- a serve phase: ``served.jsonl``, the ``inspectorate.difr.serving-log`` v1 log of every
  served sequence (prompt, sampled tokens), sampled by Gumbel-max under a seed derived
  from the sensor's challenge (``sha256(nonce|serve:<phase>)``, 48 bits);
- an eval phase: ``eval.json`` and ``eval_batches.jsonl``, every evaluated batch and the
  loss the workload computed on it.

A workload takes part by offering ``handover_module()`` (its module in the declared
family's tensor order), ``noise`` (a callable ``(B, T, V) -> Gumbel noise``: the sampler
draws ``argmax(logits + noise)``), and after each call ``served = (prompts, tokens)`` or
``evaluated = (rows, score_from, loss)``.

Lies (plan keys of a phase): ``handover_model`` names the description the prover
really ran (naive: it hands over what it ran); ``shadow_config`` makes a competent prover
keep a second workload of the declared size and log *its* outputs on every step, while
the phase's own work is done by the larger model.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import torch

from inspectorate import handover
from inspectorate.errors import InputError
from inspectorate.handover import write_weights  # noqa: F401  (tests write foreign weights)
from inspectorate.handover._common import sensor_nonce


class Handover:
    """One phase's handover: opened at the phase's start, ``step()`` after every call."""

    def __init__(self, workload: Any, phase: dict[str, Any], run_dir: Path, vocab: str) -> None:
        # an eval that computes a loss hands over batches; one that samples (pg_sampler), a log
        loss_eval = phase["do"] == "eval" and getattr(workload, "evaluates_loss", False)
        self.kind = "eval" if loss_eval else "serve"
        self.workload = workload
        self.shadow = None
        if phase.get("shadow_config") is not None:  # competent lie: a declared-size twin
            self.shadow = type(workload)(**phase["shadow_config"])
        source = self.shadow or workload
        model = phase.get("handover_model") or phase["claim"]["model"]
        name, module = phase["name"], source.handover_module()
        self.log: Any
        if self.kind == "serve":
            try:
                sensor_nonce(run_dir)
                seed = None
            except InputError:  # outside a captured run (unit tests): a fresh, unbound seed
                seed = secrets.randbits(48)
            workload_name = type(workload).__module__
            self.log = handover.served(
                name, module, model, run=run_dir, vocab=vocab, seed=seed, workload=workload_name
            )
            self.seed = self.log.seed
            for w in filter(None, (workload, self.shadow)):
                w.noise = self._noise
        else:
            self.log = handover.evaluated(name, module, model, run=run_dir, vocab=vocab)
        self.dir = self.log.dir

    def _noise(self, batch: int, steps: int, vocab: int) -> torch.Tensor:
        return self.log.noise(None, batch, steps, vocab)

    def step(self) -> None:
        source = self.workload
        if self.shadow is not None:  # the twin's work, on the prover's own CPU
            getattr(self.shadow, "serve" if self.kind == "serve" else "eval")()
            source = self.shadow
        if self.kind == "serve":
            self.log.log(*source.served)
        else:
            rows, score_from, loss = source.evaluated
            self.log.batch(rows, loss, score_from)

    def close(self) -> None:
        self.log.close()


def open_phase(workload: Any, phase: dict[str, Any], plan: dict[str, Any], rank: int) -> Handover | None:
    """The phase's handover when the plan asks for one and the phase claims to serve or
    evaluate what it runs (a workload that trains hands over no outputs)."""
    run_dir = os.environ.get("INSPECTORATE_RUN_DIR")
    if not plan.get("handover") or not run_dir or rank != 0 or not hasattr(workload, "handover_module"):
        return None
    if phase["do"] not in ("serve", "eval", "serve_updates") or phase["claim"].get("op") not in (
        "inference",
        "eval",
    ):
        return None
    if not phase["claim"].get("model"):
        return None
    return Handover(workload, phase, Path(run_dir), "")
