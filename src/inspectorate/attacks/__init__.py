"""Red team: record attacks, run-directory attacks, a sandbox for untrusted mutation
code, and the adversarial search loop (``redteam``)."""

from inspectorate.attacks._caught import Score, gaps, side_by_side
from inspectorate.attacks._conformance import check_attack
from inspectorate.attacks._defend import candidates, defend, honest_traces
from inspectorate.attacks._intent import conserves_work, dominant_job, flop_per_token, violate, work
from inspectorate.attacks._llm_defender import DefenderProposal, llm_defend, propose_rules
from inspectorate.attacks._loop import Attacker, RedteamReport, make_attacker, play_round, redteam, replay
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
from inspectorate.attacks._rundir_compound import RundirCompound, compose_rundir
from inspectorate.attacks._sandbox import (
    Limits,
    SandboxError,
    SandboxResult,
    SandboxUnavailable,
    isolation_problem,
    network_isolated,
    run_mutation,
    run_sandboxed,
)
from inspectorate.attacks._telemetry_attacks import (
    RUNDIR_ATTACKS,
    RundirAttack,
    get_rundir_attack,
    rundir_attack,
)

__all__ = [
    "ATTACKS",
    "Attack",
    "Attacker",
    "Compound",
    "DefenderProposal",
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
    "Score",
    "Step",
    "attack",
    "attack_names",
    "check_attack",
    "candidates",
    "compose",
    "compose_rundir",
    "conserves_work",
    "defend",
    "dominant_job",
    "flop_per_token",
    "gaps",
    "get_attack",
    "get_rundir_attack",
    "honest_traces",
    "isolation_problem",
    "llm_defend",
    "make_attacker",
    "network_isolated",
    "play_round",
    "propose_rules",
    "redteam",
    "replay",
    "run_mutation",
    "run_sandboxed",
    "side_by_side",
    "rundir_attack",
    "violate",
    "work",
]
