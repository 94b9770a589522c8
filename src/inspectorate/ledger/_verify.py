"""One call for ``verify``, ``check --head-log`` and ``ledger verify-log``: a chained
stream checked against a signed, witnessed log under the verifier's keyring."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inspectorate.ledger._audit import (
    INCONSISTENT,
    UNVERIFIABLE,
    Problem,
    audit_log,
    check_monotonic,
    check_stream,
    load_state,
    save_state,
)
from inspectorate.ledger._keys import _read_json, load_keyring
from inspectorate.ledger._log import open_log, read_stream

CONSISTENT = "consistent"


@dataclass
class SignedReport:
    """What the signed evidence says about one stream (``decision`` in the project's words)."""

    stream: str | None
    log: str
    host: str | None = None
    heads: int = 0
    final_head: str | None = None
    witnessed_size: int | None = None
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def decision(self) -> str:
        if any(p.decision == INCONSISTENT for p in self.problems):
            return INCONSISTENT
        return UNVERIFIABLE if self.problems else CONSISTENT

    def reasons(self) -> list[str]:
        return [f"{p.decision}: signed evidence: {p.kind}: {p.message}" for p in self.problems]

    def to_dict(self) -> dict[str, Any]:
        return {
            "stream": self.stream,
            "log": self.log,
            "decision": self.decision,
            "host": self.host,
            "heads": self.heads,
            "final_head": self.final_head,
            "witnessed_size": self.witnessed_size,
            "problems": [p.to_dict() for p in self.problems],
            "notes": self.notes,
        }


def verify_signed(
    stream: Path | None,
    log: Path,
    keyring: Path,
    *,
    challenge: str | None = None,
    state: Path | None = None,
    peers: list[Path] | None = None,
) -> SignedReport:
    """Audit ``log`` under ``keyring`` and, when ``stream`` is given, check that chained
    JSONL file against its signed heads. ``state`` (the verifier's memory of each log's
    size and root) is read, checked for monotonic growth and updated when nothing was
    inconsistent. ``peers``: signed heads other verifiers hold (gossip)."""
    ring, view = load_keyring(keyring), open_log(log)
    audit = audit_log(view, ring, [_read_json(p) for p in peers or []])
    known = load_state(state)
    report = SignedReport(str(stream) if stream else None, view.log_id, problems=list(audit.problems))
    report.problems += check_monotonic(audit, known.get(view.log_id))
    report.witnessed_size = audit.witnessed[0] if audit.witnessed else None
    if stream is not None:
        records = read_stream(stream)
        report.problems += check_stream(records, audit, challenge)
        _describe(report, records, audit)
    if challenge is None and stream is not None:
        report.notes.append("freshness not checked: no challenge given (--challenge)")
    if state is not None and report.decision != INCONSISTENT:
        save_state(state, audit, known)
    return report


def _describe(report: SignedReport, records: list[dict[str, Any]], audit: Any) -> None:
    from inspectorate.trace._canonical import record_hash

    if not records:
        return
    stream = record_hash(records[0])
    mine = [h for _, h in audit.heads if h.get("stream") == stream]
    report.heads = len(mine)
    if mine:
        report.host, report.final_head = str(mine[-1].get("host")), str(mine[-1].get("head"))


def verify_signed_trace(
    trace: Path, log: Path, keyring: Path, *, challenge: str | None = None, state: Path | None = None
) -> SignedReport:
    """``check --head-log``: a window-record trace (a ``.jsonl`` or a run directory's
    ``windows.jsonl``) against its signed heads."""
    from inspectorate.errors import InputError
    from inspectorate.trace._io import RUN_DIR_TRACE

    path = trace / RUN_DIR_TRACE if trace.is_dir() else trace
    if path.suffix != ".jsonl":
        raise InputError("--head-log checks a .jsonl trace (its records as written and signed)", path)
    return verify_signed(path, log, keyring, challenge=challenge, state=state)
