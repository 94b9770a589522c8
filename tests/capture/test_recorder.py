"""StepRecorder on a tiny torch model: record shape, norms per group, frozen groups,
fingerprints, inference tokens, and import without torch."""

from __future__ import annotations

import math
import subprocess
import sys
from pathlib import Path

import pytest

from inspectorate.capture import StepRecorder
from inspectorate.capture._recorder import SCHEMA
from inspectorate.capture._torch_stats import default_param_group
from inspectorate.trace import verify_chain
from inspectorate.trace.streams import read_chain_file

torch = pytest.importorskip("torch")


class TinyGPTish(torch.nn.Module):
    """Parameter names like nanoGPT's, so every default group is present."""

    def __init__(self, vocab: int = 11, dim: int = 8) -> None:
        super().__init__()
        self.wte = torch.nn.Embedding(vocab, dim)
        self.blocks = torch.nn.ModuleList([torch.nn.Linear(dim, dim) for _ in range(2)])
        self.ln_f = torch.nn.LayerNorm(dim)
        self.lm_head = torch.nn.Linear(dim, vocab, bias=False)

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        h = self.wte(idx)
        for block in self.blocks:
            h = h + torch.relu(block(h))
        return self.lm_head(self.ln_f(h))


def _train(recorder: StepRecorder, model: TinyGPTish, steps: int) -> list[dict]:
    torch.manual_seed(0)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
    out = []
    for step in range(steps):
        idx = torch.randint(0, 11, (4, 6))
        loss = torch.nn.functional.cross_entropy(model(idx).reshape(-1, 11), idx.reshape(-1))
        loss.backward()
        opt.step()
        out.append(
            recorder.train_step(
                step,
                loss=loss,
                model=model,
                optimizer=opt,
                lr=1e-3,
                tokens=24,
                forward_s=0.01,
                backward_s=0.02,
                optimizer_s=0.005,
            )
        )
        opt.zero_grad()
    return out


def test_default_param_group_names() -> None:
    assert default_param_group("transformer.wte.weight") == "embed"
    assert default_param_group("pos_emb") == "embed"
    assert default_param_group("transformer.h.3.attn.c_attn.weight") == "blocks"
    assert default_param_group("transformer.h.0.ln_1.weight") == "blocks"
    assert default_param_group("blocks.1.weight") == "blocks"
    assert default_param_group("lm_head.weight") == "head"
    assert default_param_group("transformer.ln_f.bias") == "ln"
    assert default_param_group("something_else") == "other"


def test_train_step_records_norms_and_a_frozen_group(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TinyGPTish()
    model.wte.weight.requires_grad_(False)  # fine-tune style: frozen embeddings
    with StepRecorder(tmp_path / "steps.jsonl", phase="finetune", rank=1, fingerprint_every=2) as rec:
        train = _train(rec, model, 3)
        # grads of the last step are gone (zero_grad), so recompute the expected norm now
    last = train[-1]
    assert last["schema"] == SCHEMA and last["kind"] == "train_step"
    assert last["phase"] == "finetune" and last["rank"] == 1 and last["step"] == 2
    assert isinstance(last["t"], float) and last["record_id"].startswith("step_r1_")
    groups = last["grad_norms_per_group"]
    assert groups["embed"] == 0.0 and last["frozen_groups"] == ["embed"]
    assert groups["blocks"] > 0 and groups["head"] > 0 and groups["ln"] > 0
    assert last["grad_norm"] == pytest.approx(math.sqrt(sum(v * v for v in groups.values())), rel=1e-6)
    assert last["weight_norms_per_group"]["embed"] == pytest.approx(model.wte.weight.norm().item(), rel=1e-5)
    assert last["optimizer_state_norms"]["tracked_params"] == len(
        [p for p in model.parameters() if p.requires_grad]
    )
    assert last["optimizer_state_norms"]["adam_v_norm"] > 0
    assert last["tokens_per_second"] == pytest.approx(24 / 0.035)
    assert last["forward_ms"] == 10.0 and last["telemetry"]["process_rss_mb"] > 0
    records, torn = read_chain_file(tmp_path / "steps.jsonl")
    assert not torn and verify_chain(records) == []
    assert [r["kind"] for r in records] == [
        "train_step",
        "fingerprint",
        "train_step",
        "train_step",
        "fingerprint",
    ]


def test_global_grad_norm_matches_torch(tmp_path: Path) -> None:
    torch.manual_seed(1)
    model = TinyGPTish()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    idx = torch.randint(0, 11, (4, 6))
    loss = torch.nn.functional.cross_entropy(model(idx).reshape(-1, 11), idx.reshape(-1))
    loss.backward()
    expected = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()]).item()
    opt.step()
    with StepRecorder(tmp_path / "s.jsonl", phase="p", fingerprint_every=0) as rec:
        record = rec.train_step(
            0,
            loss=loss,
            model=model,
            optimizer=opt,
            lr=1e-3,
            tokens=24,
            forward_s=0.0,
            backward_s=0.0,
            optimizer_s=0.0,
        )
    assert record["grad_norm"] == pytest.approx(expected, rel=1e-5)
    assert record["loss"] == pytest.approx(loss.item())
    assert record["tokens_per_second"] is None  # zero step time: no rate rather than inf


def test_fingerprint_changes_with_weights_only(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = TinyGPTish()
    with StepRecorder(tmp_path / "s.jsonl", phase="p") as rec:
        a = rec.fingerprint(0, model)
        b = rec.fingerprint(1, model)
        with torch.no_grad():
            model.lm_head.weight[0, 0] += 1e-3
        c = rec.fingerprint(2, model)
    assert a["weights_sha256"] == b["weights_sha256"] != c["weights_sha256"]
    assert a["model_hash_prefix"] == "sha256:" + a["weights_sha256"][:16]
    assert len(a["top_tensors"]) == 5
    assert a["top_tensors"][0]["name"] == "lm_head.weight"  # 88 elements, ties broken by name
    stats = a["top_tensors"][0]
    assert stats["min"] <= stats["mean"] <= stats["max"] and stats["std"] > 0
    assert set(a["weight_norms_per_group"]) == {"embed", "blocks", "ln", "head"}


def test_infer_token_entropy_and_kl(tmp_path: Path) -> None:
    with StepRecorder(tmp_path / "s.jsonl", phase="serve") as rec:
        first = rec.infer_token(0, logits=torch.zeros(1, 16), latency_s=0.002, kv_bytes=4096, token=3)
        second = rec.infer_token(1, logits=torch.zeros(16), latency_s=0.002, kv_bytes=8192, token=5)
        peaked = rec.infer_token(
            2, logits=torch.tensor([10.0] + [0.0] * 15), latency_s=0.001, kv_bytes=1, token=0
        )
    assert first["entropy"] == pytest.approx(math.log(16), rel=1e-5)
    assert first["top1_prob"] == pytest.approx(1 / 16) and first["kl_prev"] is None
    assert second["kl_prev"] == pytest.approx(0.0, abs=1e-6)
    assert peaked["top1_id"] == 0 and peaked["top1_prob"] > 0.99 and peaked["kl_prev"] > 0
    assert first["latency_ms"] == 2.0 and second["kv_bytes"] == 8192


def test_eval_event_and_nonfinite_loss(tmp_path: Path) -> None:
    with StepRecorder(tmp_path / "s.jsonl", phase="eval") as rec:
        ev = rec.eval_step(0, loss=float("nan"), tokens=100, seconds=0.5)
        custom = rec.event("checkpoint", step=7, path="ckpt.pt")
    assert ev["loss"] is None and ev["tokens_per_second"] == 200.0
    assert custom["kind"] == "checkpoint" and custom["step"] == 7 and custom["path"] == "ckpt.pt"
    records, _ = read_chain_file(tmp_path / "s.jsonl")
    assert verify_chain(records) == []


def test_import_capture_does_not_import_torch() -> None:
    code = "import sys, inspectorate.capture; assert 'torch' not in sys.modules, 'torch imported'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr


def test_a_finished_phase_model_is_not_kept_alive(tmp_path: Path) -> None:
    """A long-lived rank's recorder once held the last trained model through every later
    phase (500 MB a rank at 124M), and the sensor read it as the next phase's memory."""
    import gc
    import weakref

    torch.manual_seed(2)
    model = TinyGPTish()
    opt = torch.optim.SGD(model.parameters(), lr=1e-3)
    idx = torch.randint(0, 11, (2, 6))
    loss = torch.nn.functional.cross_entropy(model(idx).reshape(-1, 11), idx.reshape(-1))
    loss.backward()
    with StepRecorder(tmp_path / "s.jsonl", phase="train", fingerprint_every=0) as rec:
        rec.train_step(
            0, loss=loss, model=model, optimizer=opt, lr=1e-3, tokens=12,
            forward_s=0.1, backward_s=0.1, optimizer_s=0.1,
        )  # fmt: skip
        alive = weakref.ref(model)
        del model, opt, loss
        rec.set_phase("serve")
        gc.collect()
        assert alive() is None
