"""Where a command may write: the one check every writing command runs before it works.

Evidence is never overwritten silently: an output that exists is refused unless the
user passes ``--force``, and every problem with an output path (a directory where a
file goes, a file where a directory goes, a parent that is a file, no permission) is
an ``InputError``, so the CLI answers exit 2 and one line instead of a traceback after
the work is done. Validators for published digests (``--head``, ``--root``) live here
too: they are path-adjacent input checks shared by every layer.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

from inspectorate.errors import InputError

FORCE_HELP = "Overwrite outputs that already exist (never done silently)."

_HEX64 = re.compile(r"[0-9a-fA-F]{64}")


def _usable_parent(path: Path, option: str) -> None:
    """The nearest existing ancestor must be a writable directory (it will be created below)."""
    parent = path.parent
    while not parent.exists():
        if parent == parent.parent:
            break
        parent = parent.parent
    if not parent.is_dir():
        raise InputError(f"{option}: {parent} is not a directory", path)
    if not os.access(parent, os.W_OK | os.X_OK):
        raise InputError(f"{option}: no permission to write in {parent}", path)


def output_file(
    path: str | Path,
    option: str = "--out",
    force: bool = False,
    companions: Iterable[str | Path] = (),
) -> Path:
    """Vet a file a command is about to write (and files written beside it, such as a
    ``.head.json`` sidecar); returns it as a Path or raises ``InputError``."""
    path = Path(path)
    for target in (path, *map(Path, companions)):
        if target.is_dir():
            raise InputError(f"{option}: is a directory; give a file path", target)
        if target.exists() and not force:
            raise InputError(f"{option}: already exists; pass --force to overwrite it", target)
        if target.exists() and not os.access(target, os.W_OK):
            raise InputError(f"{option}: no permission to overwrite", target)
        _usable_parent(target, option)
    return path


def output_dir(path: str | Path, option: str = "--out", force: bool = False, forceable: bool = True) -> Path:
    """Vet a directory a command fills: new or empty, or any directory with ``force``
    (files of the same name in it are then replaced). ``forceable=False``: a layout that
    must own its directory (a partitioned trace) is always written into a new one."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise InputError(f"{option}: is a file; give a directory path", path)
    if path.is_dir():
        if not (force and forceable) and any(path.iterdir()):
            hint = "pass --force to write into it" if forceable else "choose a new one"
            raise InputError(f"{option}: exists and is not an empty directory; {hint}", path)
        if not os.access(path, os.W_OK | os.X_OK):
            raise InputError(f"{option}: no permission to write in it", path)
        return path
    _usable_parent(path, option)
    return path


def hex_digest(value: str | None, option: str = "--head") -> str | None:
    """A published SHA-256 (chain head, Merkle root): 64 hex digits, returned lower-case."""
    if value is None:
        return None
    if not _HEX64.fullmatch(value.strip()):
        shown = value if len(value) <= 20 else value[:17] + "..."
        raise InputError(f"must be 64 hex digits (a SHA-256), got {shown!r} ({len(value)} chars)", option)
    return value.strip().lower()
