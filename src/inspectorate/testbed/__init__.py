"""Ground truth: real workloads (pretrain, finetune, inference, eval, idle, and lying
variants) on a small GPT, run on 2 data-parallel ranks and recorded into a run directory.

    from inspectorate.testbed import run_testbed
    run_testbed("laptop", "host0", Path("runs/host0"))

Names are imported lazily (PEP 562) because most of them need torch, the ``[testbed]``
extra: ``import inspectorate.testbed`` and the CLI's ``--help`` work without it, and
only touching e.g. ``GPT`` or ``run_testbed`` imports torch.
"""

from __future__ import annotations

from inspectorate._lazy import lazy_exports

_EXPORTS = {
    "GPT": "model",
    "GPTConfig": "model",
    "PRESETS": "model",
    "preset": "model",
    "count_params": "model",
    "flops_per_token": "model",
    "CharVocab": "data",
    "Corpus": "data",
    "BatchSampler": "data",
    "load_corpus": "data",
    "dataset_fingerprint": "data",
    "split_range": "data",
    "SPLITS": "data",
    "Label": "phases",
    "PhaseSpec": "phases",
    "TRUST_PHASES": "phases",
    "PHASES": "phases",
    "DEFAULT_PHASES": "phases",
    "parse_label": "phases",
    "op_type": "phases",
    "select_phases": "phases",
    "Profile": "profiles",
    "RoleSpec": "profiles",
    "PROFILES": "profiles",
    "get_profile": "profiles",
    "WindowClaim": "windows",
    "WindowTally": "windows",
    "window_records": "windows",
    "run_testbed": "run",
    "sweep": "run",
    "summarize_run": "summary",
    "format_summary": "summary",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
