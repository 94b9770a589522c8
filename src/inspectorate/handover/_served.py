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

Several ranks (``rank=r, world=W``): item ``k`` of rank ``r`` (a served sequence, an
evaluated batch) gets index ``k * W + r``, so the keyed noise of every rank differs and no
coordination is needed while the phase runs. Each rank writes its own part
(``<file>.r<rank>.part``, renamed into place when it closes); rank 0 writes the weights
once and, on close, waits for every part and merges them into the one file the verifier
reads. A rank whose module is not rank 0's is refused at the merge.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np

from inspectorate.errors import InputError
from inspectorate.handover._common import (
    CLAIMS,
    challenge_seed,
    check_module,
    description,
    renamed,
    run_dir,
    spec_of,
    still_missing,
)

WEIGHTS = "weights.pt"
SERVED_LOG = "served.jsonl"
EVAL_CLAIM = "eval.json"
EVAL_BATCHES = "eval_batches.jsonl"
LOG_FORMAT = "inspectorate.difr.serving-log"


def write_weights(
    path: Path | str,
    model: dict[str, Any],
    module: Any,
    vocab: str = "",
    names: dict[str, str] | None = None,
    check: bool = True,
) -> str:
    """The weights file of ``module`` (a torch module or a dict of tensors) as the
    declared ``model`` (a description); returns its ``sha256:<16 hex>`` hash, what a
    served log names its weights by. ``names``: verifier name -> the module's (default:
    by position); ``check``: first run the declared model on the module's tensors beside
    the module itself (``check_module``) and refuse a mismatch."""
    from inspectorate.models import save_weights, weights_sha256

    if not isinstance(model, dict):
        raise InputError(f"{path}: the declared model must be a description (a dict)")
    spec = spec_of(description(model, Path(".")))
    state = renamed(spec, module, str(path), names)
    if check:
        check_module(spec, state, module, str(path))
    save_weights(path, spec, state, vocab=vocab)
    return "sha256:" + weights_sha256(state)[:16]


def keyed_noise(seed: int, first: int, batch: int, steps: int, vocab: int, stride: int = 1) -> Any:
    """Gumbel noise ``(batch, steps, vocab)`` (float64 torch tensor) of the sequences with
    indexes ``first, first + stride, ...`` (``batch`` of them): row ``j`` of sequence ``i``
    from ``numpy.random.default_rng([seed, i]).random((steps, vocab))``, the log's protocol."""
    import torch

    tiny, eps = np.finfo(np.float64).tiny, np.finfo(np.float64).eps
    out = np.empty((batch, steps, vocab))
    for b in range(batch):
        key = [seed & 0xFFFFFFFFFFFFFFFF, first + b * stride]
        u = np.random.default_rng(key).random((steps, vocab))
        out[b] = -np.log(-np.log(np.clip(u, tiny, 1.0 - eps)))
    return torch.from_numpy(out)


class _Phase:
    """A phase's claims folder, the weights of the declared model (written once, by rank
    0) and this rank's output: the file itself with one rank, a part with several."""

    def __init__(
        self,
        phase: str,
        module: Any,
        model: str | dict[str, Any],
        run: Path | str | None,
        vocab: str,
        target: str,
        rank: int = 0,
        world: int = 1,
        names: dict[str, str] | None = None,
        check: bool = True,
    ):
        if not (isinstance(world, int) and isinstance(rank, int) and world >= 1 and 0 <= rank < world):
            raise InputError(f"handover {phase}: need 0 <= rank < world, got rank={rank!r} world={world!r}")
        self.run = run_dir(run)
        self.phase, self.rank, self.world = phase, rank, world
        self.dir = self.run / CLAIMS / phase
        self.desc = description(model, self.run)
        self.vocab_size = int(spec_of(self.desc).vocab)
        if rank == 0:
            self.model_hash = write_weights(self.dir / WEIGHTS, self.desc, module, vocab, names, check)
        else:  # the other ranks run the same weights: hashed, not written again
            self.model_hash = weights_hash(self.desc, module, f"{phase} rank {rank}", names)
        self.n = 0  # sequences (serving) or batches (eval) this rank has written
        self.target = self.dir / target
        self._path = self.target if world == 1 else self.dir / f"{target}.r{rank}.part.tmp"
        self._path.parent.mkdir(parents=True, exist_ok=True)
        self._out: Any = self._path.open("w", encoding="utf-8")
        self._header: dict[str, Any] | None = None  # the merged file's first line, if any
        if world > 1:  # a part opens with its rank's weights, checked at the merge
            self._out.write(json.dumps({"rank": rank, "model_hash": self.model_hash}) + "\n")

    def _begin(self, header: dict[str, Any] | None) -> None:
        """The output's first line (one rank) or the header rank 0 merges under."""
        self._header = header
        if header is not None and self.world == 1:
            self._out.write(json.dumps(header) + "\n")

    def _index(self) -> int:
        """The next item's index across ranks (``k * world + rank``)."""
        index = self.n * self.world + self.rank
        self.n += 1
        return index

    def close(self, timeout_s: float = 600.0) -> None:
        """Close this rank's output. With several ranks, rank 0 then waits (up to
        ``timeout_s``) for every rank's part and merges them."""
        if self._out is None:
            return
        self._out.close()
        self._out = None
        if self.world == 1:
            return
        part = self.dir / f"{self.target.name}.r{self.rank}.part"
        self._path.replace(part)
        if self.rank == 0:
            merge_parts(self.target, self.world, self._header, timeout_s)

    def __enter__(self) -> Any:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def weights_hash(model: dict[str, Any], module: Any, where: str, names: dict[str, str] | None = None) -> str:
    """The ``sha256:<16 hex>`` name of ``module`` as the declared ``model``, unwritten."""
    from inspectorate.models import weights_sha256

    spec = spec_of(description(model, Path(".")))
    return "sha256:" + weights_sha256(renamed(spec, module, where, names))[:16]


def merge_parts(target: Path, world: int, header: dict[str, Any] | None, timeout_s: float) -> None:
    """Every rank's part of ``target`` (each opens with its model hash), in index order,
    under ``header`` (or none, eval batches); the parts are removed once merged."""
    parts = [target.parent / f"{target.name}.r{r}.part" for r in range(world)]
    missing = still_missing(parts, timeout_s)
    if missing:
        ranks = ", ".join(str(r) for r in missing)
        raise InputError(f"no part from rank(s) {ranks} after {timeout_s:.0f} s", target)
    rows: list[tuple[int, str]] = []
    hashes = set()
    for p in parts:
        lines = p.read_text(encoding="utf-8").splitlines()
        hashes.add(json.loads(lines[0])["model_hash"])
        rows += [(int(json.loads(line)["index"]), line) for line in lines[1:] if line.strip()]
    if len(hashes) != 1:
        raise InputError(f"the ranks ran different weights ({', '.join(sorted(hashes))})", target)
    rows.sort()
    body = [line for _, line in rows]
    head = [json.dumps(header)] if header is not None else []
    tmp = target.parent / (target.name + ".tmp")
    tmp.write_text("".join(x + "\n" for x in head + body), encoding="utf-8")
    tmp.replace(target)
    for p in parts:
        p.unlink()


class ServedLog(_Phase):
    """One serve phase's log. Sample with :meth:`noise` and :meth:`pick` (``argmax`` of
    ``logits / T + noise`` over the tokens top-k / top-p keep, in float64; at temperature
    0, greedy, no noise), then :meth:`log` the prompts and the sampled tokens."""

    def __init__(
        self,
        phase: str,
        module: Any,
        model: str | dict[str, Any],
        *,
        run: Path | str | None = None,
        vocab: str = "",
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        seed: int | None = None,
        workload: str = "",
        rank: int = 0,
        world: int = 1,
        names: dict[str, str] | None = None,
        check: bool = True,
    ) -> None:
        from inspectorate.difr._log import SamplingConfig

        if not (math.isfinite(temperature) and temperature >= 0):
            raise InputError(f"serve handover {phase}: temperature must be finite and >= 0 (0: greedy)")
        try:
            SamplingConfig(float(temperature), top_k, top_p, 0)
        except InputError as exc:
            raise InputError(f"serve handover {phase}: {exc}") from None
        super().__init__(phase, module, model, run, vocab, SERVED_LOG, rank, world, names, check)
        # seed: for use outside a captured run only; the verifier cannot bind it to its challenge
        self.seed = challenge_seed(f"serve:{phase}", self.run) if seed is None else int(seed)
        self.temperature = float(temperature)
        self.sampling = SamplingConfig(self.temperature, top_k, top_p, self.seed)
        sampling = {"temperature": self.temperature, "top_k": top_k, "top_p": top_p, "seed": self.seed}
        server: dict[str, Any] = {"weights": WEIGHTS, "workload": workload}
        if world > 1:
            server["ranks"] = world
        self._begin(
            {
                "format": LOG_FORMAT,
                "version": 1,
                "model_hash": self.model_hash,
                "vocab": vocab,
                "vocab_size": self.vocab_size,
                "precision": "float32",
                "sampling": sampling,
                "projection": None,
                "server": server,
            }
        )

    def noise(self, first: int | None, batch: int, steps: int, vocab: int) -> Any:
        """Noise of this rank's next ``batch`` sequences (``first``: the first one's number
        among this rank's sequences, default the next one to log), one ``vocab`` row per
        generated position: ``(batch, steps, vocab)``."""
        local = self.n if first is None else first
        return keyed_noise(self.seed, local * self.world + self.rank, batch, steps, vocab, self.world)

    def pick(self, logits: Any, noise: Any) -> Any:
        """The sampled token of every row: ``logits`` ``(B, V)`` (any float dtype) and that
        position's ``noise`` ``(B, V)`` (``noise(...)[:, j]``); the verifier's own sampler
        (temperature, top-k, top-p). Returns a ``(B,)`` long tensor on ``logits``' device."""
        import torch

        from inspectorate.difr._sampling import choose

        lg = logits.detach().double().cpu().numpy()
        g = noise.detach().double().cpu().numpy() if hasattr(noise, "detach") else np.asarray(noise)
        out = choose(lg, None if self.temperature == 0 else g, self.sampling)
        return torch.as_tensor(out, dtype=torch.long, device=logits.device)

    def log(self, prompts: Any, tokens: Any) -> None:
        """One batch: ``prompts`` ``(B, P)`` and the sampled ``tokens`` ``(B, S)``
        (tensors or lists), given indexes in order."""
        rows = []
        for p, t in zip(_rows(prompts), _rows(tokens), strict=True):
            rows.append(json.dumps({"index": self._index(), "prompt": p, "tokens": t, "projections": None}))
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
        rank: int = 0,
        world: int = 1,
        names: dict[str, str] | None = None,
        check: bool = True,
    ) -> None:
        super().__init__(phase, module, model, run, vocab, EVAL_BATCHES, rank, world, names, check)
        self._begin(None)
        if rank == 0:
            claim = {
                "format": "inspectorate.eval-claim",
                "version": 1,
                "weights": WEIGHTS,
                "model_hash": self.model_hash,
                "metric": "cross_entropy",
                "batches": EVAL_BATCHES,
            }
            (self.dir / EVAL_CLAIM).write_text(json.dumps(claim), encoding="utf-8")

    def batch(self, ids: Any, loss: float, score_from: int = 1) -> None:
        """``ids`` ``(B, T)``: each row's tokens; positions ``score_from..T-1`` are
        predicted from the ones before; ``loss``: the mean cross-entropy over them."""
        rows = _rows(ids)
        if not rows or not 1 <= score_from < len(rows[0]):
            raise InputError(
                f"eval handover {self.phase}: score_from must be in [1, row length), got {score_from}"
            )
        line = {"index": self._index(), "ids": rows, "score_from": int(score_from), "loss": float(loss)}
        line["tokens"] = len(rows) * (len(rows[0]) - score_from)
        self._out.write(json.dumps(line) + "\n")


def _rows(x: Any) -> list[list[int]]:
    rows = x.tolist() if hasattr(x, "tolist") else x
    return [[int(v) for v in r] for r in rows]


def served(phase: str, module: Any, model: str | dict[str, Any], **options: Any) -> ServedLog:
    """The serve-phase handover of ``phase`` (see :class:`ServedLog`)."""
    return ServedLog(phase, module, model, **options)


def evaluated(phase: str, module: Any, model: str | dict[str, Any], **options: Any) -> EvalLog:
    """The eval-phase handover of ``phase`` (see :class:`EvalLog`)."""
    return EvalLog(phase, module, model, **options)
