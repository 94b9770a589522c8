"""Phase labels (``workload_labels.jsonl``): what the prover claims each phase is.

One ``start`` and one ``end`` event per phase. ``truth`` exists for scoring only: no
verifier may read it. Written here so the testbed and the loader agree on one format:
``{"event": "start"|"end", "phase": str, "claimed": str, "truth": str, "t": epoch_s}``.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any


class LabelWriter:
    """Appends phase start/end events, flushed at once (a crash keeps what was said)."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._out = open(self.path, "a", encoding="utf-8")

    def _write(
        self, event: str, phase: str, claimed: str, truth: str, extra: dict[str, Any]
    ) -> dict[str, Any]:
        entry = {"event": event, "phase": phase, "claimed": claimed, "truth": truth, "t": time.time()}
        entry.update(extra)
        self._out.write(json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n")
        self._out.flush()
        return entry

    def start(self, phase: str, *, claimed: str, truth: str, **extra: Any) -> dict[str, Any]:
        """Mark the start of ``phase`` (``extra``: e.g. model name, declared params)."""
        return self._write("start", phase, claimed, truth, extra)

    def end(self, phase: str, *, claimed: str, truth: str, **extra: Any) -> dict[str, Any]:
        """Mark the end of ``phase``."""
        return self._write("end", phase, claimed, truth, extra)

    def close(self) -> None:
        self._out.close()

    def __enter__(self) -> LabelWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
