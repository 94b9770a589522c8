"""Ground truth: real workloads (pretrain, finetune, inference, eval, idle, and lying
variants) on a small GPT, run on 2 data-parallel ranks and recorded into a run directory.

    from inspectorate.testbed import run_testbed
    run_testbed("laptop", "host0", Path("runs/host0"))

Names are imported lazily (PEP 562) because most of them need torch, the ``[testbed]``
extra: ``import inspectorate.testbed`` and the CLI's ``--help`` work without it, and
only touching e.g. ``GPT`` or ``run_testbed`` imports torch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from inspectorate._lazy import lazy_exports

if TYPE_CHECKING:  # the lazy names, for type checkers and editors
    from inspectorate.testbed.data import SPLITS as SPLITS
    from inspectorate.testbed.data import BatchSampler as BatchSampler
    from inspectorate.testbed.data import CharVocab as CharVocab
    from inspectorate.testbed.data import Corpus as Corpus
    from inspectorate.testbed.data import dataset_fingerprint as dataset_fingerprint
    from inspectorate.testbed.data import load_corpus as load_corpus
    from inspectorate.testbed.data import split_range as split_range
    from inspectorate.testbed.model import GPT as GPT
    from inspectorate.testbed.model import PRESETS as PRESETS
    from inspectorate.testbed.model import GPTConfig as GPTConfig
    from inspectorate.testbed.model import count_params as count_params
    from inspectorate.testbed.model import flops_per_token as flops_per_token
    from inspectorate.testbed.model import preset as preset
    from inspectorate.testbed.phases import DEFAULT_PHASES as DEFAULT_PHASES
    from inspectorate.testbed.phases import PHASES as PHASES
    from inspectorate.testbed.phases import PhaseSpec as PhaseSpec
    from inspectorate.testbed.phases import select_phases as select_phases
    from inspectorate.testbed.profiles import PROFILES as PROFILES
    from inspectorate.testbed.profiles import Profile as Profile
    from inspectorate.testbed.profiles import get_profile as get_profile
    from inspectorate.testbed.run import run_testbed as run_testbed
    from inspectorate.testbed.run import sweep as sweep
    from inspectorate.testbed.summary import format_summary as format_summary
    from inspectorate.testbed.summary import summarize_run as summarize_run


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
    "PhaseSpec": "phases",
    "PHASES": "phases",
    "DEFAULT_PHASES": "phases",
    "select_phases": "phases",
    "Profile": "profiles",
    "PROFILES": "profiles",
    "get_profile": "profiles",
    "run_testbed": "run",
    "sweep": "run",
    "summarize_run": "summary",
    "format_summary": "summary",
}

__all__ = sorted(_EXPORTS)


__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
