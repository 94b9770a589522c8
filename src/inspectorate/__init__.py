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

from inspectorate.errors import InputError

__version__ = "0.1.0"
__all__ = ["InputError", "__version__"]
