"""A checkpoint writer never accepts what its reader rejects (issue 18 item 4).

Before: ``save_checkpoint(path, model, corpus.vocab)`` (the ``CharVocab`` object, not its
characters) wrote a pickle that ``load_checkpoint`` then refused with "not a loadable
checkpoint (UnpicklingError)". Now the writer refuses it before writing a byte, and
whatever it does write loads back to the same weights, vocabulary and metadata.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inspectorate.models import GPT, CharVocab, GPTConfig, load_checkpoint, model_hash, save_checkpoint

CONFIG = GPTConfig(n_layer=1, n_head=1, n_embd=8, block_size=8, vocab_size=40)


@pytest.fixture(scope="module")
def model() -> GPT:
    torch.manual_seed(0)
    return GPT(CONFIG)


def test_a_charvocab_object_is_refused_before_writing(tmp_path, model):
    path = tmp_path / "m.pt"
    with pytest.raises(TypeError, match=r"\.chars"):
        save_checkpoint(path, model, CharVocab.from_text("hello world"))  # type: ignore[arg-type]
    assert not path.exists() and not list(tmp_path.iterdir())


def test_a_vocab_larger_than_the_model_is_refused(tmp_path, model):
    with pytest.raises(ValueError, match="40"):
        save_checkpoint(tmp_path / "m.pt", model, "".join(chr(65 + i) for i in range(41)))
    assert not list(tmp_path.iterdir())


def test_an_optimizer_state_holding_an_object_is_refused(tmp_path, model):
    with pytest.raises(TypeError, match="optimizer"):
        save_checkpoint(tmp_path / "m.pt", model, "ab", optimizer={"state": {0: object()}})


def test_meta_that_is_not_json_is_refused(tmp_path, model):
    with pytest.raises(TypeError):
        save_checkpoint(tmp_path / "m.pt", model, "ab", meta={"when": object()})
    assert not list(tmp_path.iterdir())


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    vocab=st.text(min_size=0, max_size=40).map(lambda t: "".join(dict.fromkeys(t))[:40]),
    meta=st.dictionaries(
        st.text(max_size=8), st.integers() | st.text(max_size=8) | st.booleans(), max_size=4
    ),
    with_optimizer=st.booleans(),
)
def test_what_is_written_loads_back(tmp_path_factory, model, vocab, meta, with_optimizer):
    path = tmp_path_factory.mktemp("ckpt") / "m.pt"
    optimizer = None
    if with_optimizer:
        opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
        optimizer = opt.state_dict()
    save_checkpoint(path, model, vocab, meta, optimizer=optimizer)
    back = load_checkpoint(path)
    assert back.vocab == vocab and back.meta == meta
    assert back.model_hash == model_hash(model)
    assert (back.optimizer is not None) == with_optimizer
