"""Declarable model architectures shared by verify, testbed, replay and DiFR.

    from inspectorate.models import read_model_file, resolve_model
    spec = read_model_file("run/models/chargru.json")   # {"format": "inspectorate.model", ...}
    spec.n_params(), spec.memory_b("training"), spec.build()   # build() needs torch

A prover hands over a model *description* (family + config); the verifier builds it
from its own code with random weights. Third parties add families through the
``inspectorate.models`` entry-point group (``@architecture("name")``).
"""

from __future__ import annotations

from inspectorate.models._families import GPTSpec, LlamaSpec, MLPSpec, RNNSpec
from inspectorate.models._spec import (
    ARCHITECTURES,
    ModelSpec,
    architecture,
    named_spec,
    read_model_file,
    resolve_model,
    spec_from_dict,
    write_model_file,
)

__all__ = [
    "ARCHITECTURES",
    "GPTSpec",
    "LlamaSpec",
    "MLPSpec",
    "ModelSpec",
    "RNNSpec",
    "architecture",
    "named_spec",
    "read_model_file",
    "resolve_model",
    "spec_from_dict",
    "write_model_file",
]
