"""A character-level GRU language model, trained in one process (truncated BPTT)."""

from __future__ import annotations

import _driver
import torch
from corpus import chars
from torch import nn


class CharGRU(nn.Module):
    def __init__(self, vocab: int, hidden: int, layers: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.rnn = nn.GRU(hidden, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab)

    def forward(self, x: torch.Tensor, h: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        out, h = self.rnn(self.embed(x), h)
        return self.head(out), h


class Workload:
    def __init__(self, hidden: int = 192, layers: int = 2, batch_size: int = 16, seq_len: int = 64) -> None:
        ids, vocab = chars()
        self.data = torch.tensor(ids, dtype=torch.long)
        self.model = CharGRU(vocab, hidden, layers)
        self.hidden, self.layers, self.vocab, self.lr = hidden, layers, vocab, 2e-3
        self.opt = torch.optim.Adam(self.model.parameters(), lr=self.lr)
        self.batch_size, self.seq_len = batch_size, seq_len
        self.n_params = _driver.n_params(self.model)
        self.gen = torch.Generator().manual_seed(0)
        self.vocab = vocab
        self.evaluates_loss = True
        self.noise = self._gumbel  # the sampler's noise; a handover swaps in its keyed noise

    def _gumbel(self, batch: int, steps: int, vocab: int) -> torch.Tensor:
        u = torch.rand((batch, steps, vocab), generator=self.gen, dtype=torch.float64)
        return -torch.log(-torch.log(u.clamp(1e-300, 1.0 - 1e-16)))

    def handover_module(self) -> nn.Module:
        return self.model

    def _batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(0, len(self.data) - self.seq_len - 1, (self.batch_size,), generator=self.gen)
        self.last_starts = starts.tolist()
        x = torch.stack([self.data[s : s + self.seq_len] for s in starts])
        y = torch.stack([self.data[s + 1 : s + self.seq_len + 1] for s in starts])
        return x, y

    def train(self) -> int:
        x, y = self._batch()
        logits, _ = self.model(x)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return x.numel()

    def replay_decl(self) -> dict:
        """This run in the verifier's terms: an ``rnn`` (GRU) LM, every position scored."""
        rnn = {"cell": "gru", "vocab_size": self.vocab, "d_embed": self.hidden, "hidden": self.hidden}
        g = self.opt.param_groups[0]
        return {
            "model": {
                "format": "inspectorate.model",
                "version": 1,
                "family": "rnn",
                "config": {**rnn, "n_layers": self.layers},
            },
            "optimizer": {
                "name": "adam",
                "betas": list(g["betas"]),
                "eps": g["eps"],
                "weight_decay": g["weight_decay"],
            },
            "lr": self.lr,
            "seq_len": self.seq_len,
            "loss_start": 0,
            "batch_size": self.batch_size,
        }

    @torch.no_grad()
    def eval(self) -> int:
        x, y = self._batch()
        logits, _ = self.model(x)
        loss = nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
        self.evaluated = (torch.cat([x, y[:, -1:]], 1), 1, float(loss))
        return x.numel()

    @torch.no_grad()
    def serve(self) -> int:
        """Sample seq_len characters for a batch, one step at a time (hidden state carried)."""
        x = torch.zeros(self.batch_size, 1, dtype=torch.long)
        prompts, out, h = x, [], None
        noise = self.noise(self.batch_size, self.seq_len, self.vocab)
        for j in range(self.seq_len):
            logits, h = self.model(x, h)
            x = (logits[:, -1].double() + noise[:, j]).argmax(-1, keepdim=True)  # Gumbel-max
            out.append(x)
        self.served = (prompts, torch.cat(out, 1))
        return self.batch_size * self.seq_len


if __name__ == "__main__":
    plan = _driver.load_plan()
    torch.set_num_threads(int(plan.get("threads", 1)))
    _driver.run(Workload(**plan.get("config", {})), plan)
