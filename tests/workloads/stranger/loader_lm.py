"""A user's GPT-2-style character LM built from torch's own ``nn.TransformerEncoderLayer``
(pre-norm, GELU, causal mask, learned positions, tied head), fed by a ``DataLoader`` with
worker processes that cut and encode text windows in Python, as most training scripts are.
Evaluated over a loader of held-out windows; served by a sampler that re-reads the whole
prefix each token (no KV cache: ``nn.TransformerEncoder`` has none). Declared to the
verifier as family ``gpt``.

    python loader_lm.py PLAN.json

PLAN: ``{"config": {"d", "layers", "heads", "ctx", "batch", "workers"}, "threads": 1,
"records": "naive"|"competent"|"none", "handover": bool, "phases": [{"name", "do":
idle|train|eval|serve|hidden|serve_updates[_frozen], "seconds", "claim": {...}, "token_factor",
"handover", "handover_model", "shadow_config"}]}``. ``do`` is what runs, ``claim`` what is
declared through ``inspectorate.capture.phase``; ``records``: step records through
``StepRecorder`` telling what really ran (naive) or what is claimed (competent);
``serve_updates``: a fine-tuning step hidden every 4 served batches;
``serve_updates_frozen``: the competent post-trainer, serving from a frozen copy of the
declared weights while plain SGD (no optimizer state) trains a second copy every
``every`` batches (``"every"`` in the phase, default 4). Shares no code with
the project's testbed or the other workloads; public client only.

Its data follow the corpus's declared cut: it trains on the first 80% of the text (the
verifier's ``pretrain`` split) and evaluates and serves from the last 10% (``val``), so
the windows its loader workers cut are windows of the split a replay claim names.

Handing over (public ``inspectorate.handover`` only): with ``"handover": true`` in the
plan, serve and eval phases hand over their weights and outputs (the sampler then draws
on the run's keyed noise through the log's ``pick``); a train phase with ``"handover":
true`` hands over a replay claim of its loop (AdamW, no clipping, no accumulation; the
workers send each window's start offset beside it). Every tensor maps onto the ``gpt``
family by name (``names``): ``self_attn.in_proj_weight`` is ``(3d, d)`` with q, k, v
stacked in that order and each split into heads by contiguous rows, exactly the layout of
``c_attn``; ``out_proj``, ``linear1``, ``linear2``, ``norm1``, ``norm2`` are ``c_proj``,
``c_fc``, the MLP's ``c_proj``, ``ln_1``, ``ln_2``; LayerNorm eps 1e-5 and erf GELU are
the family's. Nothing is left unmapped. What cannot be handed over: a generation longer
than ``ctx`` (the sampler then slides its window and positions restart at 0, which the
family does not compute); its serve stays inside (8 + 16 tokens), and a config whose
``ctx`` is below 24 must not hand a serve phase over. Lies as in the other strangers:
``handover_model`` (naive: hand over what ran under the name it gives) and
``shadow_config`` (a declared-size twin model, fed the same batches and noise, whose
weights and outputs are handed over).
"""

from __future__ import annotations

import copy
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

from inspectorate import capture, handover
from inspectorate.capture import StepRecorder

CORPUS = Path(
    os.environ.get(
        "STRANGER_CORPUS",
        Path(__file__).resolve().parents[3].parent / "shared" / "data" / "corpora" / "tinyshakespeare.txt",
    )
)
TEMPERATURE = 0.9


class Windows(IterableDataset):
    """Endless random windows of the text, encoded in the worker (plain Python); each
    with its start offset in the text (what a replay claim records)."""

    def __init__(self, text: str, stoi: dict[str, int], ctx: int, seed: int) -> None:
        self.text, self.stoi, self.ctx, self.seed = text, stoi, ctx, seed

    def __iter__(self):  # type: ignore[no-untyped-def]
        info = torch.utils.data.get_worker_info()
        gen = torch.Generator().manual_seed(self.seed + (info.id if info else 0))
        while True:
            s = int(torch.randint(0, len(self.text) - self.ctx - 1, (1,), generator=gen))
            ids = [self.stoi[c] for c in self.text[s : s + self.ctx + 1]]
            yield torch.tensor(ids[:-1]), torch.tensor(ids[1:]), s


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


def names(layers: int) -> dict[str, str]:
    """The verifier's ``gpt`` tensor names -> this module's."""
    out = {
        "gpt.wte.weight": "tok.weight",
        "gpt.wpe.weight": "pos.weight",
        "gpt.lm_head.weight": "head.weight",
    }
    out |= {f"gpt.ln_f.{w}": f"ln.{w}" for w in ("weight", "bias")}
    parts = {"ln_1": "norm1", "ln_2": "norm2", "attn.c_proj": "self_attn.out_proj"}
    parts |= {"mlp.c_fc": "linear1", "mlp.c_proj": "linear2"}
    for i in range(layers):
        mine = f"blocks.layers.{i}"
        out[f"gpt.blocks.{i}.attn.c_attn.weight"] = f"{mine}.self_attn.in_proj_weight"
        out[f"gpt.blocks.{i}.attn.c_attn.bias"] = f"{mine}.self_attn.in_proj_bias"
        for theirs, ours in parts.items():
            out |= {f"gpt.blocks.{i}.{theirs}.{w}": f"{mine}.{ours}.{w}" for w in ("weight", "bias")}
    return out


def loss_of(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return F.cross_entropy(model(x).flatten(0, 1), y.flatten())


class Job:
    """The user's training / eval / serving code around the model."""

    def __init__(self, cfg: dict[str, Any]) -> None:
        text = CORPUS.read_text()
        chars = sorted(set(text))
        self.stoi, self.vocab = {c: i for i, c in enumerate(chars)}, len(chars)
        self.cfg = {"d": 128, "layers": 2, "heads": 4, "ctx": 64, "batch": 8, "workers": 2} | cfg
        torch.manual_seed(0)
        self.model = self.build(self.cfg)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=3e-4)
        self.train_it = self._loader(text[: int(len(text) * 0.8)], 1)
        self.val_it = self._loader(text[int(len(text) * 0.9) :], 2)
        self.log: Any = None  # this phase's serve / eval handover (None: none)
        self.ho: Any = None  # this phase's training handover (None: none)
        self.twin: LoaderLM | None = None  # a declared-size twin whose outputs go over
        self.updated, self.served = False, 0
        self.decoy: list[torch.Tensor] | None = None  # train_decoy's frozen copy
        self.frozen: LoaderLM | None = None  # serve_updates_frozen's served copy
        self.sgd: torch.optim.Optimizer | None = None
        self.every = 4

    def build(self, cfg: dict[str, Any]) -> LoaderLM:
        return LoaderLM(self.vocab, cfg["d"], cfg["layers"], cfg["heads"], cfg["ctx"])

    def describe(self) -> dict[str, Any]:
        return describe(self.vocab, self.cfg)

    def _loader(self, text: str, seed: int):  # type: ignore[no-untyped-def]
        c = self.cfg
        loader = DataLoader(
            Windows(text, self.stoi, c["ctx"], seed),
            batch_size=c["batch"],
            num_workers=c["workers"],
            persistent_workers=c["workers"] > 0,
        )
        return iter(loader)

    def _step(self, opt: torch.optim.Optimizer) -> tuple[torch.Tensor, torch.Tensor]:
        """One optimizer step of the live model on the next training batch."""
        self.model.train()
        x, y, starts = next(self.train_it)
        loss = loss_of(self.model, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return x, starts

    def train(self) -> int:
        x, starts = self._step(self.opt)
        if self.ho is not None:
            self.ho.step(starts.tolist(), inputs=x)
        return x.numel()

    @torch.no_grad()
    def eval(self) -> int:
        self.model.eval()
        x, y, _ = next(self.val_it)
        loss = loss_of(self.model, x, y)
        if self.log is not None:
            if self.twin is not None:  # the twin evaluates the same batch beside
                loss = loss_of(self.twin.eval(), x, y)
            self.log.batch(torch.cat([x, y[:, -1:]], 1), float(loss))
        return x.numel()

    @torch.no_grad()
    def sample(self, model: nn.Module, prompts: torch.Tensor, new: int, noise: Any) -> torch.Tensor:
        """``new`` tokens after ``prompts``, each from a forward over the whole prefix."""
        idx = prompts
        for j in range(new):
            logits = model(idx[:, -self.cfg["ctx"] :])[:, -1]
            if noise is None:
                nxt = torch.multinomial(F.softmax(logits / TEMPERATURE, dim=-1), 1)
            else:  # the log's sampler on the run's keyed noise: the draw the verifier re-derives
                nxt = self.log.pick(logits, noise[:, j])[:, None]
            idx = torch.cat([idx, nxt], dim=1)
        return idx[:, prompts.shape[1] :]

    @torch.no_grad()
    def serve(self, rows: int = 2, prompt: int = 8, new: int = 16) -> int:
        served = self.frozen if self.frozen is not None else self.model
        served.eval()
        x, _, _ = next(self.val_it)
        prompts = x[:rows, :prompt]
        noise = None if self.log is None else self.log.noise(None, rows, new, self.vocab)
        out = self.sample(served, prompts, new, noise)
        if self.log is not None:
            if self.twin is not None:  # the twin serves the same requests on the same noise
                out = self.sample(self.twin.eval(), prompts, new, noise)
            self.log.log(prompts, out)
        return rows * new

    def serve_updates(self, every: int = 4) -> int:
        """Serving with a fine-tuning step every ``every`` served batches."""
        n = self.serve()
        self.served += 1
        self.updated = self.served % every == 0
        if self.updated:
            self.train()
        return n

    def serve_updates_frozen(self) -> int:
        """Serving the declared weights from a frozen copy (outputs match them) while a
        second copy trains with plain SGD every ``self.every`` batches: no optimizer
        state, no write to the served weights, serving-shaped records."""
        if self.frozen is None:
            self.frozen = copy.deepcopy(self.model).eval()
            for p in self.frozen.parameters():
                p.requires_grad_(False)
            self.sgd = torch.optim.SGD(self.model.parameters(), lr=1e-3)
        n = self.serve()
        self.served += 1
        if self.served % self.every == 0 and self.sgd is not None:
            self._step(self.sgd)
            self.updated = True
        return n

    def train_decoy(self) -> int:
        """Training that keeps a frozen copy of the weights and reads it every step: the
        forger's answer to the still set (memory of the weights' size, read, unchanged),
        paid for in resident memory."""
        if self.decoy is None:
            self.decoy = [p.detach().clone() for p in self.model.parameters()]
        sum(float(t.sum()) for t in self.decoy)
        return self.train()

    def hidden(self) -> int:
        a = torch.randn(256, 256)
        for _ in range(8):
            a = torch.tanh(a @ a)
        return 0


def open_handovers(job: Job, ph: dict[str, Any], plan: dict[str, Any], run_dir: str | None) -> None:
    """This phase's handovers, opened on ``job`` (``job.ho``, ``job.log``, ``job.twin``)."""
    c = job.cfg
    if ph["do"] == "train" and ph.get("handover") and run_dir:  # the model it really trains
        job.ho = handover.training(
            ph["name"], job.model, job.opt, job.describe(), corpus=CORPUS, seq_len=c["ctx"],
            names=names(c["layers"]), checkpoint_every_s=float(ph["seconds"]) / 5,
        )  # fmt: skip
    claim = ph["claim"]
    if not (plan.get("handover") and run_dir and claim.get("model")):
        return
    if ph["do"] not in ("serve", "eval", "serve_updates", "serve_updates_frozen"):
        return
    src, layers = job.model, c["layers"]
    if ph.get("shadow_config") is not None:
        twin_cfg = {**c, **ph["shadow_config"]}
        job.twin = src = job.build(twin_cfg)
        layers = twin_cfg["layers"]
    model = ph.get("handover_model") or claim["model"]
    if ph["do"] == "eval":
        job.log = handover.evaluated(ph["name"], src, model, names=names(layers))
    else:
        job.log = handover.served(
            ph["name"], src, model, temperature=TEMPERATURE, names=names(layers), workload="loader_lm.py"
        )


def close_handovers(job: Job) -> None:
    if job.ho is not None:
        job.ho.finish()
    if job.log is not None:
        job.log.close()
    job.ho = job.log = job.twin = None
    job.frozen = job.sgd = None


def run(plan: dict[str, Any]) -> None:
    torch.set_num_threads(int(plan.get("threads", 1)))
    job = Job(plan.get("config", {}))
    run_dir, mode = os.environ.get("INSPECTORATE_RUN_DIR"), plan.get("records", "naive")
    rec = None
    if run_dir and mode != "none":
        rec = StepRecorder(Path(run_dir) / "steps.jsonl", phase="setup", fingerprint_every=0)
    kinds = {"training": "train_step", "inference": "infer_token", "eval": "eval_step"}
    does = {
        "train": "training",
        "train_decoy": "training",
        "eval": "eval",
        "serve": "inference",
        "serve_updates": "inference",
        "serve_updates_frozen": "inference",
    }
    for ph in plan["phases"]:
        claim = {"batch_size": job.cfg["batch"], "sequence_length": job.cfg["ctx"], **ph["claim"]}
        if rec is not None:
            rec.set_phase(ph["name"])
        with capture.phase(ph["name"], **claim):
            job.every = int(ph.get("every", 4))
            open_handovers(job, ph, plan, run_dir)
            end, step = time.monotonic() + float(ph["seconds"]), 0
            while time.monotonic() < end:
                if ph["do"] == "idle":
                    time.sleep(0.2)
                    continue
                t0 = time.monotonic()
                n = getattr(job, ph["do"])()
                told = int(n * float(ph.get("token_factor", 1)))
                if n:
                    capture.tokens(told)
                if rec is not None and ph["do"] in does:
                    real = "training" if job.updated else does[ph["do"]]
                    op, toks = (real, n) if mode == "naive" else (claim["op"], told)
                    if op in kinds:
                        rec.event(kinds[op], step=step, tokens=toks, step_time_s=time.monotonic() - t0)
                job.updated = False
                step += 1
            close_handovers(job)
        time.sleep(0.3)
    if rec is not None:
        rec.close()


if __name__ == "__main__":
    run(json.loads(Path(sys.argv[1]).read_text()))
