"""The model layer: what a verifier re-runs and a prover serves or trains.

Declarable architectures (:class:`ModelSpec` families ``gpt``, ``llama``, ``mlp``,
``rnn``, and ``exported``: a torch.export / TorchScript archive loaded without its
weights or any unpickling; third parties add theirs through the ``inspectorate.models`` entry-point
group with ``@architecture("name")``) and the portable description a prover hands
over with a claim (``RUN_DIR/models/<name>.json``), from which the verifier builds the
model with random weights from its own code:

    from inspectorate.models import read_model_file, resolve_model
    spec = read_model_file("run/models/chargru.json")  # {"format": "inspectorate.model", ...}
    spec.n_params(), spec.memory_b("training"), spec.build()  # build() needs torch

Also the testbed's character-level GPT (:class:`GPT`, its presets and FLOP accounting),
the corpus it trains on (deterministic splits, seeded batches, dataset fingerprints)
and the checkpoint format that names its weights (a SHA-256 over the state dict); and
the weights file of any declared family (``save_weights``/``load_weights``: the
description plus tensors under the verifier's module names, which a workload's own
state dict is mapped onto by position with ``map_state_dict``). It
sits below ``replay``, ``difr`` and ``verify`` (they re-compute with it) and below
``testbed`` (which trains it); it imports only ``errors`` and ``_plugins``.

Names load on first use (PEP 562): the specs and the corpus need only numpy, built
models and checkpoints need torch (the ``[testbed]`` extra).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from inspectorate._lazy import lazy_exports

if TYPE_CHECKING:  # the lazy names, for type checkers and editors
    from inspectorate.models._checkpoint import Checkpoint as Checkpoint
    from inspectorate.models._checkpoint import config_of as config_of
    from inspectorate.models._checkpoint import file_sha256 as file_sha256
    from inspectorate.models._checkpoint import load_checkpoint as load_checkpoint
    from inspectorate.models._checkpoint import model_hash as model_hash
    from inspectorate.models._checkpoint import save_checkpoint as save_checkpoint
    from inspectorate.models._checkpoint import weights_sha256 as weights_sha256
    from inspectorate.models._corpus import SPLITS as SPLITS
    from inspectorate.models._corpus import BatchSampler as BatchSampler
    from inspectorate.models._corpus import CharVocab as CharVocab
    from inspectorate.models._corpus import Corpus as Corpus
    from inspectorate.models._corpus import dataset_fingerprint as dataset_fingerprint
    from inspectorate.models._corpus import load_corpus as load_corpus
    from inspectorate.models._corpus import split_range as split_range
    from inspectorate.models._exported import ExportedSpec as ExportedSpec
    from inspectorate.models._families import GPTSpec as GPTSpec
    from inspectorate.models._families import LlamaSpec as LlamaSpec
    from inspectorate.models._families import MLPSpec as MLPSpec
    from inspectorate.models._families import RNNSpec as RNNSpec
    from inspectorate.models._files import ARCHITECTURES as ARCHITECTURES
    from inspectorate.models._files import named_spec as named_spec
    from inspectorate.models._files import read_model_file as read_model_file
    from inspectorate.models._files import resolve_model as resolve_model
    from inspectorate.models._files import spec_from_dict as spec_from_dict
    from inspectorate.models._files import write_model_file as write_model_file
    from inspectorate.models._gpt import GPT as GPT
    from inspectorate.models._gpt import PRESETS as PRESETS
    from inspectorate.models._gpt import GPTConfig as GPTConfig
    from inspectorate.models._gpt import count_params as count_params
    from inspectorate.models._gpt import flops_per_token as flops_per_token
    from inspectorate.models._gpt import kv_cache_bytes as kv_cache_bytes
    from inspectorate.models._gpt import preset as preset
    from inspectorate.models._gpt import sample_next as sample_next
    from inspectorate.models._spec import ModelSpec as ModelSpec
    from inspectorate.models._spec import architecture as architecture
    from inspectorate.models._weights import Weights as Weights
    from inspectorate.models._weights import load_weights as load_weights
    from inspectorate.models._weights import map_state_dict as map_state_dict
    from inspectorate.models._weights import save_weights as save_weights

_EXPORTS = {
    "ARCHITECTURES": "_files",
    "ModelSpec": "_spec",
    "architecture": "_spec",
    "named_spec": "_files",
    "read_model_file": "_files",
    "resolve_model": "_files",
    "spec_from_dict": "_files",
    "write_model_file": "_files",
    "ExportedSpec": "_exported",
    "GPTSpec": "_families",
    "LlamaSpec": "_families",
    "MLPSpec": "_families",
    "RNNSpec": "_families",
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
    "Weights": "_weights",
    "load_weights": "_weights",
    "map_state_dict": "_weights",
    "save_weights": "_weights",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
