"""inspectorate: automated verification of AI compute.

Read the evidence a cluster produces (hash-chained window records, step records,
telemetry, served outputs) plus a commitment, and answer one bit: compliant or not,
with the evidence behind it.
"""

import os

# Polars' allocator (jemalloc) keeps freed pages for ten seconds by default, so a check
# at 10^7 records stays about 0.4 GB above what it uses (docs/benchmarks.md). Return
# them at once, unless the user configured it; this only takes effect when inspectorate
# is imported before polars (the CLI and the benchmarks are).
os.environ.setdefault("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")

from typing import TYPE_CHECKING

from inspectorate._lazy import lazy_exports
from inspectorate.errors import InputError

if TYPE_CHECKING:  # the lazy names below, for type checkers and editors
    from inspectorate.commitment._check import Verdict as Verdict
    from inspectorate.commitment._check import check as check
    from inspectorate.commitment._model import Commitment as Commitment
    from inspectorate.commitment._model import load_commitment as load_commitment
    from inspectorate.trace._io import read_trace as read_trace
    from inspectorate.trace._trace import Trace as Trace
    from inspectorate.verify._inspector import RunVerdict as RunVerdict
    from inspectorate.verify._inspector import verify_run as verify_run

__version__ = "0.1.0"

# The front door: read evidence, load a commitment, judge. Imported on first use
# (PEP 562), so ``import inspectorate`` stays cheap and sets the allocator first.
_EXPORTS = {
    "read_trace": "trace._io",
    "Trace": "trace._trace",
    "load_commitment": "commitment._model",
    "Commitment": "commitment._model",
    "check": "commitment._check",
    "Verdict": "commitment._check",
    "verify_run": "verify._inspector",
    "RunVerdict": "verify._inspector",
}

__all__ = [
    "Commitment",
    "InputError",
    "RunVerdict",
    "Trace",
    "Verdict",
    "__version__",
    "check",
    "load_commitment",
    "read_trace",
    "verify_run",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
