"""The public handover (``inspectorate.handover``) with a module written outside the
project (the stranger's Llama, tests/workloads/stranger/llama.py): the seed is the
challenge's, a served log and eval batches re-compute against the handed-over weights,
and a training claim with accumulation, a rate schedule and clipping replays."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")

STRANGER = Path(__file__).resolve().parents[1] / "workloads" / "stranger"
sys.path.insert(0, str(STRANGER))

import llama  # noqa: E402

from inspectorate import handover  # noqa: E402
from inspectorate.capture._nonce import derive_seed  # noqa: E402
from inspectorate.errors import InputError  # noqa: E402
from inspectorate.models import load_corpus  # noqa: E402

NONCE = "5f3c0ffee"
CFG = {"dim": 16, "layers": 1, "heads": 2, "kv_heads": 1, "ffn": 24}
VOCAB = 65  # tinyshakespeare's characters
DESC = llama.describe(VOCAB, 16, 1, 2, 1, 24)


def _run(tmp_path: Path, nonce: str | None = NONCE) -> Path:
    run = tmp_path / "run"
    (run / "models").mkdir(parents=True)
    (run / "models" / "m.json").write_text(json.dumps(DESC))
    if nonce is not None:
        (run / "sensor.jsonl").write_text(json.dumps({"kind": "start", "nonce": nonce}) + "\n")
    return run


def _model(seed: int = 0) -> Any:
    torch.manual_seed(seed)
    return llama.Llama(VOCAB, CFG["dim"], CFG["layers"], CFG["heads"], CFG["kv_heads"], CFG["ffn"])


def test_seeds_come_from_the_sensors_nonce(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _run(tmp_path)
    monkeypatch.setenv("INSPECTORATE_RUN_DIR", str(run))
    assert handover.challenge_seed("serve:p") == derive_seed(NONCE, "serve:p")
    log = handover.served("p", _model(), "m")
    log.close()
    head = json.loads((run / "claims" / "p" / "served.jsonl").read_text().splitlines()[0])
    assert head["sampling"]["seed"] == derive_seed(NONCE, "serve:p") != derive_seed("other", "serve:p")


def _serve(log: Any, model: Any, batches: int = 3, b: int = 3, prompt: int = 4, new: int = 8) -> None:
    """The stranger's KV-cache loop with its sampler on the keyed noise (temperature 0.8)."""
    ids = torch.randint(0, VOCAB, (batches, b, prompt), generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        for x in ids:
            noise = log.noise(None, b, new, VOCAB)
            caches: list = [{} for _ in model.layers]
            logits, out = model(x, caches)[:, -1], []
            for j in range(new):
                nxt = (logits.double() / 0.8 + noise[:, j]).argmax(-1, keepdim=True)
                out.append(nxt)
                logits = model(nxt, caches)[:, -1]
            log.log(x, torch.cat(out, 1))
    log.close()


def test_served_log_recomputes_and_another_models_does_not(tmp_path: Path) -> None:
    from inspectorate.difr._anymodel import verify_weights_log
    from inspectorate.difr._log import read_log
    from inspectorate.models import load_weights

    torch.set_num_threads(1)
    run = _run(tmp_path)
    model = _model()
    _serve(handover.served("s", model, "m", run=run, temperature=0.8), model)
    d = run / "claims" / "s"
    report = verify_weights_log(read_log(d / "served.jsonl"), load_weights(d / "weights.pt"), draw_seed=0)
    assert report.decision == "consistent", report.reasons
    assert report.to_dict()["sequences"] == 9
    # the declared weights handed over, another model's outputs logged
    _serve(handover.served("lie", model, "m", run=run, temperature=0.8), _model(1))
    d = run / "claims" / "lie"
    report = verify_weights_log(read_log(d / "served.jsonl"), load_weights(d / "weights.pt"), draw_seed=0)
    assert report.decision == "inconsistent"


def test_eval_batches_recompute(tmp_path: Path) -> None:
    from inspectorate.difr._evalcheck import check_eval, read_eval_claim
    from inspectorate.models import load_weights

    run, model = _run(tmp_path), _model()
    ev = handover.evaluated("e", model, "m", run=run)
    with torch.no_grad():
        for i in range(3):
            rows = torch.randint(0, VOCAB, (2, 12), generator=torch.Generator().manual_seed(i))
            logits = model(rows[:, :-1])
            ev.batch(
                rows, float(torch.nn.functional.cross_entropy(logits.flatten(0, 1), rows[:, 1:].flatten()))
            )
    ev.close()
    claim = read_eval_claim(run / "claims" / "e" / "eval.json")
    found = check_eval(claim, load_weights(claim.weights), draw_seed=0)
    assert found["decision"] == "consistent", found["evidence"]


def _train(run: Path, corpus: Path, steps: int = 3, accum: int = 2, micro: int = 2, seq: int = 16) -> Path:
    """The stranger's loop: AdamW, warmup-cosine per step, accumulation, clipping."""
    model = _model()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, betas=(0.9, 0.95), weight_decay=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: (s + 1) / 2 if s < 2 else 0.5 * (1 + math.cos(s))
    )
    tr = handover.training(
        "t", model, opt, "m", corpus=corpus, seq_len=seq, grad_accum=accum, clip_grad_norm=0.5,
        checkpoint_every_s=0.0, run=run,
    )  # fmt: skip
    data = torch.from_numpy(tr.tokens)
    gen = torch.Generator().manual_seed(3)
    for _ in range(steps):
        starts = []
        for _ in range(accum):
            s = torch.randint(0, len(data) - seq - 1, (micro,), generator=gen)
            x = torch.stack([data[i : i + seq] for i in s])
            y = torch.stack([data[i + 1 : i + seq + 1] for i in s])
            loss = torch.nn.functional.cross_entropy(model(x).flatten(0, 1), y.flatten()) / accum
            loss.backward()
            starts += s.tolist()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        tr.step(starts)
        sched.step()
        opt.zero_grad(set_to_none=True)
    path = tr.finish()
    assert path is not None
    return path


def test_training_claim_with_accumulation_schedule_and_clipping_replays(tmp_path: Path) -> None:
    from inspectorate.replay import read_claim, replay_claim

    if not llama.CORPUS.is_file():
        pytest.skip(f"needs the corpus {llama.CORPUS}")
    torch.set_num_threads(1)
    path = _train(_run(tmp_path), llama.CORPUS)
    claim = read_claim(path)
    s = claim.spec
    assert (s.grad_accum, s.batch_size, s.clip_grad_norm, s.steps) == (2, 4, 0.5, 3)
    assert s.lr_schedule is not None and len(set(s.lr_schedule)) == 3
    assert claim.nonce_key == "t" and s.seed == derive_seed(NONCE, "t")
    corpus = load_corpus(llama.CORPUS)
    result = replay_claim(claim, corpus)
    assert result.decision == "consistent", result.reasons
    assert [seg.distance < 1e-3 for seg in result.segments] == [True] * 3
    # the rates a claim declares are what replays: a claim of another schedule does not
    data = json.loads(path.read_text())
    data["config"]["lr_schedule"] = [v * 3 for v in data["config"]["lr_schedule"]]
    path.write_text(json.dumps(data))
    assert replay_claim(read_claim(path), corpus).decision == "inconsistent"


def test_user_errors_are_one_line_input_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INSPECTORATE_RUN_DIR", raising=False)
    with pytest.raises(InputError, match="no run directory"):
        handover.served("p", _model(), "m")
    with pytest.raises(InputError, match="nonce|sensor"):
        handover.served("p", _model(), "m", run=_run(tmp_path / "a", nonce=None))
    run = _run(tmp_path / "b")
    wide = llama.Llama(VOCAB, 32, 1, 2, 1, 24)  # not the declared size
    with pytest.raises(InputError, match="shape") as err:
        handover.served("p", wide, "m", run=run)
    assert "\n" not in str(err.value)
    with pytest.raises(InputError, match="cannot read the declared model"):
        handover.evaluated("p", _model(), "absent", run=run)
    model = _model()
    groups = [
        {"params": list(model.parameters())[:2]},
        {"params": list(model.parameters())[2:], "eps": 1e-6},
    ]
    with pytest.raises(InputError, match="param groups differ in betas, eps"):
        handover.training("t", model, torch.optim.AdamW(groups), "m", corpus=llama.CORPUS, seq_len=8, run=run)
