"""The stranger's Llama (tests/workloads/stranger/llama.py), run as its own process with a
plan that asks for handovers: its serve and eval outputs re-compute against the weights
it handed over, and its training loop (AdamW, warmup-cosine, accumulation, clipping)
replays from its claim. Public API only on the workload's side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

LLAMA = Path(__file__).resolve().parents[1] / "workloads" / "stranger" / "llama.py"
sys.path.insert(0, str(LLAMA.parent))

import llama  # noqa: E402

CORPUS = Path(
    os.environ.get(
        "STRANGER_CORPUS",
        Path(__file__).resolve().parents[2].parent / "shared" / "data" / "corpora" / "tinyshakespeare.txt",
    )
)  # the checkout's sibling shared/ (tests/conftest.py), not a fixed path
CFG = {"dim": 16, "layers": 1, "heads": 2, "kv_heads": 1, "ffn": 24, "batch": 2, "seq": 16}
DESC = llama.describe(65, *(CFG[k] for k in ("dim", "layers", "heads", "kv_heads", "ffn")))
pytestmark = pytest.mark.skipif(not CORPUS.is_file(), reason=f"needs the corpus {CORPUS}")


def test_stranger_llama_hands_over_and_everything_recomputes(tmp_path: Path) -> None:
    from inspectorate.difr._anymodel import verify_weights_log
    from inspectorate.difr._evalcheck import check_eval, read_eval_claim
    from inspectorate.difr._log import read_log
    from inspectorate.models import load_corpus, load_weights
    from inspectorate.replay import read_claim, replay_claim

    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "m.json").write_text(json.dumps(DESC))
    (tmp_path / "sensor.jsonl").write_text(json.dumps({"nonce": "f00d"}) + "\n")
    phases = [
        {"name": n, "do": do, "seconds": 0.6, "claim": {"op": op, "model": "m"}, "handover": do == "train"}
        for n, do, op in (("s", "serve", "inference"), ("e", "eval", "eval"), ("t", "train", "training"))
    ]
    plan = {"config": CFG, "records": "none", "phases": phases, "handover": True}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    env = {**os.environ, "INSPECTORATE_RUN_DIR": str(tmp_path), "STRANGER_CORPUS": str(CORPUS)}
    proc = subprocess.run(
        [sys.executable, str(LLAMA), str(tmp_path / "plan.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    torch.set_num_threads(1)
    d = tmp_path / "claims"
    report = verify_weights_log(
        read_log(d / "s" / "served.jsonl"), load_weights(d / "s" / "weights.pt"), draw_seed=0
    )
    assert report.decision == "consistent", report.reasons
    claim = read_eval_claim(d / "e" / "eval.json")
    assert check_eval(claim, load_weights(claim.weights), draw_seed=0)["decision"] == "consistent"
    train = read_claim(d / "t" / "claim.json")
    assert train.spec.grad_accum == 2 and train.spec.clip_grad_norm == 1.0 and train.nonce_key == "t"
    result = replay_claim(train, load_corpus(CORPUS))
    assert result.decision == "consistent", result.reasons
