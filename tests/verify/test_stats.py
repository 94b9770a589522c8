"""The numpy statistics behind calibration: AUROC, isotonic (PAV), logistic regression."""

from __future__ import annotations

import numpy as np

from inspectorate.verify import Calibration
from inspectorate.verify._calibration import (
    auroc,
    fit_isotonic,
    isotonic,
    logistic_fit,
    logistic_predict,
    reliability_table,
    separating_threshold,
)
from inspectorate.verify._evidence import period_sum


def test_auroc_perfect_inverted_and_ties():
    assert auroc([0.1, 0.2, 0.9], [0, 0, 1]) == 1.0
    assert auroc([0.9, 0.2, 0.1], [0, 0, 1]) == 0.0
    assert auroc([0.5, 0.5], [0, 1]) == 0.5


def test_isotonic_is_monotone_and_pools_violators():
    x, y = isotonic([1, 2, 3, 4], [0, 1, 0, 1])
    assert list(y) == sorted(y) and y[0] == 0.0 and y[-1] == 1.0
    kx, ky = fit_isotonic([0.0, 0.1, 0.9, 1.0], [0, 0, 1, 1])
    cal = Calibration(iso_x=kx, iso_y=ky)
    assert cal.probability(0.0) == 0.02 and cal.probability(1.0) == 0.98


def test_logistic_regression_separates_a_line():
    x = np.array([-2.0, -1.0, 1.0, 2.0])
    w = logistic_fit(x, np.array([0, 0, 1, 1]))
    p = logistic_predict(w, x)
    assert p[0] < 0.5 < p[-1]


def test_reliability_table_and_threshold():
    rows = reliability_table([0.1, 0.1, 0.9], [0, 0, 1], bins=5)
    assert rows[0]["n"] == 2 and rows[-1]["observed"] == 1.0
    assert separating_threshold([1e-5, 3e-5], [3e-4, 1e-3]) == np.sqrt(3e-5 * 3e-4)


def test_period_sum_reads_ddp_bucket_steps():
    # first step: one bucket of everything, then two buckets per step
    sizes = np.array([12.0, 1.0, 11.0, 1.0, 11.0, 1.0, 11.0])
    assert period_sum(sizes) == 12.0
    assert period_sum(np.array([4.0] * 5)) == 4.0
    assert period_sum(np.array([])) is None
