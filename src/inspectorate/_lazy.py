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
    inside the package, or a full ``inspectorate.`` module name for a re-export from a
    lower layer) is imported on first use and cached in ``namespace``."""

    def getattr_(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        target = module if module.startswith("inspectorate.") else f"{package}.{module}"
        value = getattr(import_module(target), name)
        namespace[name] = value
        return value

    def dir_() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return getattr_, dir_
