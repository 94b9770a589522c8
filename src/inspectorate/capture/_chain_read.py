"""Reading back a verifier-owned chained stream the sensor's process wrote (the
checkpoint watcher's, the escape watch's): its records and what is wrong with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def read_chained(path: Path) -> tuple[list[dict[str, Any]], list[str]]:
    """The JSON object records of ``path`` and its problems: unreadable lines and the
    first break of the hash chain, each naming the stream."""
    from inspectorate.trace._canonical import verify_chain

    records: list[dict[str, Any]] = []
    problems: list[str] = []
    for i, line in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except ValueError:
            problems.append(f"{path.name} line {i} is not JSON")
            continue
        if isinstance(rec, dict):
            records.append(rec)
    breaks = verify_chain(records)
    if breaks:
        problems.append(f"{path.name}: hash chain broken at record {breaks[0].index}")
    return records, problems
