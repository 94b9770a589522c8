"""A batching text server around a GPT-2-style model (learned positions, pre-norm
LayerNorm blocks, GELU MLP, tied head), written as a user would: requests of varied
prompt lengths are left-padded into a batch (attention mask, per-row positions), decoded
through a KV cache with temperature + top-p (nucleus) sampling, in bursts with idle gaps
between them, while a background thread writes a heartbeat with metrics every 0.5 s.
Declared to the verifier as family ``gpt``.

    python batch_server.py PLAN.json   (PLAN as in llama.py; ``do`` also ``serve_updates``:
                                        a fine-tuning step every 4 served requests)

Handing over (``"handover": true`` in the plan; public ``inspectorate.handover`` only):
serve and eval phases hand over their weights and outputs. The module's tensors are not
in the verifier's order (each block's two LayerNorms come first, the MLP is an
``nn.Sequential``), so the server maps them by name (``NAMES``); it samples with the
log's own sampler (``pick``: temperature 0.9, top-p 0.9) on the keyed noise. Lies as in
llama.py: ``handover_model`` (naive: hand over what ran) and ``shadow_config`` (a
declared-size twin server whose weights and outputs are handed over). A train phase
with ``"handover": true`` hands over a replay claim of its fine-tuning loop (AdamW,
windows of the declared split, the same ``names=``).
"""

from __future__ import annotations

import json
import os
import random
import sys
import threading
import time
from pathlib import Path
from typing import Any

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


class SelfAttention(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.qkv, self.proj, self.heads = nn.Linear(d, 3 * d), nn.Linear(d, d), heads

    def forward(self, x: torch.Tensor, keep: torch.Tensor, cache: dict) -> torch.Tensor:
        b, t, d = x.shape
        q, k, v = (z.view(b, t, self.heads, d // self.heads).transpose(1, 2) for z in self.qkv(x).split(d, 2))
        if "k" in cache:
            k, v = torch.cat([cache["k"], k], 2), torch.cat([cache["v"], v], 2)
        cache["k"], cache["v"] = k, v
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep)
        return self.proj(y.transpose(1, 2).reshape(b, t, d))


class Block(nn.Module):
    def __init__(self, d: int, heads: int) -> None:
        super().__init__()
        self.ln1, self.ln2 = nn.LayerNorm(d), nn.LayerNorm(d)
        self.attn = SelfAttention(d, heads)
        self.mlp = nn.Sequential(nn.Linear(d, 4 * d), nn.GELU(), nn.Linear(4 * d, d))

    def forward(self, x: torch.Tensor, keep: torch.Tensor, cache: dict) -> torch.Tensor:
        x = x + self.attn(self.ln1(x), keep, cache)
        return x + self.mlp(self.ln2(x))


class GPT2(nn.Module):
    def __init__(self, vocab: int, ctx: int, d: int, layers: int, heads: int) -> None:
        super().__init__()
        self.wte, self.wpe = nn.Embedding(vocab, d), nn.Embedding(ctx, d)
        self.blocks = nn.ModuleList(Block(d, heads) for _ in range(layers))
        self.ln_f = nn.LayerNorm(d)
        self.head = nn.Linear(d, vocab, bias=False)
        self.head.weight = self.wte.weight

    def forward(self, idx, pos, keep, caches):
        x = self.wte(idx) + self.wpe(pos)
        for blk, cache in zip(self.blocks, caches):
            x = blk(x, keep, cache)
        return self.head(self.ln_f(x))


def names(layers: int) -> dict[str, str]:
    """The verifier's ``gpt`` names -> this server's."""
    out = {
        "gpt.wte.weight": "wte.weight",
        "gpt.wpe.weight": "wpe.weight",
        "gpt.lm_head.weight": "head.weight",
    }
    out |= {f"gpt.ln_f.{w}": f"ln_f.{w}" for w in ("weight", "bias")}
    parts = {"ln_1": "ln1", "ln_2": "ln2", "attn.c_attn": "attn.qkv", "attn.c_proj": "attn.proj"}
    parts |= {"mlp.c_fc": "mlp.0", "mlp.c_proj": "mlp.2"}
    for i in range(layers):
        for ours, theirs in parts.items():
            out |= {f"gpt.blocks.{i}.{ours}.{w}": f"blocks.{i}.{theirs}.{w}" for w in ("weight", "bias")}
    return out


def top_p_sample(
    logits: torch.Tensor, temperature: float, top_p: float, gen: torch.Generator
) -> torch.Tensor:
    probs = F.softmax(logits / temperature, -1)
    sorted_p, order = probs.sort(-1, descending=True)
    drop = sorted_p.cumsum(-1) - sorted_p > top_p  # keep the smallest set reaching top_p
    sorted_p = sorted_p.masked_fill(drop, 0.0)
    pick = torch.multinomial(sorted_p / sorted_p.sum(-1, keepdim=True), 1, generator=gen)
    return order.gather(-1, pick)


class Server:
    def __init__(self, cfg: dict) -> None:
        text = CORPUS.read_text()
        self.vocab = sorted(set(text))
        lookup = {c: i for i, c in enumerate(self.vocab)}
        self.ids = torch.tensor([lookup[c] for c in text[:300_000]])
        self.batch, self.ctx = int(cfg.get("batch", 4)), int(cfg.get("ctx", 128))
        self.new_tokens = int(cfg.get("new_tokens", 24))
        self.model = GPT2(
            len(self.vocab),
            self.ctx,
            int(cfg.get("d", 192)),
            int(cfg.get("layers", 4)),
            int(cfg.get("heads", 4)),
        )
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=2e-4)
        self.rng, self.gen = random.Random(3), torch.Generator().manual_seed(3)
        self.served, self.updated, self.burst = 0, False, 0
        self.metrics = {"requests": 0, "tokens": 0}
        self.layers, self.cfg = int(cfg.get("layers", 4)), cfg
        self.ho: Any = None  # this phase's training handover (None: none)
        self.log: Any = None  # this phase's handover (None: none)
        self.last: Any = None  # what the last call served or evaluated, for the handover

    def requests(self) -> list[torch.Tensor]:
        """A batch of prompts of varied lengths, as clients send them."""
        out = []
        for _ in range(self.batch):
            n = self.rng.randint(4, 40)
            s = self.rng.randrange(len(self.ids) - n)
            out.append(self.ids[s : s + n])
        return out

    @torch.no_grad()
    def serve(self) -> int:
        self.updated = False
        prompts = self.requests()
        width = max(len(p) for p in prompts)
        idx = torch.zeros(len(prompts), width, dtype=torch.long)
        real = torch.zeros(len(prompts), width, dtype=torch.bool)
        for i, p in enumerate(prompts):  # left padding
            idx[i, width - len(p) :], real[i, width - len(p) :] = p, True
        pos = (real.cumsum(1) - 1).clamp(min=0)
        caches: list[dict] = [{} for _ in self.model.blocks]
        causal = torch.ones(width, width, dtype=torch.bool).tril()
        keep = (causal[None] & real[:, None, :])[:, None]
        keep = keep | torch.eye(width, dtype=torch.bool)[None, None]  # a pad row attends to itself
        logits = self.model(idx, pos, keep, caches)[:, -1]
        noise = (
            None
            if self.log is None
            else self.log.noise(None, len(prompts), self.new_tokens, logits.shape[-1])
        )
        out = []
        for j in range(self.new_tokens):
            if noise is None:
                nxt = top_p_sample(logits, 0.9, 0.9, self.gen)
            else:  # the sampler the verifier re-runs, on the run's keyed noise
                nxt = self.log.pick(logits, noise[:, j])[:, None]
            out.append(nxt)
            real = torch.cat([real, torch.ones(len(prompts), 1, dtype=torch.bool)], 1)
            pos = pos[:, -1:] + 1
            logits = self.model(nxt, pos, real[:, None, None, :], caches)[:, -1]
        self.last = (prompts, torch.cat(out, 1))
        self.burst += 1
        if self.burst % 3 == 0:  # bursts of 3 batches, then the queue is empty for a while
            time.sleep(0.3)
        n = int(sum(len(p) for p in prompts)) + len(prompts) * self.new_tokens
        self.metrics["requests"] += len(prompts)
        self.metrics["tokens"] += n
        return n

    def describe(self) -> dict:
        """This server's model in the verifier's terms (its ``gpt`` family)."""
        c = self.cfg
        config = {"n_layer": self.layers, "n_head": int(c.get("heads", 4)), "n_embd": int(c.get("d", 192))}
        config |= {"block_size": self.ctx, "vocab_size": len(self.vocab), "bias": True}
        return {"family": "gpt", "config": config}

    def train(self) -> int:
        """A fine-tuning step on corpus windows (what a hidden update does); with a
        training handover open, windows of the declared split, recorded."""
        self.model.train()
        ids = self.ids if self.ho is None else torch.from_numpy(self.ho.tokens)
        starts = [self.rng.randrange(len(ids) - 65) for _ in range(self.batch)]
        x = torch.stack([ids[s : s + 64] for s in starts])
        y = torch.stack([ids[s + 1 : s + 65] for s in starts])
        pos = torch.arange(64).expand(len(starts), 64)
        keep = torch.ones(64, 64, dtype=torch.bool).tril()
        logits = self.model(x, pos, keep, [{} for _ in self.model.blocks])
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        if self.ho is not None:
            self.ho.step(starts, inputs=x)
        self.model.eval()
        return x.numel()

    @torch.no_grad()
    def eval(self) -> int:
        starts = [self.rng.randrange(len(self.ids) - 65) for _ in range(self.batch)]
        x = torch.stack([self.ids[s : s + 64] for s in starts])
        y = torch.stack([self.ids[s + 1 : s + 65] for s in starts])
        keep = torch.ones(64, 64, dtype=torch.bool).tril()
        logits = self.model(
            x, torch.arange(64).expand(len(starts), 64), keep, [{} for _ in self.model.blocks]
        )
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        self.last = (torch.cat([x, y[:, -1:]], 1), float(loss))
        return x.numel()

    def serve_updates(self, every: int = 4) -> int:
        n = self.serve()
        self.served += 1
        if self.served % every == 0:
            self.train()
            self.updated = True
        return n

    def hidden(self) -> int:
        a = torch.randn(256, 256)
        for _ in range(8):
            a = torch.tanh(a @ a)
        return 0


def open_handover(srv: Server, ph: dict, plan: dict, run_dir: str | None) -> Server | None:
    """The server whose weights and outputs this phase hands over (a declared-size twin
    when ``shadow_config`` asks), its handover open; None: nothing handed over."""
    if ph["do"] == "train" and ph.get("handover") and run_dir:  # the model it really trains
        srv.ho = handover.training(
            ph["name"], srv.model, srv.opt, srv.describe(), corpus=CORPUS, seq_len=64,
            names=names(srv.layers), checkpoint_every_s=float(ph["seconds"]) / 5,
        )  # fmt: skip
    if not (plan.get("handover") and run_dir and ph["claim"].get("model")):
        return None
    if ph["do"] not in ("serve", "eval", "serve_updates"):
        return None
    src = (
        srv if ph.get("shadow_config") is None else Server({**plan.get("config", {}), **ph["shadow_config"]})
    )
    model, mapping = ph.get("handover_model") or ph["claim"]["model"], names(src.layers)
    if ph["do"] == "eval":
        src.log = handover.evaluated(ph["name"], src.model, model, names=mapping)
    else:
        src.log = handover.served(
            ph["name"],
            src.model,
            model,
            temperature=0.9,
            top_p=0.9,
            names=mapping,
            workload="batch_server.py",
        )
        srv.log = src.log  # the server samples on the same noise
    return src


def hand_over(srv: Server, src: Server, do: str) -> None:
    """After a call: the twin does the declared work beside, then what it did goes over."""
    if src is not srv and do == "eval":
        src.eval()
    elif src is not srv:
        src.serve()
    if do == "eval":
        src.log.batch(*src.last)
    else:
        src.log.log(*src.last)


def heartbeat(server: Server, path: Path, stop: threading.Event) -> None:
    with path.open("a") as f:
        while not stop.wait(0.5):
            f.write(json.dumps({"t": time.time(), **server.metrics}) + "\n")
            f.flush()


def main() -> None:
    plan = json.loads(Path(sys.argv[1]).read_text())
    torch.set_num_threads(int(plan.get("threads", 1)))
    srv = Server(plan.get("config", {}))
    run_dir, mode = os.environ.get("INSPECTORATE_RUN_DIR"), plan.get("records", "naive")
    stop = threading.Event()
    beat = Path(run_dir or "/tmp") / "server_heartbeat.jsonl"
    threading.Thread(target=heartbeat, args=(srv, beat, stop), daemon=True).start()
    rec = (
        StepRecorder(Path(run_dir) / "steps.jsonl", phase="setup", fingerprint_every=0)
        if run_dir and mode != "none"
        else None
    )
    kinds = {"training": "train_step", "inference": "infer_token", "eval": "eval_step"}
    does = {"train": "training", "eval": "eval", "serve": "inference", "serve_updates": "inference"}
    for ph in plan["phases"]:
        claim = {"batch_size": srv.batch, "sequence_length": 64, **ph["claim"]}
        if rec is not None:
            rec.set_phase(ph["name"])
        with capture.phase(ph["name"], **claim):
            src = open_handover(srv, ph, plan, run_dir)
            end, step = time.time() + float(ph["seconds"]), 0
            while time.time() < end:
                if ph["do"] == "idle":
                    time.sleep(0.05)
                    continue
                t0 = time.time()
                n = getattr(srv, ph["do"])()
                if src is not None:
                    hand_over(srv, src, ph["do"])
                told = int(n * float(ph.get("token_factor", 1)))
                if n:
                    capture.tokens(told)
                if rec is not None and ph["do"] in does:
                    real = "training" if srv.updated else does[ph["do"]]
                    op, toks = (real, n) if mode == "naive" else (claim["op"], told)
                    rec.event(kinds[op], step=step, tokens=toks, step_time_s=time.time() - t0)
                step += 1
            if src is not None:
                src.log.close()
                srv.log = src.log = None
            if srv.ho is not None:
                srv.ho.finish()
                srv.ho = None
        time.sleep(0.3)
    stop.set()
    if rec is not None:
        rec.close()


if __name__ == "__main__":
    main()
