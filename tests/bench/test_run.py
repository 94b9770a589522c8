"""Three entries (ours, the threshold and forest baselines) scored on the public suite
with intervals; results never carry the truth unless the answers are handed in."""

from __future__ import annotations

import json

import pytest

from inspectorate.bench._case import TRACKS


def _entry(board, name):
    return next(e for e in board["entries"] if e["verifier"] == name)


def test_three_entries_scored_with_intervals(three_entries):
    out, board = three_entries
    assert [e["verifier"] for e in board["entries"]] == ["ours", "threshold", "forest"]
    for name, tracks in (
        ("ours", {"compliance", "finetune", "model_size"}),
        ("threshold", {"finetune", "model_size"}),
        ("forest", {"finetune", "model_size"}),
    ):
        entry = _entry(board, name)
        assert set(entry["tracks"]) == tracks, name
        for track, metrics in entry["tracks"].items():
            for key in ("caught", "honest_fpr", "auroc", "tpr_at_fpr_0.01", "tpr_at_fpr_0.001"):
                m = metrics[key]
                if name == "threshold" and track == "finetune":
                    continue  # it abstains on every finetune case: caught 0, no interval spread needed
                assert m["lo"] is not None and m["lo"] <= m["value"] <= m["hi"], (name, track, key, m)
    assert json.loads((out / "leaderboard.json").read_text()) == board
    assert "| 1 |" in (out / "leaderboard.md").read_text()


def test_ours_catches_the_size_lie_on_the_held_out_slice(three_entries):
    _, board = three_entries
    size = _entry(board, "ours")["tracks"]["model_size"]
    # adv_big_as_small on both hosts: the footprint physics must catch both, honest pass
    assert size["n_positive"]["value"] == 2
    assert size["caught"]["value"] == 1.0 and size["honest_fpr"]["value"] == 0.0


def test_families_hosts_cost_latency(three_entries):
    _, board = three_entries
    ours = _entry(board, "ours")
    assert "adv_big_as_small" in ours["families"]["model_size"]
    assert set(ours["hosts"]["model_size"]) == {"host0", "host1"}
    assert ours["latency"]["seconds_per_verdict"] > 0
    assert ours["cost"]["dollars_per_verdict"] == 0.0
    assert board["harness"]["verdict_seconds"] > 0


def test_results_hold_no_truth_without_answers(three_entries):
    out, _ = three_entries
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    assert rows and all(not {"truth", "family", "variant"} & set(r) for r in rows)
    for r in rows:
        assert r["verdict"] in TRACKS[r["track"]].decisions
        assert 0.0 <= r["score"] <= 1.0 and r["seconds"] >= 0


def test_forest_never_trains_on_the_host_it_scores(public, tmp_path):
    """Leave-one-host-out: a forest fit is given only the other host's cases."""
    from inspectorate.bench._baselines import Forest
    from inspectorate.bench._run import score_entry, views_for

    seen: list[set[str]] = []

    class Spy(Forest):
        def fit(self, views, answers):
            seen.append({v.case.host for v in views})
            super().fit(views, answers)

    from inspectorate.bench import Suite

    cases = [c for c in public.cases if c.track == "model_size"]
    suite = Suite(public.root, public.manifest, cases)
    entry = score_entry(Spy(), views_for(suite, tmp_path), public.answers(), 60.0, lambda _: None)
    tested = {}
    for row in entry.rows:
        tested.setdefault(next(c.host for c in cases if c.id == row["id"]), 0)
    assert seen[:2] == [{"host1"}, {"host0"}]
    assert set(tested) == {"host0", "host1"}


@pytest.mark.slow
def test_whole_public_suite_three_entries(tmp_path):
    """The challenge's done-condition at full size: every case of the public suite."""
    from inspectorate.bench import public_suite, run_bench

    board = run_bench(public_suite(), tmp_path / "out", ["ours"], reps=200, quiet=True)
    assert [e["verifier"] for e in board["entries"]] == ["ours", "threshold", "forest"]
    ours = _entry(board, "ours")
    assert set(ours["tracks"]) == {
        "compliance",
        "op_type",
        "undeclared_work",
        "model_size",
        "finetune",
        "served_identity",
    }
    assert all(m["n"]["value"] > 0 for m in ours["tracks"].values())


@pytest.mark.slow
def test_served_identity_track(tmp_path):
    """Track f: DiFR catches every dishonest server of the public suite, passes honest logs."""
    pytest.importorskip("torch")
    from inspectorate.bench import public_suite, run_bench

    board = run_bench(
        public_suite(),
        tmp_path / "out",
        ["ours"],
        select=["served_identity/*"],
        baselines=False,
        reps=100,
        quiet=True,
    )
    m = _entry(board, "ours")["tracks"]["served_identity"]
    assert m["n_positive"]["value"] == 4 and m["caught"]["value"] == 1.0 and m["honest_fpr"]["value"] == 0.0
