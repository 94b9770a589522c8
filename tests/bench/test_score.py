"""Scoring: AUROC, TPR at fixed FPR, and seeded bootstrap intervals."""

from __future__ import annotations

from inspectorate.bench._score import Scored, auroc, point, tpr_at_fpr, with_intervals


def _row(i, positive, decision, score):
    return Scored(f"c{i}", "op_type", "f" if positive else "honest", None, positive, decision, score, 0.1)


def test_auroc_and_tpr_at_fpr():
    assert auroc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert auroc([0.5], [0.5]) == 0.5
    assert auroc([], [0.1]) is None
    # 100 honest: at 1% FPR one honest case may score above the threshold
    neg = [i / 100 for i in range(100)]
    assert tpr_at_fpr([0.975, 0.985, 2.0], neg, 0.01) == 2 / 3
    assert tpr_at_fpr([0.975, 0.985, 2.0], neg, 0.001) == 1 / 3  # above every honest score


def test_counts_abstentions_and_failures():
    rows = [
        _row(0, True, "inconsistent", 0.9),
        _row(1, True, "consistent", 0.2),
        _row(2, True, "unverifiable", 0.5),
        _row(3, True, "error", 0.5),
        _row(4, False, "inconsistent", 0.7),
        _row(5, False, "consistent", 0.1),
    ]
    p = point(rows)
    assert p["caught"] == 0.25 and p["missed"] == 0.25 and p["abstained"] == 0.5
    assert p["honest_fpr"] == 0.5 and p["failed"] == 1 / 6


def test_intervals_are_seeded_and_bracket_the_value():
    rows = [_row(i, i % 3 == 0, "inconsistent" if i % 2 else "consistent", (i % 7) / 7) for i in range(40)]
    a = with_intervals(rows, seed=1, reps=200)
    assert a == with_intervals(rows, seed=1, reps=200)
    for k, m in a.items():
        if m["lo"] is not None:
            assert m["lo"] <= m["value"] <= m["hi"], k
