"""What a testbed serve or eval phase hands over so ``verify`` can re-compute it.

An honest server can show what it ran: the weights, and every output under a sampling
seed it could not choose. With ``--replay-claims`` every phase *claimed* as inference or
eval that serves (``decode_steps``) or evaluates (``evaluate``) writes, under
``RUN/claims/<phase>/`` (formats in docs/difr.md, read by ``verify/_served_run.py``):

- ``weights.pt``: the ``inspectorate.weights`` file of the model the phase really runs
  (GPT family; rank 0, once, when the phase first serves);
- serving: ``served.jsonl``, every sequence both ranks served (prompt, sampled tokens,
  partial ones included), sampled by keyed Gumbel-max (``difr._sampling``) under the
  seed ``derive_seed(nonce, "serve:<phase>")`` of the sensor's challenge: a log computed
  before the run, or by another model, does not re-compute;
- eval: ``eval.json`` and ``eval_batches.jsonl``, every evaluated batch and its loss.

Each rank writes its own part under the run's scratch folder; after the phase's end
barrier rank 0 merges them (sequence ``k`` of rank ``r`` gets index ``k * W + r``).

The log is the prover's: what makes it evidence is that the verifier re-computes it
with the handed-over weights, binds those weights to the claimed size, and draws the
seed. A prover that runs a larger model still has to run the declared one beside it to
produce this log; that cost and footprint are the sensor's to see.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path
from typing import Any

import numpy as np
import torch

from inspectorate.capture._nonce import derive_seed
from inspectorate.handover import write_weights

# The serving log and eval claim stay written here, not by inspectorate.handover's
# ServedLog: the testbed samples with top-k (the public writer declares temperature
# only) and merges the parts of several ranks after the phase's barrier.
SERVED_LOG = "served.jsonl"
EVAL_CLAIM = "eval.json"
EVAL_BATCHES = "eval_batches.jsonl"
WEIGHTS = "weights.pt"
LOG_FORMAT = "inspectorate.difr.serving-log"
TEMPERATURE, TOP_K = 0.8, 40  # the testbed's serving settings, declared in the log


def serve_seed(nonce: str | None, phase: str) -> int:
    """The sampling seed: from the sensor's challenge, else fresh (then unbound)."""
    return derive_seed(nonce, f"serve:{phase}") if nonce else secrets.randbits(48)


def gpt_spec(model: Any) -> Any:
    """The ``gpt`` family description of a testbed GPT (same shape, same parameters)."""
    from inspectorate.models import GPTSpec

    c = model.config
    return GPTSpec(c.n_layer, c.n_head, c.n_embd, c.block_size, c.vocab_size, c.bias)


class Handover:
    """One rank's handover for one phase; ``finish`` after the workload, ``merge`` on rank
    0 after the end barrier."""

    def __init__(self, run_dir: Path, scratch: Path, phase: str, rank: int, world: int, nonce: str | None):
        self.dir = run_dir / "claims" / phase
        self.part = scratch / f"handover_{phase}_r{rank}.jsonl"
        self.phase, self.rank, self.world = phase, rank, world
        self.seed = serve_seed(nonce, phase)
        self.kind: str | None = None  # "serve" or "eval", set by the first call
        self.count = 0  # sequences (or batches) this rank has started
        self.model_hash = ""
        self._lines: list[str] = []
        self._open: list[dict[str, Any]] = []  # sequences being decoded
        self._rngs: list[np.random.Generator] = []

    # ---------------------------------------------------------------- both kinds

    def begin(self, kind: str, model: Any, vocab: str) -> None:
        """First call of a phase: remember the kind; rank 0 writes the weights file."""
        if self.kind is not None:
            return
        self.kind = kind
        self.vocab, self.vocab_size = vocab, int(model.config.vocab_size)
        if self.rank == 0:  # one copy of the weights; the other ranks run the same ones
            # the public writer: the model's own tensors renamed by position, no copy
            # (a copy is 500 MB more resident at 124M, which the footprint check would
            # read as a larger model)
            self.model_hash = write_weights(self.dir / WEIGHTS, gpt_spec(model).to_dict(), model, vocab)

    def _index(self) -> int:
        index = self.count * self.world + self.rank
        self.count += 1
        return index

    # ---------------------------------------------------------------- serving

    def start_sequences(self, prompts: torch.Tensor) -> None:
        """A new batch of prompts: flush the previous one, open one record per row."""
        self._flush()
        for row in prompts.tolist():
            index = self._index()
            self._open.append({"index": index, "prompt": [int(t) for t in row], "tokens": []})
            self._rngs.append(np.random.default_rng([self.seed & 0xFFFFFFFFFFFFFFFF, index]))

    def sample(self, logits: torch.Tensor) -> torch.Tensor:
        """The next token of every open sequence from ``logits`` ``(B, V)``, drawn as the
        verifier re-derives it (one noise row per position, in order)."""
        from inspectorate.difr._log import SamplingConfig
        from inspectorate.difr._sampling import choose

        sampling = SamplingConfig(TEMPERATURE, TOP_K, None, self.seed)
        lg = logits.detach().double().cpu().numpy()
        tiny, eps = np.finfo(np.float64).tiny, np.finfo(np.float64).eps
        out = []
        for b, (rec, rng) in enumerate(zip(self._open, self._rngs, strict=True)):
            u = np.clip(rng.random((1, lg.shape[-1])), tiny, 1.0 - eps)
            token = int(choose(lg[b : b + 1], -np.log(-np.log(u)), sampling)[0])
            rec["tokens"].append(token)
            out.append(token)
        return torch.tensor(out, dtype=torch.long, device=logits.device)[:, None]

    def _flush(self) -> None:
        for rec in self._open:
            if rec["tokens"]:  # a sequence cut before its first token served nothing
                self._lines.append(json.dumps({**rec, "projections": None}))
        self._open, self._rngs = [], []

    # ---------------------------------------------------------------- eval

    def evaluated(self, x: torch.Tensor, y: torch.Tensor, loss: float) -> None:
        """One evaluated batch: rows ``x`` plus their last target predict ``y``."""
        ids = torch.cat([x, y[:, -1:]], dim=1).tolist()
        line = {"index": self._index(), "ids": ids, "score_from": 1, "loss": float(loss)}
        self._lines.append(json.dumps({**line, "tokens": int(x.numel())}))

    # ---------------------------------------------------------------- phase end

    def finish(self) -> None:
        """This rank's part, written whole (rank 0 merges it after the barrier)."""
        self._flush()
        if self.kind is None:
            return
        self.part.parent.mkdir(parents=True, exist_ok=True)
        head = {
            "kind": self.kind,
            "model_hash": self.model_hash,
            "vocab": self.vocab,
            "n_ids": self.vocab_size,
        }
        self.part.write_text("\n".join([json.dumps(head), *self._lines]) + "\n", encoding="utf-8")


def merge(run_dir: Path, scratch: Path, phase: str, world: int, seed: int) -> Path | None:
    """Rank 0, after the phase's end barrier: every rank's part into the handed-over file
    (``None`` when no rank served or evaluated anything)."""
    heads, lines = [], []
    for r in range(world):
        part = scratch / f"handover_{phase}_r{r}.jsonl"
        if not part.is_file():
            continue
        rows = part.read_text(encoding="utf-8").splitlines()
        heads.append(json.loads(rows[0]))
        lines += [json.loads(x) for x in rows[1:] if x.strip()]
        part.unlink()
    hashed = [h for h in heads if h["model_hash"]]  # rank 0's, which wrote the weights
    if not hashed or not lines:
        return None
    head, folder = hashed[0], run_dir / "claims" / phase
    lines.sort(key=lambda d: int(d["index"]))
    body = [json.dumps(d) for d in lines]
    if head["kind"] == "eval":
        claim = {
            "format": "inspectorate.eval-claim",
            "version": 1,
            "weights": WEIGHTS,
            "model_hash": head["model_hash"],
            "metric": "cross_entropy",
            "batches": EVAL_BATCHES,
        }
        (folder / EVAL_BATCHES).write_text("\n".join(body) + "\n", encoding="utf-8")
        out = folder / EVAL_CLAIM
        out.write_text(json.dumps(claim), encoding="utf-8")
        return out
    header = {
        "format": LOG_FORMAT,
        "version": 1,
        "model_hash": head["model_hash"],
        "vocab": head["vocab"],
        "vocab_size": head["n_ids"],
        "precision": "float32",
        "sampling": {"temperature": TEMPERATURE, "top_k": TOP_K, "top_p": None, "seed": seed},
        "projection": None,
        "server": {"weights": WEIGHTS, "ranks": world, "workload": "inspectorate.testbed"},
    }
    out = folder / SERVED_LOG
    out.write_text("\n".join([json.dumps(header), *body]) + "\n", encoding="utf-8")
    return out
