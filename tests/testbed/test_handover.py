"""A testbed serve or eval phase hands over what the verifier re-computes (testbed.handover):
two ranks' served sequences under the challenge's seed re-compute with the handed-over
weights; a log served by another model than the weights handed over does not."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from inspectorate.capture._nonce import derive_seed  # noqa: E402
from inspectorate.models._gpt import GPT, PRESETS, count_params  # noqa: E402
from inspectorate.testbed.handover import Handover, merge  # noqa: E402
from inspectorate.verify._served_run import _recompute, handed_over_served  # noqa: E402

NONCE = "ab" * 16
VOCAB = "".join(chr(c) for c in range(40, 40 + 65))


def _model(seed: int) -> GPT:
    torch.manual_seed(seed)
    model = GPT(PRESETS["micro"]).eval()
    with torch.no_grad():  # random weights with logits worth sampling (not near-uniform)
        for p in model.parameters():
            p.normal_(0.0, 0.3)
    return model


def _serve(run: Path, declared: GPT, served_by: GPT, sequences: int = 3, new: int = 12) -> None:
    """Both ranks serve ``sequences`` batches of 2 prompts; ``declared``'s weights are
    handed over, ``served_by`` computes the tokens (the same model when honest)."""
    parts = []
    for rank in range(2):
        h = Handover(run, run / "scratch", "serve", rank, 2, NONCE)
        h.begin("serve", declared, VOCAB)
        g = torch.Generator().manual_seed(rank)
        for _ in range(sequences):
            prompt = torch.randint(0, 65, (2, 6), generator=g)
            h.start_sequences(prompt)
            with torch.no_grad():
                logits, _, cache = served_by(prompt)
                for _ in range(new):
                    token = h.sample(logits[:, -1])
                    logits, _, cache = served_by(token, cache=cache)
        h.finish()
        parts.append(h)
    merge(run, run / "scratch", "serve", 2, parts[0].seed)


def test_two_ranks_served_log_recomputes_under_the_challenge_seed(tmp_path: Path) -> None:
    model = _model(1)
    _serve(tmp_path, model, model)
    log = tmp_path / "claims" / "serve" / "served.jsonl"
    lines = [json.loads(x) for x in log.read_text().splitlines()]
    assert lines[0]["sampling"]["seed"] == derive_seed(NONCE, "serve:serve")
    assert sorted(d["index"] for d in lines[1:]) == list(range(12))  # 2 ranks x 3 batches x 2 rows
    data = _recompute(log, draw_seed=5)
    assert data["decision"] == "consistent", data["evidence"]
    assert data["evidence"]["n_params"] == count_params(PRESETS["micro"])
    assert data["evidence"]["tokens"] == 12 * 12


def test_another_models_outputs_do_not_recompute(tmp_path: Path) -> None:
    """The prover hands over the declared model's weights but served another model's
    outputs (a larger or different model doing the work): the log is not a confession."""
    _serve(tmp_path, _model(1), _model(2))
    data = _recompute(tmp_path / "claims" / "serve" / "served.jsonl", draw_seed=5)
    assert data["decision"] == "inconsistent", data["evidence"]


def test_eval_batches_recompute_and_a_phase_that_never_served_hands_over_nothing(tmp_path: Path) -> None:
    model = _model(3)
    h = Handover(tmp_path, tmp_path / "scratch", "ev", 0, 1, NONCE)
    h.begin("eval", model, VOCAB)
    g = torch.Generator().manual_seed(0)
    for _ in range(3):
        rows = torch.randint(0, 65, (2, 17), generator=g)
        x, y = rows[:, :-1], rows[:, 1:]
        with torch.no_grad():
            _, loss, _ = model(x, y)
        h.evaluated(x, y, float(loss))
    h.finish()
    assert merge(tmp_path, tmp_path / "scratch", "ev", 1, h.seed) == tmp_path / "claims" / "ev" / "eval.json"
    data = _recompute(tmp_path / "claims" / "ev" / "eval.json", draw_seed=5)
    assert data["decision"] == "consistent", data["evidence"]
    idle = Handover(tmp_path, tmp_path / "scratch", "idle", 0, 1, NONCE)
    idle.finish()
    assert merge(tmp_path, tmp_path / "scratch", "idle", 1, idle.seed) is None
    assert not (tmp_path / "claims" / "idle").exists()
    assert handed_over_served  # the verifier's finder reads these names (claims/<phase>/...)
