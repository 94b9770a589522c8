"""Threshold fitting and the covert-channel bound."""

from __future__ import annotations

import numpy as np
import pytest

from inspectorate.difr._calibrate import covert_bits, fit_threshold
from inspectorate.errors import InputError


def test_threshold_never_below_observed_or_floor_and_grows_as_fpr_shrinks():
    x = np.random.default_rng(0).exponential(1.0, size=2000)
    loose, basis = fit_threshold(x, 1e-2, 0.0)
    tight, _ = fit_threshold(x, 1e-6, 0.0)
    assert tight > loose >= np.quantile(x, 0.95)
    assert basis["pot"] is not None and tight >= x.max()
    # exponential tail: the 1e-6 quantile of Exp(1) is ln(1e6) ~ 13.8
    assert 11 < tight < 17
    assert fit_threshold([0.0] * 50, 1e-5, 0.3)[0] == 0.3  # all-zero honest scores: the floor decides
    with pytest.raises(InputError):
        fit_threshold([], 1e-3, 0.0)


def test_floor_gives_way_only_to_a_tail_fitted_on_enough_points():
    rng = np.random.default_rng(1)
    many, few = rng.exponential(1.0, size=2000), rng.exponential(1.0, size=60)
    assert fit_threshold(many, 1e-3, 100.0)[0] < 100.0  # 200 excesses: the tail decides
    value, basis = fit_threshold(few, 1e-3, 100.0)
    assert basis["pot"] is not None and value == 100.0  # 6 excesses: the floor still binds


def test_covert_bits_counts_affordable_deviations():
    costs = np.array([0.1, 0.2, 5.0, 7.0])
    assert covert_bits(costs, 0.0) == 0.0
    assert covert_bits(costs, 0.1) == pytest.approx(1.0)  # deviate at one place or not
    assert covert_bits(costs, 0.35) == pytest.approx(2.0)  # any subset of the two cheap ones
    assert covert_bits(costs, 100.0) == pytest.approx(4.0)
