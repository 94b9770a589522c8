"""The spot-check's measurements, kept across runs on this host.

Why: the spot-check re-runs each claimed work item for about a CPU-second; a verifier
judging a fleet (8 hosts x 144 phases a day) meets the same few work items over and
over, run after run. A measurement depends only on the verifier's host and software and
on the work itself, so it is cached per (host identity, CPU model, torch version, model
description hash, op, batch, sequence length, seconds measured).

What the key may not be: anything the prover controls beyond the claim. The model is
keyed by the hash of the *resolved description* the verifier builds (its architecture
class and every config field), never by the name alone: a prover handing over a
different ``models/<name>.json`` under a known name gets its own measurement, not the
cost of what the name meant last time. Host and software come from the verifier's own
machine (``/etc/machine-id``, hostname, ``/proc/cpuinfo``, ``torch.__version__``).

The file is versioned JSON (``inspectorate.spotcache/1``, no pickles) under
``$INSPECTORATE_CACHE_DIR`` or ``~/.cache/inspectorate`` as ``verify/_hostcal.py`` uses.
A file that cannot be read or does not follow the schema, and an entry whose key or
numbers do not check out, are ignored with a note on stderr and measured again: a cache
is never trusted over a measurement. ``INSPECTORATE_SPOTCACHE=off`` turns it off;
entries older than ``MAX_AGE_S`` are measured again. A measurement made while the host
is oversubscribed (1-minute load above one per CPU) is used but never kept.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeAlias

from inspectorate.verify._hostcal import _cache_file, _cpu_model

# ``_spotcheck.Work`` / ``SpotCheck`` by shape: _spotcheck imports this module (no cycle)
Work: TypeAlias = Any
SpotCheck: TypeAlias = Any

SCHEMA = "inspectorate.spotcache/1"
MAX_AGE_S = 30 * 86400.0  # a month: a torch or kernel upgrade changes the key anyway
NUMBERS = ("cpu_s_per_token", "cpu_s", "build_cpu_s")
COUNTS = ("tokens", "steps")
MAX_LOAD_PER_CPU = 1.0  # above it a measurement is used for the run that made it, not kept


def cache_path() -> Path:
    return _cache_file().with_name("spotcheck.json")


def _note(text: str) -> None:
    print(f"inspectorate: note: {text}", file=sys.stderr)


def _host_identity() -> str:
    """The verifier machine: its machine-id where there is one, and its hostname."""
    mid = ""
    for p in ("/etc/machine-id", "/var/lib/dbus/machine-id"):
        try:
            mid = Path(p).read_text(encoding="ascii").strip()
            break
        except (OSError, UnicodeDecodeError):
            continue
    return f"{mid}/{platform.node()}"


def model_hash(work: Work) -> str | None:
    """SHA-256 of the resolved model description (class and every config field)."""
    spec = work.spec
    if spec is None or not dataclasses.is_dataclass(spec) or isinstance(spec, type):
        return None
    desc = {
        "class": f"{type(spec).__module__}.{type(spec).__qualname__}",
        "family": getattr(spec, "family", ""),
        "fields": dataclasses.asdict(spec),
    }
    text = json.dumps(desc, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def cache_key(work: Work, seconds: float, how: str = "whole") -> dict[str, Any] | None:
    """Every input the measurement depends on; None when the work cannot be keyed."""
    digest = model_hash(work)
    if digest is None:
        return None
    try:
        import torch

        torch_version = str(torch.__version__)
    except ImportError:
        return None
    return {
        "host": _host_identity(),
        "cpu": _cpu_model(),
        "torch": torch_version,
        "model_sha256": digest,
        "op": work.op,
        "batch": int(work.batch),
        "seq": int(work.seq),
        "seconds": round(float(seconds), 3),
        "how": how,  # the whole model, or sliced to fit the verifier's memory
    }


def _digest(key: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()


def _load(path: Path) -> dict[str, Any]:
    """The entries of the cache file; {} (with a note) when it is absent or not ours."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        _note(f"spot-check cache {path} ignored (unreadable: {str(exc)[:80]})")
        return {}
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA or not isinstance(doc.get("entries"), dict):
        _note(f"spot-check cache {path} ignored (not {SCHEMA})")
        return {}
    return doc["entries"]


def _valid(entry: Any, key: dict[str, Any], now: float) -> bool:
    """The entry is for exactly this key, recent, and its numbers are measurements."""
    if not isinstance(entry, dict) or entry.get("key") != key:
        return False
    result, when = entry.get("result"), entry.get("measured_at")
    if not isinstance(result, dict) or not isinstance(when, (int, float)) or not 0 <= now - when <= MAX_AGE_S:
        return False
    nums = [result.get(k) for k in NUMBERS]
    if not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in nums):
        return False
    if not (result["cpu_s_per_token"] > 0 and result["cpu_s"] > 0 and result["build_cpu_s"] >= 0):
        return False
    counts = [result.get(k) for k in COUNTS]
    if not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in counts):
        return False
    return result.get("slice") is None or isinstance(result.get("slice"), dict)


def _result(check: SpotCheck) -> dict[str, Any]:
    out = {k: getattr(check, k) for k in (*NUMBERS, *COUNTS)}
    out["slice"] = check.slice
    return out


def _store(path: Path, digest: str, key: dict[str, Any], check: SpotCheck, now: float) -> None:
    """Merge one entry into the file (read again: another verifier may have written)."""
    entries = _load(path)
    entries[digest] = {"key": key, "measured_at": now, "result": _result(check)}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"schema": SCHEMA, "entries": entries}, sort_keys=True), encoding="utf-8")
        tmp.replace(path)
    except OSError as exc:
        _note(f"spot-check cache {path} not written ({exc.strerror})")


def cached(work: Work, seconds: float, how: str, measure: Callable[[], Any], make: Callable[..., Any]) -> Any:
    """The cached measurement of ``work`` on this host (rebuilt with ``make``, the
    SpotCheck class), else ``measure()``, stored when it is a measurement: a sentence
    saying why none could be made is never stored."""
    if os.environ.get("INSPECTORATE_SPOTCACHE", "on").lower() in ("off", "0", "no"):
        return measure()
    key = cache_key(work, seconds, how)
    if key is None:
        return measure()
    path, digest, now = cache_path(), _digest(key), time.time()
    entry = _load(path).get(digest)
    if entry is not None and _valid(entry, key, now):
        r = entry["result"]
        return make(
            work,
            float(r["cpu_s_per_token"]),
            r["tokens"],
            float(r["cpu_s"]),
            r["steps"],
            float(r["build_cpu_s"]),
            r["slice"],
        )
    if entry is not None:
        _note(f"spot-check cache entry for {work.model!r} {work.op} ignored (stale or malformed); measuring")
    result = measure()
    if isinstance(result, str):
        return result
    load = busy_host()
    if load is not None:  # this run's measurement only: contention inflates CPU time
        _note(f"spot-check of {work.model!r} {work.op} not cached: host load {load:.1f} per CPU")
        return result
    _store(path, digest, key, result, now)
    return result


def busy_host() -> float | None:
    """The 1-minute load per CPU when it is above ``MAX_LOAD_PER_CPU``, else None.

    Why: CPU time is not load-free. Under time slicing each switch evicts the caches:
    the 0.74M Llama's decode price read 1.01 ms a token at load 12 on 2 CPUs and 0.51 ms
    on the quiet box (its training step 0.34 and 0.20 ms). The loaded price, kept and
    reused on the quiet box, made an honest server's and trainer's CPU 0.39-0.44 of the
    claimed work: "work not done", inconsistent (docs/verify.md)."""
    try:
        per_cpu = os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:
        return None
    return per_cpu if per_cpu > MAX_LOAD_PER_CPU else None
