"""inspectorate: automated verification of AI compute.

Read the evidence a cluster produces (hash-chained window records, step records,
telemetry, served outputs) plus a commitment, and answer one bit: compliant or not,
with the evidence behind it.
"""

from inspectorate.errors import InputError

__version__ = "0.1.0"
__all__ = ["InputError", "__version__"]
