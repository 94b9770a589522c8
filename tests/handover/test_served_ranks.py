"""The public serve/eval handover beyond one rank and plain sampling: top-k / top-p
through the verifier's own sampler (``ServedLog.pick``), and several ranks writing one
log without coordination (parts merged by rank 0 on close). The module is the
stranger's Llama (tests/workloads/stranger/llama.py), written outside the project."""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

STRANGER = Path(__file__).resolve().parents[1] / "workloads" / "stranger"
sys.path.insert(0, str(STRANGER))

import llama  # noqa: E402

from inspectorate import handover  # noqa: E402
from inspectorate.difr._anymodel import verify_weights_log  # noqa: E402
from inspectorate.difr._log import read_log  # noqa: E402
from inspectorate.errors import InputError  # noqa: E402
from inspectorate.models import load_weights  # noqa: E402

VOCAB = 65
DESC = llama.describe(VOCAB, 16, 1, 2, 1, 24)


def _run(tmp_path: Path) -> Path:
    run = tmp_path / "run"
    (run / "models").mkdir(parents=True)
    (run / "models" / "m.json").write_text(json.dumps(DESC))
    (run / "sensor.jsonl").write_text(json.dumps({"kind": "start", "nonce": "c0ffee42"}) + "\n")
    return run


def _model(seed: int = 0) -> Any:
    torch.manual_seed(seed)
    model = llama.Llama(VOCAB, 16, 1, 2, 1, 24)
    with torch.no_grad():  # sharper than at initialisation, so top-k / top-p cut something
        model.lm_head.weight.mul_(40.0)  # logits of std ~3, not ~0.08
    return model


def _serve(log: Any, model: Any, sampler: str = "pick", batches: int = 3, b: int = 3, new: int = 8) -> None:
    """The stranger's KV-cache loop; ``sampler``: the log's own (``pick``) or plain
    Gumbel-max over every token (a server that ignores the top-k / top-p it declares)."""
    gen = torch.Generator().manual_seed(7 + log.rank)
    ids = torch.randint(0, VOCAB, (batches, b, 4), generator=gen)
    with torch.no_grad():
        for x in ids:
            noise = log.noise(None, b, new, VOCAB)
            caches: list = [{} for _ in model.layers]
            logits, out = model(x, caches)[:, -1], []
            for j in range(new):
                if sampler == "pick":
                    nxt = log.pick(logits, noise[:, j])[:, None]
                else:
                    nxt = (logits.double() / log.temperature + noise[:, j]).argmax(-1, keepdim=True)
                out.append(nxt)
                logits = model(nxt, caches)[:, -1]
            log.log(x, torch.cat(out, 1))
    log.close()


def _report(run: Path, phase: str) -> Any:
    d = run / "claims" / phase
    torch.set_num_threads(1)
    return verify_weights_log(read_log(d / "served.jsonl"), load_weights(d / "weights.pt"), draw_seed=0)


def test_top_k_top_p_serving_recomputes_and_ignoring_the_filter_does_not(tmp_path: Path) -> None:
    run, model = _run(tmp_path), _model()
    _serve(handover.served("s", model, "m", run=run, temperature=0.8, top_k=12, top_p=0.8), model)
    head = json.loads((run / "claims" / "s" / "served.jsonl").read_text().splitlines()[0])
    assert (head["sampling"]["top_k"], head["sampling"]["top_p"]) == (12, 0.8)
    report = _report(run, "s")
    assert report.decision == "consistent", report.reasons
    # the same noise, the declared weights, but sampled over every token: outside the
    # declared nucleus, which no honest re-computation picks
    lie = handover.served("lie", model, "m", run=run, temperature=0.8, top_k=12, top_p=0.5)
    _serve(lie, model, sampler="plain")
    report = _report(run, "lie")
    assert report.decision == "inconsistent"
    assert len(report.flagged_token) >= 2


def test_two_ranks_merge_into_one_log_that_recomputes(tmp_path: Path) -> None:
    run, model = _run(tmp_path), _model()
    logs = [handover.served("dp", model, "m", run=run, temperature=0.8, rank=r, world=2) for r in (0, 1)]
    first, second = logs[0].noise(None, 1, 2, VOCAB), logs[1].noise(None, 1, 2, VOCAB)
    assert not torch.equal(first, second)  # each rank's sequences have their own noise
    # rank 0 closes first and waits for rank 1's part, as a job without a barrier would
    done = threading.Thread(target=_serve, args=(logs[0], model))
    done.start()
    _serve(logs[1], model)
    done.join(timeout=60)
    assert not done.is_alive()
    folder = run / "claims" / "dp"
    assert sorted(p.name for p in folder.iterdir()) == ["served.jsonl", "weights.pt"]
    log = read_log(folder / "served.jsonl")
    assert [r.index for r in log.sequences] == list(range(18))
    assert log.header.server["ranks"] == 2
    report = _report(run, "dp")
    assert report.decision == "consistent", report.reasons
    assert report.to_dict()["sequences"] == 18


def test_two_eval_ranks_merge_and_recompute(tmp_path: Path) -> None:
    from inspectorate.difr._evalcheck import check_eval, read_eval_claim

    run, model = _run(tmp_path), _model()
    logs = [handover.evaluated("ev", model, "m", run=run, rank=r, world=2) for r in (1, 0)]
    gen = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for log in logs:
            for _ in range(2):
                rows = torch.randint(0, VOCAB, (2, 9), generator=gen)
                logits = model(rows[:, :-1], [{} for _ in model.layers])
                loss = torch.nn.functional.cross_entropy(logits.reshape(-1, VOCAB), rows[:, 1:].reshape(-1))
                log.batch(rows, float(loss))
            log.close()
    claim = read_eval_claim(run / "claims" / "ev" / "eval.json")
    found = check_eval(claim, load_weights(claim.weights), draw_seed=0)
    assert found["decision"] == "consistent", found["evidence"]["reasons"]
    lines = (run / "claims" / "ev" / "eval_batches.jsonl").read_text().splitlines()
    assert [json.loads(x)["index"] for x in lines] == [0, 1, 2, 3]


def test_rank_errors_are_one_line_input_errors(tmp_path: Path) -> None:
    run = _run(tmp_path)
    with pytest.raises(InputError, match="rank"):
        handover.served("p", _model(), "m", run=run, rank=2, world=2)
    with pytest.raises(InputError, match="top_p"):
        handover.served("p", _model(), "m", run=run, top_p=1.5)
    with pytest.raises(InputError, match="top_k"):
        handover.served("p", _model(), "m", run=run, top_k=0)
    # rank 1 ran other weights: refused at the merge, naming the hashes
    a = handover.served("q", _model(0), "m", run=run, rank=0, world=2)
    b = handover.served("q", _model(1), "m", run=run, rank=1, world=2)
    b.close()
    with pytest.raises(InputError, match="different weights") as err:
        a.close()
    assert "\n" not in str(err.value)
    # a rank that never closes: rank 0 gives up after its timeout, naming the rank
    c = handover.served("r", _model(), "m", run=run, rank=0, world=3)
    handover.served("r", _model(), "m", run=run, rank=2, world=3).close()
    with pytest.raises(InputError, match=r"rank\(s\) 1 after"):
        c.close(timeout_s=0.2)
