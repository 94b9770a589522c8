"""A fixed-context MLP language model (Bengio-style): sampling loop, training, eval."""

from __future__ import annotations

import _driver
import torch
from corpus import chars
from torch import nn


class Workload:
    def __init__(
        self,
        context: int = 16,
        embed: int = 24,
        hidden: int = 512,
        depth: int = 2,
        batch_size: int = 32,
        seq_len: int = 32,
    ) -> None:
        ids, vocab = chars()
        self.data = torch.tensor(ids, dtype=torch.long)
        self.context, self.embed, self.hidden, self.depth, self.vocab = context, embed, hidden, depth, vocab
        self.lr = 1e-3
        layers: list[nn.Module] = [
            nn.Embedding(vocab, embed),
            nn.Flatten(),
            nn.Linear(context * embed, hidden),
            nn.GELU(),
        ]
        for _ in range(depth - 1):
            layers += [nn.Linear(hidden, hidden), nn.GELU()]
        layers.append(nn.Linear(hidden, vocab))
        self.model = nn.Sequential(*layers)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=self.lr)
        self.batch_size, self.seq_len = batch_size, seq_len
        self.n_params = _driver.n_params(self.model)
        self.gen = torch.Generator().manual_seed(1)
        self.vocab = vocab
        self.evaluates_loss = True
        self.noise = self._gumbel  # the sampler's noise; a handover swaps in its keyed noise

    def _gumbel(self, batch: int, steps: int, vocab: int) -> torch.Tensor:
        u = torch.rand((batch, steps, vocab), generator=self.gen, dtype=torch.float64)
        return -torch.log(-torch.log(u.clamp(1e-300, 1.0 - 1e-16)))

    def handover_module(self) -> nn.Module:
        return self.model

    def _batch(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(0, len(self.data) - self.context - 1, (n,), generator=self.gen)
        self.last_starts = starts.tolist()
        x = torch.stack([self.data[s : s + self.context] for s in starts])
        return x, self.data[starts + self.context]

    def train(self) -> int:
        x, y = self._batch(self.batch_size * self.seq_len)
        loss = nn.functional.cross_entropy(self.model(x), y)
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return int(y.numel())

    def replay_decl(self) -> dict:
        """This run in the verifier's terms: each window's last position is scored."""
        mlp = {
            "vocab_size": self.vocab,
            "context_len": self.context,
            "d_embed": self.embed,
            "hidden": [self.hidden] * self.depth,
            "activation": "gelu",
        }
        g = self.opt.param_groups[0]
        return {
            "model": {"format": "inspectorate.model", "version": 1, "family": "mlp", "config": mlp},
            "optimizer": {
                "name": "adamw",
                "betas": list(g["betas"]),
                "eps": g["eps"],
                "weight_decay": g["weight_decay"],
            },
            "lr": self.lr,
            "seq_len": self.context,
            "loss_start": self.context - 1,
            "batch_size": self.batch_size * self.seq_len,
        }

    @torch.no_grad()
    def eval(self) -> int:
        x, y = self._batch(self.batch_size * self.seq_len)
        loss = nn.functional.cross_entropy(self.model(x), y)
        self.evaluated = (torch.cat([x, y[:, None]], 1), self.context, float(loss))
        return int(x.shape[0])

    @torch.no_grad()
    def serve(self) -> int:
        """Gumbel-max sampling (a draw from softmax(logits)), one window at a time."""
        ctx, _ = self._batch(self.batch_size)
        prompts, out = ctx, []
        noise = self.noise(self.batch_size, self.seq_len, self.vocab)
        for j in range(self.seq_len):
            nxt = (self.model(ctx).double() + noise[:, j]).argmax(-1, keepdim=True)
            out.append(nxt)
            ctx = torch.cat([ctx[:, 1:], nxt], 1)
        self.served = (prompts, torch.cat(out, 1))
        return self.batch_size * self.seq_len


if __name__ == "__main__":
    plan = _driver.load_plan()
    torch.set_num_threads(int(plan.get("threads", 1)))
    _driver.run(Workload(**plan.get("config", {})), plan)
