"""Cheap model statistics for step records: norms per parameter group, fingerprints.

Why the care: the recorder runs on every optimizer step and must cost <2% of it. All
norms of a step are computed on the device with ``torch._foreach_norm`` and gathered
into ONE tensor, so the host waits for the device once per step (one ``.tolist()``),
not once per parameter. torch is imported lazily: ``import inspectorate.capture``
must work on a box without torch.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    import torch

GROUPS = ("embed", "blocks", "head", "ln")
_EMBED_PREFIXES = ("wte", "wpe", "tok_emb", "pos_emb")


def default_param_group(name: str) -> str:
    """Group a parameter by name, nanoGPT-style: embed, blocks, head, ln, else other.

    Checked in this order because names nest: ``transformer.h.0.ln_1.weight`` is in a
    block, ``transformer.ln_f.weight`` is a final layer norm, ``lm_head.weight`` is the head.
    """
    parts = name.split(".")
    if any(p.startswith(_EMBED_PREFIXES) for p in parts):
        return "embed"
    if any(p == "h" or p.endswith("blocks") for p in parts[:-1]):
        return "blocks"
    if any(p.startswith("lm_head") for p in parts):
        return "head"
    if any(p.startswith("ln") for p in parts):
        return "ln"
    return "other"


def finite(value: float) -> float | None:
    """JSON has no NaN/inf: a non-finite statistic is stored as null."""
    return value if math.isfinite(value) else None


def group_params(
    named: Iterable[tuple[str, torch.nn.Parameter]], param_group: Callable[[str], str]
) -> dict[str, list[torch.nn.Parameter]]:
    """Parameters by group, in a stable order (first appearance)."""
    groups: dict[str, list[Any]] = {}
    for name, param in named:
        groups.setdefault(param_group(name), []).append(param)
    return groups


def _norm_of(tensors: Sequence[torch.Tensor]) -> torch.Tensor:
    """L2 norm over a list of tensors, on their device, as a float32 0-d tensor."""
    import torch

    if not tensors:
        return torch.zeros((), dtype=torch.float32)
    norms = torch._foreach_norm(list(tensors))
    return torch.linalg.vector_norm(torch.stack([n.float() for n in norms]))


def _to_cpu_scalars(tensors: list[torch.Tensor]) -> list[float]:
    """One host transfer for many 0-d tensors (moved to a common device first)."""
    import torch

    if not tensors:
        return []
    device = tensors[0].device
    stacked = torch.stack([t.detach().float().to(device) for t in tensors])
    return [float(v) for v in stacked.tolist()]


def step_norms(groups: dict[str, list[torch.nn.Parameter]], optimizer: Any, loss: Any) -> dict[str, Any]:
    """Loss, grad/weight norms per group, global grad norm, Adam state norms: one sync."""
    names = list(groups)
    grads = [_norm_of([p.grad.detach() for p in groups[g] if p.grad is not None]) for g in names]
    weights = [_norm_of([p.detach() for p in groups[g]]) for g in names]
    exp_avg, exp_avg_sq = _adam_state(optimizer)
    extra = [_norm_of(exp_avg), _norm_of(exp_avg_sq), _loss_tensor(loss, grads)]
    values = _to_cpu_scalars(grads + weights + extra)
    n = len(names)
    grad_vals, weight_vals, (m_norm, v_norm, loss_val) = values[:n], values[n : 2 * n], values[2 * n :]
    return {
        "loss": finite(loss_val),
        "grad_norm": finite(math.sqrt(sum(v * v for v in grad_vals))),
        "grad_norms_per_group": {g: finite(v) for g, v in zip(names, grad_vals)},
        "weight_norms_per_group": {g: finite(v) for g, v in zip(names, weight_vals)},
        "frozen_groups": sorted(g for g in names if not any(p.requires_grad for p in groups[g])),
        "optimizer_state_norms": {
            "adam_m_norm": finite(m_norm),
            "adam_v_norm": finite(v_norm),
            "tracked_params": len(exp_avg),
        },
    }


def _loss_tensor(loss: Any, like: list[torch.Tensor]) -> torch.Tensor:
    """The loss as a 0-d tensor, so it rides the same host transfer as the norms."""
    import torch

    if isinstance(loss, torch.Tensor):
        return loss.detach().reshape(())
    device = like[0].device if like else "cpu"
    return torch.tensor(float(loss), device=device)


def _adam_state(optimizer: Any) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
    """Adam/AdamW first and second moments (empty for optimizers without them)."""
    if optimizer is None:
        return [], []
    m, v = [], []
    for state in optimizer.state.values():
        if "exp_avg" in state:
            m.append(state["exp_avg"].detach())
        if "exp_avg_sq" in state:
            v.append(state["exp_avg_sq"].detach())
    return m, v


def weight_norms(groups: dict[str, list[torch.nn.Parameter]]) -> dict[str, float | None]:
    """Weight L2 norm per group (one sync)."""
    names = list(groups)
    values = _to_cpu_scalars([_norm_of([p.detach() for p in groups[g]]) for g in names])
    return {g: finite(v) for g, v in zip(names, values)}


def _tensor_bytes(tensor: torch.Tensor) -> Any:
    """Raw bytes of a tensor as a contiguous CPU buffer, any dtype (bf16 included)."""
    import torch

    flat = tensor.detach().contiguous().reshape(-1).cpu()
    return flat.view(torch.uint8).numpy()


def _tensor_stats(name: str, tensor: torch.Tensor) -> dict[str, Any]:
    t = tensor.detach().float()
    mn, mx, mean, std = _summary_stats(t)
    return {
        "name": name,
        "shape": list(tensor.shape),
        "dtype": str(tensor.dtype).removeprefix("torch."),
        "min": finite(mn),
        "max": finite(mx),
        "mean": finite(mean),
        "std": finite(std),
    }


def _summary_stats(t: torch.Tensor) -> list[float]:
    """min, max, mean, population std of a float tensor (one host transfer)."""
    import torch

    if t.numel() == 0:
        return [math.nan] * 4
    stats = torch.stack([t.min(), t.max(), t.mean(), t.std(correction=0)])
    return [float(v) for v in stats.tolist()]


def fingerprint(model: Any, param_group: Callable[[str], str], top_k: int = 5) -> dict[str, Any]:
    """SHA-256 over every tensor of the state dict (sorted by name: name, dtype, shape,
    bytes), the ``top_k`` largest tensors' stats, and weight norms per group.

    The name/dtype/shape go into the hash so that a reshaped or recast model with the
    same bytes does not collide with the original.
    """
    state = model.state_dict()
    digest = hashlib.sha256()
    for name in sorted(state):
        tensor = state[name]
        digest.update(f"{name}|{str(tensor.dtype)}|{tuple(tensor.shape)}|".encode())
        digest.update(_tensor_bytes(tensor))
    largest = sorted(state.items(), key=lambda kv: (-kv[1].numel(), kv[0]))[:top_k]
    hexdigest = digest.hexdigest()
    return {
        "weights_sha256": hexdigest,
        "model_hash_prefix": f"sha256:{hexdigest[:16]}",
        "num_tensors": len(state),
        "num_params": int(sum(p.numel() for p in model.parameters())),
        "top_tensors": [_tensor_stats(n, t) for n, t in largest],
        "weight_norms_per_group": weight_norms(group_params(model.named_parameters(), param_group)),
    }


def token_stats(logits: Any, prev_logp: Any = None) -> tuple[dict[str, Any], Any]:
    """Entropy (nats), top-1 prob/id of softmax(logits); KL(prev || now) when shapes match.

    Returns the stats and this step's log-probs (for the next call's KL).
    """
    import torch

    logp = torch.log_softmax(logits.detach().float().reshape(-1), dim=-1)
    p = logp.exp()
    top_p, top_id = p.max(dim=-1)
    parts = [-(p * logp).sum(), top_p, top_id.float()]
    has_kl = prev_logp is not None and prev_logp.shape == logp.shape
    if has_kl:
        parts.append((prev_logp.exp() * (prev_logp - logp)).sum())
    values = torch.stack(parts).tolist()
    stats = {
        "entropy": finite(values[0]),
        "top1_prob": finite(values[1]),
        "top1_id": int(values[2]),
        "vocab_size": int(logp.numel()),
        "kl_prev": finite(values[3]) if has_kl else None,
    }
    return stats, logp
