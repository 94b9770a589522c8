"""P2/P3 read one optimizer step's all-reduce bytes even when DDP splits the step into
40+ gradient buckets (real DDP on a one-rank gloo group, tiny bucket cap)."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from inspectorate.capture import CollectiveLog, allreduce_logging_hook  # noqa: E402
from inspectorate.trace import read_collectives  # noqa: E402
from inspectorate.verify import Claim, PhaseEvidence  # noqa: E402
from inspectorate.verify._evidence import _grad_step  # noqa: E402
from inspectorate.verify._properties import Context, _finetune_signs, p2_model_size  # noqa: E402


def _ddp_log(path: Path, steps: int = 6) -> int:
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel as DDP

    from inspectorate.models._gpt import GPT, GPTConfig
    from inspectorate.testbed.workloads import unannotated

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    dist.init_process_group("gloo", rank=0, world_size=1, init_method=f"tcp://127.0.0.1:{port}")
    try:
        torch.manual_seed(0)
        model = GPT(GPTConfig(n_layer=6, n_head=2, n_embd=32, block_size=32, vocab_size=65))
        log = CollectiveLog(path, 0, 1)
        ddp = DDP(model, bucket_cap_mb=0.0001)
        ddp.register_comm_hook(None, unannotated(allreduce_logging_hook(log)))
        opt = torch.optim.AdamW(model.parameters())
        for _ in range(steps):
            x = torch.randint(0, 65, (2, 16))
            _, loss, _ = ddp(x, x)
            loss.backward()
            opt.step()
            opt.zero_grad()
        log.close()
    finally:
        dist.destroy_process_group()
    return sum(p.numel() for p in model.parameters())


def test_a_step_of_40_plus_buckets_counts_every_parameter_once(tmp_path):
    n = _ddp_log(tmp_path / "collectives.jsonl")
    frame = read_collectives(tmp_path / "collectives.jsonl")
    per_step = (frame.height - 1) / 6  # the first step syncs everything as one bucket
    assert per_step >= 40
    ev = PhaseEvidence("p", Claim("pretrain:x", "pretrain", "training", "x", n), 0.0, 10.0)
    _grad_step(ev, frame, "rank", "bytes", "dtype")
    assert ev.n_sync == pytest.approx(n, rel=0.01)
    assert p2_model_size(ev, Context()).evidence["n_params_from_allreduce"] == pytest.approx(n, rel=0.01)
    assert _finetune_signs(ev, Context())["frozen_params_in_allreduce"] == 0.0
