"""Child side of the sandbox: run untrusted ``mutate(records)`` under layered limits.

Run as ``python -I -S -B _sandbox_child.py`` (stdlib only: this file must not import
inspectorate), normally inside bwrap (see ``_sandbox_isolation``). The job (code,
records, limits) arrives as JSON on stdin, never pickle; the answer leaves as exactly
one framed payload (``HEADER <length>\n<json>``) on a private duplicate of stdout,
written by this runner after ``mutate`` returns. The parent trusts none of it.

Layers, in the order they are set up, before any untrusted code runs:
1. OS limits: RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NOFILE, no core.
2. A seccomp filter (``_sandbox_seccomp``) stacked on bwrap's: no fork, no process
   clone, no execve, no ptrace, no sockets, no mount or namespace calls. Irreversible.
   If it cannot be installed and the job requires it, the runner reports ``isolation``
   and runs nothing.
The Python layer (off only in tests proving the OS boundary holds alone):
3. A syntax filter: no attribute or name starting with "_" (no ``__class__``,
   ``__subclasses__``, ``__globals__``, ``__builtins__``), no frame/code/traceback
   attributes (``gi_frame``, ``f_back``, ``tb_frame``...), no dunder methods but
   ``__init__`` (no objects that answer checks falsely), imports only from a whitelist.
4. Restricted builtins: no eval/exec/compile/globals/vars/type/setattr; ``__import__``
   hands out read-only views of whitelisted modules; ``getattr`` refuses the names the
   filter refuses; ``open`` only inside the scratch dir and without ``opener=``.
5. An audit hook (cannot be removed once installed) that denies, whatever path the code
   found: opens outside the scratch dir (reads also allowed under the stdlib, for lazy
   imports), imports outside a short list, sockets, subprocesses, fork/exec, ctypes,
   frame access, and any compile/exec after the submitted code itself.
"""

from __future__ import annotations

import ast
import errno
import json
import os
import resource
import sys
import sysconfig
import types

HEADER = b"INSPECTORATE-SANDBOX-RESULT"
# OSError numbers that mean "the boundary said no" (seccomp, read-only mounts, tmpfs cap,
# rlimits) rather than a bug in the submitted code.
DENIED_ERRNOS = {
    errno.EPERM,
    errno.EACCES,
    errno.EROFS,
    errno.ENOSPC,
    errno.EDQUOT,
    errno.EFBIG,
    errno.EMFILE,
    errno.ENFILE,
    errno.ENOSYS,
}

SAFE_MODULES = (
    "math",
    "random",
    "json",
    "copy",
    "itertools",
    "collections",
    "re",
    "hashlib",
    "datetime",
    "statistics",
    "functools",
)
# Modules the safe ones may import lazily at run time (C accelerators, strptime, hashes).
LAZY_OK = frozenset(
    {
        "_strptime",
        "_md5",
        "_sha1",
        "_sha256",
        "_sha512",
        "_sha2",
        "_sha3",
        "_blake2",
        "_bisect",
        "_heapq",
        "_random",
        "_json",
        "_datetime",
        "fractions",
        "decimal",
        "_decimal",
        "_pydecimal",
        "numbers",
        "_statistics",
        "unicodedata",
        "calendar",
        "locale",
        "_locale",
        "encodings.idna",
        "stringprep",
    }
)
# The scratch tmpfs caps bytes, not inodes: empty files cost kernel memory, so this
# layer also caps how many files the code may open for writing.
MAX_WRITE_OPENS = 1000
FRAME_PREFIXES = ("gi_", "cr_", "ag_", "f_", "tb_", "co_", "func_", "im_")
SAFE_BUILTINS = (
    "abs",
    "all",
    "any",
    "ascii",
    "bin",
    "bool",
    "bytearray",
    "bytes",
    "callable",
    "chr",
    "complex",
    "dict",
    "divmod",
    "enumerate",
    "filter",
    "float",
    "format",
    "frozenset",
    "hash",
    "hex",
    "int",
    "isinstance",
    "issubclass",
    "iter",
    "len",
    "list",
    "map",
    "max",
    "min",
    "next",
    "object",
    "oct",
    "ord",
    "pow",
    "print",
    "range",
    "repr",
    "reversed",
    "round",
    "set",
    "slice",
    "sorted",
    "str",
    "sum",
    "tuple",
    "zip",
    "Exception",
    "ValueError",
    "KeyError",
    "IndexError",
    "TypeError",
    "ZeroDivisionError",
    "StopIteration",
    "ArithmeticError",
    "RuntimeError",
    "AssertionError",
    "AttributeError",
    "LookupError",
    "OverflowError",
    "NotImplementedError",
    "True",
    "False",
    "None",
)
ALLOWED_EVENTS = frozenset(
    {
        "object.__setattr__",
        "object.__delattr__",
        "builtins.id",
        "random.seed",
        "time.sleep",
        "sys._getframemodulename",
    }
)


class Blocked(PermissionError):
    """Raised inside the child when a layer refuses an operation."""


def exact_str(value: object) -> str:
    """A plain ``str`` copy: a subclass can override ``startswith``, ``__eq__``, ``__hash__``."""
    if isinstance(value, str):
        return "".join([value])
    if isinstance(value, bytes):
        return os.fsdecode(b"".join([value]))
    return repr(type(value))


def bad_name(name: str) -> bool:
    name = exact_str(name)
    return name.startswith("_") or name.startswith(FRAME_PREFIXES)


def check_syntax(code: str) -> ast.Module:
    """Parse ``code`` and refuse private/frame attributes, dunder names, foreign imports."""
    tree = ast.parse(code, "<mutate>")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and bad_name(node.attr):
            raise Blocked(f"line {node.lineno}: attribute {node.attr!r} is not allowed")
        if isinstance(node, ast.Name) and node.id.startswith("__"):
            raise Blocked(f"line {node.lineno}: name {node.id!r} is not allowed")
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and (
            node.name.startswith("__") and node.name != "__init__"
        ):  # __getattr__, __eq__, __hash__, __fspath__...: objects that answer checks falsely
            raise Blocked(f"line {node.lineno}: definition of {node.name!r} is not allowed")
        if isinstance(node, ast.MatchClass) and any(bad_name(a) for a in node.kwd_attrs):
            raise Blocked(f"line {node.lineno}: pattern attribute is not allowed")
        if isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name not in SAFE_MODULES:
                    raise Blocked(f"line {node.lineno}: import of {alias.name!r} is not allowed")
        if isinstance(node, ast.ImportFrom):
            if node.module not in SAFE_MODULES or node.level:
                raise Blocked(f"line {node.lineno}: import from {node.module!r} is not allowed")
            if any(alias.name == "*" or alias.name.startswith("_") for alias in node.names):
                raise Blocked(f"line {node.lineno}: that import form is not allowed")
    return tree


def module_view(module: types.ModuleType) -> types.SimpleNamespace:
    """Public, non-module attributes only: no path from ``random`` to ``os``."""
    public = {
        k: v for k, v in vars(module).items() if not k.startswith("_") and not isinstance(v, types.ModuleType)
    }
    return types.SimpleNamespace(**public)


def make_builtins(scratch: str, views: dict[str, types.SimpleNamespace]) -> dict[str, object]:
    import builtins

    table = {name: getattr(builtins, name) for name in SAFE_BUILTINS}
    real_getattr, real_open, real_import = builtins.getattr, builtins.open, builtins.__import__

    def guarded_import(name, globals=None, locals=None, fromlist=(), level=0):
        name = exact_str(name)  # a str subclass could fake equality with an allowed name
        if not level and name in views:
            return views[name]
        if not level and name in LAZY_OK:  # C code (datetime.strptime) importing its helpers
            return real_import(name, globals, locals, fromlist, level)
        raise ImportError(f"sandbox: import of {name!r} is not allowed")

    def guarded_getattr(obj, name, *default):
        if type(name) is not str or bad_name(name):
            raise Blocked(f"sandbox: getattr of {exact_str(name)!r} is not allowed")
        return real_getattr(obj, name, *default)

    def guarded_hasattr(obj, name):
        return type(name) is str and not bad_name(name) and hasattr(obj, name)

    def guarded_open(path, mode="r", buffering=-1, encoding=None, errors=None, newline=None, **extra):
        if extra or type(path) is not str or type(mode) is not str:
            raise Blocked("sandbox: open takes a plain str path and mode, no closefd= or opener=")
        full = os.path.realpath(os.path.join(scratch, path))
        if not (full == scratch or full.startswith(scratch + os.sep)):
            raise Blocked(f"sandbox: open outside the scratch dir: {path!r}")
        return real_open(full, mode, buffering, encoding, errors, newline)

    table.update(
        __import__=guarded_import,
        getattr=guarded_getattr,
        hasattr=guarded_hasattr,
        open=guarded_open,
        __build_class__=builtins.__build_class__,
        __name__="sandbox",
    )
    return table


def make_hook(scratch: str, state: dict[str, object]):
    stdlib = os.path.realpath(sysconfig.get_paths()["stdlib"])
    blocked: list = state["blocked"]  # type: ignore[assignment]

    def deny(event: str, detail: str) -> None:
        blocked.append(f"{event}: {detail}"[:200])
        raise Blocked(f"sandbox: {event} is not allowed ({detail})"[:300])

    def hook(event, args):
        if not state["armed"]:
            return
        if event == "exec" and state["exec_left"]:
            state["exec_left"] = 0
            return
        if event == "open":
            return check_open(args)
        if event == "import":
            name = exact_str(args[0])
            if name in SAFE_MODULES or name in LAZY_OK:
                return
            return deny(event, name)
        if event in ALLOWED_EVENTS:
            return
        deny(event, ", ".join(type(a).__name__ for a in args)[:120])  # no attacker __repr__ here

    def check_open(args):
        path, mode, flags = (list(args) + [None, None, None])[:3]
        if not isinstance(path, (str, bytes)):  # an fd, or a PathLike that may answer twice
            return deny("open", type(path).__name__)
        full = os.path.realpath(exact_str(path))
        writes = any(c in exact_str(mode or "") for c in "wax+") or bool(
            (flags or 0) & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        )
        if full == scratch or full.startswith(scratch + os.sep):
            state["writes"] = int(state["writes"]) + writes  # type: ignore[call-overload]  # an int the parent set
            if int(state["writes"]) > MAX_WRITE_OPENS:  # type: ignore[call-overload]
                deny("open", f"more than {MAX_WRITE_OPENS} files opened for writing")
            return
        if not writes and full.startswith(stdlib + os.sep):
            return
        deny("open", full)

    return hook


def set_limits(limits: dict[str, int]) -> None:
    """RLIMIT_NPROC is not set: inside the user namespace the uid maps to the caller's, so
    the count would include the caller's own processes; seccomp denies process creation."""
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_s"], limits["cpu_s"] + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"], limits["memory_bytes"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["file_bytes"], limits["file_bytes"]))


def preload() -> dict[str, types.SimpleNamespace]:
    """Import the whitelist (and what they load lazily) before any untrusted code runs."""
    import _strptime  # noqa: F401  (datetime.strptime imports it on first use)

    views = {}
    for name in SAFE_MODULES:
        views[name] = module_view(__import__(name))
    return views


def install_seccomp(required: bool) -> str:
    """Stack the exec-denying filter; an error message when it failed (fatal if required)."""
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    try:
        import _sandbox_seccomp

        _sandbox_seccomp.install(exec_allowed=False)
    except Exception as exc:  # any failure means no filter
        return f"seccomp filter could not be installed: {type(exc).__name__}: {exc}" if required else ""
    finally:
        del sys.path[0]
    return ""


def classify(exc: BaseException) -> tuple[str, str]:
    """The payload kind and message for an exception that ended the run."""
    message = f"{type(exc).__name__}: {exc}"[:500]
    if isinstance(exc, Blocked):
        return "blocked", str(exc)[:500]
    if isinstance(exc, MemoryError):
        return "memory", "memory limit exceeded"
    if isinstance(exc, RecursionError):
        return "error", "recursion too deep"
    if isinstance(exc, OSError) and exc.errno in DENIED_ERRNOS:
        return "denied", message
    return "error", message


def run(job: dict, state: dict[str, object]) -> object:
    """Set up the layers, then run the submitted code; the records ``mutate`` returned."""
    limits = job["limits"]
    set_limits(limits)
    views = preload()
    failed = install_seccomp(bool(limits["require_seccomp"]))
    if failed:
        state["isolation"] = failed
        return None
    python_layer = bool(limits["python_layer"])
    if python_layer and limits["syntax_filter"]:
        tree = check_syntax(job["code"])
    else:
        tree = ast.parse(job["code"], "<mutate>")
    code = compile(tree, "<mutate>", "exec")
    resource.setrlimit(resource.RLIMIT_NOFILE, (limits["nofile"], limits["nofile"]))
    namespace: dict[str, object] = {"__name__": "sandbox"}
    if python_layer:
        scratch = os.path.realpath(os.getcwd())
        namespace["__builtins__"] = make_builtins(scratch, views)
        sys.addaudithook(make_hook(scratch, state))
        state["armed"] = True
    exec(code, namespace)
    mutate = namespace.get("mutate")
    if not callable(mutate):
        raise Blocked("the code must define a function mutate(records)")
    return mutate(job["records"])


def main() -> int:
    job = json.loads(sys.stdin.buffer.read())
    os.close(0)
    # The payload goes to a private copy of stdout; fd 1 and print() now go to stderr, so
    # stray output from the code cannot be mistaken for (or mixed into) the payload.
    out = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr
    dumps, write = json.dumps, os.write  # bound before the code could replace them
    state: dict[str, object] = {"armed": False, "exec_left": 1, "blocked": [], "isolation": "", "writes": 0}
    try:
        records = run(job, state)
        if state["isolation"]:
            payload = {"ok": False, "kind": "isolation", "error": state["isolation"]}
        else:
            payload = {"ok": True, "records": records}
        text = dumps(payload, allow_nan=False)
    except BaseException as exc:  # everything the code does is reported
        kind, message = classify(exc)
        text = dumps({"ok": False, "kind": kind, "error": message})
    limit = job["limits"]["output_bytes"]
    if len(text) > limit:
        text = dumps({"ok": False, "kind": "output", "error": f"result of {len(text)} bytes exceeds {limit}"})
    blocked = [str(b)[:200] for b in state["blocked"]][:50]  # type: ignore[attr-defined]
    data = (text[:-1] + ", " + dumps("blocked") + ": " + dumps(blocked) + "}").encode()
    view = memoryview(HEADER + b" %d\n" % len(data) + data)
    while view:
        view = view[write(out, view) :]
    return 0


if __name__ == "__main__":
    sys.exit(main())
