"""An MLP classifier trained data-parallel by 2 (or more) gloo processes on loopback:
DistributedDataParallel all-reduces every gradient each step."""

from __future__ import annotations

import os
import socket

import _driver
import torch
import torch.distributed as dist
import torch.multiprocessing as mp
from torch import nn


class Workload:
    def __init__(self, width: int = 512, depth: int = 3, batch_size: int = 64, world_size: int = 2) -> None:
        torch.manual_seed(4)
        layers: list[nn.Module] = [nn.Linear(256, width), nn.ReLU()]
        for _ in range(depth - 1):
            layers += [nn.Linear(width, width), nn.ReLU()]
        layers.append(nn.Linear(width, 10))
        self.net = nn.Sequential(*layers)
        self.model = nn.parallel.DistributedDataParallel(self.net)
        self.opt = torch.optim.SGD(self.model.parameters(), lr=1e-2, momentum=0.9)
        self.batch_size, self.seq_len = batch_size, 1
        self.n_params = _driver.n_params(self.net)
        self.gen = torch.Generator().manual_seed(5 + dist.get_rank())

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.randn(self.batch_size, 256, generator=self.gen)
        return x, (x[:, :10].argmax(1))

    def train(self) -> int:
        x, y = self._batch()
        loss = nn.functional.cross_entropy(self.model(x), y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return self.batch_size * dist.get_world_size()  # every rank's samples (rank 0 reports)

    @torch.no_grad()
    def serve(self) -> int:
        x, _ = self._batch()
        self.net(x)
        return self.batch_size * dist.get_world_size()

    eval = serve


def _rank(rank: int, world: int, port: int, plan: dict) -> None:
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    torch.set_num_threads(int(plan.get("threads", 1)))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    try:
        wl = Workload(**{**plan.get("config", {}), "world_size": world})
        dist.barrier()
        _driver.run(wl, plan, rank=rank)
        dist.barrier()
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    plan = _driver.load_plan()
    world = int(plan.get("config", {}).get("world_size", 2))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mp.spawn(_rank, args=(world, port, plan), nprocs=world)
