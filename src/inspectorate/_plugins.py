"""One plugin registry for every kind of plugin: rule kinds, properties, record attacks
and run-dir attacks.

Each registry maps a name to an entry, loads the built-in modules and every module of
its entry-point group once (importing a module runs its decorators), refuses to let a
second function take a name that is already registered (a plugin may add, never
silently replace), runs the one registration check every decorator shares (a callable
with a docstring that takes the kind's positional arguments: ``PluginError`` otherwise,
at import time), and answers an unknown name with an ``InputError`` that lists the
known ones, so a typo in a commitment, a CLI flag or a red-team spec is a one-line
exit-2 error everywhere.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from importlib import import_module
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from inspectorate.errors import ConformanceError, InputError, PluginError

T = TypeVar("T")

__all__ = ["ConformanceError", "PluginError", "Registry", "check_plugin", "require"]


def require(condition: object, message: str) -> None:
    """Raise ConformanceError(message) unless ``condition`` holds."""
    if not condition:
        raise ConformanceError(message)


def check_plugin(what: str, name: object, fn: object, positional: tuple[str, ...] = ()) -> None:
    """The registration check every plugin decorator runs: a non-empty string name, a
    callable with a docstring (it is the plugin's documentation: `inspectorate rules`
    prints it), whose signature accepts the kind's ``positional`` arguments (named here
    only for the message). Raises PluginError naming the plugin and the problem."""
    if not isinstance(name, str) or not name:
        raise PluginError(f"{what} name must be a non-empty string, got {name!r}")
    where = f"{what} {name!r} ({getattr(fn, '__module__', '?')}.{getattr(fn, '__qualname__', fn)!s})"
    if not callable(fn):
        raise PluginError(f"{where} is not callable")
    if not (inspect.getdoc(fn) or "").strip():
        raise PluginError(f"{where} needs a docstring stating what it does")
    try:
        sig = inspect.signature(fn)
    except (TypeError, ValueError):
        return  # a builtin without a signature: nothing more to check
    try:
        sig.bind_partial(*positional)
    except TypeError:
        raise PluginError(
            f"{where} must accept {len(positional)} positional argument(s) ({', '.join(positional)}), "
            f"has {sig}"
        ) from None


class Registry(Mapping[str, T], Generic[T]):
    """Name -> entry, filled by decorators in ``builtins`` modules and the entry-point ``group``.

    ``positional`` names the arguments every function of this kind is called with first
    (a rule: the trace); ``add`` checks each function accepts them (``check_plugin``)."""

    def __init__(
        self, what: str, group: str, builtins: tuple[str, ...], positional: tuple[str, ...] = ()
    ) -> None:
        self.what = what  # "rule kind", "property", "attack": used in messages
        self.group = group
        self.builtins = builtins
        self.positional = positional
        self._entries: dict[str, T] = {}
        self._loaded = False
        self._loading = False

    def check(self, name: object, fn: object) -> None:
        """The shared registration check (``check_plugin``) for a function of this kind;
        decorators call it before reading the function's metadata."""
        check_plugin(self.what, name, fn, self.positional)

    def add(self, name: str, entry: T, fn: Callable[..., object]) -> None:
        """Register ``entry`` under ``name``; ``fn`` is the plugin's function (re-imports are no-ops)."""
        self.check(name, fn)
        old = self._entries.get(name)
        if old is not None and getattr(old, "fn", None) is not fn:
            owner = getattr(getattr(old, "fn", None), "__module__", "?")
            raise PluginError(f"{self.what} {name!r} is already registered by {owner}")
        self._entries[name] = entry

    def load(self) -> None:
        """Import the built-in modules and every module of the entry-point group, once."""
        if self._loaded or self._loading:
            return
        self._loading = True
        try:
            for module in self.builtins:
                import_module(module)
            for ep in entry_points(group=self.group):
                ep.load()
            self._loaded = True
        finally:
            self._loading = False

    def get(self, name: str) -> T:  # type: ignore[override]  # raises instead of returning None
        """The entry called ``name``; an unknown name is an InputError listing the known ones."""
        self.load()
        if name not in self._entries:
            raise InputError(f"unknown {self.what} {name!r}; known: {', '.join(self.names())}")
        return self._entries[name]

    def names(self) -> list[str]:
        self.load()
        return sorted(self._entries)

    def __getitem__(self, name: str) -> T:
        self.load()
        return self._entries[name]

    def __iter__(self) -> Iterator[str]:
        self.load()
        return iter(self._entries)

    def __len__(self) -> int:
        self.load()
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries
