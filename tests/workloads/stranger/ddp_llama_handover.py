"""Two ranks train the stranger's Llama (llama.py) under DistributedDataParallel over
gloo and hand over one replay claim through the public ``inspectorate.handover``
(``rank=, world=``): every rank records its own batches, rank 0 writes the weights and
merges the batches into the claim.

    python ddp_llama_handover.py RUN_DIR CORPUS PORT [STEPS]
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch.nn import functional as F
from torch.nn.parallel import DistributedDataParallel

sys.path.insert(0, str(Path(__file__).resolve().parent))

import llama

from inspectorate import handover

VOCAB, SEQ = 58, 16
DESC = llama.describe(VOCAB, 16, 1, 2, 1, 24)


def rank_main(rank: int, world: int, run_dir: str, corpus: str, port: int, steps: int) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    torch.set_num_threads(1)
    model = llama.Llama(VOCAB, 16, 1, 2, 1, 24)
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.1)
    tr = handover.training(
        "t", model, opt, DESC, corpus=corpus, seq_len=SEQ, checkpoint_every_s=0.0, run=run_dir,
        rank=rank, world=world,
    )  # fmt: skip
    ddp = DistributedDataParallel(model)  # after the seeded fresh start: every rank holds it
    data, gen = torch.from_numpy(tr.tokens), torch.Generator().manual_seed(100 + rank)
    for _ in range(steps):
        starts = torch.randint(0, len(data) - SEQ - 1, (2,), generator=gen)
        x = torch.stack([data[s : s + SEQ] for s in starts])
        y = torch.stack([data[s + 1 : s + SEQ + 1] for s in starts])
        F.cross_entropy(ddp(x).flatten(0, 1), y.flatten()).backward()
        opt.step()
        tr.step(starts.tolist(), inputs=x)
        opt.zero_grad(set_to_none=True)
    tr.finish()
    dist.destroy_process_group()


if __name__ == "__main__":
    args = sys.argv[1:]
    mp.spawn(
        rank_main, args=(2, args[0], args[1], int(args[2]), int(args[3]) if len(args) > 3 else 3), nprocs=2
    )
