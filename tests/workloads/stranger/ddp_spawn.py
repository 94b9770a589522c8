"""Two-process data-parallel training of a small causal transformer (torch's own
``nn.TransformerEncoder`` with a causal mask), written as a user would: ``mp.spawn``
of 2 ranks, gloo over TCP on the loopback, ``DistributedDataParallel``, SGD with
momentum; then an eval loop whose loss is all-reduced, and sampling by re-running the
context (no KV cache: ``nn.TransformerEncoder`` has none). Declared by parameter count.

    python ddp_spawn.py PLAN.json      (PLAN as in llama.py; both ranks claim each phase)
"""

from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel as DDP

from inspectorate import capture
from inspectorate.capture import StepRecorder

CORPUS = Path(
    os.environ.get(
        "STRANGER_CORPUS",
        Path(__file__).resolve().parents[3].parent / "shared" / "data" / "corpora" / "tinyshakespeare.txt",
    )
)  # the checkout's sibling shared/ (tests/conftest.py), not a fixed path


class CausalLM(nn.Module):
    def __init__(self, vocab: int, d: int = 128, layers: int = 2, heads: int = 4, ctx: int = 64) -> None:
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(ctx, d)
        layer = nn.TransformerEncoderLayer(d, heads, 4 * d, dropout=0.0, batch_first=True, norm_first=True)
        self.body = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.out = nn.Linear(d, vocab)
        self.ctx = ctx

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(t)
        x = self.tok(idx) + self.pos(torch.arange(t))
        return self.out(self.body(x, mask=mask, is_causal=True))


def all_continue(deadline: float) -> bool:
    """Both ranks stop at the same step, or one would wait in the next all-reduce."""
    flag = torch.tensor([int(time.time() < deadline)])
    dist.all_reduce(flag, op=dist.ReduceOp.MIN)
    return bool(flag.item())


def worker(rank: int, world: int, port: int, plan: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(int(plan.get("threads", 1)))
    torch.manual_seed(0)  # same initial weights on both ranks
    text = CORPUS.read_text()
    vocab = sorted(set(text))
    lookup = {c: i for i, c in enumerate(vocab)}
    ids = torch.tensor([lookup[c] for c in text[:100_000]])
    cfg = plan.get("config", {})
    batch, seq = int(cfg.get("batch", 4)), int(cfg.get("seq", 64))
    model = CausalLM(len(vocab), int(cfg.get("d", 128)), int(cfg.get("layers", 2)), ctx=seq)
    ddp = DDP(model)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
    gen = torch.Generator().manual_seed(100 + rank)

    def batch_of(t: int) -> tuple[torch.Tensor, torch.Tensor]:
        s = torch.randint(0, len(ids) - t - 1, (batch,), generator=gen)
        return torch.stack([ids[i : i + t] for i in s]), torch.stack([ids[i + 1 : i + t + 1] for i in s])

    def train() -> int:
        x, y = batch_of(seq)
        loss = F.cross_entropy(ddp(x).flatten(0, 1), y.flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
        return batch * seq

    @torch.no_grad()
    def evaluate() -> int:
        x, y = batch_of(seq)
        loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
        dist.all_reduce(loss)  # the mean loss over ranks, as an eval loop reports it
        return batch * seq

    @torch.no_grad()
    def serve() -> int:
        x, _ = batch_of(seq // 4)
        while x.shape[1] < seq:
            logits = model(x)[:, -1]
            x = torch.cat([x, torch.multinomial(F.softmax(logits, -1), 1, generator=gen)], 1)
        return batch * seq

    def hidden() -> int:
        a = torch.randn(256, 256)
        for _ in range(8):
            a = torch.tanh(a @ a)
        return 0

    work = {"train": train, "eval": evaluate, "serve": serve, "hidden": hidden}
    run_dir, mode = os.environ.get("INSPECTORATE_RUN_DIR"), plan.get("records", "naive")
    rec = None
    if run_dir and mode != "none":
        name = "steps.jsonl" if rank == 0 else f"steps_rank{rank}.jsonl"
        rec = StepRecorder(Path(run_dir) / name, phase="setup", rank=rank, fingerprint_every=0)
    kinds = {"training": "train_step", "inference": "infer_token", "eval": "eval_step"}
    does = {"train": "training", "eval": "eval", "serve": "inference"}
    for ph in plan["phases"]:
        claim = {"batch_size": batch * world, "sequence_length": seq, "world_size": world, **ph["claim"]}
        if rec is not None:
            rec.set_phase(ph["name"])
        dist.barrier()
        with capture.phase(ph["name"], **claim):
            deadline, step = time.time() + float(ph["seconds"]), 0
            if ph["do"] == "idle":
                time.sleep(float(ph["seconds"]))
            while ph["do"] != "idle" and all_continue(deadline):
                t0 = time.time()
                n = work[ph["do"]]()
                told = int(n * world * float(ph.get("token_factor", 1)))
                if rank == 0 and n:
                    capture.tokens(told)
                if rec is not None and ph["do"] in does:  # each rank records its own tokens
                    op, toks = (does[ph["do"]], n) if mode == "naive" else (claim["op"], told // world)
                    if op in kinds:
                        rec.event(kinds[op], step=step, tokens=toks, step_time_s=time.time() - t0)
                step += 1
        time.sleep(0.3)
    if rec is not None:
        rec.close()
    dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


if __name__ == "__main__":
    the_plan = json.loads(Path(sys.argv[1]).read_text())
    world_size = int(the_plan.get("config", {}).get("world_size", 2))
    mp.spawn(worker, args=(world_size, free_port(), the_plan), nprocs=world_size, join=True)
