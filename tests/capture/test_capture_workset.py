"""An evaluation inside a training run, as most training scripts do it: the optimizer
object lives on, so the process holds training's state while it evaluates. A stranger's
GPT-2-style LM from ``nn.TransformerEncoderLayer`` fed by a DataLoader with worker
processes (tests/workloads/stranger/loader_lm.py), above the memory-separation size,
through ``inspectorate capture``: the footprint alone read the honest evaluation as
training; the working set (capture._workset, probed at every phase edge) shows the
state untouched, while training claimed as eval touches it and stays inconsistent; and
the still part of the working set shows the lie rewriting its weights (weights_rewritten)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from inspectorate.capture._isolate import missing_rights
from inspectorate.capture._stillset import read_smaps

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "workloads"))
sys.path.insert(0, str(ROOT / "tests" / "workloads" / "stranger"))
import harness  # noqa: E402
from loader_lm import LoaderLM, describe  # noqa: E402

ISOLATION = missing_rights()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        bool(ISOLATION), reason=f"cgroups/network namespaces unavailable: {'; '.join(ISOLATION)}"
    ),
]
CONFIG = {"d": 512, "layers": 8, "heads": 8, "ctx": 64, "batch": 8, "workers": 1}


def test_eval_with_the_optimizer_alive_is_not_read_as_training(tmp_path: Path) -> None:
    import json
    import os

    if read_smaps(os.getpid()) is None:
        pytest.skip("this kernel reports no Referenced pages (smaps)")
    from inspectorate.verify import Inspector

    model = tmp_path / "loader.model.json"
    model.write_text(json.dumps(describe(65, {**CONFIG})))
    n = sum(
        p.numel()
        for p in LoaderLM(65, CONFIG["d"], CONFIG["layers"], CONFIG["heads"], CONFIG["ctx"]).parameters()
    )
    base = {"model": "loader", "n_params": n, "batch_size": CONFIG["batch"], "sequence_length": CONFIG["ctx"]}
    plan = {
        "config": CONFIG,
        "threads": 1,
        "phases": [
            {"name": "idle", "do": "idle", "seconds": 2, "claim": {"op": "idle"}},
            {"name": "train", "do": "train", "seconds": 5, "claim": {"op": "training", **base}},
            {"name": "honest_eval", "do": "eval", "seconds": 5, "claim": {"op": "eval", **base}},
            {"name": "lie_train_as_eval", "do": "train", "seconds": 5, "claim": {"op": "eval", **base}},
        ],
    }
    run = tmp_path / "run"
    proc = harness.capture_run("stranger/loader_lm.py", plan, run, claims={"models": {"loader": str(model)}})
    assert proc.returncode == 0, proc.stderr[-2000:]
    verdict = Inspector(properties=["p1_op_type"]).inspect(run)  # P1 alone: no spot-check to time
    phases = {p.phase: p for p in verdict.phases}
    p1 = {name: next(f for f in ph.findings if f.property == "p1_op_type") for name, ph in phases.items()}
    honest, lie = p1["honest_eval"], p1["lie_train_as_eval"]
    # the optimizer's state (and the gradients) resident during the eval: 12 B/param and more
    assert honest.evidence["footprint_b"] >= 12 * n, honest.evidence
    assert honest.decision == "consistent", honest.evidence
    assert honest.evidence["working_set_max_b"] < honest.evidence["working_set_bound_b"]
    assert lie.decision != "consistent", lie.evidence  # the footprint rule decides it (not this test)
    assert lie.evidence["working_set_max_b"] >= lie.evidence["working_set_bound_b"]
    # and what the lie cannot write: it touched a forward's worth of memory and left less
    # than the weights unchanged (capture._stillset); the honest eval left them as they were
    assert lie.evidence["checks"].get("weights_rewritten", 0) >= 0.5, lie.evidence
    assert "weights_rewritten" not in honest.evidence["checks"], honest.evidence
    assert honest.evidence["still_mean_b"] >= honest.evidence["still_needed_b"], honest.evidence
