"""``check`` and ``verify`` JSON a user can archive and diff.

Every document carries ``schema_version`` (of this envelope; bumped when a key changes
meaning), the tool that wrote it, what it judged (the trace's published head or, without
one, its chain tip: the hash of its last record) and the SHA-256 of the commitment file.
Keys are sorted, so the same input gives byte-identical JSON. What a run measures on
this host (the spot-check's CPU timings and everything computed from them: the
``compute`` finding's score and ratios, a gap's allowance, the confidences they feed)
and the wall seconds of the inspection (``timings.seconds``: loading, the stream
passes, each phase) vary from run to run; they live under the one ``"timings"`` key, and the rest diffs
clean, unless a decision resting on the spot-check flipped (near its tolerance, on a
loaded host): that decision and what follows from it then differ as well.

Note the two scales: ``"verdict": 1`` means compliant (certified), while the process's
exit code 1 means a violation (not certified).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
# Evidence keys of a finding that came from a spot-check (its evidence holds
# "spot_check"): measured CPU time, different on every run.
TIMED_KEYS = ("score", "expected_cpu_s", "observed_over_expected", "spot_check", "io_cpu_s")


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def dumps(document: dict[str, Any]) -> str:
    """Sorted keys, two-space indent: the one way archived JSON is spelled."""
    return json.dumps(document, indent=2, sort_keys=True)


def _tool() -> dict[str, str]:
    from inspectorate import __version__

    return {"name": "inspectorate", "version": __version__}


def _commitment(path: str | Path | None) -> dict[str, str] | None:
    if path is None:
        return None
    return {"path": str(path), "sha256": file_sha256(path)}


def trace_identity(trace: Any, path: str | Path) -> dict[str, Any]:
    """What was judged: the published head when there is one, else the chain tip; a
    partitioned layout is named by its Merkle root."""
    from inspectorate.trace import GENESIS, record_hash

    out: dict[str, Any] = {"path": str(path), "records": len(trace)}
    manifest = Path(path) / "manifest.json"
    if manifest.is_file():
        out["root"] = json.loads(manifest.read_text(encoding="utf-8")).get("root")
    if trace.head is not None:
        out.update(head=trace.head, head_source="published")
    else:
        tip = record_hash(trace.last_record()) if len(trace) else GENESIS
        out.update(head=tip, head_source="chain_tip")
    return out


def check_document(
    verdict: dict[str, Any], trace: Any, trace_path: str | Path, commitment: str | Path
) -> str:
    """The ``check --format json`` document."""
    return dumps(
        {
            **verdict,
            "schema_version": SCHEMA_VERSION,
            "tool": _tool(),
            "trace": trace_identity(trace, trace_path),
            "commitment": _commitment(commitment),
        }
    )


def verify_document(verdict: dict[str, Any], run: Any, commitment: str | Path | None) -> str:
    """The ``verify --format json`` document: timing-dependent values under ``timings``."""
    body, timings = split_timings(verdict)
    windows = run.windows
    return dumps(
        {
            **body,
            "schema_version": SCHEMA_VERSION,
            "tool": _tool(),
            "trace": trace_identity(windows, Path(run.path) / "windows.jsonl")
            if windows is not None
            else None,
            "commitment": _commitment(commitment),
            "timings": timings,
        }
    )


def split_timings(verdict: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the verdict without measured values, those values): a phase's findings that rest
    on a spot-check give up their timed keys and the phase its confidence; the run's
    confidence goes too when any phase's did; a gap gives up its CPU allowance."""
    body = json.loads(json.dumps(verdict))  # a deep copy that is plain JSON
    timings: dict[str, Any] = {"phases": {}, "gaps": []}
    for phase in body.get("phases", []):
        timed = {}
        for found in phase.get("findings", []):
            evidence = found.get("evidence") or {}
            if "spot_check" in evidence:
                timed[found["property"]] = {k: evidence.pop(k) for k in TIMED_KEYS if k in evidence}
        if timed:
            timings["phases"][phase["phase"]] = {
                "findings": timed,
                "confidence": phase.pop("confidence", None),
            }
    for index, gap in enumerate(body.get("gaps", [])):
        if "allowed_cpu_s" in gap:
            timings["gaps"].append({"index": index, "allowed_cpu_s": gap.pop("allowed_cpu_s")})
    if timings["phases"] or timings["gaps"]:
        timings["confidence"] = body.pop("confidence", None)
    timings.update(body.pop("timings", None) or {})  # wall seconds of the inspection
    return body, timings
