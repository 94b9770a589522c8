"""Red team: record attacks, run-directory attacks, a sandbox for untrusted mutation
code, and the adversarial search loop (``redteam``)."""

from inspectorate.attacks._intent import conserves_work, dominant_job, flop_per_token, violate, work
from inspectorate.attacks._registry import ATTACKS, Attack, Compound, Step, attack, attack_names, compose, get_attack

__all__ = [
    "ATTACKS",
    "Attack",
    "Compound",
    "Step",
    "attack",
    "attack_names",
    "compose",
    "conserves_work",
    "dominant_job",
    "flop_per_token",
    "get_attack",
    "violate",
    "work",
]
