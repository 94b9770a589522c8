"""Telemetry inspector: is each phase of a run what the prover claims?

>>> from inspectorate.verify import verify_run
>>> verdict = verify_run("runs/host0")          # or Inspector(calibration=...).inspect(...)
>>> print(verdict.to_json())                    # the `verify` JSON contract (docs/DESIGN.md)

Properties are registered plugins (``@prop``); third parties add theirs through the
``inspectorate.properties`` entry-point group and test them with ``check_property``.
"""

from inspectorate.verify._calibration import (
    Calibration,
)
from inspectorate.verify._conformance import check_property
from inspectorate.verify._evidence import Claim, PhaseEvidence
from inspectorate.verify._inspector import POLICIES, Inspector, PhaseVerdict, RunVerdict, verify_run
from inspectorate.verify._properties import Context
from inspectorate.verify._registry import (
    CONSISTENT,
    INCONSISTENT,
    PROPERTIES,
    UNVERIFIABLE,
    Finding,
    finding,
    known_properties,
    prop,
    unverifiable,
)
from inspectorate.verify._trust import SUBSETS

__all__ = [
    "CONSISTENT",
    "Calibration",
    "Claim",
    "Context",
    "Finding",
    "INCONSISTENT",
    "Inspector",
    "POLICIES",
    "PROPERTIES",
    "SUBSETS",
    "UNVERIFIABLE",
    "PhaseEvidence",
    "PhaseVerdict",
    "RunVerdict",
    "check_property",
    "finding",
    "known_properties",
    "prop",
    "unverifiable",
    "verify_run",
]
