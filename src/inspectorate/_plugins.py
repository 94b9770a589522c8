"""One plugin registry for every kind of plugin: rule kinds, properties, attacks.

Each registry maps a name to an entry, loads the built-in modules and every module of
its entry-point group once (importing a module runs its decorators), refuses to let a
second function take a name that is already registered (a plugin may add, never
silently replace), and answers an unknown name with an ``InputError`` that lists the
known ones, so a typo in a commitment, a CLI flag or a red-team spec is a one-line
exit-2 error everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from importlib import import_module
from importlib.metadata import entry_points
from typing import Generic, TypeVar

from inspectorate.errors import ConformanceError, InputError, PluginError

T = TypeVar("T")


def require(condition: object, message: str) -> None:
    """Raise ConformanceError(message) unless ``condition`` holds."""
    if not condition:
        raise ConformanceError(message)


class Registry(Mapping[str, T], Generic[T]):
    """Name -> entry, filled by decorators in ``builtins`` modules and the entry-point ``group``."""

    def __init__(self, what: str, group: str, builtins: tuple[str, ...]) -> None:
        self.what = what  # "rule kind", "property", "attack": used in messages
        self.group = group
        self.builtins = builtins
        self._entries: dict[str, T] = {}
        self._loaded = False
        self._loading = False

    def add(self, name: str, entry: T, fn: Callable[..., object]) -> None:
        """Register ``entry`` under ``name``; ``fn`` is the plugin's function (re-imports are no-ops)."""
        if not isinstance(name, str) or not name:
            raise PluginError(f"{self.what} name must be a non-empty string, got {name!r}")
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
