"""The stranger's DataLoader-fed LM (tests/workloads/stranger/loader_lm.py: torch's own
``nn.TransformerEncoderLayer``, its q, k, v in one ``in_proj_weight``), run as its own
process with a plan that asks for handovers: its tensors map onto the ``gpt`` family by
``names=``, the batches it serves and evaluates re-compute against the weights it handed
over, and its training loop (windows cut by loader workers, each sent with its start)
replays from its claim; a declared-size twin's outputs are handed over under the twin's
own weights. Public API only on the workload's side."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

LOADER = Path(__file__).resolve().parents[1] / "workloads" / "stranger" / "loader_lm.py"
sys.path.insert(0, str(LOADER.parent))

import loader_lm  # noqa: E402

CORPUS = loader_lm.CORPUS  # the workload's own lookup: STRANGER_CORPUS or the checkout's sibling shared/
CFG = {"d": 16, "layers": 2, "heads": 2, "ctx": 32, "batch": 2, "workers": 1}
TWIN = {"d": 8}
NEEDS_CORPUS = pytest.mark.skipif(not CORPUS.is_file(), reason=f"needs the corpus {CORPUS}")


@pytest.mark.slow
@NEEDS_CORPUS
def test_loader_lm_hands_over_and_everything_recomputes(tmp_path: Path) -> None:
    from inspectorate.difr._anymodel import verify_weights_log
    from inspectorate.difr._evalcheck import check_eval, read_eval_claim
    from inspectorate.difr._log import read_log
    from inspectorate.models import load_corpus, load_weights
    from inspectorate.replay import read_claim, replay_claim

    (tmp_path / "models").mkdir()
    for name, cfg in (("m", CFG), ("small", {**CFG, **TWIN})):
        (tmp_path / "models" / f"{name}.json").write_text(json.dumps(loader_lm.describe(65, cfg)))
    (tmp_path / "sensor.jsonl").write_text(json.dumps({"nonce": "f00d"}) + "\n")
    rows = [("t", "train", "training", "m"), ("s", "serve", "inference", "m"), ("e", "eval", "eval", "m")]
    phases = [
        {"name": n, "do": do, "seconds": 0.8, "claim": {"op": op, "model": m}, "handover": do == "train"}
        for n, do, op, m in rows
    ]
    phases.append(  # a competent liar: the twin's outputs, under the small model's name
        {"name": "tw", "do": "serve", "seconds": 0.5, "claim": {"op": "inference", "model": "small"}}
        | {"shadow_config": TWIN}
    )
    plan = {"config": CFG, "records": "none", "phases": phases, "handover": True}
    (tmp_path / "plan.json").write_text(json.dumps(plan))
    env = {**os.environ, "INSPECTORATE_RUN_DIR": str(tmp_path), "STRANGER_CORPUS": str(CORPUS)}
    proc = subprocess.run(
        [sys.executable, str(LOADER), str(tmp_path / "plan.json")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    torch.set_num_threads(1)
    d = tmp_path / "claims"
    for phase in ("s", "tw"):
        log = read_log(d / phase / "served.jsonl")
        assert log.sequences, phase
        report = verify_weights_log(log, load_weights(d / phase / "weights.pt"), draw_seed=0)
        assert report.decision == "consistent", (phase, report.reasons)
    twin = load_weights(d / "tw" / "weights.pt")
    assert twin.spec.to_dict()["config"]["n_embd"] == TWIN["d"]  # the twin's weights, not the run's
    claim = read_eval_claim(d / "e" / "eval.json")
    assert check_eval(claim, load_weights(claim.weights), draw_seed=0)["decision"] == "consistent"
    train = read_claim(d / "t" / "claim.json")
    assert train.spec.steps >= 1 and train.spec.optimizer["name"] == "adamw" and train.nonce_key == "t"
    result = replay_claim(train, load_corpus(CORPUS))
    assert result.decision == "consistent", result.reasons


def test_names_cover_the_gpt_family_and_the_module() -> None:
    from inspectorate.models import spec_from_dict

    spec = spec_from_dict(loader_lm.describe(65, CFG))
    with torch.device("meta"):
        wanted = set(spec.build().state_dict())
    model = loader_lm.LoaderLM(65, CFG["d"], CFG["layers"], CFG["heads"], CFG["ctx"])
    mapping = loader_lm.names(CFG["layers"])
    assert set(mapping) == wanted
    assert set(mapping.values()) == set(model.state_dict())  # every tensor of the module handed over


def test_a_served_sequence_past_the_declared_context_is_not_recomputed_and_not_a_crash(
    tmp_path: Path,
) -> None:
    """A sampler that slides its window past the context writes sequences teacher forcing
    through the declared model cannot re-compute: the finding says so (unverifiable),
    where verify used to stop on a ValueError traceback."""
    from inspectorate import handover
    from inspectorate.verify._served_run import _recompute

    model = loader_lm.LoaderLM(65, 16, 1, 2, 16)
    desc = loader_lm.describe(65, {"d": 16, "layers": 1, "heads": 2, "ctx": 16})
    os.environ["INSPECTORATE_RUN_DIR"] = str(tmp_path)
    try:
        with handover.served(
            "serve", model, desc, temperature=0.8, seed=1, names=loader_lm.names(1), check=False
        ) as log:
            log.log([[1] * 8], [[2] * 16])
    finally:
        os.environ.pop("INSPECTORATE_RUN_DIR", None)
    served = next(tmp_path.rglob("served.jsonl"))
    found = _recompute(served, 0)
    assert found["decision"] == "unverifiable", found
    assert "past the declared model's context of 16" in json.dumps(found)
