"""The spot-check prices any declared model, and times one too large for the verifier by slices."""

from __future__ import annotations

import pytest

from inspectorate.models import LlamaSpec, RNNSpec
from inspectorate.verify._spotcheck import SpotCheck, Work, spot_check

pytest.importorskip("torch")

GRU = RNNSpec("gru", 65, 16, 64, 2)
LLAMA = LlamaSpec(n_layers=4, dim=64, n_heads=4, n_kv_heads=2, ffn_hidden=172, vocab_size=65, max_seq=64)


@pytest.mark.parametrize("spec", [GRU, LLAMA], ids=["gru", "llama"])
def test_a_declared_model_is_priced_and_training_costs_more_than_eval(spec) -> None:
    costs = {}
    for op in ("training", "eval", "inference"):
        check = spot_check(Work(op, "declared", 4, 32, spec), seconds=0.3)
        assert isinstance(check, SpotCheck), check
        assert check.to_dict()["family"] == spec.family and check.to_dict()["n_params"] == spec.n_params()
        costs[op] = check.cpu_s_per_token
    assert costs["training"] > 1.5 * costs["eval"]  # backward + optimizer: ~2x the forward


def test_an_unknown_model_says_how_to_declare_it() -> None:
    found = spot_check(Work("training", "chargru-384x3", 4, 32))
    assert isinstance(found, str) and "models/chargru-384x3.json" in found


def test_a_model_over_the_budget_is_timed_by_slices() -> None:
    whole = spot_check(Work("eval", "declared", 4, 32, LLAMA), seconds=0.3)
    sliced = spot_check(Work("eval", "declared", 4, 32, LLAMA), seconds=0.3, max_bytes=1.0 * 2**20)
    assert isinstance(whole, SpotCheck) and isinstance(sliced, SpotCheck)
    assert whole.slice is None and sliced.slice is not None and sliced.slice["depth"] == 4
    # the slice's error is measured in bench/spotcheck_slice.py; here only its order
    assert 0.33 < sliced.cpu_s_per_token / whole.cpu_s_per_token < 3.0
    refused = spot_check(Work("eval", "declared", 4, 32, LLAMA), max_bytes=1.0)
    assert isinstance(refused, str) and "budget" in refused
