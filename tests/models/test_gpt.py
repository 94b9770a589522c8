"""The GPT: preset sizes, FLOPs per token, KV cache, parameter names the recorder groups."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from inspectorate.capture._torch_stats import default_param_group  # noqa: E402
from inspectorate.errors import InputError  # noqa: E402
from inspectorate.models._gpt import (  # noqa: E402
    GPT,
    PRESETS,
    count_params,
    flops_per_token,
    kv_cache_bytes,
    preset,
    sample_next,
)


@pytest.mark.parametrize("name", ["micro", "laptop", "tiny"])
def test_analytic_count_matches_a_real_model(name: str) -> None:
    assert GPT(PRESETS[name]).n_params() == count_params(PRESETS[name])


@pytest.mark.parametrize(
    ("name", "lo", "hi"),
    [
        ("laptop", 3.15e6, 3.25e6),  # the seed's 3.2M laptop model
        ("tiny", 10.0e6, 11.0e6),  # the seed's gpt-tiny (~10M)
        ("small", 124.0e6, 125.0e6),  # GPT-2 124M (vocab 50304, tied head); not built: too slow
        ("micro", 1e4, 1e5),
    ],
)
def test_preset_sizes(name: str, lo: float, hi: float) -> None:
    assert lo <= count_params(PRESETS[name]) <= hi


def test_preset_shapes_follow_the_seed() -> None:
    laptop, small = PRESETS["laptop"], PRESETS["small"]
    assert (laptop.n_layer, laptop.n_head, laptop.n_embd, laptop.block_size, laptop.vocab_size) == (
        4,
        4,
        256,
        128,
        65,
    )
    assert (small.n_layer, small.n_head, small.n_embd, small.block_size, small.vocab_size) == (
        12,
        12,
        768,
        1024,
        50304,
    )
    with pytest.raises(InputError, match="known: micro"):
        preset("huge")


def test_flops_per_token_is_6n_training_2n_inference() -> None:
    cfg = PRESETS["laptop"]
    n = count_params(cfg)
    assert flops_per_token(cfg, training=True) == 6 * n
    assert flops_per_token(cfg, training=False) == 2 * n
    assert GPT(PRESETS["micro"]).flops_per_token(True) == 6 * count_params(PRESETS["micro"])


def test_parameter_names_fall_into_the_recorders_groups() -> None:
    groups = {default_param_group(n) for n, _ in GPT(PRESETS["micro"]).named_parameters()}
    assert groups == {"embed", "blocks", "ln"}  # head is tied to wte: listed once, as embed


def test_kv_cache_decoding_matches_a_full_forward() -> None:
    torch.manual_seed(0)
    model = GPT(PRESETS["micro"]).eval()
    idx = torch.randint(0, 65, (2, 12))
    full, _, _ = model(idx)
    _, _, cache = model(idx[:, :8])
    for pos in range(8, 12):
        step, _, cache = model(idx[:, pos : pos + 1], cache=cache)
        assert torch.allclose(step[:, -1], full[:, pos], atol=1e-5)
    cfg = PRESETS["micro"]
    assert kv_cache_bytes(cache) == cfg.n_layer * 2 * 2 * 12 * cfg.n_embd * 4


def test_context_overflow_is_refused() -> None:
    model = GPT(PRESETS["micro"])
    with pytest.raises(ValueError, match="exceeds context"):
        model(torch.zeros(1, 33, dtype=torch.long))


def test_loss_falls_when_training_on_a_repeated_batch() -> None:
    torch.manual_seed(0)
    model = GPT(PRESETS["micro"])
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    x = torch.randint(0, 65, (4, 16))
    losses = []
    for _ in range(30):
        _, loss, _ = model(x[:, :-1], x[:, 1:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0] - 1.0


def test_freezing_embeddings_freezes_the_tied_head() -> None:
    model = GPT(PRESETS["micro"])
    model.freeze_embeddings()
    assert model.lm_head.weight is model.wte.weight
    assert not model.lm_head.weight.requires_grad and not model.wpe.weight.requires_grad
    assert all(p.requires_grad for n, p in model.named_parameters() if n.startswith("blocks."))


def test_top_k_sampling_only_picks_top_tokens() -> None:
    logits = torch.tensor([[[0.0, 5.0, 4.0, -3.0, 1.0]]])
    gen = torch.Generator().manual_seed(0)
    picks = {int(sample_next(logits, 1.0, 2, gen)) for _ in range(50)}
    assert picks <= {1, 2} and picks
