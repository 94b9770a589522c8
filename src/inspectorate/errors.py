"""The one exception type for problems the user can fix in their input."""

from __future__ import annotations

from pathlib import Path


class InputError(ValueError):
    """Malformed or unusable input: carries the file, the line (1-based) and the reason.

    The CLI turns it into exit code 2 and a single line on stderr; library callers can
    catch it to report the same one-liner.
    """

    def __init__(self, reason: str, path: str | Path | None = None, line: int | None = None):
        self.reason = reason
        self.path = None if path is None else str(path)
        self.line = line
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = self.path or "<input>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.reason}"


class PluginError(TypeError):
    """A plugin that cannot be registered: no docstring, a malformed signature or
    metadata, a name already taken. Raised at import time, by the decorator."""
