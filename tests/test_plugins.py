"""The one plugin registry behind rule kinds, properties and attacks."""

from __future__ import annotations

from typing import Literal

import pytest

from inspectorate._plugins import PluginError, Registry
from inspectorate.attacks import ATTACKS, RUNDIR_ATTACKS
from inspectorate.commitment import RULES
from inspectorate.errors import InputError
from inspectorate.verify import PROPERTIES


class Entry:
    def __init__(self, fn):
        self.fn = fn


def first():
    """One."""


def second():
    """Two."""


def test_add_get_and_unknown_names_the_known_ones():
    reg: Registry[Entry] = Registry("widget", "inspectorate.no_such_group", ())
    reg.add("a", Entry(first), first)
    reg.add("a", Entry(first), first)  # a module imported twice registers the same function again
    assert reg.get("a").fn is first
    assert reg.names() == ["a"] and "a" in reg and len(reg) == 1
    with pytest.raises(InputError, match=r"unknown widget 'b'; known: a"):
        reg.get("b")


def test_a_second_function_cannot_take_a_registered_name():
    reg: Registry[Entry] = Registry("widget", "inspectorate.no_such_group", ())
    reg.add("a", Entry(first), first)
    with pytest.raises(PluginError, match=r"widget 'a' is already registered by .*test_plugins"):
        reg.add("a", Entry(second), second)
    assert reg.get("a").fn is first


@pytest.mark.parametrize(
    ("registry", "group", "builtin"),
    [
        (RULES, "inspectorate.rules", "aggregate_flop_cap"),
        (PROPERTIES, "inspectorate.properties", "p1_op_type"),
        (ATTACKS, "inspectorate.attacks", "relabel_op_type"),
        (RUNDIR_ATTACKS, "inspectorate.rundir_attacks", "forge_collectives"),
    ],
)
def test_every_plugin_kind_uses_the_shared_registry(registry, group, builtin):
    assert isinstance(registry, Registry)
    assert registry.group == group
    assert builtin in registry.names()


def _undocumented(a, b):
    return a


def _documented_no_args():
    """Takes no argument, where every kind passes at least one."""


def _decorators():
    from inspectorate.attacks import attack, rundir_attack
    from inspectorate.commitment import rule
    from inspectorate.verify import prop

    return {
        "rule": (RULES, lambda name: rule(name)),
        "property": (PROPERTIES, lambda name: prop(name)),
        "attack": (ATTACKS, lambda name: attack(name, intent="hides nothing")),
        "run-dir attack": (
            RUNDIR_ATTACKS,
            lambda name: rundir_attack(name, intent="hides nothing", targets=[]),
        ),
    }


@pytest.mark.parametrize("kind", ["rule", "property", "attack", "run-dir attack"])
def test_every_plugin_kind_runs_the_one_registration_check(kind):
    registry, decorate = _decorators()[kind]
    with pytest.raises(PluginError, match="needs a docstring"):
        decorate("test_undocumented")(_undocumented)
    with pytest.raises(PluginError, match="must accept"):
        decorate("test_no_args")(_documented_no_args)
    with pytest.raises(PluginError, match="non-empty string"):
        decorate("")(_documented_no_args)
    assert "test_undocumented" not in registry and "test_no_args" not in registry


def _rule_fn(trace, scope: str = "a", mode: int = 1):
    """Test only."""
    return iter(())


@pytest.mark.parametrize(
    ("partition", "message"),
    [
        ("sharded", "unknown partition 'sharded'"),
        ("keyed:no_such_field", "must name a record field"),
        ("keyed", "must name a record field"),
        ("record:job_id", "takes no column"),
        (7, "must be a string"),
    ],
)
def test_bad_partition_metadata_is_a_plugin_error(partition, message):
    from inspectorate.commitment import rule

    with pytest.raises(PluginError, match=message):
        rule("test_bad_partition", partition=partition)(_rule_fn)
    assert "test_bad_partition" not in RULES


def test_a_partition_by_parameter_must_name_a_parameter_and_cover_its_literals():
    from inspectorate.commitment import rule
    from inspectorate.commitment._partition import by_param

    with pytest.raises(PluginError, match="not a parameter of the rule"):
        rule("test_by_param", partition=by_param("nope", a="record"))(_rule_fn)

    def literal_rule(trace, scope: Literal["a", "b"] = "a"):
        """Test only."""
        return iter(())

    with pytest.raises(PluginError, match=r"no partition declared for scope='b'"):
        rule("test_by_param", partition=by_param("scope", a="keyed:job_id"))(literal_rule)
    assert "test_by_param" not in RULES


def test_a_rule_parameter_coerce_cannot_check_is_a_plugin_error():
    from inspectorate.commitment import rule

    def odd(trace, when: complex = 1j):
        """Test only."""
        return iter(())

    with pytest.raises(PluginError, match="parameter 'when': unsupported annotation"):
        rule("test_odd_param", partition="global")(odd)


def test_attack_and_property_metadata_is_checked():
    from inspectorate.attacks import attack
    from inspectorate.verify import prop

    def atk(records, rng, size: int = 1):
        """Test only."""
        return records

    with pytest.raises(PluginError, match="intent"):
        attack("test_atk", intent="")(atk)
    with pytest.raises(PluginError, match="samples 'width'"):
        attack("test_atk", intent="x", space={"width": [1]})(atk)
    with pytest.raises(PluginError, match="targets"):
        attack("test_atk", intent="x", targets="idle_must_be_zero")(atk)

    def p(evidence, context):
        """Test only."""

    with pytest.raises(PluginError, match="claim must be True or False"):
        prop("test_prop", claim="yes")(p)  # type: ignore[arg-type]
    assert "test_atk" not in ATTACKS and "test_prop" not in PROPERTIES
