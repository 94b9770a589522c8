"""A loop of matrix products (a linear "model" of ``depth`` square layers); training is
the same products plus their gradients and an SGD update."""

from __future__ import annotations

import _driver
import torch


class Workload:
    def __init__(self, width: int = 384, depth: int = 4, batch_size: int = 64) -> None:
        g = torch.Generator().manual_seed(2)
        self.weights = [torch.randn(width, width, generator=g) / width**0.5 for _ in range(depth)]
        self.batch_size, self.seq_len, self.width = batch_size, 1, width
        self.n_params = width * width * depth
        self.gen = g

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        for w in self.weights:
            x = torch.tanh(x @ w)
        return x

    @torch.no_grad()
    def serve(self) -> int:
        self._forward(torch.randn(self.batch_size, self.width, generator=self.gen))
        return self.batch_size

    eval = serve

    def train(self) -> int:
        for w in self.weights:
            w.requires_grad_(True)
        out = self._forward(torch.randn(self.batch_size, self.width, generator=self.gen))
        out.pow(2).mean().backward()
        with torch.no_grad():
            for w in self.weights:
                w -= 1e-3 * w.grad  # type: ignore[operator]
                w.grad = None
        return self.batch_size


if __name__ == "__main__":
    plan = _driver.load_plan()
    torch.set_num_threads(int(plan.get("threads", 1)))
    _driver.run(Workload(**plan.get("config", {})), plan)
