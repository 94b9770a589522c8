"""The stranger set for ``bench/capture_workloads.py --set stranger``: workloads
written from scratch (tests/workloads/stranger/, sharing no code with the testbed or
with tests/workloads/), with what each one's prover declares.

- ``s_llama``: Llama-style decoder (RMSNorm, rotary, SwiGLU, 2 KV heads), AdamW + cosine
  + accumulation + clipping, KV-cache sampler; family ``llama``, 0.74M parameters;
- ``s_llama_wide``: the same code at 24.2M parameters, above the ~22M separation size
  (both Llamas hand over through ``inspectorate.handover`` when the plan asks:
  ``"handover": True`` below);
- ``s_ddp``: 2 ranks by ``mp.spawn``, gloo, DDP of a causal ``nn.TransformerEncoder``;
  a parameter count only;
- ``s_seq2seq``: LSTM encoder-decoder with attention, via the documented client only;
  a parameter count only;
- ``s_server``: GPT-2-style batching server (left padding, top-p, heartbeat thread,
  bursts and idle gaps, ``serve_updates``: a fine-tuning step every 4 batches); family
  ``gpt``, 1.82M parameters; its serve and eval phases hand over (top-p through
  ``pick``, its own tensor layout mapped by ``names=``);
- ``s_server_wide``: the same server at 28.9M parameters (d 896, 3 blocks, 8 heads),
  above the separation size;
- ``s_loader``: GPT-2-style char LM from torch's own ``nn.TransformerEncoderLayer``, fed
  by a ``DataLoader`` with 2 worker processes; family ``gpt``, 0.41M parameters; serve,
  eval and train phases hand over (every tensor mapped by ``names=``);
- ``s_loader_1m``, ``s_loader_mid``: the same script at 1.35M (d 192, 3 layers) and 3.2M
  (d 256, 4 layers), for the post-training sweep
  (``lie_updates_frozen_k*_as_serving``: a frozen copy served, SGD on another every k
  batches);
- ``s_loader_wide``: the same script at 25.3M parameters (d 512, 8 layers, 8 heads, ctx
  64, batch 8), above the separation size; its lies add training beside a frozen weights
  copy read every step (``lie_train_as_eval_decoy``, against the still set).

The models' descriptions are the prover's (what it hands over in ``models:``); the
parameter counts of undescribed models come from building the workload's own module.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

STRANGER = Path(__file__).resolve().parents[1] / "tests" / "workloads" / "stranger"
VOCAB = 65  # tinyshakespeare's characters

WORKLOADS: dict[str, dict[str, Any]] = {
    "s_llama": {"script": "stranger/llama.py", "config": {}, "updates": True, "handover": True},
    "s_llama_wide": {
        "script": "stranger/llama.py",
        "config": {"dim": 512, "layers": 8, "heads": 8, "kv_heads": 2, "ffn": 1536},
        "updates": True,
        "handover": True,
    },
    "s_ddp": {"script": "stranger/ddp_spawn.py", "config": {"world_size": 2}},
    "s_seq2seq": {"script": "stranger/seq2seq.py", "config": {}},
    "s_server": {"script": "stranger/batch_server.py", "config": {}, "updates": True, "handover": True},
    "s_server_wide": {
        "script": "stranger/batch_server.py",
        "config": {"d": 896, "layers": 3, "heads": 8},
        "updates": True,
        "handover": True,
    },
    "s_loader": {
        "script": "stranger/loader_lm.py",
        "config": {},
        "updates": True,
        "handover": True,
        "frozen_every": (1, 4),
    },
    "s_loader_1m": {  # 1.35M: the smallest size for post-training detection
        "script": "stranger/loader_lm.py",
        "config": {"d": 192, "layers": 3, "heads": 4, "ctx": 64, "batch": 8},
        "updates": True,
        "handover": True,
        "frozen_every": (1, 4, 16, 64, 100),
    },
    "s_loader_mid": {  # 3.2M: between the small and the wide, for the post-training sweep
        "script": "stranger/loader_lm.py",
        "config": {"d": 256, "layers": 4, "heads": 4, "ctx": 64, "batch": 8},
        "updates": True,
        "handover": True,
        "frozen_every": (1, 4, 16, 64, 100),
    },
    "s_loader_wide": {
        "script": "stranger/loader_lm.py",
        "config": {"d": 512, "layers": 8, "heads": 8, "ctx": 64, "batch": 8},
        "updates": True,
        "handover": True,
        "decoy": True,  # lie_train_as_eval_decoy: training beside a frozen copy it reads
        # lie_updates_frozen_k*_as_serving: serving a frozen copy while plain SGD trains
        # another every k batches (the competent post-trainer of issue 21)
        "frozen_every": (1, 4, 16),
    },
}
LOADER_DEFAULTS = {"d": 128, "layers": 2, "heads": 4, "ctx": 64}  # loader_lm.py's own


def _fit(x: float, multiple: int) -> int:
    return max(int(round(x / multiple)) * multiple, multiple)


def description(name: str, config: dict[str, Any], shrink: float = 1.0) -> dict[str, Any] | None:
    """What the workload runs as an ``inspectorate.model`` family (None: no family
    describes it). ``shrink`` scales widths by its square root (the 20x lie's model)."""
    s = shrink**0.5
    if name.startswith("s_llama"):
        heads, kv = config.get("heads", 4), config.get("kv_heads", 2)
        cfg = {
            "n_layers": config.get("layers", 4),
            "dim": _fit(config.get("dim", 128) * s, 2 * heads),  # rotary: an even head dim
            "n_heads": heads,
            "n_kv_heads": kv,
            "ffn_hidden": _fit(config.get("ffn", 344) * s, 1),
            "vocab_size": VOCAB,
            "max_seq": 64,
            "tie_embeddings": False,
        }
        return {"family": "llama", "config": cfg}
    if name.startswith("s_server"):
        heads = config.get("heads", 4)
        cfg = {
            "n_layer": config.get("layers", 4),
            "n_head": heads,
            "n_embd": _fit(config.get("d", 192) * s, heads),
            "block_size": config.get("ctx", 128),
            "vocab_size": VOCAB,
            "bias": True,
        }
        return {"family": "gpt", "config": cfg}
    if name.startswith("s_loader"):
        c = LOADER_DEFAULTS | config
        cfg = {
            "n_layer": c["layers"],
            "n_head": c["heads"],
            "n_embd": _fit(c["d"] * s, c["heads"]),
            "block_size": c["ctx"],
            "vocab_size": VOCAB,
            "bias": True,
        }
        return {"family": "gpt", "config": cfg}
    return None


def shrunk_config(name: str, config: dict[str, Any], shrink: float) -> dict[str, Any]:
    """The workload config of the model ``description(name, config, shrink)`` describes
    (what a competent liar's declared-size twin runs)."""
    desc = description(name, config, shrink)
    if desc is None:
        raise ValueError(f"{name} has no declared-size twin")
    if name.startswith(("s_server", "s_loader")):
        return {**config, "d": desc["config"]["n_embd"]}
    return {**config, "dim": desc["config"]["dim"], "ffn": desc["config"]["ffn_hidden"]}


def n_params(name: str, config: dict[str, Any], shrink: float = 1.0) -> int:
    desc = description(name, config, shrink)
    if desc is not None:
        from inspectorate.models import spec_from_dict

        return spec_from_dict({"format": "inspectorate.model", "version": 1, **desc}).n_params()
    sys.path.insert(0, str(STRANGER))
    if name == "s_ddp":
        model = importlib.import_module("ddp_spawn").CausalLM(
            VOCAB, config.get("d", 128), config.get("layers", 2)
        )
    else:
        model = importlib.import_module("seq2seq").Translator(config).model
    return int(sum(p.numel() for p in model.parameters()) * shrink)
