"""One error tree: every exception class lives in errors.py under InspectorateError."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import inspectorate.errors as errors
from inspectorate.errors import InputError, InspectorateError

SRC = Path(errors.__file__).resolve().parent
# Files that run stdlib-only inside the red-team sandbox (they cannot import the package).
SANDBOX_CHILD = {
    "attacks/_sandbox_child.py": {"Blocked"},
    "attacks/_sandbox_seccomp.py": {"SeccompUnsupported"},
}
ERROR_TREE = {cls for cls in vars(errors).values() if inspect.isclass(cls) and issubclass(cls, BaseException)}


def _exception_classes(path: Path) -> set[str]:
    """Classes whose bases name an exception (…Error, …Exception, or one of ours)."""
    names = {c.__name__ for c in ERROR_TREE} | {"Exception", "BaseException", "Warning"}
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ClassDef):
            bases = {b.id if isinstance(b, ast.Name) else getattr(b, "attr", "") for b in node.bases}
            if any(b in names or b.endswith(("Error", "Exception")) for b in bases):
                found.add(node.name)
    return found


def test_every_exception_class_is_defined_in_errors_py():
    elsewhere = {}
    for path in SRC.rglob("*.py"):
        rel = path.relative_to(SRC).as_posix()
        if rel == "errors.py":
            continue
        extra = _exception_classes(path) - SANDBOX_CHILD.get(rel, set())
        if extra:
            elsewhere[rel] = sorted(extra)
    assert elsewhere == {}


def test_every_class_is_under_the_one_base_and_drawn_in_the_docstring():
    doc = errors.__doc__ or ""
    for cls in ERROR_TREE:
        assert issubclass(cls, InspectorateError), cls
        assert cls.__name__ in doc, f"{cls.__name__} missing from the tree in errors.py's docstring"


def test_the_old_bases_and_the_old_import_places_still_hold():
    from inspectorate._plugins import ConformanceError, PluginError
    from inspectorate.agent._backends import BackendError
    from inspectorate.attacks import SandboxError, SandboxUnavailable
    from inspectorate.commitment._registry import ParamError
    from inspectorate.trace._schema import RecordError

    assert issubclass(RecordError, ValueError) and issubclass(ParamError, ValueError)
    assert issubclass(PluginError, TypeError) and issubclass(BackendError, RuntimeError)
    assert issubclass(SandboxError, RuntimeError) and issubclass(SandboxUnavailable, InputError)
    assert ConformanceError is errors.ConformanceError and SandboxError is errors.SandboxError
    assert issubclass(InputError, ValueError) and str(InputError("bad", "f.yml", 3)) == "f.yml:3: bad"
