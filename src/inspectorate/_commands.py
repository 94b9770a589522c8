"""The library function behind each top-level judging command: load the inputs, pick
the engine, judge. ``cli.py`` parses arguments and calls exactly one of these, so the
same path is callable (and tested) without the CLI."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING

from inspectorate.errors import InputError

if TYPE_CHECKING:
    from inspectorate.commitment import Verdict
    from inspectorate.verify import RunVerdict

LARGE_TRACE = 200_000  # records; below this a check takes about a second and needs no progress bar

Advance = Callable[[str], None]
# (total steps, whether the work is large enough to show) -> a context yielding ``advance``
Progress = Callable[[int, bool], AbstractContextManager[Advance]]


def _no_progress(total: int, large: bool) -> AbstractContextManager[Advance]:
    return nullcontext(lambda _step: None)


def check_files(
    trace: Path,
    commitment: Path,
    *,
    head: str | None = None,
    engine: str = "local",
    scheduler: str | None = None,
    agent: bool = False,
    notify: Callable[[str], None] | None = None,
    progress: Progress = _no_progress,
) -> Verdict:
    """``inspectorate check``: read the trace (pinned to ``head``), load the commitment
    and judge it with the local engine, the Dask engine (``engine="dask"``, at
    ``scheduler`` or on a local cluster) or the local engine plus the LLM tier
    (``agent``, settings from the environment)."""
    from inspectorate.commitment import check, load_commitment
    from inspectorate.trace import read_trace

    if engine not in ("local", "dask"):
        raise InputError(f"unknown engine {engine!r}; known: local, dask")
    if agent and engine == "dask":
        raise InputError("--agent runs with the local engine only (drop --engine dask)")
    records, promise = read_trace(trace, head=head), load_commitment(commitment)
    with progress(len(promise.effective_rules()), len(records) >= LARGE_TRACE) as advance:
        if engine == "dask":
            from inspectorate.scale import check_distributed

            return check_distributed(records, promise, scheduler=scheduler, on_rule=advance)
        if agent:
            from inspectorate.agent import check_with_agent

            return check_with_agent(records, promise, notify=notify, on_rule=advance)
        return check(records, promise, on_rule=advance)


def verify_files(
    run_dir: Path,
    commitment: Path | None = None,
    *,
    policy: str = "strict",
    recomputed: Iterable[str] = (),
    agent: bool = False,
    notify: Callable[[str], None] | None = None,
    progress: Progress = _no_progress,
) -> RunVerdict:
    """``inspectorate verify``: judge every phase of ``run_dir`` from its telemetry, with
    the commitment over its window records, ``recomputed`` findings (``PHASE=FILE``:
    a ``difr verify`` or ``replay`` finding) and, with ``agent``, the LLM tier."""
    from inspectorate.commitment import load_commitment
    from inspectorate.trace import load_run
    from inspectorate.verify._inspector import verify_run
    from inspectorate.verify._recomputed import read_recomputed
    from inspectorate.verify._registry import Finding

    promised = load_commitment(commitment) if commitment is not None else None
    extra: dict[str, list[Finding]] = {}
    for phase, found in map(read_recomputed, recomputed):
        extra.setdefault(phase, []).append(found)
    run = load_run(run_dir)
    with progress(len(run.phases()), True) as advance:
        if agent:
            from inspectorate.agent import verify_with_agent

            return verify_with_agent(
                run, promised, policy=policy, notify=notify, on_phase=advance, recomputed=extra
            )
        return verify_run(run, promised, policy=policy, on_phase=advance, recomputed=extra)
