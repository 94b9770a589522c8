"""The generator's scenario names, in a module of their own: the CLI lists them as the
``--scenario`` choices without importing the generator (and polars with it)."""

from __future__ import annotations

HONEST = ("training", "inference", "mixed")
INJECTED = (
    "over_cap",
    "relabel_training",
    "idle_work",
    "forbidden_tag",
    "dropped_windows",
    "fragmented_jobs",
    "tampered",
)
SCENARIOS = HONEST + INJECTED
