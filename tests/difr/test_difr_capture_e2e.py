"""End to end under ``inspectorate capture``: an independent MLP LM hands over its serve
and eval outputs; verify re-computes them and settles P2, and a ~20x larger model served
under a small one's claim is inconsistent (needs root for cgroups/namespaces)."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "workloads"))

import harness
from corpus import chars

from inspectorate.models import MLPSpec

VOCAB = chars()[1]  # the workloads' character ids (the whole corpus file's characters)

CONFIG = {"context": 8, "embed": 8, "hidden": 96, "depth": 2, "batch_size": 4, "seq_len": 8}


def _desc(hidden: int) -> dict:
    spec = {
        "vocab_size": VOCAB,
        "context_len": 8,
        "d_embed": 8,
        "hidden": [hidden, hidden],
        "activation": "gelu",
    }
    return {"format": "inspectorate.model", "version": 1, "family": "mlp", "config": spec}


@pytest.mark.slow
@pytest.mark.skipif(os.geteuid() != 0, reason="capture needs root (cgroups, network namespaces)")
def test_served_and_eval_outputs_settle_p2_and_a_bigger_model_fails(tmp_path):
    models = {}
    for name, hidden in (("mlp", 96), ("mlp-small", 21)):
        path = tmp_path / f"{name}.model.json"
        path.write_text(json.dumps(_desc(hidden)))
        models[name] = str(path)
    small = MLPSpec(VOCAB, 8, 8, (21, 21), "gelu").n_params()
    big = MLPSpec(VOCAB, 8, 8, (96, 96), "gelu").n_params()
    phases = [
        ("honest_serve", "serve", "inference", "mlp", big, {}),
        ("honest_eval", "eval", "eval", "mlp", big, {}),
        ("lie_big_as_small_serve", "serve", "inference", "mlp-small", small, {"handover_model": "mlp"}),
    ]
    plan = {
        "config": CONFIG,
        "records": "naive",
        "threads": 1,
        "handover": True,
        "phases": [
            {
                "name": n,
                "do": do,
                "seconds": 2.0,
                "claim": {"op": op, "label": op, "model": m, "n_params": p},
                **x,
            }
            for n, do, op, m, p, x in phases
        ],
    }
    out = tmp_path / "run"
    proc = harness.capture_run("mlp_lm.py", plan, out, claims={"models": models}, timeout_s=300)
    assert proc.returncode == 0, proc.stderr[-1500:]
    res = harness.outcomes(out, "strict")
    for phase in ("honest_serve", "honest_eval"):
        assert res[phase]["decisions"]["p2_model_size"] == "consistent", res[phase]
    key = "served_model_identity"
    assert res["honest_serve"]["decisions"][key] == "consistent"
    assert res["honest_eval"]["decisions"]["eval_recompute"] == "consistent"
    assert res["lie_big_as_small_serve"]["decisions"][key] == "inconsistent"
    assert res["lie_big_as_small_serve"]["outcome"] == "inconsistent"
