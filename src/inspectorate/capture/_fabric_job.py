"""A small data-parallel job for the fabric: torch DDP over gloo, one rank per host.

``python -m inspectorate.capture._fabric_job --steps 40 --hidden 512``. It reads the
launcher's ``RANK``, ``WORLD_SIZE``, ``MASTER_ADDR``/``MASTER_PORT`` and writes, into
``INSPECTORATE_RUN_DIR``, ``steps.jsonl`` (``StepRecorder``'s ``train_step`` records,
one per optimizer step: the prover's claim of how many gradient all-reduces it did) and ``collectives.jsonl`` (DDP's
own account of the bytes it asked gloo to all-reduce). Both are the prover's files; the
fabric check weighs them against the sensors' NIC counters.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import timedelta
from pathlib import Path


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

    from inspectorate.capture import _client as capture_client
    from inspectorate.capture._collectives import CollectiveLog, allreduce_logging_hook
    from inspectorate.capture._recorder import StepRecorder

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
    recorder = StepRecorder(run_dir / "steps.jsonl", phase="train", rank=rank, fingerprint_every=10)
    for step in range(args.steps):
        x = torch.randn(args.batch, args.dim, generator=gen)
        opt.zero_grad(set_to_none=True)
        t0 = time.perf_counter()
        loss = torch.nn.functional.mse_loss(ddp(x), x)
        t1 = time.perf_counter()
        loss.backward()  # DDP's all-reduce of the gradient buckets runs here
        t2 = time.perf_counter()
        opt.step()
        t3 = time.perf_counter()
        if capture_client.active():  # the wrapper turns these into the window records' tokens
            capture_client.tokens(args.batch)
        recorder.train_step(
            step,
            loss=loss.detach(),
            model=model,
            optimizer=opt,
            lr=0.01,
            tokens=args.batch,
            forward_s=t1 - t0,
            backward_s=t2 - t1,
            optimizer_s=t3 - t2,
        )
    recorder.close()
    dist.barrier()
    log.close()
    dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
