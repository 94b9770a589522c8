"""Telemetry inspector: is each phase of a run what the prover claims?

>>> from inspectorate.verify import verify_run
>>> verdict = verify_run("runs/host0")          # or Inspector(calibration=...).inspect(...)
>>> print(verdict.to_json())                    # the `verify` JSON contract (docs/DESIGN.md)

Properties are registered plugins (``@prop``); third parties add theirs through the
``inspectorate.properties`` entry-point group and test them with ``check_property``.
"""

from inspectorate.verify._calibration import (
    DEFAULT,
    Calibration,
    auroc,
    fit_isotonic,
    isotonic,
    logistic_fit,
    logistic_predict,
    reliability_table,
    separating_threshold,
)
from inspectorate.verify._conformance import check_property
from inspectorate.verify._evidence import Claim, PhaseEvidence, collect, parse_claim
from inspectorate.verify._inspector import BUILTIN, POLICIES, Inspector, PhaseVerdict, RunVerdict, verify_run
from inspectorate.verify._properties import Context
from inspectorate.verify._registry import (
    CONSISTENT,
    INCONSISTENT,
    INDETERMINATE,
    PROPERTIES,
    UNVERIFIABLE,
    Finding,
    finding,
    known_properties,
    load_plugins,
    prop,
    unverifiable,
)
from inspectorate.verify._trust import PROVER, SENSOR, STREAMS, SUBSETS, VERIFIER, owner, trusted

__all__ = [
    "BUILTIN",
    "CONSISTENT",
    "Calibration",
    "Claim",
    "Context",
    "DEFAULT",
    "Finding",
    "INCONSISTENT",
    "INDETERMINATE",
    "Inspector",
    "POLICIES",
    "PROPERTIES",
    "PROVER",
    "SENSOR",
    "STREAMS",
    "SUBSETS",
    "UNVERIFIABLE",
    "VERIFIER",
    "PhaseEvidence",
    "PhaseVerdict",
    "RunVerdict",
    "auroc",
    "check_property",
    "collect",
    "finding",
    "fit_isotonic",
    "isotonic",
    "known_properties",
    "load_plugins",
    "logistic_fit",
    "logistic_predict",
    "owner",
    "parse_claim",
    "prop",
    "reliability_table",
    "separating_threshold",
    "trusted",
    "unverifiable",
    "verify_run",
]
