"""Every exception inspectorate raises on purpose, under one base (httpx's layout).

    InspectorateError
    ├── InputError (ValueError) ........ bad input the user can fix: exit 2, one line
    │   ├── ProofError ................. a malformed Merkle proof or tree head (ledger)
    │   ├── MissingExtra ................ an optional dependency is not installed: names the extra
    │   └── SandboxUnavailable .......... the OS isolation cannot be set up: untrusted code refused
    ├── RecordError (ValueError) ....... a record breaks the schema (readers add file and line)
    ├── ParamError (ValueError) ........ a rule parameter does not fit its annotation
    ├── PluginError (TypeError) ........ a plugin cannot be registered (no docstring, name taken)
    ├── ConformanceError ............... a plugin failed its conformance battery
    ├── ClaimError (ValueError) ........ a capture phase claim with an unknown op or a mistyped field
    ├── EntrantError (RuntimeError) .... a bench entrant failed on a case (scored, not raised further)
    ├── BackendError (RuntimeError) .... an LLM call failed for good (after retries)
    ├── MalformedReply (RuntimeError) .. a 2xx LLM reply that is not the promised JSON (retried)
    ├── SandboxError (RuntimeError) .... untrusted code produced no valid records (``kind`` says why)
    ├── PayloadError (ValueError) ...... the sandboxed child's output is not one acceptable payload
    ├── WatchError (OSError) ........... inotify is unavailable to the checkpoint watcher
    ├── NotPositional .................. a layout's seqs are not 0..N-1 (out-of-core falls back)
    ├── Unordered ...................... sensor samples out of time order (verify falls back)
    └── LayoutRefused .................. a checkpoint the torch-free reader does not model (torch reads it)

Each class keeps the built-in base it always had, so ``except ValueError`` and the like
catch what they caught before; ``except InspectorateError`` catches all of them. Two
exception classes live elsewhere, in files that also run stdlib-only inside the red-team
sandbox and so never import the package: ``Blocked`` (``attacks/_sandbox_child.py``; the
parent sees it as ``SandboxError(kind="blocked")``) and ``SeccompUnsupported``
(``attacks/_sandbox_seccomp.py``; the parent refuses to run untrusted code, an
``InputError``).

The CLI turns ``InputError`` into exit 2 and one line on stderr; a missing optional
module anywhere under a command becomes a ``MissingExtra`` line (:func:`missing_extra`).
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib import import_module
from pathlib import Path
from types import ModuleType

# Top-level module -> the extra that installs it (pyproject.toml [project.optional-dependencies]).
EXTRAS = {
    "torch": "testbed",
    "dask": "scale",
    "distributed": "scale",
    "anthropic": "agent",
    "openai": "agent",
    "sklearn": "calibrate",
    "pynvml": "gpu",
    "cryptography": "sign",
}


class InspectorateError(Exception):
    """The base of every exception inspectorate raises on purpose."""


class InputError(InspectorateError, ValueError):
    """Malformed or unusable input: carries the file, the line (1-based) and the reason.

    The CLI turns it into exit code 2 and a single line on stderr; library callers can
    catch it to report the same one-liner.
    """

    def __init__(self, reason: str, path: str | Path | None = None, line: int | None = None):
        self.reason = reason
        self.path = None if path is None else str(path)
        self.line = line
        super().__init__(self.one_line())

    def one_line(self) -> str:
        where = self.path or "<input>"
        if self.line is not None:
            where = f"{where}:{self.line}"
        return f"{where}: {self.reason}"


class MissingExtra(InputError):
    """An optional dependency is not installed; the message names the extra that brings it."""

    def __init__(self, module: str, extra: str):
        self.module, self.extra = module, extra
        super().__init__(
            f"{module} is not installed (the [{extra}] extra): pip install 'inspectorate[{extra}]'", module
        )

    def one_line(self) -> str:
        return self.reason


def missing_extra(exc: ModuleNotFoundError) -> MissingExtra | None:
    """The ``MissingExtra`` behind ``exc`` when the missing module is an optional
    dependency (None for anything else: a missing core module is a broken install)."""
    top = (exc.name or "").split(".")[0]
    return MissingExtra(top, EXTRAS[top]) if top in EXTRAS else None


def import_optional(name: str) -> ModuleType:
    """``import_module(name)``, or ``MissingExtra`` naming the extra when ``name`` is an
    optional dependency that is not installed."""
    try:
        return import_module(name)
    except ModuleNotFoundError as exc:
        missing = missing_extra(exc)
        if missing is None:
            raise
        raise missing from exc


class ProofError(InputError):
    """A Merkle proof or tree head that is malformed (not merely one that fails to verify)."""


class SandboxUnavailable(InputError):
    """The OS isolation cannot be set up here: running untrusted code is refused."""


class RecordError(InspectorateError, ValueError):
    """A record that breaks the schema; the reader adds file and line."""


class ParamError(InspectorateError, ValueError):
    """A rule parameter that does not fit its annotation."""


class PluginError(InspectorateError, TypeError):
    """A plugin that cannot be registered (no docstring, a name already taken)."""


class ConformanceError(InspectorateError):
    """A plugin failed its conformance battery (``check_rule``, ``check_property``,
    ``check_attack``); the message names the first property that does not hold. A real
    exception, not ``assert``: ``python -O`` must not turn the battery into a no-op."""


class ClaimError(InspectorateError, ValueError):
    """A phase claim (``inspectorate capture``) that names an unknown op or carries a field
    of the wrong type."""


class EntrantError(InspectorateError, RuntimeError):
    """A bench entrant failed on a case (scored as a failure, never a crash of the harness)."""


class BackendError(InspectorateError, RuntimeError):
    """A call that failed for good (after retries, or not retryable)."""


class MalformedReply(InspectorateError, RuntimeError):
    """A 2xx reply whose body is not the JSON object the API promises (retried)."""


class SandboxError(InspectorateError, RuntimeError):
    """The code did not produce valid records; ``kind`` says why (timeout, cpu, memory,
    output, blocked, denied, invalid, error, crashed, isolation)."""

    def __init__(self, kind: str, message: str, blocked: Sequence[str] = ()):
        self.kind = kind
        self.blocked = list(blocked)
        super().__init__(f"sandbox ({kind}): {message}")


class PayloadError(InspectorateError, ValueError):
    """The child's output is not one acceptable payload; ``kind`` is ``output`` or ``invalid``."""

    def __init__(self, kind: str, message: str):
        self.kind = kind
        super().__init__(message)


class WatchError(InspectorateError, OSError):
    """inotify is unavailable (not Linux, or the watch limit is reached)."""


class NotPositional(InspectorateError):
    """The layout's seqs are not exactly 0..N-1: rows would differ from the reader's
    (the out-of-core engine falls back to the in-memory one, which is exact)."""


class Unordered(InspectorateError):
    """Sensor samples not in time order: the streaming pass cannot slice them (verify
    falls back to the frame)."""


class LayoutRefused(InspectorateError):
    """A checkpoint holds something the torch-free structure reader does not model (the
    watcher then loads it with torch itself)."""


__all__ = [
    "EXTRAS",
    "BackendError",
    "ClaimError",
    "ConformanceError",
    "EntrantError",
    "InputError",
    "InspectorateError",
    "LayoutRefused",
    "MalformedReply",
    "MissingExtra",
    "NotPositional",
    "ParamError",
    "PayloadError",
    "PluginError",
    "ProofError",
    "RecordError",
    "SandboxError",
    "SandboxUnavailable",
    "Unordered",
    "WatchError",
    "import_optional",
    "missing_extra",
]
