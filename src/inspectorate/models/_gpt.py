"""A character-level GPT you can read in one sitting (nanoGPT's shape, with a KV cache).

Why our own model and not a library one: the testbed's ground truth depends on knowing
exactly what every step computes (parameter count, FLOPs per token, which tensors are
frozen), and the recorder groups parameters by *name*. So the names are fixed here:
``wte``/``wpe`` (embed), ``blocks.<i>.`` (blocks), ``ln_f`` (ln) and ``lm_head`` (head).
``lm_head`` shares its weight with ``wte`` (GPT-2 weight tying), so ``named_parameters``
lists the shared tensor once, as ``wte.weight``: the ``head`` group is empty and freezing
the embeddings freezes the output projection too (as it does in GPT-2 fine-tunes).

Presets (:data:`PRESETS`):

- ``micro``  2 layers, 2 heads, 32 dim, context 32, vocab 65: tests only (~30k params).
- ``laptop`` 4/4/256, context 128, vocab 65: the seed's laptop model (~3.2M).
- ``tiny``   6/6/384, context 256, vocab 65: the seed's ``gpt-tiny`` (~10.8M).
- ``small``  12/12/768, context 1024, vocab 50304: GPT-2 124M, the seed's ``gpt-small``.
  The vocabulary is GPT-2's (50257 padded to 50304) although our tokens are characters
  (ids < 65): model-size verification (P2) is about the memory and compute footprint of
  the 124M shape the seed measured, and a 65-token head would make it an 85M model. The
  unused rows still cost what they cost GPT-2: a 768x50304 output projection per token.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Any

import torch
import torch.nn as nn
from torch.nn import functional as F

from inspectorate.errors import InputError

KVCache = list[tuple[torch.Tensor, torch.Tensor]]


@dataclass(frozen=True)
class GPTConfig:
    """Architecture of one GPT; frozen so it can key caches and be hashed into configs."""

    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 256
    block_size: int = 128
    vocab_size: int = 65
    dropout: float = 0.0
    bias: bool = True

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


PRESETS: dict[str, GPTConfig] = {
    "micro": GPTConfig(n_layer=2, n_head=2, n_embd=32, block_size=32, vocab_size=65),
    "laptop": GPTConfig(n_layer=4, n_head=4, n_embd=256, block_size=128, vocab_size=65),
    "tiny": GPTConfig(n_layer=6, n_head=6, n_embd=384, block_size=256, vocab_size=65),
    "small": GPTConfig(n_layer=12, n_head=12, n_embd=768, block_size=1024, vocab_size=50304),
}


def preset(name: str) -> GPTConfig:
    """The named preset's config; a clear error lists the known names."""
    try:
        return PRESETS[name]
    except KeyError:
        raise InputError(f"unknown model preset {name!r}; known: {', '.join(PRESETS)}") from None


def count_params(config: GPTConfig) -> int:
    """Parameters of a GPT with this config, computed without building it.

    Per block: attention 4d^2 + 4d (qkv + output projection, with biases), MLP 8d^2 + 5d,
    two LayerNorms 4d. Plus token and position embeddings and the final LayerNorm; the
    output head is tied to the token embedding and adds nothing.
    """
    d = config.n_embd
    bias = 1 if config.bias else 0
    per_block = 12 * d * d + (9 * bias) * d + 2 * (d + bias * d)
    embeddings = config.vocab_size * d + config.block_size * d
    return config.n_layer * per_block + embeddings + (d + bias * d)


def flops_per_token(config: GPTConfig, training: bool) -> float:
    """Kaplan's estimate: 6N per trained token, 2N per inferred token, N = all parameters.

    Attention's score/value products (2 * n_layer * context * d per token forward) are
    NOT included, as in the seed's 6ND accounting; embeddings ARE included in N because
    the tied output projection really multiplies by them (the position table is the one
    small overcount). The seed's windows and our verifiers use this same number.
    """
    return (6.0 if training else 2.0) * count_params(config)


class CausalSelfAttention(nn.Module):
    """Multi-head attention that may read and extend a KV cache (generation)."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        assert config.n_embd % config.n_head == 0, "n_embd must divide into heads"
        self.n_head = config.n_head
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(config.n_embd, config.n_embd, bias=config.bias)
        self.dropout = config.dropout

    def forward(
        self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        b, t, c = x.shape
        q, k, v = self.c_attn(x).split(c, dim=2)
        q, k, v = (z.view(b, t, self.n_head, c // self.n_head).transpose(1, 2) for z in (q, k, v))
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        # With a cache the new queries sit at the end: causal masking is only needed
        # when several queries are processed at once from an empty cache.
        causal = cache is None and t > 1
        dropout = self.dropout if self.training else 0.0
        y = F.scaled_dot_product_attention(q, k, v, is_causal=causal, dropout_p=dropout)
        y = y.transpose(1, 2).contiguous().view(b, t, c)
        return self.c_proj(y), (k, v)


class MLP(nn.Module):
    # erf GELU (nanoGPT's nn.GELU()); the declared family may set "tanh" (OpenAI's GPT-2,
    # Hugging Face's gelu_new). Not a GPTConfig field: the testbed's configs stay as hashed.
    approximate = "none"

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd, bias=config.bias)
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd, bias=config.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c_proj(F.gelu(self.c_fc(x), approximate=self.approximate))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.mlp = MLP(config)

    def forward(
        self, x: torch.Tensor, cache: tuple[torch.Tensor, torch.Tensor] | None = None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        attn_out, new_cache = self.attn(self.ln_1(x), cache)
        x = x + attn_out
        return x + self.mlp(self.ln_2(x)), new_cache


class GPT(nn.Module):
    """Token + position embeddings, ``n_layer`` blocks, final LayerNorm, tied head."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd, bias=config.bias)
        self.lm_head = nn.Linear(config.n_embd, config.vocab_size, bias=False)
        self.lm_head.weight = self.wte.weight  # GPT-2 weight tying
        self.apply(self._init_weights)
        # GPT-2: residual projections scaled down by sqrt(2 * n_layer).
        for name, param in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(param, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def n_params(self) -> int:
        """Parameters actually held (the tied head counted once); equals count_params."""
        return sum(p.numel() for p in self.parameters())

    def flops_per_token(self, training: bool) -> float:
        """6N (training) or 2N (inference) FLOPs per token; see :func:`flops_per_token`."""
        return flops_per_token(self.config, training)

    def forward(
        self, idx: torch.Tensor, targets: torch.Tensor | None = None, cache: KVCache | None = None
    ) -> tuple[torch.Tensor, torch.Tensor | None, KVCache]:
        """Logits for every position (and the mean cross-entropy when targets are given).

        ``cache`` holds the keys/values of earlier positions; the returned cache covers
        them plus ``idx``. Positions continue from the cache length.
        """
        b, t = idx.shape
        past = 0 if not cache else cache[0][0].shape[2]
        if past + t > self.config.block_size:
            raise ValueError(f"sequence of {past + t} exceeds context {self.config.block_size}")
        pos = torch.arange(past, past + t, device=idx.device)
        x = self.wte(idx) + self.wpe(pos)
        new_cache: KVCache = []
        for i, block in enumerate(self.blocks):
            x, layer_cache = block(x, cache[i] if cache else None)
            new_cache.append(layer_cache)
        logits = self.lm_head(self.ln_f(x))
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(-1, logits.size(-1)), targets.reshape(-1))
        return logits, loss, new_cache

    def freeze_embeddings(self) -> None:
        """Fine-tuning: token and position embeddings (and so the tied head) stop learning."""
        self.wte.weight.requires_grad_(False)
        self.wpe.weight.requires_grad_(False)


def kv_cache_bytes(cache: KVCache) -> int:
    """Bytes held by a KV cache (what an inference step's memory grows by)."""
    return sum(k.numel() * k.element_size() + v.numel() * v.element_size() for k, v in cache)


def sample_next(
    logits: torch.Tensor,
    temperature: float = 1.0,
    top_k: int | None = None,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """One token id per row from the last position's logits (temperature, then top-k)."""
    logits = logits[:, -1, :] / max(temperature, 1e-6)
    if top_k is not None:
        kth = torch.topk(logits, min(top_k, logits.size(-1))).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = F.softmax(logits, dim=-1)
    return torch.multinomial(probs, num_samples=1, generator=generator)
