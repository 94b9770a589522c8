"""The fingerprint of the training code a replay runs: what a claim's ``code_commit`` names.

A replay proves a claim only if the verifier replays the code the claim names. A git
commit cannot be checked from inside an installed wheel, so the default is a content
fingerprint of what determines a training step: the source of the modules that build
the model, draw the batches and run the optimiser, plus the torch version (its kernels
and AdamW are part of the step) and the numpy version (the batches are drawn by numpy's
``Generator``, whose streams numpy does not promise to keep across versions). Sources are read through the import system, so the
fingerprint is the same from a checkout and from an installed wheel of the same code.
"""

from __future__ import annotations

import hashlib
import importlib.util
from typing import Any

import numpy as np
import torch

from inspectorate.errors import InputError

PREFIX = "inspectorate-train:sha256:"
TRAINING_MODULES = (
    "inspectorate.replay._train",
    "inspectorate.models._gpt",
    "inspectorate.models._corpus",
)
# A claim of any declared family is replayed by the family modules, the loss and the
# optimizers of ``_family`` as well.
FAMILY_MODULES = (
    *TRAINING_MODULES,
    "inspectorate.replay._family",
    "inspectorate.models._families",
    "inspectorate.models._torch_families",
)


def modules_for(spec: Any) -> tuple[str, ...]:
    """The modules whose source determines a step of ``spec`` (a TrainSpec)."""
    return FAMILY_MODULES if spec.family is not None else TRAINING_MODULES


def module_source(name: str) -> bytes:
    """The source bytes of an importable module (InputError when only bytecode ships)."""
    spec = importlib.util.find_spec(name)
    loader = spec.loader if spec is not None else None
    get_source = getattr(loader, "get_source", None)
    text = get_source(name) if get_source is not None else None
    if text is None:
        raise InputError(f"cannot fingerprint the training code: no source for module {name}")
    return str(text).encode("utf-8")


def code_fingerprint(modules: tuple[str, ...] = TRAINING_MODULES) -> str:
    """``inspectorate-train:sha256:<hex>`` over each module's name and source, and the
    torch and numpy versions."""
    digest = hashlib.sha256()
    fields = [f"torch {torch.__version__}".encode(), f"numpy {np.__version__}".encode()]
    for name in modules:
        fields += [f"module {name}".encode(), module_source(name)]
    for value in fields:  # length-prefixed: no two different inputs hash the same bytes
        digest.update(len(value).to_bytes(8, "big") + value)
    return PREFIX + digest.hexdigest()
