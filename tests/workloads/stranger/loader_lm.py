"""A user's GPT-2-style character LM built from torch's own ``nn.TransformerEncoderLayer``
(pre-norm, GELU, causal mask, learned positions, tied head), fed by a ``DataLoader`` with
worker processes that cut and encode text windows in Python, as most training scripts are.
Evaluated over a loader of held-out windows; served by a sampler that re-reads the whole
prefix each token (no KV cache: ``nn.TransformerEncoder`` has none). Declared to the
verifier as family ``gpt``.

    python loader_lm.py PLAN.json

PLAN: ``{"config": {"d", "layers", "heads", "ctx", "batch", "workers"}, "threads": 1,
"phases": [{"name", "do": idle|train|eval|serve, "seconds", "claim": {...}}]}``. ``do``
is what runs, ``claim`` what is declared through ``inspectorate.capture.phase``. Shares
no code with the project's testbed or the other workloads; public client only.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, IterableDataset

from inspectorate import capture

CORPUS = Path(
    os.environ.get(
        "STRANGER_CORPUS",
        Path(__file__).resolve().parents[3].parent / "shared" / "data" / "corpora" / "tinyshakespeare.txt",
    )
)


class Windows(IterableDataset):
    """Endless random windows of the text, encoded in the worker (plain Python)."""

    def __init__(self, text: str, stoi: dict[str, int], ctx: int, seed: int) -> None:
        self.text, self.stoi, self.ctx, self.seed = text, stoi, ctx, seed

    def __iter__(self):  # type: ignore[no-untyped-def]
        info = torch.utils.data.get_worker_info()
        gen = torch.Generator().manual_seed(self.seed + (info.id if info else 0))
        while True:
            s = int(torch.randint(0, len(self.text) - self.ctx - 1, (1,), generator=gen))
            ids = [self.stoi[c] for c in self.text[s : s + self.ctx + 1]]
            yield torch.tensor(ids[:-1]), torch.tensor(ids[1:])


class LoaderLM(nn.Module):
    def __init__(self, vocab: int, d: int, layers: int, heads: int, ctx: int) -> None:
        super().__init__()
        self.tok = nn.Embedding(vocab, d)
        self.pos = nn.Embedding(ctx, d)
        layer = nn.TransformerEncoderLayer(
            d, heads, 4 * d, dropout=0.0, activation="gelu", batch_first=True, norm_first=True
        )
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.ln = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.tok.weight

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        t = idx.shape[1]
        mask = nn.Transformer.generate_square_subsequent_mask(t)
        x = self.tok(idx) + self.pos(torch.arange(t))
        return self.head(self.ln(self.blocks(x, mask=mask, is_causal=True)))


def describe(vocab: int, cfg: dict[str, Any]) -> dict[str, Any]:
    """The model in the verifier's ``gpt`` family."""
    config = {"n_layer": cfg["layers"], "n_head": cfg["heads"], "n_embd": cfg["d"]}
    config |= {"block_size": cfg["ctx"], "vocab_size": vocab, "bias": True}
    return {"format": "inspectorate.model", "version": 1, "family": "gpt", "config": config}


class Job:
    def __init__(self, cfg: dict[str, Any]) -> None:
        text = CORPUS.read_text()
        chars = sorted(set(text))
        self.stoi = {c: i for i, c in enumerate(chars)}
        self.cfg = {"d": 128, "layers": 2, "heads": 4, "ctx": 64, "batch": 8, "workers": 2} | cfg
        c = self.cfg
        torch.manual_seed(0)
        self.model = LoaderLM(len(chars), c["d"], c["layers"], c["heads"], c["ctx"])
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=3e-4)
        cut = int(len(text) * 0.9)
        self.train_it = self._loader(text[:cut], 1)
        self.val_it = self._loader(text[cut:], 2)

    def _loader(self, text: str, seed: int):  # type: ignore[no-untyped-def]
        c = self.cfg
        loader = DataLoader(
            Windows(text, self.stoi, c["ctx"], seed),
            batch_size=c["batch"],
            num_workers=c["workers"],
            persistent_workers=c["workers"] > 0,
        )
        return iter(loader)

    def train(self) -> int:
        self.model.train()
        x, y = next(self.train_it)
        loss = F.cross_entropy(self.model(x).flatten(0, 1), y.flatten())
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        self.opt.step()
        return x.numel()

    @torch.no_grad()
    def eval(self) -> int:
        self.model.eval()
        x, y = next(self.val_it)
        F.cross_entropy(self.model(x).flatten(0, 1), y.flatten())
        return x.numel()

    @torch.no_grad()
    def serve(self, new: int = 16) -> int:
        self.model.eval()
        x, _ = next(self.val_it)
        idx = x[:2, :8]
        for _ in range(new):
            logits = self.model(idx[:, -self.cfg["ctx"] :])[:, -1]
            nxt = torch.multinomial(F.softmax(logits / 0.9, dim=-1), 1)
            idx = torch.cat([idx, nxt], dim=1)
        return 2 * new


def run(plan: dict[str, Any]) -> None:
    torch.set_num_threads(int(plan.get("threads", 1)))
    job = Job(plan.get("config", {}))
    for ph in plan["phases"]:
        claim = dict(ph.get("claim", {}))
        name, op = ph["name"], claim.pop("op")
        with capture.phase(name, op=op, **claim):
            end = time.monotonic() + float(ph["seconds"])
            while time.monotonic() < end:
                if ph["do"] == "idle":
                    time.sleep(0.2)
                    continue
                capture.tokens(getattr(job, ph["do"])())


if __name__ == "__main__":
    run(json.loads(Path(sys.argv[1]).read_text()))
