"""Red team: record attacks, run-directory attacks, a sandbox for untrusted mutation
code, and the adversarial search loop (``redteam``)."""

from inspectorate.attacks._conformance import check_attack
from inspectorate.attacks._defend import defend
from inspectorate.attacks._intent import conserves_work, violate
from inspectorate.attacks._llm_defender import llm_defend
from inspectorate.attacks._loop import Attacker, RedteamReport, make_attacker, redteam
from inspectorate.attacks._offline import OfflineAttacker, Proposal
from inspectorate.attacks._registry import (
    ATTACKS,
    Attack,
    Compound,
    Step,
    attack,
    attack_names,
    compose,
    get_attack,
)
from inspectorate.attacks._rundir_attacks import (
    RUNDIR_ATTACKS,
    RundirAttack,
    get_rundir_attack,
    rundir_attack,
)
from inspectorate.attacks._rundir_compound import RundirCompound, compose_rundir
from inspectorate.attacks._sandbox import (
    Limits,
    SandboxError,
    SandboxResult,
    SandboxUnavailable,
    run_mutation,
    run_sandboxed,
)

__all__ = [
    "ATTACKS",
    "Attack",
    "Attacker",
    "Compound",
    "Limits",
    "OfflineAttacker",
    "Proposal",
    "RUNDIR_ATTACKS",
    "RedteamReport",
    "RundirAttack",
    "RundirCompound",
    "SandboxError",
    "SandboxResult",
    "SandboxUnavailable",
    "Step",
    "attack",
    "attack_names",
    "check_attack",
    "compose",
    "compose_rundir",
    "conserves_work",
    "defend",
    "get_attack",
    "get_rundir_attack",
    "llm_defend",
    "make_attacker",
    "redteam",
    "run_mutation",
    "run_sandboxed",
    "rundir_attack",
    "violate",
]
