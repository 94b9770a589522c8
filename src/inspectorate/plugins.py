"""Writing a plugin: the decorators, the function protocols, the conformance batteries.

Four kinds of plugin, each one decorated function carrying its own metadata::

    from inspectorate.plugins import rule, violation

    @rule("job_flop_cap", partition="keyed:job_id")
    def job_flop_cap(trace: Trace, threshold: float) -> Iterator[Violation]:
        '''FLOPs of one job stay at or below ``threshold``.'''
        ...

=====================  =========================================  =========================
decorator              function (protocol)                        conformance battery
=====================  =========================================  =========================
``rule``               ``RuleFunction``: (trace, **params)         ``check_rule``
                       -> Iterable[Violation]
``prop``               ``PropertyFunction``: (evidence, context)   ``check_property``
                       -> Finding
``attack``             ``AttackFunction``: (records, rng,          ``check_attack``
                       **params) -> records
``rundir_attack``      ``RundirAttackFunction``: (run_dir, rng,
                       **params) -> None
=====================  =========================================  =========================

Each decorator is typed with its protocol, so a type checker flags a function of the
wrong shape where it is decorated; at import, a function without a docstring, of the
wrong arity or with malformed metadata (an unknown ``partition``, a ``space`` entry for
a parameter it does not take) is a ``PluginError``. Expose the module under the entry-point
group ``inspectorate.rules`` / ``inspectorate.properties`` / ``inspectorate.attacks`` /
``inspectorate.rundir_attacks`` and importing it registers the functions.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from inspectorate._lazy import lazy_exports

if TYPE_CHECKING:
    from inspectorate._plugins import ConformanceError
    from inspectorate.attacks._conformance import check_attack
    from inspectorate.attacks._registry import AttackFunction, attack
    from inspectorate.attacks._rundir_attacks import RundirAttackFunction, rundir_attack
    from inspectorate.commitment._conformance import check_rule
    from inspectorate.commitment._partition import by_param
    from inspectorate.commitment._registry import RuleFunction, Violation, rule, violation
    from inspectorate.errors import PluginError
    from inspectorate.verify._conformance import check_property
    from inspectorate.verify._registry import Finding, PropertyFunction, finding, prop, unverifiable

_EXPORTS = {
    "ConformanceError": "inspectorate._plugins",
    "PluginError": "inspectorate.errors",
    "AttackFunction": "inspectorate.attacks._registry",
    "attack": "inspectorate.attacks._registry",
    "check_attack": "inspectorate.attacks._conformance",
    "RundirAttackFunction": "inspectorate.attacks._rundir_attacks",
    "rundir_attack": "inspectorate.attacks._rundir_attacks",
    "RuleFunction": "inspectorate.commitment._registry",
    "Violation": "inspectorate.commitment._registry",
    "rule": "inspectorate.commitment._registry",
    "violation": "inspectorate.commitment._registry",
    "by_param": "inspectorate.commitment._partition",
    "check_rule": "inspectorate.commitment._conformance",
    "Finding": "inspectorate.verify._registry",
    "PropertyFunction": "inspectorate.verify._registry",
    "finding": "inspectorate.verify._registry",
    "prop": "inspectorate.verify._registry",
    "unverifiable": "inspectorate.verify._registry",
    "check_property": "inspectorate.verify._conformance",
}

__all__ = [  # a literal list, so linters and type checkers see the lazy names as exported
    "AttackFunction",
    "ConformanceError",
    "Finding",
    "PluginError",
    "PropertyFunction",
    "RuleFunction",
    "RundirAttackFunction",
    "Violation",
    "attack",
    "by_param",
    "check_attack",
    "check_property",
    "check_rule",
    "finding",
    "prop",
    "rule",
    "rundir_attack",
    "unverifiable",
    "violation",
]

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
