"""Token-DiFR and eval re-computation for any declared family, against modules written
independently of the verifier (the workloads' own: a GELU MLP LM as nn.Sequential, a
GRU LM, an LSTMCell policy), served at 1 thread and re-computed at 1 and 2 threads."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

WORKLOADS = Path(__file__).resolve().parents[1] / "workloads"
sys.path.insert(0, str(WORKLOADS))

import _served_handover as handover  # noqa: E402
import chargru  # noqa: E402
import mlp_lm  # noqa: E402
import pg_sampler  # noqa: E402
from corpus import chars  # noqa: E402

from inspectorate.difr._anymodel import verify_weights_log  # noqa: E402
from inspectorate.difr._evalcheck import check_eval, read_eval_claim  # noqa: E402
from inspectorate.difr._log import read_log  # noqa: E402
from inspectorate.models import load_weights  # noqa: E402

VOCAB = chars()[1]  # characters of the workloads' corpus


def _desc(family: str, config: dict) -> dict:
    return {"format": "inspectorate.model", "version": 1, "family": family, "config": config}


def _mlp(seed: int = 0):
    torch.manual_seed(seed)
    return mlp_lm.Workload(context=8, embed=8, hidden=48, depth=2, batch_size=3, seq_len=8), _desc(
        "mlp", {"vocab_size": VOCAB, "context_len": 8, "d_embed": 8, "hidden": [48, 48], "activation": "gelu"}
    )


def _gru(seed: int = 0):
    torch.manual_seed(seed)
    return chargru.Workload(hidden=24, layers=2, batch_size=3, seq_len=10), _desc(
        "rnn", {"cell": "gru", "vocab_size": VOCAB, "d_embed": 24, "hidden": 24, "n_layers": 2}
    )


def _lstm(seed: int = 0):
    torch.manual_seed(seed)
    return pg_sampler.Workload(hidden=24, batch_size=3, seq_len=10), _desc(
        "rnn", {"cell": "lstm", "vocab_size": 32, "d_embed": 24, "hidden": 24, "n_layers": 1}
    )


def _handover(run: Path, wl, desc: dict, do: str, steps: int = 3, served_by=None) -> Path:
    """Hand over ``wl``'s weights; the outputs are ``served_by``'s (default: ``wl``)."""
    (run / "models").mkdir(parents=True, exist_ok=True)
    (run / "models" / "m.json").write_text(json.dumps(desc))
    phase = {"name": do, "do": do, "claim": {"op": "inference" if do == "serve" else "eval", "model": "m"}}
    torch.set_num_threads(1)
    h = handover.Handover(wl, phase, run, "")
    if served_by is not None:
        served_by.noise = h._noise
        h.workload = served_by
    for _ in range(steps):
        getattr(h.workload, do)()
        h.step()
    h.close()
    return run / "claims" / do


@pytest.mark.parametrize("make", [_mlp, _gru, _lstm], ids=["mlp-gelu", "gru", "lstm"])
def test_honest_log_of_an_independent_module_is_consistent(tmp_path, make):
    wl, desc = make()
    d = _handover(tmp_path, wl, desc, "serve")
    torch.set_num_threads(2)
    report = verify_weights_log(read_log(d / "served.jsonl"), load_weights(d / "weights.pt"), draw_seed=0)
    assert report.decision == "consistent", report.reasons
    data = report.to_dict()
    assert data["token_difr"]["max_score"] <= data["token_difr"]["threshold"]
    assert data["sequences"] == 9


@pytest.mark.parametrize("make", [_mlp, _gru, _lstm], ids=["mlp-gelu", "gru", "lstm"])
def test_outputs_of_another_model_are_inconsistent(tmp_path, make):
    declared, desc = make(0)
    other, _ = make(1)  # same family and size, other weights: what a swapped model serves
    # 18 sequences: untrained, near-uniform models agree on many tokens, and the sampler's
    # seed is fresh each run. With 9 sequences the swap read consistent in 1 of 200 runs
    # (once in CI); with 18, 200 of 200 runs were inconsistent with 3 to 14 flagged.
    d = _handover(tmp_path, declared, desc, "serve", steps=6, served_by=other)
    report = verify_weights_log(read_log(d / "served.jsonl"), load_weights(d / "weights.pt"), draw_seed=0)
    assert report.decision == "inconsistent"
    assert len(report.flagged_token) >= 2


def test_log_naming_other_weights_is_inconsistent(tmp_path):
    wl, desc = _gru()
    d = _handover(tmp_path, wl, desc, "serve")
    log = read_log(d / "served.jsonl")
    other, _ = _gru(1)
    handover.write_weights(d / "weights.pt", desc, other.handover_module(), "")
    report = verify_weights_log(log, load_weights(d / "weights.pt"), draw_seed=0)
    assert report.decision == "inconsistent"
    assert any("handed-over weights" in r for r in report.reasons)


@pytest.mark.parametrize("make", [_mlp, _gru], ids=["mlp-gelu", "gru"])
def test_eval_loss_recomputes_and_a_foreign_loss_does_not(tmp_path, make):
    wl, desc = make()
    d = _handover(tmp_path / "honest", wl, desc, "eval")
    claim = read_eval_claim(d / "eval.json")
    torch.set_num_threads(2)
    found = check_eval(claim, load_weights(claim.weights), draw_seed=0)
    assert found["decision"] == "consistent", found["evidence"]["reasons"]
    assert found["evidence"]["worst_over_tolerance"] < 1.0
    other, _ = make(1)
    d = _handover(tmp_path / "lie", wl, desc, "eval", served_by=other)
    claim = read_eval_claim(d / "eval.json")
    found = check_eval(claim, load_weights(claim.weights), draw_seed=0)
    assert found["decision"] == "inconsistent"


def test_unseeded_log_is_unverifiable(tmp_path):
    wl, desc = _lstm()
    d = _handover(tmp_path, wl, desc, "serve")
    lines = (d / "served.jsonl").read_text().splitlines()
    head = json.loads(lines[0])
    head["sampling"]["seed"] = None
    (d / "served.jsonl").write_text("\n".join([json.dumps(head), *lines[1:]]) + "\n")
    report = verify_weights_log(read_log(d / "served.jsonl"), load_weights(d / "weights.pt"))
    assert report.decision == "unverifiable"


class _Run:  # the two things served_run reads of a RunDir
    def __init__(self, path: Path, names: list[str]) -> None:
        self.path = path
        self._names = names

    def phases(self):
        return [type("P", (), {"name": n})() for n in self._names]


def test_verify_walks_handed_over_logs_and_eval_claims(tmp_path):
    from inspectorate.verify._served_run import served_run

    wl, desc = _gru()
    _handover(tmp_path, wl, desc, "serve")
    _handover(tmp_path, wl, desc, "eval")
    (tmp_path / "claims" / "broken").mkdir()
    (tmp_path / "claims" / "broken" / "served.jsonl").write_text("{}\n")
    found = served_run(_Run(tmp_path, ["serve", "eval", "broken", "idle"]), draw_seed=0)
    assert sorted(found) == ["broken", "eval", "serve"]
    serve, ev, broken = found["serve"][0], found["eval"][0], found["broken"][0]
    assert (serve.property, serve.decision, serve.basis) == ("served_model_identity", "consistent", ("difr",))
    assert serve.evidence["n_params"] == wl.n_params and serve.evidence["tokens"] == 3 * 3 * 10
    assert "Activation-DiFR skipped" in serve.evidence["activation_difr_skipped"]
    assert (ev.property, ev.decision) == ("eval_recompute", "consistent")
    assert broken.decision == "inconsistent"  # the prover's broken evidence, not a crash
