"""A sampling loop from a small recurrent policy with a REINFORCE update every ``k``
samples (reward: how many vowels a sample holds). Serving with updates in between."""

from __future__ import annotations

import _driver
import torch
from torch import nn

VOCAB = 32
VOWELS = torch.tensor([0, 4, 8, 14, 20])


class Policy(nn.Module):
    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(VOCAB, hidden)
        self.cell = nn.LSTMCell(hidden, hidden)
        self.head = nn.Linear(hidden, VOCAB)


class Workload:
    def __init__(self, hidden: int = 256, k: int = 4, batch_size: int = 8, seq_len: int = 24) -> None:
        self.policy = Policy(hidden)
        self.opt = torch.optim.Adam(self.policy.parameters(), lr=1e-3)
        self.k, self.batch_size, self.seq_len = k, batch_size, seq_len
        self.n_params = _driver.n_params(self.policy)
        self.samples = 0
        self.last_update = False
        self.gen = torch.Generator().manual_seed(3)
        self.hidden = hidden
        self.noise = self._gumbel  # the sampler's noise; a handover swaps in its keyed noise

    def _gumbel(self, batch: int, steps: int, vocab: int) -> torch.Tensor:
        u = torch.rand((batch, steps, vocab), generator=self.gen, dtype=torch.float64)
        return -torch.log(-torch.log(u.clamp(1e-300, 1.0 - 1e-16)))

    def handover_module(self) -> nn.Module:
        return self.policy

    def _sample(self, grad: bool) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.set_grad_enabled(grad):
            x = torch.zeros(self.batch_size, dtype=torch.long)
            h = c = torch.zeros(self.batch_size, self.hidden)
            logps, toks = [], []
            noise = self.noise(self.batch_size, self.seq_len, VOCAB)
            for j in range(self.seq_len):
                h, c = self.policy.cell(self.policy.embed(x), (h, c))
                logits = self.policy.head(h)
                x = (logits.detach().double() + noise[:, j]).argmax(-1)  # Gumbel-max: a softmax draw
                logps.append(torch.log_softmax(logits, -1).gather(1, x[:, None])[:, 0])
                toks.append(x)
            self.served = (torch.zeros(self.batch_size, 1, dtype=torch.long), torch.stack(toks, 1))
            return torch.stack(toks, 1), torch.stack(logps, 1)

    def serve(self) -> int:
        self.last_update = False
        self._sample(grad=False)
        return self.batch_size * self.seq_len

    eval = serve

    def serve_updates(self) -> int:
        """A sample; every k-th one is followed by a policy-gradient step on it."""
        self.samples += 1
        update = self.samples % self.k == 0
        self.last_update = update
        toks, logp = self._sample(grad=update)
        if update:
            reward = torch.isin(toks, VOWELS).float().mean(1)
            loss = -((reward - reward.mean()).unsqueeze(1) * logp).mean()
            self.opt.zero_grad()
            loss.backward()
            self.opt.step()
        return self.batch_size * self.seq_len

    train = serve_updates


if __name__ == "__main__":
    plan = _driver.load_plan()
    torch.set_num_threads(int(plan.get("threads", 1)))
    _driver.run(Workload(**plan.get("config", {})), plan)
