"""Lazy package exports (PEP 562), shared by the packages whose names pull in torch or an
SDK: ``import inspectorate.cli`` mounts their commands without importing either."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from importlib import import_module
from typing import Any


def lazy_exports(
    package: str, exports: Mapping[str, str], namespace: dict[str, Any]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """``(__getattr__, __dir__)`` for ``package``: a name in ``exports`` (name -> module
    inside the package, or an absolute ``inspectorate.…`` module for a module that is
    not a package) is imported on first use and cached in ``namespace``."""
    root = package.split(".")[0]

    def getattr_(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        absolute = module.split(".")[0] == root
        value = getattr(import_module(module if absolute else f"{package}.{module}"), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return getattr_, dir_
