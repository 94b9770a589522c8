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

    def _sample(self, grad: bool) -> tuple[torch.Tensor, torch.Tensor]:
        with torch.set_grad_enabled(grad):
            x = torch.zeros(self.batch_size, dtype=torch.long)
            h = c = torch.zeros(self.batch_size, self.hidden)
            logps, toks = [], []
            for _ in range(self.seq_len):
                h, c = self.policy.cell(self.policy.embed(x), (h, c))
                dist = torch.distributions.Categorical(logits=self.policy.head(h))
                x = dist.sample()
                logps.append(dist.log_prob(x))
                toks.append(x)
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
