"""On-disk cache of model replies keyed by (model, request, evidence hash).

A repeated check of the same evidence with the same prompt replays the stored replies
and costs nothing. The directory is the caller's, else $INSPECTORATE_CACHE_DIR, else
the XDG cache dir (``$XDG_CACHE_HOME`` or ``~/.cache``) + ``inspectorate/agent``; never
the working directory. Entries are written atomically (temp file + rename).
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

CACHE_ENV = "INSPECTORATE_CACHE_DIR"


def default_cache_dir() -> Path:
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "inspectorate" / "agent"


def cache_key(model: str, request: dict[str, Any], evidence: str) -> str:
    payload = json.dumps([model, request, evidence], sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


class ReplyCache:
    """Replies as JSON files named by their key (two-level fan-out)."""

    def __init__(self, directory: str | Path | None = None):
        self.directory = Path(directory) if directory else default_cache_dir()

    def _path(self, key: str) -> Path:
        return self.directory / key[:2] / f"{key}.json"

    def get(self, key: str) -> dict[str, Any] | None:
        try:
            return json.loads(self._path(key).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None  # absent or unreadable: a miss, never an error

    def put(self, key: str, reply: dict[str, Any]) -> None:
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(reply, handle)
            os.replace(tmp, path)
        except OSError:
            pass  # a cache that cannot be written only costs a repeated call
