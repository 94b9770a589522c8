"""What a serve or eval phase hands over so the verifier can re-compute its outputs.

Written by the workload side, independently of the verifier's code, to the documented
formats (docs/difr.md): under ``RUN/claims/<phase>/``

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

import hashlib
import json
import os
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import torch

FORMAT_WEIGHTS = "inspectorate.weights"
FORMAT_LOG = "inspectorate.difr.serving-log"


def derive_seed(nonce: str, key: str) -> int:
    """The challenge protocol: 48 bits of sha256(nonce|key), little-endian."""
    return int.from_bytes(hashlib.sha256(f"{nonce}|{key}".encode()).digest()[:6], "little")


def sensor_nonce(run_dir: Path) -> str | None:
    path = run_dir / "sensor.jsonl"
    try:
        with path.open(encoding="utf-8") as fh:
            first = json.loads(fh.readline())
    except (OSError, ValueError):
        return None
    return str(first["nonce"]) if isinstance(first, dict) and first.get("nonce") else None


def keyed_noise(seed: int, first: int, batch: int, steps: int, vocab: int) -> torch.Tensor:
    """Gumbel noise of sequences ``first..first+batch``: row ``j`` of sequence ``i`` from
    ``numpy.random.default_rng([seed, i]).random((steps, vocab))`` (the log's protocol)."""
    tiny, eps = np.finfo(np.float64).tiny, np.finfo(np.float64).eps
    out = np.empty((batch, steps, vocab))
    for b in range(batch):
        u = np.random.default_rng([seed & 0xFFFFFFFFFFFFFFFF, first + b]).random((steps, vocab))
        out[b] = -np.log(-np.log(np.clip(u, tiny, 1.0 - eps)))
    return torch.from_numpy(out)


def write_weights(path: Path, description: dict[str, Any], module: torch.nn.Module, vocab: str) -> str:
    """The weights file (no copy of the tensors); returns its ``sha256:<16 hex>`` hash."""
    from inspectorate.models import spec_from_dict

    spec = spec_from_dict(description)
    with torch.device("meta"):  # the verifier's names and shapes, without allocating
        names = [(k, tuple(v.shape)) for k, v in spec.build().state_dict().items()]
    own = [v.detach() for v in module.state_dict().values()]
    if len(own) != len(names) or any(tuple(t.shape) != s for t, (_, s) in zip(own, names, strict=False)):
        raise SystemExit(f"handover: the module does not fit the declared {description['family']} model")
    state = {k: t.contiguous() for (k, _), t in zip(names, own, strict=True)}
    blob = {
        "format": FORMAT_WEIGHTS,
        "version": 1,
        "model": json.dumps(
            {k: description[k] for k in ("family", "config")}
            | {"format": "inspectorate.model", "version": 1},
            sort_keys=True,
        ),
        "vocab": vocab,
        "meta": "{}",
        "state_dict": state,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(blob, path)
    digest = hashlib.sha256()
    for name in sorted(state):
        t = state[name]
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(memoryview(t.reshape(-1).numpy().view(np.uint8)))
    return "sha256:" + digest.hexdigest()[:16]


class Handover:
    """One phase's handover: opened at the phase's start, ``step()`` after every call."""

    def __init__(self, workload: Any, phase: dict[str, Any], run_dir: Path, vocab: str) -> None:
        # an eval that computes a loss hands over batches; one that samples (pg_sampler), a log
        loss_eval = phase["do"] == "eval" and getattr(workload, "evaluates_loss", False)
        self.kind = "eval" if loss_eval else "serve"
        self.dir = run_dir / "claims" / phase["name"]
        self.workload = workload
        self.shadow = None
        if phase.get("shadow_config") is not None:  # competent lie: a declared-size twin
            self.shadow = type(workload)(**phase["shadow_config"])
        source = self.shadow or workload
        model = phase.get("handover_model") or phase["claim"]["model"]
        description = json.loads((run_dir / "models" / f"{model}.json").read_text())
        n_ids = int(description["config"]["vocab_size"])
        self.model_hash = write_weights(self.dir / "weights.pt", description, source.handover_module(), vocab)
        self.n = 0
        if self.kind == "serve":
            nonce = sensor_nonce(run_dir)
            seed = derive_seed(nonce, f"serve:{phase['name']}") if nonce else secrets.randbits(48)
            self.seed = seed
            for w in filter(None, (workload, self.shadow)):
                w.noise = self._noise
            header = {
                "format": FORMAT_LOG,
                "version": 1,
                "model_hash": self.model_hash,
                "vocab": vocab,
                "vocab_size": n_ids,
                "precision": "float32",
                "sampling": {"temperature": 1.0, "top_k": None, "top_p": None, "seed": seed},
                "projection": None,
                "server": {"weights": "weights.pt", "workload": type(workload).__module__},
            }
            self.out = (self.dir / "served.jsonl").open("w", encoding="utf-8")
        else:
            (self.dir / "eval.json").write_text(
                json.dumps(
                    {
                        "format": "inspectorate.eval-claim",
                        "version": 1,
                        "weights": "weights.pt",
                        "model_hash": self.model_hash,
                        "metric": "cross_entropy",
                        "batches": "eval_batches.jsonl",
                    }
                )
            )
            self.out = (self.dir / "eval_batches.jsonl").open("w", encoding="utf-8")
            header = None
        if header is not None:
            self.out.write(json.dumps(header) + "\n")

    def _noise(self, batch: int, steps: int, vocab: int) -> torch.Tensor:
        return keyed_noise(self.seed, self.n, batch, steps, vocab)

    def step(self) -> None:
        source = self.workload
        if self.shadow is not None:  # the twin's work, on the prover's own CPU
            getattr(self.shadow, "serve" if self.kind == "serve" else "eval")()
            source = self.shadow
        if self.kind == "serve":
            prompts, tokens = source.served
            lines = []
            for p, t in zip(prompts.tolist(), tokens.tolist(), strict=True):
                lines.append(json.dumps({"index": self.n, "prompt": p, "tokens": t, "projections": None}))
                self.n += 1
            self.out.write("\n".join(lines) + "\n")
        else:
            rows, score_from, loss = source.evaluated
            line = {"index": self.n, "ids": rows.tolist(), "score_from": score_from, "loss": float(loss)}
            line["tokens"] = int(rows.shape[0] * (rows.shape[1] - score_from))
            self.out.write(json.dumps(line) + "\n")
            self.n += 1

    def close(self) -> None:
        self.out.close()


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
