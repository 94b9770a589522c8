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
    "GPT": "inspectorate.models._gpt",
    "GPTConfig": "inspectorate.models._gpt",
    "PRESETS": "inspectorate.models._gpt",
    "preset": "inspectorate.models._gpt",
    "count_params": "inspectorate.models._gpt",
    "flops_per_token": "inspectorate.models._gpt",
    "CharVocab": "inspectorate.models._corpus",
    "Corpus": "inspectorate.models._corpus",
    "BatchSampler": "inspectorate.models._corpus",
    "load_corpus": "inspectorate.models._corpus",
    "dataset_fingerprint": "inspectorate.models._corpus",
    "split_range": "inspectorate.models._corpus",
    "SPLITS": "inspectorate.models._corpus",
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
