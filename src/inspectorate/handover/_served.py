"""A serve or eval phase's outputs, handed over so the verifier can re-compute them.

Under ``RUN/claims/<phase>/`` (formats in docs/difr.md):

- ``weights.pt``: the ``inspectorate.weights`` v1 file of the declared model, the
  workload's own tensors under the verifier's names by position (written once);
- serving: ``served.jsonl``, the ``inspectorate.difr.serving-log`` v1 log of every
  served sequence, sampled by Gumbel-max with noise keyed by the sensor's challenge
  (``derive_seed(nonce, "serve:<phase>")``): a log computed before the run, or by another
  model, does not re-compute;
- eval: ``eval.json`` (``inspectorate.eval-claim`` v1) and ``eval_batches.jsonl``, every
  evaluated batch and the loss the workload computed on it.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from inspectorate.errors import InputError
from inspectorate.handover._common import CLAIMS, challenge_seed, description, renamed, run_dir, spec_of

WEIGHTS = "weights.pt"
SERVED_LOG = "served.jsonl"
EVAL_CLAIM = "eval.json"
EVAL_BATCHES = "eval_batches.jsonl"
LOG_FORMAT = "inspectorate.difr.serving-log"


def write_weights(path: Path | str, model: dict[str, Any], module: Any, vocab: str = "") -> str:
    """The weights file of ``module`` as the declared ``model`` (a description); returns
    its ``sha256:<16 hex>`` hash, what a served log names its weights by."""
    from inspectorate.models import save_weights, weights_sha256

    if not isinstance(model, dict):
        raise InputError(f"{path}: the declared model must be a description (a dict)")
    spec = spec_of(description(model, Path(".")))
    state = renamed(spec, module, str(path))
    save_weights(path, spec, state, vocab=vocab)
    return "sha256:" + weights_sha256(state)[:16]


def keyed_noise(seed: int, first: int, batch: int, steps: int, vocab: int) -> Any:
    """Gumbel noise ``(batch, steps, vocab)`` (float64 torch tensor) of sequences
    ``first .. first+batch-1``: row ``j`` of sequence ``i`` from
    ``numpy.random.default_rng([seed, i]).random((steps, vocab))``, the log's protocol."""
    import torch

    tiny, eps = np.finfo(np.float64).tiny, np.finfo(np.float64).eps
    out = np.empty((batch, steps, vocab))
    for b in range(batch):
        u = np.random.default_rng([seed & 0xFFFFFFFFFFFFFFFF, first + b]).random((steps, vocab))
        out[b] = -np.log(-np.log(np.clip(u, tiny, 1.0 - eps)))
    return torch.from_numpy(out)


class _Phase:
    """A phase's claims folder and the weights of the declared model, written once."""

    def __init__(
        self, phase: str, module: Any, model: str | dict[str, Any], run: Path | str | None, vocab: str
    ):
        self.run = run_dir(run)
        self.phase = phase
        self.dir = self.run / CLAIMS / phase
        self.desc = description(model, self.run)
        self.vocab_size = int(spec_of(self.desc).vocab)
        self.model_hash = write_weights(self.dir / WEIGHTS, self.desc, module, vocab)
        self.n = 0  # sequences (serving) or batches (eval) written
        self._out: Any = None

    def close(self) -> None:
        if self._out is not None:
            self._out.close()
            self._out = None

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ServedLog(_Phase):
    """One serve phase's log. Sample with :meth:`noise` (``argmax(logits / T + noise)``,
    in float64; at temperature 0, greedy, no noise), then :meth:`log` the prompts and
    the sampled tokens."""

    def __init__(
        self,
        phase: str,
        module: Any,
        model: str | dict[str, Any],
        *,
        run: Path | str | None = None,
        vocab: str = "",
        temperature: float = 1.0,
        seed: int | None = None,
        workload: str = "",
    ) -> None:
        super().__init__(phase, module, model, run, vocab)
        if not (math.isfinite(temperature) and temperature >= 0):
            raise InputError(f"serve handover {phase}: temperature must be finite and >= 0 (0: greedy)")
        # seed: for use outside a captured run only; the verifier cannot bind it to its challenge
        self.seed = challenge_seed(f"serve:{phase}", self.run) if seed is None else int(seed)
        self.temperature = float(temperature)
        header = {
            "format": LOG_FORMAT,
            "version": 1,
            "model_hash": self.model_hash,
            "vocab": vocab,
            "vocab_size": self.vocab_size,
            "precision": "float32",
            "sampling": {"temperature": self.temperature, "top_k": None, "top_p": None, "seed": self.seed},
            "projection": None,
            "server": {"weights": WEIGHTS, "workload": workload},
        }
        self._out = (self.dir / SERVED_LOG).open("w", encoding="utf-8")
        self._out.write(json.dumps(header) + "\n")

    def noise(self, first: int | None, batch: int, steps: int, vocab: int) -> Any:
        """Noise of the next ``batch`` sequences (``first``: their first index, default
        the next one to log), one ``vocab`` row per generated position."""
        return keyed_noise(self.seed, self.n if first is None else first, batch, steps, vocab)

    def log(self, prompts: Any, tokens: Any) -> None:
        """One batch: ``prompts`` ``(B, P)`` and the sampled ``tokens`` ``(B, S)``
        (tensors or lists), given indexes in order."""
        rows = []
        for p, t in zip(_rows(prompts), _rows(tokens), strict=True):
            rows.append(json.dumps({"index": self.n, "prompt": p, "tokens": t, "projections": None}))
            self.n += 1
        if rows:
            self._out.write("\n".join(rows) + "\n")


class EvalLog(_Phase):
    """One eval phase's batches: :meth:`batch` after every evaluated batch."""

    def __init__(
        self,
        phase: str,
        module: Any,
        model: str | dict[str, Any],
        *,
        run: Path | str | None = None,
        vocab: str = "",
    ) -> None:
        super().__init__(phase, module, model, run, vocab)
        claim = {
            "format": "inspectorate.eval-claim",
            "version": 1,
            "weights": WEIGHTS,
            "model_hash": self.model_hash,
            "metric": "cross_entropy",
            "batches": EVAL_BATCHES,
        }
        (self.dir / EVAL_CLAIM).write_text(json.dumps(claim), encoding="utf-8")
        self._out = (self.dir / EVAL_BATCHES).open("w", encoding="utf-8")

    def batch(self, ids: Any, loss: float, score_from: int = 1) -> None:
        """``ids`` ``(B, T)``: each row's tokens; positions ``score_from..T-1`` are
        predicted from the ones before; ``loss``: the mean cross-entropy over them."""
        rows = _rows(ids)
        if not rows or not 1 <= score_from < len(rows[0]):
            raise InputError(
                f"eval handover {self.phase}: score_from must be in [1, row length), got {score_from}"
            )
        line = {"index": self.n, "ids": rows, "score_from": int(score_from), "loss": float(loss)}
        line["tokens"] = len(rows) * (len(rows[0]) - score_from)
        self._out.write(json.dumps(line) + "\n")
        self.n += 1


def _rows(x: Any) -> list[list[int]]:
    rows = x.tolist() if hasattr(x, "tolist") else x
    return [[int(v) for v in r] for r in rows]


def served(phase: str, module: Any, model: str | dict[str, Any], **options: Any) -> ServedLog:
    """The serve-phase handover of ``phase`` (see :class:`ServedLog`)."""
    return ServedLog(phase, module, model, **options)


def evaluated(phase: str, module: Any, model: str | dict[str, Any], **options: Any) -> EvalLog:
    """The eval-phase handover of ``phase`` (see :class:`EvalLog`)."""
    return EvalLog(phase, module, model, **options)
