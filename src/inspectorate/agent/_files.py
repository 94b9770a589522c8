"""The agent on files: what each ``inspectorate agent`` command calls (one function per
command), kept out of ``_cli.py`` so the CLI only parses arguments."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from inspectorate.agent._backends import AgentSettings
from inspectorate.agent._compile import CompileOutcome, compile_commitment, write_commitment
from inspectorate.agent._digest import build_digest
from inspectorate.agent._inspector import check_with_agent
from inspectorate.commitment import Verdict, check, load_commitment
from inspectorate.errors import InputError
from inspectorate.trace import read_trace

Notify = Callable[[str], None]


def run_properties(path: Path, notify: Notify | None = None) -> dict[str, Any] | None:
    """The telemetry verdict of a run directory, whose property findings join the
    digest (None for a trace file, or a run directory verify cannot read: said to ``notify``)."""
    if not path.is_dir():
        return None
    from inspectorate.verify import verify_run

    try:
        return verify_run(path).to_dict()
    except InputError as exc:
        if notify is not None:
            notify(f"no property findings in the digest: {exc.one_line()}")
        return None


def digest_files(
    trace: Path, commitment: Path | None = None, max_chars: int = 60_000, notify: Notify | None = None
) -> dict[str, Any]:
    """The evidence digest the inspector reads, for a trace file or run directory (with
    the commitment's deterministic findings when one is given)."""
    loaded = read_trace(trace)
    findings = check(loaded, load_commitment(commitment)).violations if commitment else ()
    return build_digest(loaded, findings, max_chars=max_chars, properties=run_properties(trace, notify))


def judge_files(
    trace: Path, commitment: Path, settings: AgentSettings | None = None, notify: Notify | None = None
) -> Verdict:
    """``check``, then the LLM tier on the semantic rules no offline judge covers (a run
    directory's telemetry findings join the digest)."""
    return check_with_agent(
        read_trace(trace),
        load_commitment(commitment),
        settings,
        notify=notify,
        properties=run_properties(trace, notify),
    )


def compile_files(
    commitment: Path, out: Path, trace: Path | None = None, settings: AgentSettings | None = None
) -> list[CompileOutcome]:
    """Compile the commitment's semantic rules into deterministic ones and write the
    strengthened commitment to ``out``; returns each rule's outcome."""
    loaded = read_trace(trace) if trace else None
    data, outcomes = compile_commitment(load_commitment(commitment), loaded, settings)
    write_commitment(data, out)
    return list(outcomes)
