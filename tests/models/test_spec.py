"""The model layer: declared architectures the verifier builds from a description."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from inspectorate.errors import InputError, PluginError
from inspectorate.models import (
    ARCHITECTURES,
    GPTSpec,
    LlamaSpec,
    MLPSpec,
    ModelSpec,
    RNNSpec,
    architecture,
    named_spec,
    read_model_file,
    resolve_model,
    spec_from_dict,
    write_model_file,
)

torch = pytest.importorskip("torch")

SMALL = [
    GPTSpec(2, 2, 32, 32, 65),
    LlamaSpec(n_layers=2, dim=32, n_heads=4, n_kv_heads=2, ffn_hidden=80, vocab_size=70, max_seq=48),
    LlamaSpec(n_layers=1, dim=32, n_heads=2, n_kv_heads=2, ffn_hidden=64, vocab_size=50, tie_embeddings=True),
    MLPSpec(vocab_size=40, context_len=5, d_embed=8, hidden=(32, 16)),
    RNNSpec(cell="gru", vocab_size=30, d_embed=8, hidden=24, n_layers=2),
    RNNSpec(cell="lstm", vocab_size=30, d_embed=8, hidden=24, n_layers=3),
    GPTSpec(1, 2, 16, 16, 30, gelu="tanh"),
    LlamaSpec(
        n_layers=2, dim=32, n_heads=4, n_kv_heads=2, ffn_hidden=40, vocab_size=30, rope_style="interleaved"
    ),
]


@pytest.mark.parametrize(
    ("base", "variant"),
    [
        (GPTSpec(1, 2, 16, 16, 30), {"gelu": "tanh"}),
        (
            LlamaSpec(n_layers=1, dim=16, n_heads=2, n_kv_heads=1, ffn_hidden=24, vocab_size=30),
            {"rope_style": "interleaved"},
        ),
        (
            LlamaSpec(n_layers=1, dim=16, n_heads=2, n_kv_heads=1, ffn_hidden=24, vocab_size=30),
            {"norm_eps": 0.5},
        ),
    ],
    ids=["gpt-gelu-tanh", "llama-interleaved", "llama-norm-eps"],
)
def test_declared_variants_compute_other_logits_from_the_same_weights(base: ModelSpec, variant: dict) -> None:
    torch.manual_seed(0)
    plain = base.build().eval()
    other = dataclasses.replace(base, **variant).build().eval()
    with torch.no_grad():
        for p in other.parameters():
            p.normal_(std=0.5)  # away from zero, where the variants agree
        plain.load_state_dict(other.state_dict())
        x = torch.randint(0, base.vocab, (2, 7))
        assert (plain(x) - other(x)).abs().max() > 1e-4  # the GELUs differ by <= ~1e-3
    desc = dataclasses.replace(base, **variant).to_dict()
    assert spec_from_dict(json.loads(json.dumps(desc)), "m") == dataclasses.replace(base, **variant)


@pytest.mark.parametrize("bad", [{"family": "gpt", "gelu": "fast"}, {"family": "llama", "rope_style": "odd"}])
def test_unknown_variants_are_one_line_errors(bad: dict) -> None:
    family = bad.pop("family")
    with pytest.raises(InputError) as err:
        spec_from_dict(
            {"format": "inspectorate.model", "version": 1, "family": family, "config": bad}, "m.json"
        )
    assert "\n" not in str(err.value)


def test_every_builtin_family_is_registered() -> None:
    assert {"gpt", "llama", "mlp", "rnn"} <= set(ARCHITECTURES.names())
    assert {type(s).family for s in SMALL} == {"gpt", "llama", "mlp", "rnn"}


@pytest.mark.parametrize("spec", SMALL, ids=lambda s: f"{s.family}")
def test_counted_parameters_are_the_built_ones_and_decoding_agrees(spec: ModelSpec) -> None:
    torch.manual_seed(0)
    model = spec.build().eval()
    assert spec.n_params() == sum(p.numel() for p in model.parameters())
    x = torch.randint(0, spec.vocab, (2, 9))
    with torch.no_grad():
        logits = model(x)
        assert logits.shape == (2, 9, spec.vocab)
        last, state = model.decode(x[:, :5], None)
        for t in range(5, 9):  # one token at a time through the decoding state
            last, state = model.decode(x[:, t : t + 1], state)
    assert torch.allclose(last, logits[:, -1, :], atol=1e-4)


@settings(max_examples=15, deadline=None)
@given(
    layers=st.integers(1, 3),
    heads=st.sampled_from([1, 2, 4]),
    width=st.sampled_from([8, 16]),
    kv=st.sampled_from([1, 2]),
    ffn=st.integers(4, 40),
    vocab=st.integers(2, 60),
    tie=st.booleans(),
)
def test_llama_count_matches_any_config(layers, heads, width, kv, ffn, vocab, tie) -> None:
    kv = min(kv, heads)
    spec = LlamaSpec(layers, width * heads, heads, kv, ffn, vocab, 64, tie)
    assert spec.n_params() == sum(p.numel() for p in spec.build().parameters())


@settings(max_examples=15, deadline=None)
@given(
    cell=st.sampled_from(["gru", "lstm"]), layers=st.integers(1, 3), h=st.integers(1, 20), e=st.integers(1, 9)
)
def test_rnn_count_matches_any_config(cell, layers, h, e) -> None:
    spec = RNNSpec(cell, 11, e, h, layers)
    assert spec.n_params() == sum(p.numel() for p in spec.build().parameters())


@pytest.mark.parametrize("spec", SMALL, ids=lambda s: f"{s.family}")
def test_a_description_round_trips(spec: ModelSpec, tmp_path: Path) -> None:
    path = write_model_file(spec, tmp_path / "m.json")
    assert read_model_file(path) == spec
    assert spec.with_layers(1).depth == 1 and type(spec.with_layers(1)) is type(spec)


def _doc(**over: object) -> dict[str, object]:
    base: dict[str, object] = {
        "format": "inspectorate.model",
        "version": 1,
        "family": "rnn",
        "config": {"hidden": 8},
    }
    return {**base, **over}


@pytest.mark.parametrize(
    "doc, words",
    [
        (_doc(family="transformerx"), "known: exported, gpt, llama, mlp, rnn"),
        (_doc(config={"hiden": 8}), "unknown field(s) ['hiden']"),
        (_doc(config={"hidden": -3}), "hidden must be positive"),
        (_doc(config={"hidden": 2.5}), "hidden must be an integer"),
        (_doc(config={"cell": "transformer"}), "cell must be"),
        (_doc(family="llama", config={"dim": 28, "n_heads": 4, "n_kv_heads": 2}), "even head dimension"),
        (_doc(version=9), "version 9"),
        (_doc(format="onnx"), "not a model description"),
        (_doc(config=[1]), "needs a 'config' object"),
    ],
)
def test_a_bad_description_is_one_clear_error(doc: dict[str, object], words: str) -> None:
    with pytest.raises(InputError) as err:
        spec_from_dict(doc, "m.json")
    assert words in str(err.value) and "m.json" in str(err.value)


def test_resolution_prefers_the_runs_description_and_stays_inside_it(tmp_path: Path) -> None:
    (tmp_path / "models").mkdir()
    write_model_file(SMALL[4], tmp_path / "models" / "chargru.json")
    assert resolve_model("chargru", tmp_path) == SMALL[4]
    assert resolve_model("laptop", tmp_path) == named_spec("laptop")
    (tmp_path / "evil.json").write_text(json.dumps(SMALL[4].to_dict()))
    assert resolve_model("../evil", tmp_path / "models") is None
    assert resolve_model("nothing-known", tmp_path) is None and resolve_model(None) is None


def test_named_specs_are_the_testbed_presets() -> None:
    from inspectorate.models._gpt import PRESETS, count_params

    for name, config in PRESETS.items():
        spec = named_spec(name)
        assert spec is not None and spec.n_params() == count_params(config)


def test_a_third_party_family_registers_and_bad_ones_are_refused() -> None:
    @architecture("test_linear_lm")
    @dataclasses.dataclass(frozen=True)
    class LinearLM(ModelSpec):
        """A bigram model: one vocab x vocab table."""

        vocab_size: int = 10

        def n_params(self) -> int:
            return self.vocab_size**2

    assert ARCHITECTURES.get("test_linear_lm") is LinearLM
    doc = {
        "format": "inspectorate.model",
        "version": 1,
        "family": "test_linear_lm",
        "config": {"vocab_size": 7},
    }
    assert spec_from_dict(doc).n_params() == 49
    with pytest.raises(PluginError):
        architecture("test_linear_lm")(
            dataclasses.dataclass(frozen=True)(type("Other", (ModelSpec,), {"__doc__": "x"}))
        )
    with pytest.raises(PluginError):
        architecture("test_undocumented")(dataclasses.dataclass(frozen=True)(type("U", (ModelSpec,), {})))
