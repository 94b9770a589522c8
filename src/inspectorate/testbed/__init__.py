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
    from inspectorate.models._corpus import SPLITS as SPLITS
    from inspectorate.models._corpus import BatchSampler as BatchSampler
    from inspectorate.models._corpus import CharVocab as CharVocab
    from inspectorate.models._corpus import Corpus as Corpus
    from inspectorate.models._corpus import dataset_fingerprint as dataset_fingerprint
    from inspectorate.models._corpus import load_corpus as load_corpus
    from inspectorate.models._corpus import split_range as split_range
    from inspectorate.models._gpt import GPT as GPT
    from inspectorate.models._gpt import PRESETS as PRESETS
    from inspectorate.models._gpt import GPTConfig as GPTConfig
    from inspectorate.models._gpt import count_params as count_params
    from inspectorate.models._gpt import flops_per_token as flops_per_token
    from inspectorate.models._gpt import preset as preset
    from inspectorate.testbed.phases import DEFAULT_PHASES as DEFAULT_PHASES
    from inspectorate.testbed.phases import PHASES as PHASES
    from inspectorate.testbed.phases import Label as Label
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
