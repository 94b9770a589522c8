"""Torch modules of the built-in families (``_families``): the verifier's own code.

Every module has ``forward(idx) -> logits (B, T, V)`` and ``decode(idx, state) ->
(last logits (B, V), state)``: decoding carries a KV cache (transformers), the hidden
state (recurrent) or the token window (MLP), so a serving claim is priced at the cost
of an honest server, not of re-reading the whole prefix every token.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn
from torch.nn import functional as F


def _init(module: nn.Module) -> None:
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=0.02)
    if isinstance(module, nn.Linear) and module.bias is not None:
        nn.init.zeros_(module.bias)


class GPTModule(nn.Module):
    """The GPT family through the testbed's readable GPT (one implementation of the shape)."""

    def __init__(self, spec: Any) -> None:
        super().__init__()
        from inspectorate.models._gpt import GPT, GPTConfig

        config = GPTConfig(spec.n_layer, spec.n_head, spec.n_embd, spec.block_size, spec.vocab_size)
        self.gpt = GPT(GPTConfig(**{**config.to_dict(), "bias": spec.bias}))
        if spec.gelu == "tanh":
            from inspectorate.models._gpt import MLP

            for part in self.gpt.modules():
                if isinstance(part, MLP):
                    part.approximate = "tanh"

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.gpt(idx)[0]

    def decode(self, idx: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        logits, _, cache = self.gpt(idx, cache=state)
        return logits[:, -1, :], cache


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(dim))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def _rotate(x: torch.Tensor, pos: torch.Tensor, theta: float, style: str = "half") -> torch.Tensor:
    """Rotary position embedding of ``x`` (B, H, T, D) at positions ``pos`` (T,): pair
    ``i`` (frequency ``theta^(-2i/D)``) is dimensions ``(i, i + D/2)`` ("half") or
    ``(2i, 2i + 1)`` ("interleaved")."""
    half = x.shape[-1] // 2
    freq = theta ** (-torch.arange(half, dtype=torch.float32) / half)
    angle = pos.float()[:, None] * freq[None, :]
    cos, sin = angle.cos(), angle.sin()
    if style == "interleaved":
        a, b = x[..., 0::2], x[..., 1::2]
        return torch.stack([a * cos - b * sin, a * sin + b * cos], dim=-1).flatten(-2)
    a, b = x[..., :half], x[..., half:]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


class LlamaBlock(nn.Module):
    def __init__(self, spec: Any) -> None:
        super().__init__()
        d, self.h, self.kv, self.theta = spec.dim, spec.n_heads, spec.n_kv_heads, spec.rope_theta
        self.hd, self.style = d // spec.n_heads, spec.rope_style
        self.attn_norm, self.mlp_norm = RMSNorm(d, spec.norm_eps), RMSNorm(d, spec.norm_eps)
        self.wq = nn.Linear(d, d, bias=False)
        self.wk = nn.Linear(d, spec.kv_dim, bias=False)
        self.wv = nn.Linear(d, spec.kv_dim, bias=False)
        self.wo = nn.Linear(d, d, bias=False)
        self.w1 = nn.Linear(d, spec.ffn_hidden, bias=False)
        self.w3 = nn.Linear(d, spec.ffn_hidden, bias=False)
        self.w2 = nn.Linear(spec.ffn_hidden, d, bias=False)

    def forward(self, x: torch.Tensor, cache: Any) -> tuple[torch.Tensor, Any]:
        b, t, _ = x.shape
        past = 0 if cache is None else cache[0].shape[2]
        pos = torch.arange(past, past + t)
        y = self.attn_norm(x)
        q = self.wq(y).view(b, t, self.h, self.hd).transpose(1, 2)
        k = self.wk(y).view(b, t, self.kv, self.hd).transpose(1, 2)
        v = self.wv(y).view(b, t, self.kv, self.hd).transpose(1, 2)
        q, k = _rotate(q, pos, self.theta, self.style), _rotate(k, pos, self.theta, self.style)
        if cache is not None:
            k, v = torch.cat([cache[0], k], dim=2), torch.cat([cache[1], v], dim=2)
        rep = self.h // self.kv
        att = F.scaled_dot_product_attention(
            q, k.repeat_interleave(rep, 1), v.repeat_interleave(rep, 1), is_causal=cache is None and t > 1
        )
        x = x + self.wo(att.transpose(1, 2).reshape(b, t, -1))
        y = self.mlp_norm(x)
        return x + self.w2(F.silu(self.w1(y)) * self.w3(y)), (k, v)


class LlamaModule(nn.Module):
    def __init__(self, spec: Any) -> None:
        super().__init__()
        self.spec = spec
        self.tok = nn.Embedding(spec.vocab_size, spec.dim)
        self.blocks = nn.ModuleList(LlamaBlock(spec) for _ in range(spec.n_layers))
        self.norm = RMSNorm(spec.dim, spec.norm_eps)
        self.head = nn.Linear(spec.dim, spec.vocab_size, bias=False)
        if spec.tie_embeddings:
            self.head.weight = self.tok.weight
        self.apply(_init)

    def _run(self, idx: torch.Tensor, cache: Any) -> tuple[torch.Tensor, list[Any]]:
        past = 0 if not cache else cache[0][0].shape[2]
        if past + idx.shape[1] > self.spec.max_seq:
            raise ValueError(f"sequence of {past + idx.shape[1]} exceeds context {self.spec.max_seq}")
        x, out = self.tok(idx), []
        for i, block in enumerate(self.blocks):
            x, c = block(x, cache[i] if cache else None)
            out.append(c)
        return self.head(self.norm(x)), out

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self._run(idx, None)[0]

    def decode(self, idx: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        logits, cache = self._run(idx, state)
        return logits[:, -1, :], cache


class MLPModule(nn.Module):
    def __init__(self, spec: Any) -> None:
        super().__init__()
        self.n = spec.context_len
        self.emb = nn.Embedding(spec.vocab_size, spec.d_embed)
        widths = [spec.context_len * spec.d_embed, *spec.hidden]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in zip(widths, widths[1:]))
        self.head = nn.Linear(widths[-1], spec.vocab_size)
        self.act: Any = {"tanh": torch.tanh, "gelu": F.gelu, "relu": F.relu}[spec.activation]
        self.apply(_init)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        padded = F.pad(idx, (self.n - 1, 0))  # token 0 stands for "before the start"
        windows = padded.unfold(1, self.n, 1)  # (B, T, n)
        x = self.emb(windows).flatten(2)
        for layer in self.hidden:
            x = self.act(layer(x))
        return self.head(x)

    def decode(self, idx: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        """The next token's logits from the last ``n`` tokens: one window through the
        layers (an honest server's cost), not one per position of the window."""
        window = idx if state is None else torch.cat([state, idx], dim=1)
        window = window[:, -self.n :]
        x = self.emb(F.pad(window, (self.n - window.shape[1], 0))).flatten(1)
        for layer in self.hidden:
            x = self.act(layer(x))
        return self.head(x), window


class RNNModule(nn.Module):
    def __init__(self, spec: Any) -> None:
        super().__init__()
        self.emb = nn.Embedding(spec.vocab_size, spec.d_embed)
        cell = nn.GRU if spec.cell == "gru" else nn.LSTM
        self.rnn = cell(spec.d_embed, spec.hidden, num_layers=spec.n_layers, batch_first=True)
        self.head = nn.Linear(spec.hidden, spec.vocab_size)
        std = 1.0 / math.sqrt(spec.hidden)
        nn.init.normal_(self.emb.weight, std=0.02)
        nn.init.uniform_(self.head.weight, -std, std)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.head(self.rnn(self.emb(idx))[0])

    def decode(self, idx: torch.Tensor, state: Any) -> tuple[torch.Tensor, Any]:
        out, state = self.rnn(self.emb(idx), state)
        return self.head(out[:, -1, :]), state
