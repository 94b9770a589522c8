"""The weights file of any declared family: round trip, positional mapping of a
workload's own module, and refusals that name the problem."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from inspectorate.errors import InputError
from inspectorate.models import RNNSpec, load_weights, map_state_dict, save_weights, weights_sha256


class OwnGRU(nn.Module):
    """A workload's own module, written without the verifier's names."""

    def __init__(self, vocab: int, hidden: int) -> None:
        super().__init__()
        self.table = nn.Embedding(vocab, hidden)
        self.cell = nn.GRU(hidden, hidden, num_layers=2, batch_first=True)
        self.out = nn.Linear(hidden, vocab)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.out(self.cell(self.table(idx))[0])


SPEC = RNNSpec(cell="gru", vocab_size=11, d_embed=8, hidden=8, n_layers=2)


def test_own_module_maps_by_position_and_computes_the_same(tmp_path):
    torch.manual_seed(3)
    own = OwnGRU(11, 8)
    state = map_state_dict(SPEC, own.state_dict())
    path = save_weights(tmp_path / "w.pt", SPEC, state, vocab="abcdefghijk", meta={"step": 4})
    loaded = load_weights(path)
    assert loaded.spec == SPEC and loaded.vocab == "abcdefghijk" and loaded.meta == {"step": 4}
    idx = torch.randint(0, 11, (2, 5))
    with torch.no_grad():
        assert torch.equal(loaded.module(idx), own(idx))
    assert loaded.sha256 == weights_sha256(state)


def test_a_shape_mismatch_names_the_tensor():
    own = OwnGRU(11, 9)
    with pytest.raises(InputError, match="shape"):
        map_state_dict(SPEC, own.state_dict())
    with pytest.raises(InputError, match="tensors handed over"):
        map_state_dict(SPEC, dict(list(OwnGRU(11, 8).state_dict().items())[:-1]))


def test_refuses_what_it_cannot_trust(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a torch file")
    with pytest.raises(InputError, match="not a loadable"):
        load_weights(bad)
    other = tmp_path / "other.pt"
    torch.save({"format": "something-else"}, other)
    with pytest.raises(InputError, match="not an inspectorate.weights"):
        load_weights(other)
    with pytest.raises(InputError, match="do not fit"):
        save_weights(tmp_path / "x.pt", SPEC, {"nope": torch.zeros(1)})
    assert not (tmp_path / "x.pt").exists()
