"""Handing over a module that does not follow the verifier's conventions.

The Llama here is written after Meta's reference layout, not the verifier's: each block
registers its attention projections, then its feed-forward (w1, w2, w3), then its two
norms; rotary positions turn interleaved pairs (2i, 2i + 1); RMSNorm's epsilon is 1e-6.
By position, none of its tensors land where the declared model wants them. With
``names=`` and a description that declares the variant (``rope_style``, ``norm_eps``),
its served outputs re-compute and its training replays; with the variant left out, the
handover refuses at once instead of letting an honest phase read as inconsistent."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
nn = torch.nn
F = torch.nn.functional

from inspectorate import handover  # noqa: E402
from inspectorate.errors import InputError  # noqa: E402

CORPUS = Path(__file__).resolve().parents[1] / "data" / "testbed_corpus.txt"
VOCAB, DIM, HEADS, KV, FFN, LAYERS = 58, 16, 2, 1, 24, 2


def _desc(**variant: Any) -> dict[str, Any]:
    config = {"n_layers": LAYERS, "dim": DIM, "n_heads": HEADS, "n_kv_heads": KV, "ffn_hidden": FFN}
    config |= {"vocab_size": VOCAB, "max_seq": 64, **variant}
    return {"format": "inspectorate.model", "version": 1, "family": "llama", "config": config}


META = _desc(rope_style="interleaved", norm_eps=1e-6)


class Norm(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(DIM))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6) * self.weight


def rotary(x: torch.Tensor) -> torch.Tensor:
    """Meta's rotation: consecutive pairs as complex numbers times e^(i t theta_k)."""
    t, hd = x.shape[-2], x.shape[-1]
    freqs = 1.0 / (10000.0 ** (torch.arange(0, hd, 2).float() / hd))
    phase = torch.polar(torch.ones(t, hd // 2), torch.outer(torch.arange(t).float(), freqs))
    z = torch.view_as_complex(x.float().reshape(*x.shape[:-1], hd // 2, 2))
    return torch.view_as_real(z * phase).flatten(-2).type_as(x)


class Layer(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        hd = DIM // HEADS
        self.wq, self.wk = nn.Linear(DIM, DIM, bias=False), nn.Linear(DIM, KV * hd, bias=False)
        self.wv, self.wo = nn.Linear(DIM, KV * hd, bias=False), nn.Linear(DIM, DIM, bias=False)
        self.w1, self.w2 = nn.Linear(DIM, FFN, bias=False), nn.Linear(FFN, DIM, bias=False)
        self.w3 = nn.Linear(DIM, FFN, bias=False)
        self.attention_norm, self.ffn_norm = Norm(), Norm()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, _ = x.shape
        h = self.attention_norm(x)
        q = rotary(self.wq(h).view(b, t, HEADS, -1).transpose(1, 2))
        k = rotary(self.wk(h).view(b, t, KV, -1).transpose(1, 2)).repeat_interleave(HEADS // KV, 1)
        v = self.wv(h).view(b, t, KV, -1).transpose(1, 2).repeat_interleave(HEADS // KV, 1)
        att = (q @ k.transpose(-1, -2)) / (q.shape[-1] ** 0.5)
        att = att.masked_fill(torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf")).softmax(-1)
        x = x + self.wo((att @ v).transpose(1, 2).reshape(b, t, -1))
        h = self.ffn_norm(x)
        return x + self.w2(F.silu(self.w1(h)) * self.w3(h))


class MetaLlama(nn.Module):
    def __init__(self, seed: int = 0) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.tok_embeddings = nn.Embedding(VOCAB, DIM)
        self.layers = nn.ModuleList(Layer() for _ in range(LAYERS))
        self.norm, self.output = Norm(), nn.Linear(DIM, VOCAB, bias=False)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.3)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        x = self.tok_embeddings(tokens)
        for layer in self.layers:
            x = layer(x)
        return self.output(self.norm(x))


def names() -> dict[str, str]:
    """The verifier's names -> Meta's, per block and around them."""
    out = {
        "tok.weight": "tok_embeddings.weight",
        "norm.weight": "norm.weight",
        "head.weight": "output.weight",
    }
    block = {"attn_norm": "attention_norm", "mlp_norm": "ffn_norm"}
    block |= {w: w for w in ("wq", "wk", "wv", "wo", "w1", "w2", "w3")}
    for i in range(LAYERS):
        out |= {f"blocks.{i}.{ours}.weight": f"layers.{i}.{theirs}.weight" for ours, theirs in block.items()}
    return out


def _run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "models").mkdir(parents=True)
    (run / "models" / "meta.json").write_text(json.dumps(META))
    (run / "models" / "plain.json").write_text(json.dumps(_desc()))
    (run / "sensor.jsonl").write_text(json.dumps({"kind": "start", "nonce": "0ddba11"}) + "\n")
    return run


def _serve(log: Any, model: MetaLlama, batches: int = 3, b: int = 3, new: int = 8) -> None:
    """No KV cache: the whole prefix again for every token, as a simple server does."""
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        for _ in range(batches):
            x = torch.randint(0, VOCAB, (b, 4), generator=gen)
            noise, seq = log.noise(None, b, new, VOCAB), x
            for j in range(new):
                seq = torch.cat([seq, log.pick(model(seq)[:, -1], noise[:, j])[:, None]], 1)
            log.log(x, seq[:, 4:])
    log.close()


def test_by_position_the_meta_layout_is_refused_with_a_hint(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"tensor 1 .*names=") as err:
        handover.served("s", MetaLlama(), "meta", run=_run(tmp_path))
    assert "\n" not in str(err.value)


def test_a_variant_left_undeclared_is_refused_at_the_handover(tmp_path: Path) -> None:
    run = _run(tmp_path)
    with pytest.raises(InputError, match="computes other logits") as err:
        handover.served("s", MetaLlama(), "plain", run=run, names=names())
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="names= maps no tensor to the declared model's head.weight"):
        handover.served(
            "s", MetaLlama(), "meta", run=run, names={k: v for k, v in names().items() if k != "head.weight"}
        )


def test_named_and_declared_the_meta_llama_recomputes(tmp_path: Path) -> None:
    from inspectorate.difr._anymodel import verify_weights_log
    from inspectorate.difr._log import read_log
    from inspectorate.models import load_weights

    run, model = _run(tmp_path), MetaLlama()
    _serve(handover.served("s", model, "meta", run=run, temperature=0.7, top_k=20, names=names()), model)
    d = run / "claims" / "s"
    torch.set_num_threads(1)
    report = verify_weights_log(read_log(d / "served.jsonl"), load_weights(d / "weights.pt"), draw_seed=0)
    assert report.decision == "consistent", report.reasons
    # another model's outputs under these weights still do not
    _serve(
        handover.served("lie", model, "meta", run=run, temperature=0.7, top_k=20, names=names()), MetaLlama(1)
    )
    d = run / "claims" / "lie"
    report = verify_weights_log(read_log(d / "served.jsonl"), load_weights(d / "weights.pt"), draw_seed=0)
    assert report.decision == "inconsistent"


def _nanogpt_groups(model: nn.Module) -> list[dict[str, Any]]:
    """nanoGPT's ``configure_optimizers``: matrices decay, vectors (norms) do not."""
    params = [p for p in model.parameters() if p.requires_grad]
    return [
        {"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
        {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
    ]


@pytest.mark.parametrize("groups", ["one", "nanogpt"])
def test_named_training_with_its_own_parameter_order_replays(tmp_path: Path, groups: str) -> None:
    from inspectorate.models import load_corpus
    from inspectorate.replay import read_claim, replay_claim

    torch.set_num_threads(1)
    run, model, seq = _run(tmp_path), MetaLlama(), 16
    params: Any = model.parameters() if groups == "one" else _nanogpt_groups(model)
    opt = torch.optim.AdamW(params, lr=3e-3, weight_decay=0.1)
    tr = handover.training(
        "t", model, opt, "meta", corpus=CORPUS, seq_len=seq, checkpoint_every_s=0.0, run=run, names=names()
    )
    assert tr.perm is not None  # Meta's parameter order is not the declared model's
    if groups == "nanogpt":  # the norms are declared exempt, under the declared model's names
        assert tr.optimizer["no_decay"] == sorted(n for n in names() if "norm" in n)
    data, gen = torch.from_numpy(tr.tokens), torch.Generator().manual_seed(5)
    for _ in range(4):
        s = torch.randint(0, len(data) - seq - 1, (3,), generator=gen)
        x = torch.stack([data[i : i + seq] for i in s])
        y = torch.stack([data[i + 1 : i + seq + 1] for i in s])
        F.cross_entropy(model(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        tr.step(s.tolist())
        opt.zero_grad(set_to_none=True)
    path = tr.finish()
    assert path is not None
    result = replay_claim(read_claim(path), load_corpus(CORPUS))
    assert result.decision == "consistent", result.reasons
    assert all(seg.distance < 1e-4 for seg in result.segments)
    if groups == "nanogpt":  # declared as one decayed set, the run's moments do not fit
        data = json.loads(path.read_text())
        data["config"]["optimizer"].pop("no_decay")
        path.write_text(json.dumps(data))
        with pytest.raises(InputError, match="optimizer exp_avg of parameter"):
            replay_claim(read_claim(path), load_corpus(CORPUS))


def test_module_outputs_of_other_shapes_are_compared_or_skipped(tmp_path: Path) -> None:
    """nanoGPT returns ``(logits of the last position, loss)``; a dict of tensors has no
    forward to compare; both hand over."""

    class LastOnly(MetaLlama):
        def forward(self, tokens: torch.Tensor) -> Any:
            return super().forward(tokens)[:, -1:], None

    run = _run(tmp_path)
    handover.served("a", LastOnly(), "meta", run=run, names=names()).close()
    with pytest.raises(InputError, match="computes other logits"):
        handover.served("b", LastOnly(), "plain", run=run, names=names())
    state = MetaLlama().state_dict()
    handover.served("c", {ours: state[theirs] for ours, theirs in names().items()}, "meta", run=run).close()
    assert (run / "claims" / "c" / "weights.pt").is_file()


def test_training_with_dropout_is_refused_at_its_start(tmp_path: Path) -> None:
    model = MetaLlama()
    model.layers[1].drop = nn.Dropout(0.1)  # registered, as a model with dropout has it
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    with pytest.raises(InputError, match=r"layers\.1\.drop drops 0\.1 .*set p=0") as err:
        handover.training(
            "t", model, opt, "meta", corpus=CORPUS, seq_len=8, run=_run(tmp_path), names=names()
        )
    assert "\n" not in str(err.value)


class Conv1D(nn.Module):
    """Hugging Face's GPT-2 projection: the weight stored ``(in, out)``, ``x @ W + b``."""

    def __init__(self, n_in: int, n_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(n_in, n_out) * 0.3)
        self.bias = nn.Parameter(torch.randn(n_out) * 0.1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x @ self.weight + self.bias


class HFStyleGPT2(nn.Module):
    """GPT-2 as Hugging Face lays it out (``transformer.h.<i>``, Conv1D, tanh GELU, tied
    head); ``forward`` returns an object with ``.logits``."""

    def __init__(self, d: int = 16, heads: int = 2, ctx: int = 32, layers: int = 2) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.d, self.heads = d, heads
        self.transformer = nn.Module()
        self.transformer.wte, self.transformer.wpe = nn.Embedding(VOCAB, d), nn.Embedding(ctx, d)
        self.transformer.h = nn.ModuleList()
        for _ in range(layers):
            block = nn.Module()
            block.ln_1, block.ln_2 = nn.LayerNorm(d), nn.LayerNorm(d)
            block.attn, block.mlp = nn.Module(), nn.Module()
            block.attn.c_attn, block.attn.c_proj = Conv1D(d, 3 * d), Conv1D(d, d)
            block.mlp.c_fc, block.mlp.c_proj = Conv1D(d, 4 * d), Conv1D(4 * d, d)
            self.transformer.h.append(block)
        self.transformer.ln_f = nn.LayerNorm(d)
        self.lm_head = nn.Linear(d, VOCAB, bias=False)
        self.lm_head.weight = self.transformer.wte.weight

    def forward(self, ids: torch.Tensor) -> Any:
        b, t = ids.shape
        x = self.transformer.wte(ids) + self.transformer.wpe(torch.arange(t))
        for block in self.transformer.h:
            q, k, v = block.attn.c_attn(block.ln_1(x)).split(self.d, -1)
            q, k, v = (z.view(b, t, self.heads, -1).transpose(1, 2) for z in (q, k, v))
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True).transpose(1, 2).reshape(b, t, -1)
            x = x + block.attn.c_proj(y)
            x = x + block.mlp.c_proj(F.gelu(block.mlp.c_fc(block.ln_2(x)), approximate="tanh"))
        return type("Output", (), {"logits": self.lm_head(self.transformer.ln_f(x))})()


def _hf_names(layers: int = 2) -> dict[str, str]:
    out = {"gpt.wte.weight": "transformer.wte.weight", "gpt.wpe.weight": "transformer.wpe.weight"}
    out |= {"gpt.lm_head.weight": "lm_head.weight"}
    out |= {f"gpt.ln_f.{w}": f"transformer.ln_f.{w}" for w in ("weight", "bias")}
    for i in range(layers):
        for part in ("ln_1", "ln_2", "attn.c_attn", "attn.c_proj", "mlp.c_fc", "mlp.c_proj"):
            ours, theirs = f"gpt.blocks.{i}.{part}", f"transformer.h.{i}.{part}"
            flip = ".T" if part[:2] != "ln" else ""  # Conv1D weights are stored (in, out)
            out |= {f"{ours}.weight": f"{theirs}.weight{flip}", f"{ours}.bias": f"{theirs}.bias"}
    return out


def test_a_hugging_face_layout_gpt2_maps_transposed_and_recomputes(tmp_path: Path) -> None:
    from inspectorate.difr._anymodel import verify_weights_log
    from inspectorate.difr._log import read_log
    from inspectorate.models import load_weights

    run = _run(tmp_path)
    config = {"n_layer": 2, "n_head": 2, "n_embd": 16, "block_size": 32, "vocab_size": VOCAB}
    for name, gelu in (("gpt2", "tanh"), ("gpt2-erf", "exact")):
        desc = {
            "format": "inspectorate.model",
            "version": 1,
            "family": "gpt",
            "config": {**config, "gelu": gelu},
        }
        (run / "models" / f"{name}.json").write_text(json.dumps(desc))
    model = HFStyleGPT2()
    with pytest.raises(InputError, match="computes other logits"):  # the erf GELU declared
        handover.served("x", model, "gpt2-erf", run=run, names=_hf_names())

    class Wrapped(nn.Module):  # what _serve calls: the logits tensor
        def __init__(self) -> None:
            super().__init__()
            self.inner = model

        def forward(self, ids: torch.Tensor) -> torch.Tensor:
            return self.inner(ids).logits

    names = {k: f"inner.{v}" for k, v in _hf_names().items()}
    log = handover.served("s", Wrapped(), "gpt2", run=run, temperature=0.8, top_p=0.9, names=names)
    _serve(log, Wrapped())
    d = run / "claims" / "s"
    torch.set_num_threads(1)
    report = verify_weights_log(read_log(d / "served.jsonl"), load_weights(d / "weights.pt"), draw_seed=0)
    assert report.decision == "consistent", report.reasons
