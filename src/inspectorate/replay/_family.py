"""Training of any declared model family (``inspectorate.models``): what a claim of a
workload's own training loop is replayed with.

A workload trains its own module with its own loop; its claim describes the run in
terms the verifier can re-run with *its* code: the model description (``{"format":
"inspectorate.model", ...}``), next-token cross-entropy over the family's logits
(positions before ``loss_start`` are context only: a fixed-window MLP scores the last
position of a ``context_len`` window), the optimizer with every hyper-parameter
(:data:`OPTIMIZERS`), the learning rate of every step, and the data order as a batch
manifest: per step, per rank, the start offsets of the sequences into the declared
corpus split. Checkpoints are ``inspectorate.weights`` files (tensors under the
verifier's module names, the workload's optimizer state alongside: torch numbers a
state by parameter position, so it maps by position, with every shape checked here).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from inspectorate.errors import InputError

MANIFEST_FORMAT = "inspectorate.replay.batches"
MANIFEST_VERSION = 1
# name -> (torch class, hyper-parameters a claim must declare besides the rate of each step)
OPTIMIZERS: dict[str, tuple[Any, tuple[str, ...]]] = {
    "adamw": (torch.optim.AdamW, ("betas", "eps", "weight_decay")),
    "adam": (torch.optim.Adam, ("betas", "eps", "weight_decay")),
    "sgd": (torch.optim.SGD, ("momentum", "dampening", "weight_decay", "nesterov")),
}


# parameters a declared optimizer exempts from weight decay (nanoGPT's and most loops'
# second param group: biases, norms, embeddings at weight_decay 0)
NO_DECAY = "no_decay"


def check_optimizer(decl: Any) -> dict[str, Any]:
    """The declared optimizer, validated: a name of :data:`OPTIMIZERS` and exactly its
    hyper-parameters (a silent default would replay another optimizer than the run's)."""
    if not isinstance(decl, dict) or decl.get("name") not in OPTIMIZERS:
        raise InputError(f"optimizer must be an object with name one of {sorted(OPTIMIZERS)}")
    _, keys = OPTIMIZERS[decl["name"]]
    given = set(decl) - {"name", NO_DECAY}
    if given != set(keys):
        raise InputError(
            f"optimizer {decl['name']} must declare exactly {', '.join(keys)}; got {sorted(given)}"
        )
    out = {"name": decl["name"], **{k: decl[k] for k in keys}}
    if "betas" in out:
        out["betas"] = [float(b) for b in out["betas"]]
    exempt = decl.get(NO_DECAY)
    if exempt is not None:
        if not isinstance(exempt, list) or not all(isinstance(n, str) for n in exempt):
            raise InputError(f"optimizer {NO_DECAY} must be a list of parameter names")
        out[NO_DECAY] = sorted(set(exempt))
    return out


def optimizer_groups(names: list[str], decl: dict[str, Any]) -> list[list[int]]:
    """Positions (into ``names``, the trainable parameters in the module's order) of each
    param group the declared optimizer has: the decayed ones, then the exempt ones."""
    exempt = set(decl.get(NO_DECAY) or ())
    unknown = sorted(exempt - set(names))
    if unknown:
        raise InputError(f"optimizer {NO_DECAY} names {unknown[0]!r}, not a trainable parameter of the model")
    decayed = [i for i, n in enumerate(names) if n not in exempt]
    kept = [i for i, n in enumerate(names) if n in exempt]
    return [g for g in (decayed, kept) if g]


def build_optimizer(
    params: list[torch.Tensor], decl: dict[str, Any], lr: float, names: list[str] | None = None
) -> torch.optim.Optimizer:
    """The declared optimizer over ``params``; with ``no_decay``, two groups (``names``
    are the parameters' names, in the same order)."""
    cls, keys = OPTIMIZERS[decl["name"]]
    kwargs: dict[str, Any] = {k: tuple(decl[k]) if k == "betas" else decl[k] for k in keys}
    groups: Any = params
    if decl.get(NO_DECAY):
        if names is None or len(names) != len(params):
            raise InputError(f"optimizer {NO_DECAY} needs the parameters' names")
        exempt = set(decl[NO_DECAY])
        groups = []
        for g in optimizer_groups(names, decl):
            group: dict[str, Any] = {"params": [params[i] for i in g]}
            if names[g[0]] in exempt:
                group["weight_decay"] = 0.0
            groups.append(group)
    opt: torch.optim.Optimizer = cls(groups, lr=lr, **kwargs)
    return opt


def load_optimizer_state(opt: torch.optim.Optimizer, state: Any, decl: dict[str, Any], where: str) -> None:
    """Load a workload's optimizer state by parameter position into the verifier's
    optimizer, then put the *declared* hyper-parameters back: a file's own param_groups
    must not change what is replayed."""
    params = [p for g in opt.param_groups for p in g["params"]]
    if not isinstance(state, dict) or not isinstance(state.get("state"), dict):
        raise InputError(f"checkpoint {where}: optimizer state is not a torch optimizer state dict")
    groups = state.get("param_groups")
    if not isinstance(groups, list) or sorted(i for g in groups for i in g.get("params", [])) != list(
        range(len(params))
    ):
        raise InputError(f"checkpoint {where}: optimizer state does not cover the {len(params)} parameters")
    for idx, slots in state["state"].items():
        if not isinstance(idx, int) or not 0 <= idx < len(params) or not isinstance(slots, dict):
            raise InputError(f"checkpoint {where}: optimizer state index {idx!r} is not a parameter position")
        for name, t in slots.items():
            if isinstance(t, torch.Tensor) and t.dim() > 0 and t.shape != params[idx].shape:
                raise InputError(
                    f"checkpoint {where}: optimizer {name} of parameter {idx} has shape {tuple(t.shape)},"
                    f" the parameter {tuple(params[idx].shape)}"
                )
    keep = [{k: v for k, v in g.items() if k != "params"} for g in opt.param_groups]
    # the file's positions run over the verifier's groups in order; its own grouping is ignored
    bounds = [0, *np.cumsum([len(g["params"]) for g in opt.param_groups]).tolist()]
    split = [
        {**k, "params": list(range(a, b))} for k, a, b in zip(keep, bounds[:-1], bounds[1:], strict=True)
    ]
    flat = {"state": state["state"], "param_groups": split}
    try:
        opt.load_state_dict(flat)
    except (ValueError, KeyError, RuntimeError) as exc:
        raise InputError(f"checkpoint {where}: optimizer state does not fit ({exc})") from None
    for g, k in zip(opt.param_groups, keep, strict=True):
        g.update(k)


def family_loss(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, loss_start: int) -> torch.Tensor:
    """Mean next-token cross-entropy over the scored positions ``[loss_start, T)``."""
    logits = model(x)[:, loss_start:]
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), y[:, loss_start:].reshape(-1))


def read_manifest(
    path: Path, steps: int, world_size: int, seq_len: int, n_tokens: int
) -> list[list[np.ndarray]]:
    """Per step, per rank, the sequences' start offsets; every one must fit the split."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot read the batch manifest ({exc})", path) from None
    if (
        not isinstance(data, dict)
        or data.get("format") != MANIFEST_FORMAT
        or data.get("version") != MANIFEST_VERSION
    ):
        raise InputError(f"not an {MANIFEST_FORMAT} v{MANIFEST_VERSION} file", path)
    raw = data.get("starts")
    if data.get("seq_len") != seq_len or not isinstance(raw, list) or len(raw) != steps:
        raise InputError(f"the manifest must hold {steps} steps of sequences of {seq_len}", path)
    out = []
    for step, ranks in enumerate(raw):
        if not isinstance(ranks, list) or len(ranks) != world_size:
            raise InputError(f"step {step} must list the starts of {world_size} rank(s)", path)
        arrays = [np.asarray(r, dtype=np.int64) for r in ranks]
        if any(a.ndim != 1 or a.size == 0 or a.min() < 0 or a.max() > n_tokens - seq_len - 1 for a in arrays):
            raise InputError(f"step {step}: a start offset lies outside the split of {n_tokens} tokens", path)
        out.append(arrays)
    return out


def write_manifest(path: Path, seq_len: int, starts: list[list[list[int]]]) -> Path:
    data = {"format": MANIFEST_FORMAT, "version": MANIFEST_VERSION, "seq_len": seq_len, "starts": starts}
    path.write_text(json.dumps(data, separators=(",", ":")), encoding="utf-8")
    return path


def windows(tokens: np.ndarray, starts: np.ndarray, seq_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    rows = tokens[starts[:, None] + np.arange(seq_len + 1)[None, :]]
    return torch.from_numpy(rows[:, :-1].copy()), torch.from_numpy(rows[:, 1:].copy())
