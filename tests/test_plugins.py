"""The one plugin registry behind rule kinds, properties and attacks."""

from __future__ import annotations

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
