"""Embedded reference data: the seed's honest traces and its commitment."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

SEED_TRACES = (
    "legit_finetune",
    "legit_inference_serve",
    "legit_eval_sweep",
    "real_laptop_clean",
    "alibaba_real",
    "bloom_real",
)


def seed_path(name: str) -> Path:
    """Path of an embedded seed file (``legit_finetune`` or ``no_frontier_training.yml``)."""
    filename = name if "." in name else f"{name}.jsonl"
    return Path(str(files("inspectorate.data") / "seed" / filename))


def commitment_path(name: str) -> Path:
    """Path of a commitment from the project's library (``frontier-training-cap``)."""
    return Path(str(files("inspectorate.data") / "commitments" / f"{name}.yml"))


__all__ = ["SEED_TRACES", "commitment_path", "seed_path"]
