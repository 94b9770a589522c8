"""Progress for long work (red-team rounds, rules over a large trace, phases of a run):
a rich bar on stderr, shown only on a terminal and never with ``--quiet``, so pipes,
CI logs and ``--format json`` output stay clean."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager

Advance = Callable[[str], None]


def _silent(_: str) -> None:
    return None


@contextmanager
def progress(total: int, label: str, *, quiet: bool = False) -> Iterator[Advance]:
    """Yield ``advance(what)``: call it once per finished unit of ``total``."""
    if quiet or total < 1 or not sys.stderr.isatty():
        yield _silent
        return
    from rich.console import Console  # only for a bar on a terminal: rich costs start-up
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    bar = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
        transient=True,
    )
    with bar:
        task = bar.add_task(label, total=total)

        def advance(what: str) -> None:
            bar.update(task, advance=1, description=f"{label}: {what}")

        yield advance
