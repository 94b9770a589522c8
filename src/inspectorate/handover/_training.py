"""A training phase's replay claim, written by the workload's own loop.

The run starts fresh from the declared family's initialisation under the challenge seed
(``derive_seed(nonce, "<phase>")``, so the verifier can check step 0 is a fresh model
that could not have been trained before the run began), copied into the workload's own
module by position; every step records the start offsets of its sequences into the
declared corpus split and the rate it ran at; weights files with the optimizer state
are written every ``checkpoint_every_s`` seconds (the sensor's checkpoint watcher sees
them written as the run goes); ``finish()`` writes the last weights, the batch manifest
and ``claim.json`` (``inspectorate.replay.claim`` v1), all under ``RUN/claims/<phase>/``.

What the verifier's replay re-runs with *its* code: next-token cross-entropy over the
family's logits from position ``loss_start``, the declared optimizer (read off the
workload's torch optimizer: AdamW, Adam or SGD, one set of hyper-parameters), the
recorded rate of every step, gradient clipping, and gradient accumulation of
``grad_accum`` equal micro-batches (each mean loss divided by ``grad_accum``).
"""

from __future__ import annotations

import json
import time
from functools import lru_cache
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

MANIFEST = "batches.json"
# torch optimizer class name -> (declared name, hyper-parameters declared, ones that must be off)
_OPTIMIZERS = {
    "AdamW": ("adamw", ("betas", "eps", "weight_decay"), ("amsgrad", "maximize")),
    "Adam": ("adam", ("betas", "eps", "weight_decay"), ("amsgrad", "maximize")),
    "SGD": ("sgd", ("momentum", "dampening", "weight_decay", "nesterov"), ("maximize",)),
}


def declared_optimizer(
    opt: Any, module: Any, where: str, own: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The optimizer as a claim declares it; InputError when replay could not run it
    (another class, param groups that differ in more than weight decay, parameters that
    are not the module's trainable ones). Groups at weight decay 0 beside one decayed
    set (nanoGPT's two groups) are declared as ``no_decay``: the names, under the
    declared model's (``own``: ``renamed``'s tensors), of the parameters they hold."""
    kind = _OPTIMIZERS.get(type(opt).__name__)
    if kind is None:
        raise InputError(f"{where}: optimizer {type(opt).__name__} cannot be replayed (AdamW, Adam or SGD)")
    name, keys, off = kind
    groups = opt.param_groups
    if name == "adam" and groups[0].get("decoupled_weight_decay"):
        name = "adamw"  # torch's Adam(decoupled_weight_decay=True) is AdamW
    same = [k for k in keys if k != "weight_decay"]
    if any({k: g.get(k) for k in same} != {k: groups[0].get(k) for k in same} for g in groups):
        raise InputError(
            f"{where}: the optimizer's param groups differ in {', '.join(same)}: declare one set"
        )
    decays = {float(g.get("weight_decay") or 0.0) for g in groups}
    if len(decays - {0.0}) > 1:
        raise InputError(
            f"{where}: the optimizer's param groups use several weight decays: one, and 0 for the rest"
        )
    if any(g.get(k) for g in groups for k in off):
        raise InputError(f"{where}: optimizer options {', '.join(off)} must be off to be replayed")
    params = [p for g in groups for p in g["params"]]
    trainable = [p for p in module.parameters() if p.requires_grad]
    if len(params) != len(trainable) or {id(p) for p in params} != {id(p) for p in trainable}:
        raise InputError(f"{where}: the optimizer must hold the module's trainable parameters")
    decl = {"name": name, **{k: groups[0].get(k) for k in keys}}
    decl["weight_decay"] = max(decays)
    if "betas" in decl:
        decl["betas"] = [float(b) for b in decl["betas"]]
    if len(decays) > 1:  # some groups exempt from decay
        if own is None:
            raise InputError(f"{where}: groups without weight decay need the declared model's names")
        exempt = [p for g in groups if not g.get("weight_decay") for p in g["params"]]
        decl["no_decay"] = sorted(_names_of(own, exempt, where))
    return decl


def _refuse_dropout(module: Any, where: str) -> None:
    """Replay runs the declared model without dropout: masks drawn from the workload's
    generator cannot be re-derived, so a run with them would replay as another run."""
    import torch

    for name, part in module.named_modules():
        if isinstance(part, torch.nn.modules.dropout._DropoutNd) and part.p > 0:
            raise InputError(
                f"{where}: {name or 'the module'} drops {part.p:g} of its inputs; replay runs without"
                " dropout (set p=0 for a phase you hand over)"
            )


def _storage_names(own: dict[str, Any], prefer: Any = ()) -> dict[tuple[int, tuple[int, ...]], str]:
    """The declared model's name of each of the module's tensors, by storage (a tied
    tensor: the name in ``prefer`` if any, else its first)."""
    out: dict[tuple[int, tuple[int, ...]], str] = {}
    for name, t in own.items():
        key = (t.data_ptr(), tuple(t.shape))
        if key not in out or (name in prefer and out[key] not in prefer):
            out[key] = name
    return out


def _names_of(own: dict[str, Any], params: list[Any], where: str, prefer: Any = ()) -> list[str]:
    by_storage = _storage_names(own, prefer)
    out = []
    for p in params:
        found = by_storage.get((p.data_ptr(), tuple(p.shape)))
        if found is None:
            raise InputError(f"{where}: a parameter of the optimizer is not one of the declared model's")
        out.append(found)
    return out


def load_split(corpus: Path | str, split: str) -> tuple[np.ndarray, str]:
    """The split's token ids and fingerprint (read once per file and split: a workload
    may call it before its phases, so encoding the corpus is not a phase's work)."""
    return _load_split(str(Path(corpus).resolve()), split)


@lru_cache(maxsize=4)
def _load_split(path: str, split: str) -> tuple[np.ndarray, str]:
    from inspectorate.models import load_corpus

    corpus = load_corpus(path)
    return corpus.split(split), corpus.fingerprint(split)


class TrainingHandover:
    """One training phase's replay claim: create it before the first step, call
    :meth:`step` right after every ``optimizer.step()`` (before a scheduler moves the
    rate), :meth:`finish` at the phase's end. A data-parallel job opens one on every rank
    (``rank``, ``world``): rank 0 writes the weights and the claim, the others their
    batches."""

    def __init__(
        self,
        phase: str,
        module: Any,
        optimizer: Any,
        model: str | dict[str, Any],
        *,
        corpus: Path | str,
        seq_len: int,
        split: str = "pretrain",
        loss_start: int = 0,
        clip_grad_norm: float | None = None,
        grad_accum: int = 1,
        checkpoint_every_s: float = 60.0,
        run: Path | str | None = None,
        seed: int | None = None,
        names: dict[str, str] | None = None,
        check: bool = True,
        rank: int = 0,
        world: int = 1,
    ) -> None:
        self.run = run_dir(run)
        self.names_map, self.check = names, check
        if not (isinstance(world, int) and isinstance(rank, int) and world >= 1 and 0 <= rank < world):
            raise InputError(
                f"training handover {phase}: need 0 <= rank < world, got rank={rank!r} world={world!r}"
            )
        self.rank, self.world = rank, world
        self.phase, self.module, self.opt = phase, module, optimizer
        self.where = f"training handover {phase}"
        self.spec = spec_of(description(model, self.run))
        own = renamed(self.spec, module, self.where, names)  # checks every shape first
        self.optimizer = declared_optimizer(optimizer, module, self.where, own)
        _refuse_dropout(module, self.where)
        if grad_accum < 1 or not 0 <= loss_start < seq_len:
            raise InputError(f"{self.where}: grad_accum must be >= 1 and loss_start in [0, seq_len)")
        self.seq_len, self.split, self.loss_start = int(seq_len), split, int(loss_start)
        self.clip, self.accum = clip_grad_norm, int(grad_accum)
        # what start offsets index, and the fingerprint the claim names it by
        self.tokens, self.fingerprint = load_split(corpus, split)
        # an explicit seed is for use outside a captured run: the verifier cannot bind it
        self.nonce_key = phase if seed is None else None
        self.seed = challenge_seed(phase, self.run) if seed is None else int(seed)
        self.dir = self.run / CLAIMS / phase
        self.dir.mkdir(parents=True, exist_ok=True)
        self.every_s = float(checkpoint_every_s)
        self.starts: list[list[list[int]]] = []
        self.lrs: list[float] = []
        self.batch_size = 0
        self.refs: list[Any] = []
        self._fresh_start(own)
        if rank == 0:  # data parallelism keeps one set of weights: rank 0 writes them
            self._save()

    def _fresh_start(self, own: dict[str, Any]) -> None:
        """The declared family's initialisation under the seed, copied into the module's
        tensors (``own``: ``renamed``'s views of them); the optimizer starts empty. (It
        seeds torch's global generator.)"""
        import torch

        torch.manual_seed(self.seed)
        built = self.spec.build().state_dict()
        with torch.no_grad():
            for name, t in own.items():
                t.copy_(built[name])
        self.opt.state.clear()
        self.perm = _param_order(self.spec, own, self.opt, self.optimizer, self.where)
        if self.check:  # the replay runs the declared model: it must compute what the module does
            check_module(self.spec, own, self.module, self.where)
        self.last_t = time.time()

    def step(self, starts: Any, lr: float | None = None, inputs: Any = None) -> None:
        """After ``optimizer.step()``: ``starts``, the start offset into the split of every
        sequence of this step (all micro-batches, in the order they ran); ``lr`` the rate
        it ran at (default: the optimizer's now); ``inputs`` ``(n, seq_len)``, when given,
        must be those windows of the split (catches a loop reading other data)."""
        flat = [int(s) for s in np.asarray(starts).reshape(-1)]
        n = len(self.starts)
        if not flat or len(flat) % self.accum or (self.batch_size and len(flat) != self.batch_size):
            raise InputError(
                f"{self.where}: step {n} has {len(flat)} sequences; every step needs the same"
                f" number, a multiple of grad_accum={self.accum}"
            )
        hi = len(self.tokens) - self.seq_len - 1
        if min(flat) < 0 or max(flat) > hi:
            raise InputError(
                f"{self.where}: step {n}: a start offset lies outside [0, {hi}] of split {self.split}"
            )
        if inputs is not None:
            got = np.asarray(inputs.tolist() if hasattr(inputs, "tolist") else inputs)
            want = self.tokens[np.asarray(flat)[:, None] + np.arange(self.seq_len)[None, :]]
            if got.shape != want.shape or not np.array_equal(got, want):
                raise InputError(
                    f"{self.where}: step {n}: the inputs are not the split's windows at those starts"
                )
        self.batch_size = len(flat)
        self.starts.append([flat])
        self.lrs.append(float(self.opt.param_groups[0]["lr"] if lr is None else lr))
        if self.rank == 0 and time.time() - self.last_t >= self.every_s:
            self._save()

    def _every_rank(self, timeout_s: float) -> list[list[list[int]]]:
        """Per step, every rank's starts (rank 0's own, then the parts the others wrote)."""
        parts = [self.dir / f"{MANIFEST}.r{r}.part" for r in range(1, self.world)]
        missing = still_missing(parts, timeout_s)
        if missing:
            names = ", ".join(parts[i].name for i in missing)
            raise InputError(f"{self.where}: no batches from {names} after {timeout_s:.0f} s")
        ranks = [[s[0] for s in self.starts]]
        for r, part in enumerate(parts, start=1):
            theirs = json.loads(part.read_text(encoding="utf-8"))
            if len(theirs) != len(self.starts) or any(len(x) != self.batch_size for x in theirs):
                raise InputError(
                    f"{self.where}: rank {r} recorded {len(theirs)} steps of other sizes than rank 0's"
                    f" {len(self.starts)} steps of {self.batch_size} sequences"
                )
            ranks.append(theirs)
            part.unlink()
        return [[rank[k] for rank in ranks] for k in range(len(self.starts))]

    def _save(self, optimizer: bool = True) -> None:
        from inspectorate.models import file_sha256, save_weights, weights_sha256
        from inspectorate.replay import CheckpointRef

        step = len(self.starts)
        own = renamed(self.spec, self.module, self.where, self.names_map)
        state = {name: t.clone() for name, t in own.items()}
        path = save_weights(
            self.dir / f"ckpt_{step:06d}.pt",
            self.spec,
            state,
            optimizer=_reordered(self.opt.state_dict(), self.perm) if optimizer else None,
        )
        self.refs.append(CheckpointRef(step, path.name, weights_sha256(state), file_sha256(path)))
        self.last_t = time.time()

    def finish(self, timeout_s: float = 600.0) -> Path | None:
        """The last weights, the manifest and the claim; its path (None: no step ran, or
        a rank other than 0, which only hands its batches to rank 0). With several ranks,
        rank 0 waits (up to ``timeout_s``) for every rank's batches."""
        from inspectorate.replay import FAMILY_MODULES, TrainingClaim, TrainSpec, code_fingerprint
        from inspectorate.replay._family import write_manifest

        steps = len(self.starts)
        if self.world > 1 and self.rank != 0:
            part = self.dir / f"{MANIFEST}.r{self.rank}.part"
            tmp = self.dir / f"{MANIFEST}.r{self.rank}.tmp"
            tmp.write_text(json.dumps([s[0] for s in self.starts]), encoding="utf-8")
            tmp.replace(part)
            return None
        if steps == 0:
            return None
        starts = self._every_rank(timeout_s) if self.world > 1 else self.starts
        if self.refs[-1].step != steps:
            self._save(optimizer=False)  # the last checkpoint is a target, never resumed from
        write_manifest(self.dir / MANIFEST, self.seq_len, starts)
        spec = TrainSpec(
            model=self.spec.to_dict(),
            steps=steps,
            batch_size=self.batch_size,
            seq_len=self.seq_len,
            lr=self.lrs[0],
            warmup_steps=0,
            min_lr_frac=1.0,
            seed=self.seed,
            split=self.split,
            checkpoint_every=max(steps // max(len(self.refs) - 1, 1), 1),
            # a constant rate is ``lr`` alone; a varying one, every step's
            lr_schedule=None if len(set(self.lrs)) == 1 else tuple(self.lrs),
            sampler="manifest",
            manifest=MANIFEST,
            optimizer=self.optimizer,
            loss_start=self.loss_start,
            clip_grad_norm=self.clip,
            grad_accum=self.accum,
            world_size=self.world,
        )
        claim = TrainingClaim(
            spec=spec,
            data={"split": self.split, "fingerprint": self.fingerprint},
            metric=None,
            checkpoints=self.refs,
            code_commit=code_fingerprint(FAMILY_MODULES),
            base=self.dir,
            nonce_key=self.nonce_key,
        )
        return claim.write()


def _param_order(
    spec: Any, own: dict[str, Any], optimizer: Any, decl: dict[str, Any], where: str
) -> list[int] | None:
    """Where each position of the workload's optimizer (its groups in order) sits among
    the positions of the optimizer replay builds (the declared model's parameters, the
    decayed group then the exempt one); ``None`` when the two agree."""
    import torch

    from inspectorate.replay._family import optimizer_groups

    with torch.device("meta"):
        names = [n for n, p in spec.build().named_parameters() if p.requires_grad]
    order = [names[i] for g in optimizer_groups(names, decl) for i in g]
    position = {n: k for k, n in enumerate(order)}
    params = [p for g in optimizer.param_groups for p in g["params"]]
    found = _names_of(own, params, where, position)
    if not set(found) <= set(position):
        raise InputError(f"{where}: the optimizer holds a tensor the declared model does not train")
    perm = [position[n] for n in found]
    return None if perm == list(range(len(perm))) else perm


def _reordered(state: dict[str, Any], perm: list[int] | None) -> dict[str, Any]:
    """An optimizer state dict with its parameter indices in the declared model's order."""
    if perm is None:
        return state
    groups = [{**g, "params": sorted(perm[i] for i in g["params"])} for g in state["param_groups"]]
    return {"state": {perm[i]: v for i, v in state["state"].items()}, "param_groups": groups}


def training(
    phase: str, module: Any, optimizer: Any, model: str | dict[str, Any], **options: Any
) -> TrainingHandover:
    """The training handover of ``phase`` (see :class:`TrainingHandover`)."""
    return TrainingHandover(phase, module, optimizer, model, **options)
