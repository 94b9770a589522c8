"""A small data-parallel job for the fabric: torch DDP over gloo, one rank per host.

``python -m inspectorate.capture._fabric_job --steps 40 --hidden 512``. It reads the
launcher's ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT`` and writes, into
``INSPECTORATE_RUN_DIR``, ``steps.jsonl`` (one chained record per optimizer step: the
prover's claim of how many gradient all-reduces it did) and ``collectives.jsonl`` (DDP's
own account of the bytes it asked gloo to all-reduce). Both are the prover's files; the
fabric check weighs them against the sensors' NIC counters.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import timedelta
from pathlib import Path

STEPS_SCHEMA = "inspectorate.fabric_step/1"


def n_params(dim: int, hidden: int) -> int:
    """Parameters of the job's two-layer MLP (what its gradient all-reduce moves)."""
    return dim * hidden + hidden + hidden * dim + dim


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--dim", type=int, default=64)
    ap.add_argument("--hidden", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args(argv)
    import torch
    import torch.distributed as dist
    from torch.nn.parallel import DistributedDataParallel

    from inspectorate.capture._chain_writer import ChainWriter
    from inspectorate.capture._collectives import CollectiveLog, allreduce_logging_hook

    torch.set_num_threads(1)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    run_dir = Path(os.environ.get("INSPECTORATE_RUN_DIR", "."))
    dist.init_process_group("gloo", rank=rank, world_size=world, timeout=timedelta(seconds=120))
    torch.manual_seed(0)  # DDP broadcasts rank 0's weights anyway; same init keeps it cheap
    model = torch.nn.Sequential(
        torch.nn.Linear(args.dim, args.hidden), torch.nn.ReLU(), torch.nn.Linear(args.hidden, args.dim)
    )
    ddp = DistributedDataParallel(model)
    log = CollectiveLog(run_dir / "collectives.jsonl", rank, world, phase="train")
    ddp.register_comm_hook(state=None, hook=allreduce_logging_hook(log))
    opt = torch.optim.SGD(ddp.parameters(), lr=0.01)
    gen = torch.Generator().manual_seed(1000 + rank)
    count = sum(p.numel() for p in model.parameters())
    with ChainWriter(run_dir / "steps.jsonl") as steps:
        for step in range(args.steps):
            x = torch.randn(args.batch, args.dim, generator=gen)
            opt.zero_grad(set_to_none=True)
            loss = torch.nn.functional.mse_loss(ddp(x), x)
            loss.backward()
            opt.step()
            steps.append(
                {
                    "schema": STEPS_SCHEMA,
                    "kind": "step",
                    "step": step,
                    "rank": rank,
                    "world_size": world,
                    "n_params": count,
                    "grad_dtype": "float32",
                    "loss": round(float(loss.detach()), 6),
                    "t": time.time(),
                }
            )
    dist.barrier()
    log.close()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
