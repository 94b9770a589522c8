"""Directory layouts that build on trace, read through a small dispatch registry.

A layout a higher layer owns (``scale``'s partitioned layout: per-chip chains and a
Merkle root per window) must be readable by ``read_trace`` without trace importing that
layer, or the two packages close an import cycle. So, in the style of Dask's
``register_lazy``: the owning module registers its reader when it is imported
(``LAYOUTS.register``), and trace names it only by module path
(``LAYOUTS.register_lazy``), imported the first time a directory of that layout is read.
``tests/test_layers.py`` checks that trace holds no other import of a higher layer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from importlib import import_module
from pathlib import Path
from typing import Any

Reader = Callable[[Path], Any]  # returns a Trace


@dataclass
class Layout:
    """A directory layout: recognised by ``marker`` (a file inside it), read by ``read``,
    or provided by ``module`` (imported on first use, it registers ``read``)."""

    name: str
    marker: str
    read: Reader | None = None
    module: str | None = None


class LayoutRegistry:
    """Layouts by name; ``match`` picks the one whose marker a directory holds."""

    def __init__(self) -> None:
        self._layouts: dict[str, Layout] = {}

    def register(self, name: str, marker: str, read: Reader) -> None:
        """Register (or replace) the reader of a layout; called by its owner at import."""
        known = self._layouts.get(name)
        self._layouts[name] = Layout(name, marker, read, known.module if known else None)

    def register_lazy(self, name: str, marker: str, module: str) -> None:
        """Name the module whose import registers the layout's reader."""
        known = self._layouts.get(name)
        read = known.read if known else None
        self._layouts[name] = Layout(name, marker, read, module)

    def match(self, path: Path) -> Layout | None:
        """The layout of directory ``path`` (None for a plain file or an unknown directory)."""
        if not path.is_dir():
            return None
        return next((lay for lay in self._layouts.values() if (path / lay.marker).exists()), None)

    def reader(self, name: str) -> Reader:
        """The registered reader, importing the providing module first when needed."""
        layout = self._layouts[name]
        if layout.read is None and layout.module is not None:
            import_module(layout.module)
            layout = self._layouts[name]
        if layout.read is None:
            raise LookupError(f"layout {name!r}: {layout.module or 'no module'} registered no reader")
        return layout.read

    def names(self) -> list[str]:
        return sorted(self._layouts)


LAYOUTS = LayoutRegistry()
