"""Seeded Gumbel-max: the right distribution, reproducible noise, zero shortfall on a match."""

from __future__ import annotations

import numpy as np

from inspectorate.difr import SamplingConfig
from inspectorate.difr._sampling import allowed, choose, gumbel_noise, shortfall


def test_noise_is_a_function_of_seed_index_position():
    a = gumbel_noise(7, 3, 5, 11)
    assert np.array_equal(a, gumbel_noise(7, 3, 5, 11))
    assert not np.array_equal(a, gumbel_noise(7, 4, 5, 11))
    assert np.array_equal(a[:3], gumbel_noise(7, 3, 3, 11))  # positions are a prefix, not a reshuffle


def test_gumbel_max_draws_from_softmax():
    logits = np.log(np.array([0.5, 0.3, 0.15, 0.05]))
    cfg = SamplingConfig(temperature=1.0)
    noise = gumbel_noise(1, 0, 40_000, 4)
    picks = choose(np.repeat(logits[None], 40_000, axis=0), noise, cfg)
    freq = np.bincount(picks, minlength=4) / 40_000
    assert np.allclose(freq, [0.5, 0.3, 0.15, 0.05], atol=0.01)


def test_top_k_and_top_p_masks():
    z = np.array([[3.0, 2.0, 1.0, 0.0]])
    assert allowed(z, SamplingConfig(top_k=2)).tolist() == [[True, True, False, False]]
    p = np.exp(z) / np.exp(z).sum()  # [0.64, 0.24, 0.09, 0.03]
    assert p[0, 0] < 0.7
    assert allowed(z, SamplingConfig(top_p=0.7)).tolist() == [[True, True, False, False]]
    assert allowed(z, SamplingConfig(top_p=0.5)).tolist() == [[True, False, False, False]]


def test_shortfall_zero_on_match_and_positive_otherwise():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 9))
    cfg = SamplingConfig(temperature=0.9, top_k=5, seed=3)
    noise = gumbel_noise(3, 0, 50, 9)
    served = choose(logits, noise, cfg)
    ref, short = shortfall(logits, noise, served, cfg)
    assert np.array_equal(ref, served) and np.all(short == 0)
    other = (served + 1) % 9
    _, short2 = shortfall(logits, noise, other, cfg)
    assert np.all(short2 > 0) and np.all(np.isfinite(short2))  # finite even outside the top-k
