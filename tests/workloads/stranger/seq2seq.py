"""An LSTM encoder-decoder with dot-product attention learning a translation-like
task (a line of Shakespeare to the same line with its words reversed, character by
character), written against the project's documented client only:
``inspectorate.capture.phase`` / ``capture.tokens`` for labels and tokens and
``inspectorate.capture.StepRecorder`` (at ``$INSPECTORATE_RUN_DIR``) for step records.
Training is Adam with teacher forcing; eval is the teacher-forced loss; serving is greedy
decoding of source lines. Declared by parameter count (no family describes it).

    python seq2seq.py PLAN.json      (PLAN as in llama.py)
"""

from __future__ import annotations

import json
import os
import random
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from inspectorate import capture
from inspectorate.capture import StepRecorder

CORPUS = Path(
    os.environ.get(
        "STRANGER_CORPUS",
        Path(__file__).resolve().parents[3].parent / "shared" / "data" / "corpora" / "tinyshakespeare.txt",
    )
)  # the checkout's sibling shared/ (tests/conftest.py), not a fixed path
PAD, BOS, EOS = 0, 1, 2


class Seq2Seq(nn.Module):
    def __init__(self, vocab: int, emb: int = 64, hidden: int = 256) -> None:
        super().__init__()
        self.src_emb, self.tgt_emb = (
            nn.Embedding(vocab, emb, padding_idx=PAD),
            nn.Embedding(vocab, emb, padding_idx=PAD),
        )
        self.encoder = nn.LSTM(emb, hidden, batch_first=True, bidirectional=True)
        self.bridge = nn.Linear(2 * hidden, hidden)
        self.decoder = nn.LSTMCell(emb + hidden, hidden)
        self.attn_key = nn.Linear(2 * hidden, hidden, bias=False)
        self.out = nn.Linear(2 * hidden, vocab)

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, tuple]:
        mem, _ = self.encoder(self.src_emb(src))
        keys = self.attn_key(mem)
        h = torch.tanh(self.bridge(mem.mean(1)))
        return mem, keys, (h, torch.zeros_like(h))

    def step(self, tok, ctx, state, mem, keys, mask):
        h, c = self.decoder(torch.cat([self.tgt_emb(tok), ctx], -1), state)
        scores = (keys @ h.unsqueeze(-1)).squeeze(-1).masked_fill(mask, -1e9)
        ctx = (F.softmax(scores, -1).unsqueeze(1) @ self.bridge(mem)).squeeze(1)
        return self.out(torch.cat([h, ctx], -1)), ctx, (h, c)

    def forward(self, src: torch.Tensor, tgt_in: torch.Tensor) -> torch.Tensor:
        mem, keys, state = self.encode(src)
        mask, ctx, logits = src == PAD, torch.zeros_like(state[0]), []
        for t in range(tgt_in.shape[1]):
            out, ctx, state = self.step(tgt_in[:, t], ctx, state, mem, keys, mask)
            logits.append(out)
        return torch.stack(logits, 1)

    @torch.no_grad()
    def greedy(self, src: torch.Tensor, max_len: int) -> torch.Tensor:
        mem, keys, state = self.encode(src)
        mask, ctx = src == PAD, torch.zeros_like(state[0])
        tok, out = torch.full((src.shape[0],), BOS), []
        for _ in range(max_len):
            logits, ctx, state = self.step(tok, ctx, state, mem, keys, mask)
            tok = logits.argmax(-1)
            out.append(tok)
        return torch.stack(out, 1)


class Translator:
    def __init__(self, cfg: dict) -> None:
        lines = [ln.strip() for ln in CORPUS.read_text().splitlines() if 8 <= len(ln.strip()) <= 40]
        chars = sorted({c for ln in lines for c in ln})
        self.code = {c: i + 3 for i, c in enumerate(chars)}
        self.pairs = [(ln, " ".join(reversed(ln.split()))) for ln in lines]
        self.rng = random.Random(7)
        self.batch = int(cfg.get("batch", 8))
        self.model = Seq2Seq(len(chars) + 3, int(cfg.get("emb", 64)), int(cfg.get("hidden", 256)))
        self.opt = torch.optim.Adam(self.model.parameters(), lr=1e-3)

    def tensors(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        pairs = self.rng.sample(self.pairs, self.batch)
        width = max(len(s) for s, _ in pairs) + 1
        src = torch.full((self.batch, width), PAD)
        tin, tout = src.clone(), src.clone()
        for i, (s, t) in enumerate(pairs):
            src[i, : len(s)] = torch.tensor([self.code[c] for c in s])
            tt = [self.code[c] for c in t]
            tin[i, : len(tt) + 1] = torch.tensor([BOS, *tt])
            tout[i, : len(tt) + 1] = torch.tensor([*tt, EOS])
        return src, tin, tout

    def train(self) -> int:
        src, tin, tout = self.tensors()
        loss = F.cross_entropy(self.model(src, tin).flatten(0, 1), tout.flatten(), ignore_index=PAD)
        self.opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(self.model.parameters(), 5.0)
        self.opt.step()
        return int((src != PAD).sum() + (tout != PAD).sum())

    @torch.no_grad()
    def eval(self) -> int:
        src, tin, tout = self.tensors()
        F.cross_entropy(self.model(src, tin).flatten(0, 1), tout.flatten(), ignore_index=PAD)
        return int((src != PAD).sum() + (tout != PAD).sum())

    def serve(self) -> int:
        src, _, _ = self.tensors()
        out = self.model.greedy(src, src.shape[1])
        return int((src != PAD).sum()) + out.numel()

    def hidden(self) -> int:
        a = torch.randn(256, 256)
        for _ in range(8):
            a = torch.tanh(a @ a)
        return 0


def main() -> None:
    plan = json.loads(Path(sys.argv[1]).read_text())
    torch.set_num_threads(int(plan.get("threads", 1)))
    tr = Translator(plan.get("config", {}))
    run_dir, mode = os.environ.get("INSPECTORATE_RUN_DIR"), plan.get("records", "naive")
    rec = (
        StepRecorder(Path(run_dir) / "steps.jsonl", phase="setup", fingerprint_every=0)
        if run_dir and mode != "none"
        else None
    )
    kinds = {"training": "train_step", "inference": "infer_token", "eval": "eval_step"}
    does = {"train": "training", "eval": "eval", "serve": "inference"}
    for ph in plan["phases"]:
        claim = {"batch_size": tr.batch, "sequence_length": 64, **ph["claim"]}
        if rec is not None:
            rec.set_phase(ph["name"])
        with capture.phase(ph["name"], **claim):
            end, step = time.time() + float(ph["seconds"]), 0
            while time.time() < end:
                if ph["do"] == "idle":
                    time.sleep(0.05)
                    continue
                t0 = time.time()
                n = getattr(tr, ph["do"])()
                told = int(n * float(ph.get("token_factor", 1)))
                if n:
                    capture.tokens(told)
                if rec is not None and ph["do"] in does:
                    op, toks = (does[ph["do"]], n) if mode == "naive" else (claim["op"], told)
                    if op in kinds:
                        rec.event(kinds[op], step=step, tokens=toks, step_time_s=time.time() - t0)
                step += 1
        time.sleep(0.3)
    if rec is not None:
        rec.close()


if __name__ == "__main__":
    main()
