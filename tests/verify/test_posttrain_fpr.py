"""The FPR calibration's statistics: margins, the Clopper-Pearson bound, the normal tail fit."""

from __future__ import annotations

import math
import random

from inspectorate.verify import _posttrain as P
from inspectorate.verify._registry import CONSISTENT, INCONSISTENT, finding, unverifiable


def test_zero_of_n_bounds_near_three_over_n_and_matches_the_closed_form():
    for n in (12, 100, 300):
        assert math.isclose(P.fpr_upper_bound(0, n), 1 - 0.05 ** (1 / n), rel_tol=1e-6)
    assert P.fpr_upper_bound(0, 300) < 0.01 < P.fpr_upper_bound(0, 298)  # "<= 1%" needs ~300 clean phases
    assert P.fpr_upper_bound(1, 100) > P.fpr_upper_bound(0, 100)
    assert P.fpr_upper_bound(3, 3) == 1.0


def test_margin_is_statistic_over_limit_and_none_when_not_judged():
    f = finding("posttrain_resident_state", 0.3, CONSISTENT, footprint_b=30.0, limit_b=60.0)
    assert P.margin(f) == 0.5
    g = finding("posttrain_backward_share", 0.6, INCONSISTENT, ratio=3.0, limit=1.5)
    assert P.margin(g) == 2.0
    assert P.margin(unverifiable("posttrain_served_drift", ["served"])) is None
    assert P.margin(finding("posttrain_weight_writes", 0.0, CONSISTENT, applies=False)) is None


def test_normal_tail_recovers_a_known_tail_and_handles_a_point_mass():
    rng = random.Random(0)
    xs = [rng.gauss(0.4, 0.2) for _ in range(4000)]
    fit = P.normal_tail(xs)  # P(X > 1) = P(Z > 3) = 1.35e-3
    assert 0.8e-3 < fit["tail"] < 2.2e-3
    assert abs(sum(x > fit["q90"] for x in xs) / len(xs) - 0.10) < 0.02
    logs = P.normal_tail([math.exp(rng.gauss(-1.0, 0.3)) for _ in range(4000)], log=True)
    assert logs["tail"] < 1e-3 and 0.3 < logs["q90"] < 0.6
    flat = P.normal_tail([0.0] * 10)
    assert flat["tail"] == 0.0 and flat["sd"] == 0.0
