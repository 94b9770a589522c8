"""The model layer: what a verifier re-runs and a prover serves or trains.

A character-level GPT (:class:`GPT`, its presets and FLOP accounting), the corpus it
trains on (deterministic splits, seeded batches, dataset fingerprints) and the
checkpoint format that names its weights (a SHA-256 over the state dict). It sits below
``replay``, ``difr`` and ``verify`` (they re-compute with it) and below ``testbed``
(which trains it); it imports only ``errors``.

Names load on first use (PEP 562): the corpus needs only numpy, the model and the
checkpoint need torch (the ``[testbed]`` extra).
"""

from __future__ import annotations

from inspectorate._lazy import lazy_exports

_EXPORTS = {
    "GPT": "_gpt",
    "GPTConfig": "_gpt",
    "PRESETS": "_gpt",
    "count_params": "_gpt",
    "flops_per_token": "_gpt",
    "kv_cache_bytes": "_gpt",
    "preset": "_gpt",
    "sample_next": "_gpt",
    "SPLITS": "_corpus",
    "BatchSampler": "_corpus",
    "CharVocab": "_corpus",
    "Corpus": "_corpus",
    "dataset_fingerprint": "_corpus",
    "load_corpus": "_corpus",
    "split_range": "_corpus",
    "Checkpoint": "_checkpoint",
    "config_of": "_checkpoint",
    "file_sha256": "_checkpoint",
    "load_checkpoint": "_checkpoint",
    "model_hash": "_checkpoint",
    "save_checkpoint": "_checkpoint",
    "weights_sha256": "_checkpoint",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
