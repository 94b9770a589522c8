"""The built-in architecture families: GPT (the testbed's and GPT-2's shape), Llama, an
MLP language model and a recurrent (GRU/LSTM) language model.

Each is a frozen config (``ModelSpec``) that counts its parameters in closed form and
builds a torch module with random weights. The modules are the verifier's own: short,
standard formulations (pre-norm GPT-2 blocks; Llama's RMSNorm, rotary positions, SwiGLU
and grouped-query attention; Bengio's fixed-context MLP LM; an embedding-RNN-head LM),
written for pricing a token and bounding memory, not for training quality.
The torch modules live in ``_torch_families`` so this module stays importable without torch.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from inspectorate.models._spec import ModelSpec, architecture


@architecture("gpt")
@dataclass(frozen=True)
class GPTSpec(ModelSpec):
    """GPT-2 / nanoGPT shape: learned positions, pre-norm blocks (LayerNorm, GELU MLP of
    4x width), tied output head. The testbed's char-level GPT is this family."""

    n_layer: int = 4
    n_head: int = 4
    n_embd: int = 256
    block_size: int = 128
    vocab_size: int = 65
    bias: bool = True
    gelu: str = "exact"  # "exact" (erf: nanoGPT's nn.GELU()) or "tanh" (OpenAI's GPT-2, HF gelu_new)

    _layer_field = "n_layer"

    def __post_init__(self) -> None:
        if self.gelu not in ("exact", "tanh"):
            raise ValueError(f"gelu must be 'exact' or 'tanh', got {self.gelu!r}")

    @property
    def depth(self) -> int:
        return self.n_layer

    @property
    def context(self) -> int:
        return self.block_size

    @property
    def vocab(self) -> int:
        return self.vocab_size

    def n_params(self) -> int:
        d, b = self.n_embd, int(self.bias)
        per_block = 12 * d * d + 9 * b * d + 2 * (d + b * d)
        return self.n_layer * per_block + (self.vocab_size + self.block_size) * d + d + b * d

    def cache_bytes(self, batch: int, seq: int) -> int:
        return 2 * self.n_layer * batch * seq * self.n_embd * 4

    def lookup_params(self) -> int:
        return self.block_size * self.n_embd  # positions; the tied head reads all of wte

    def build(self) -> Any:
        from inspectorate.models._torch_families import GPTModule

        return GPTModule(self)


@architecture("llama")
@dataclass(frozen=True)
class LlamaSpec(ModelSpec):
    """Llama shape: RMSNorm, rotary positions, SwiGLU MLP of ``ffn_hidden`` width,
    grouped-query attention (``n_kv_heads`` <= ``n_heads``), no biases, untied head
    unless ``tie_embeddings``."""

    n_layers: int = 4
    dim: int = 256
    n_heads: int = 4
    n_kv_heads: int = 4
    ffn_hidden: int = 688
    vocab_size: int = 32000
    max_seq: int = 2048
    tie_embeddings: bool = False
    rope_theta: float = 10000.0
    # the two ways a head's dimensions are paired for rotation: "half" (i with i + D/2,
    # Hugging Face's rotate_half) or "interleaved" (2i with 2i + 1, Meta's reference)
    rope_style: str = "half"
    norm_eps: float = 1e-5  # RMSNorm's epsilon (Meta's reference 1e-5, many HF configs 1e-6)

    _layer_field = "n_layers"

    def __post_init__(self) -> None:
        if self.rope_style not in ("half", "interleaved"):
            raise ValueError(f"rope_style must be 'half' or 'interleaved', got {self.rope_style!r}")
        if not self.norm_eps > 0:
            raise ValueError(f"norm_eps must be > 0, got {self.norm_eps!r}")
        if self.dim % self.n_heads or self.n_heads % self.n_kv_heads:
            raise ValueError("dim must divide into n_heads, and n_heads into n_kv_heads")
        if (self.dim // self.n_heads) % 2:  # rotary turns pairs of a head's dimensions
            raise ValueError(
                f"rotary positions need an even head dimension (dim/n_heads = {self.dim // self.n_heads})"
            )

    @property
    def depth(self) -> int:
        return self.n_layers

    @property
    def context(self) -> int:
        return self.max_seq

    @property
    def vocab(self) -> int:
        return self.vocab_size

    @property
    def kv_dim(self) -> int:
        return self.dim // self.n_heads * self.n_kv_heads

    def n_params(self) -> int:
        d = self.dim
        attn = 2 * d * d + 2 * d * self.kv_dim
        per_block = attn + 3 * d * self.ffn_hidden + 2 * d
        head = 0 if self.tie_embeddings else self.vocab_size * d
        return self.n_layers * per_block + self.vocab_size * d + head + d

    def cache_bytes(self, batch: int, seq: int) -> int:
        return 2 * self.n_layers * batch * seq * self.kv_dim * 4

    def lookup_params(self) -> int:
        return 0 if self.tie_embeddings else self.vocab_size * self.dim

    def build(self) -> Any:
        from inspectorate.models._torch_families import LlamaModule

        return LlamaModule(self)


@architecture("mlp")
@dataclass(frozen=True)
class MLPSpec(ModelSpec):
    """Bengio et al. (2003)'s MLP language model: the last ``context_len`` token
    embeddings concatenated, ``hidden`` layers of ``activation`` (tanh as in the paper,
    or gelu / relu), a vocabulary head. Positions before the start read token 0."""

    vocab_size: int = 65
    context_len: int = 8
    d_embed: int = 32
    hidden: tuple[int, ...] = (256,)
    activation: str = "tanh"

    _layer_field = "hidden"

    def __post_init__(self) -> None:
        if self.activation not in ("tanh", "gelu", "relu"):
            raise ValueError(f"activation must be 'tanh', 'gelu' or 'relu', got {self.activation!r}")

    @property
    def depth(self) -> int:
        return len(self.hidden)

    @property
    def context(self) -> int | None:
        return None  # any length: each position reads a fixed window

    @property
    def vocab(self) -> int:
        return self.vocab_size

    def with_layers(self, k: int) -> ModelSpec:
        return MLPSpec(
            self.vocab_size, self.context_len, self.d_embed, tuple(self.hidden[:1]) * k, self.activation
        )

    def lookup_params(self) -> int:
        return self.vocab_size * self.d_embed

    def n_params(self) -> int:
        widths = [self.context_len * self.d_embed, *self.hidden, self.vocab_size]
        linear = sum(a * b + b for a, b in zip(widths, widths[1:]))
        return self.vocab_size * self.d_embed + linear

    def build(self) -> Any:
        from inspectorate.models._torch_families import MLPModule

        return MLPModule(self)


@architecture("rnn")
@dataclass(frozen=True)
class RNNSpec(ModelSpec):
    """Embedding, ``n_layers`` stacked GRU or LSTM layers (``cell``), a linear head."""

    cell: str = "gru"
    vocab_size: int = 65
    d_embed: int = 64
    hidden: int = 256
    n_layers: int = 2

    _layer_field = "n_layers"

    def __post_init__(self) -> None:
        if self.cell not in ("gru", "lstm"):
            raise ValueError(f"cell must be 'gru' or 'lstm', got {self.cell!r}")

    @property
    def depth(self) -> int:
        return self.n_layers

    @property
    def vocab(self) -> int:
        return self.vocab_size

    def n_params(self) -> int:
        gates = 3 if self.cell == "gru" else 4
        h = self.hidden
        first = gates * (h * self.d_embed + h * h + 2 * h)
        rest = gates * (h * h + h * h + 2 * h) * (self.n_layers - 1)
        return self.vocab_size * self.d_embed + first + rest + h * self.vocab_size + self.vocab_size

    def lookup_params(self) -> int:
        return self.vocab_size * self.d_embed

    def cache_bytes(self, batch: int, seq: int) -> int:
        states = 1 if self.cell == "gru" else 2
        return states * self.n_layers * batch * self.hidden * 4

    def build(self) -> Any:
        from inspectorate.models._torch_families import RNNModule

        return RNNModule(self)


# The testbed's presets (docs/testbed.md) and GPT-2's published sizes, by name.
NAMED: dict[str, Callable[[], ModelSpec]] = dict(
    {
        "micro": lambda: GPTSpec(2, 2, 32, 32, 65),
        "laptop": lambda: GPTSpec(4, 4, 256, 128, 65),
        "tiny": lambda: GPTSpec(6, 6, 384, 256, 65),
        "small": lambda: GPTSpec(12, 12, 768, 1024, 50304),
        "gpt2-124m": lambda: GPTSpec(12, 12, 768, 1024, 50304),
        "gpt2-350m": lambda: GPTSpec(24, 16, 1024, 1024, 50304),
    }
)
