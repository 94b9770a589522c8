"""A Llama-style decoder written as a user would, from scratch: RMSNorm, rotary
positions, SwiGLU, grouped KV heads, untied head. Trained with AdamW, warmup + cosine
LR, gradient accumulation and gradient clipping; served by its own KV-cache sampler
(temperature). Declared to the verifier as family ``llama``.

    python llama.py PLAN.json

PLAN: ``{"config": {...}, "records": "naive"|"competent"|"none", "threads": 1,
"phases": [{"name", "do": idle|train|eval|serve|hidden|serve_updates, "seconds",
"claim": {...}, "token_factor"}]}``. ``do`` is what runs, ``claim`` what is declared
(through ``inspectorate.capture.phase``). Shares no code with the project's testbed or
the other workloads.

Handing over (public ``inspectorate.handover`` only): with ``"handover": true`` in the
plan, serve and eval phases hand over their outputs (the sampler then draws with the
run's keyed Gumbel noise); a train phase with ``"handover": true`` hands over a replay
claim of its own loop. Lies: ``handover_model`` (the description handed over) and
``shadow_config`` (a declared-size twin whose outputs are handed over).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

from inspectorate import capture, handover
from inspectorate.capture import StepRecorder

CORPUS = Path(
    os.environ.get(
        "STRANGER_CORPUS",
        Path(__file__).resolve().parents[3].parent / "shared" / "data" / "corpora" / "tinyshakespeare.txt",
    )
)  # the checkout's sibling shared/ (tests/conftest.py), not a fixed path


class RMSNorm(nn.Module):
    def __init__(self, d: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def rope(x: torch.Tensor, start: int, theta: float = 10000.0) -> torch.Tensor:
    """Rotate pairs (first half, second half) of each head by position-dependent angles."""
    hd = x.shape[-1]
    freqs = theta ** (-torch.arange(0, hd, 2, dtype=torch.float32) / hd)
    ang = torch.arange(start, start + x.shape[-2], dtype=torch.float32)[:, None] * freqs
    cos, sin = ang.cos(), ang.sin()
    a, b = x[..., : hd // 2], x[..., hd // 2 :]
    return torch.cat([a * cos - b * sin, a * sin + b * cos], dim=-1)


class Attention(nn.Module):
    def __init__(self, dim: int, heads: int, kv_heads: int) -> None:
        super().__init__()
        self.h, self.kv, self.hd = heads, kv_heads, dim // heads
        self.wq = nn.Linear(dim, dim, bias=False)
        self.wk = nn.Linear(dim, kv_heads * self.hd, bias=False)
        self.wv = nn.Linear(dim, kv_heads * self.hd, bias=False)
        self.wo = nn.Linear(dim, dim, bias=False)

    def forward(self, x: torch.Tensor, cache: dict | None) -> torch.Tensor:
        b, t, _ = x.shape
        start = 0 if cache is None or "k" not in cache else cache["k"].shape[2]
        q = rope(self.wq(x).view(b, t, self.h, self.hd).transpose(1, 2), start)
        k = rope(self.wk(x).view(b, t, self.kv, self.hd).transpose(1, 2), start)
        v = self.wv(x).view(b, t, self.kv, self.hd).transpose(1, 2)
        if cache is not None:
            if "k" in cache:
                k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
            cache["k"], cache["v"] = k, v
        groups = self.h // self.kv
        k, v = k.repeat_interleave(groups, 1), v.repeat_interleave(groups, 1)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=start == 0 and t > 1)
        return self.wo(y.transpose(1, 2).reshape(b, t, -1))


class Block(nn.Module):
    def __init__(self, dim: int, heads: int, kv_heads: int, ffn: int) -> None:
        super().__init__()
        self.norm1, self.norm2 = RMSNorm(dim), RMSNorm(dim)
        self.attn = Attention(dim, heads, kv_heads)
        self.gate = nn.Linear(dim, ffn, bias=False)
        self.up = nn.Linear(dim, ffn, bias=False)
        self.down = nn.Linear(ffn, dim, bias=False)

    def forward(self, x: torch.Tensor, cache: dict | None = None) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cache)
        h = self.norm2(x)
        return x + self.down(F.silu(self.gate(h)) * self.up(h))


def describe(vocab: int, dim: int, layers: int, heads: int, kv_heads: int, ffn: int) -> dict:
    """``Llama(vocab, dim, layers, heads, kv_heads, ffn)`` as the verifier's ``llama``
    family describes it (untied head, context 64)."""
    config = {"n_layers": layers, "dim": dim, "n_heads": heads, "n_kv_heads": kv_heads, "ffn_hidden": ffn}
    config |= {"vocab_size": vocab, "max_seq": 64, "tie_embeddings": False}
    return {"format": "inspectorate.model", "version": 1, "family": "llama", "config": config}


class Llama(nn.Module):
    def __init__(self, vocab: int, dim: int, layers: int, heads: int, kv_heads: int, ffn: int) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.layers = nn.ModuleList(Block(dim, heads, kv_heads, ffn) for _ in range(layers))
        self.norm = RMSNorm(dim)
        self.lm_head = nn.Linear(dim, vocab, bias=False)
        for p in self.parameters():
            if p.dim() == 2:
                nn.init.normal_(p, std=0.02)

    def forward(self, idx: torch.Tensor, caches: list | None = None) -> torch.Tensor:
        x = self.embed(idx)
        for i, layer in enumerate(self.layers):
            x = layer(x, None if caches is None else caches[i])
        return self.lm_head(self.norm(x))


class Job:
    """The user's training / eval / serving code around the model."""

    def __init__(self, cfg: dict) -> None:
        text = CORPUS.read_text()
        self.vocab = sorted(set(text))
        ids = torch.tensor([self.vocab.index(c) for c in text[:200_000]], dtype=torch.long)
        cut = int(len(ids) * 0.9)
        self.train_ids, self.val_ids = ids[:cut], ids[cut:]
        self.batch, self.seq = int(cfg.get("batch", 2)), int(cfg.get("seq", 32))
        self.accum = int(cfg.get("accum", 2))
        shape = {
            k: int(cfg.get(k, d))
            for k, d in (("dim", 128), ("layers", 4), ("heads", 4), ("kv_heads", 2), ("ffn", 344))
        }
        self.model = Llama(
            len(self.vocab), shape["dim"], shape["layers"], shape["heads"], shape["kv_heads"], shape["ffn"]
        )
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=3e-4, betas=(0.9, 0.95), weight_decay=0.1)
        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, self.lr_factor)
        self.gen = torch.Generator().manual_seed(1234)
        self.step_no = 0
        self.updated = False
        self.cfg, self.shape = cfg, shape
        self.log = self.ho = None  # handovers of the current phase (None: none)
        self.last_starts: list[int] = []

    def describe(self) -> dict:
        """What this model is in the verifier's terms (its ``llama`` family)."""
        s = self.shape
        return describe(len(self.vocab), s["dim"], s["layers"], s["heads"], s["kv_heads"], s["ffn"])

    @staticmethod
    def lr_factor(step: int, warmup: int = 10, total: int = 1000) -> float:
        if step < warmup:
            return (step + 1) / warmup
        return 0.1 + 0.45 * (1 + math.cos(math.pi * min(step - warmup, total) / total))

    def sample_batch(self, ids: torch.Tensor, t: int) -> tuple[torch.Tensor, torch.Tensor]:
        starts = torch.randint(0, len(ids) - t - 1, (self.batch,), generator=self.gen)
        self.last_starts = starts.tolist()
        x = torch.stack([ids[s : s + t] for s in starts])
        y = torch.stack([ids[s + 1 : s + t + 1] for s in starts])
        return x, y

    def train(self) -> int:
        self.model.train()
        starts, xs = [], []
        for _ in range(self.accum):
            x, y = self.sample_batch(self.train_ids, self.seq)
            loss = F.cross_entropy(self.model(x).flatten(0, 1), y.flatten()) / self.accum
            loss.backward()
            starts += self.last_starts
            xs.append(x)
        torch.nn.utils.clip_grad_norm_(self.model.parameters(), 1.0)
        self.opt.step()
        if self.ho is not None:  # the rate this step ran at: before the scheduler moves it
            self.ho.step(starts, inputs=torch.cat(xs))
        self.sched.step()
        self.opt.zero_grad(set_to_none=True)
        self.step_no += 1
        return self.accum * self.batch * self.seq

    @torch.no_grad()
    def eval(self) -> int:
        self.model.eval()
        x, y = self.sample_batch(self.val_ids, self.seq)
        loss = F.cross_entropy(self.model(x).flatten(0, 1), y.flatten())
        self.evaluated = (torch.cat([x, y[:, -1:]], 1), float(loss))
        return self.batch * self.seq

    @torch.no_grad()
    def serve(self, temperature: float = 0.8) -> int:
        """Prompt of seq/4 tokens, then one token at a time through the KV cache."""
        self.model.eval()
        prompt_len = max(1, self.seq // 4)
        x, _ = self.sample_batch(self.val_ids, prompt_len)
        caches: list = [{} for _ in self.model.layers]
        logits = self.model(x, caches)[:, -1]
        new = self.seq - prompt_len
        noise = None if self.log is None else self.log.noise(None, self.batch, new, logits.shape[-1])
        out = []
        for j in range(new):
            if noise is None:
                probs = F.softmax(logits / temperature, -1)
                nxt = torch.multinomial(probs, 1, generator=self.gen)
            else:  # keyed Gumbel-max: the draw the verifier can re-derive
                nxt = (logits.double() / temperature + noise[:, j]).argmax(-1, keepdim=True)
            out.append(nxt)
            logits = self.model(nxt, caches)[:, -1]
        self.served = (x, torch.cat(out, 1))
        return self.batch * self.seq

    def serve_updates(self, every: int = 4) -> int:
        """Serving with a hidden update every ``every`` requests."""
        n = self.serve()
        self.updated = (self.step_no + 1) % every == 0
        self.step_no += 1
        if self.updated:
            self.train()
        return n

    def hidden(self) -> int:
        a = torch.randn(256, 256)
        for _ in range(8):
            a = torch.tanh(a @ a)
        return 0


def open_handovers(job: Job, ph: dict, plan: dict, run_dir: str | None) -> Job | None:
    """This phase's handovers; returns the job whose outputs are handed over (a
    declared-size twin when ``shadow_config`` asks) or None."""
    claim, twin = ph["claim"], None
    if ph["do"] == "train" and ph.get("handover") and run_dir:  # the model it really trains
        job.ho = handover.training(
            ph["name"], job.model, job.opt, job.describe(), corpus=CORPUS, seq_len=job.seq,
            grad_accum=job.accum, clip_grad_norm=1.0, checkpoint_every_s=float(ph["seconds"]) / 5,
        )  # fmt: skip
    if not (
        plan.get("handover")
        and run_dir
        and claim.get("model")
        and ph["do"] in ("serve", "eval", "serve_updates")
    ):
        return None
    if ph.get("shadow_config") is not None:
        twin = Job({**plan.get("config", {}), **ph["shadow_config"]})
    src = twin or job
    model = ph.get("handover_model") or claim["model"]
    if ph["do"] == "eval":
        src.log = handover.evaluated(ph["name"], src.model, model)
    else:
        src.log = handover.served(ph["name"], src.model, model, temperature=0.8, workload="llama.py")
        job.log = src.log  # the job samples with the same noise
    return src


def close_handovers(job: Job, src: Job | None) -> None:
    if job.ho is not None:
        job.ho.finish()
        job.ho = None
    if src is not None and src.log is not None:
        src.log.close()
    job.log = None


def main() -> None:
    plan = json.loads(Path(sys.argv[1]).read_text())
    torch.set_num_threads(int(plan.get("threads", 1)))
    job = Job(plan.get("config", {}))
    run_dir, mode = os.environ.get("INSPECTORATE_RUN_DIR"), plan.get("records", "naive")
    rec = None
    if run_dir and mode != "none":
        rec = StepRecorder(Path(run_dir) / "steps.jsonl", phase="setup", fingerprint_every=0)
    kinds = {"training": "train_step", "inference": "infer_token", "eval": "eval_step"}
    does = {"train": "training", "eval": "eval", "serve": "inference", "serve_updates": "inference"}
    for ph in plan["phases"]:
        claim = {"batch_size": job.batch, "sequence_length": job.seq, **ph["claim"]}
        if rec is not None:
            rec.set_phase(ph["name"])
        with capture.phase(ph["name"], **claim):
            src = open_handovers(job, ph, plan, run_dir)
            end, step = time.time() + float(ph["seconds"]), 0
            while time.time() < end:
                if ph["do"] == "idle":
                    time.sleep(0.05)
                    continue
                t0 = time.time()
                n = getattr(job, ph["do"])()
                if src is not None:  # a twin does the declared work beside, then its outputs go over
                    if src is not job:
                        getattr(src, "eval" if ph["do"] == "eval" else "serve")()
                    if ph["do"] == "eval":
                        src.log.batch(*src.evaluated)
                    else:
                        src.log.log(*src.served)
                told = int(n * float(ph.get("token_factor", 1)))
                if n:
                    capture.tokens(told)
                if rec is not None and ph["do"] != "hidden":
                    real = "training" if job.updated else does[ph["do"]]
                    op, toks = (real, n) if mode == "naive" else (claim["op"], told)
                    if op in kinds:
                        rec.event(kinds[op], step=step, tokens=toks, step_time_s=time.time() - t0)
                step += 1
            close_handovers(job, src)
        time.sleep(0.3)
    if rec is not None:
        rec.close()


if __name__ == "__main__":
    main()
