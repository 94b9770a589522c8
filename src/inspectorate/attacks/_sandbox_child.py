"""Child side of the sandbox: run untrusted ``mutate(records)`` under layered limits.

Run as ``python -I -S -B _sandbox_child.py WORKDIR`` (stdlib only: this file must not
import inspectorate). WORKDIR holds ``job.json`` (code + limits) and ``input.json``
(records, JSON: never pickle); the answer goes to ``result.json`` through a file
descriptor opened before any untrusted code runs.

Layers, each enough to stop the common escapes on its own where it applies:
1. OS limits: RLIMIT_CPU, RLIMIT_AS, RLIMIT_FSIZE, RLIMIT_NOFILE, RLIMIT_NPROC, no core.
2. A syntax filter: no attribute or name starting with "_" (no ``__class__``,
   ``__subclasses__``, ``__globals__``, ``__builtins__``), no frame/code/traceback
   attributes (``gi_frame``, ``f_back``, ``tb_frame``...), imports only from a whitelist.
3. Restricted builtins: no eval/exec/compile/globals/vars/type/setattr; ``__import__``
   hands out read-only views of whitelisted modules; ``getattr`` refuses the names the
   filter refuses; ``open`` only inside WORKDIR/scratch.
4. An audit hook (cannot be removed once installed) that denies, whatever path the code
   found: opens outside the scratch dir (reads also allowed under the stdlib, for lazy
   imports), imports outside a short list, sockets, subprocesses, fork/exec, ctypes,
   frame access, and any compile/exec after the submitted code itself.
"""

from __future__ import annotations

import ast
import json
import os
import resource
import sys
import sysconfig
import types

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
LAZY_OK = {
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
ALLOWED_EVENTS = {
    "object.__setattr__",
    "object.__delattr__",
    "builtins.id",
    "random.seed",
    "time.sleep",
    "sys._getframemodulename",
}


class Blocked(PermissionError):
    """Raised inside the child when a layer refuses an operation."""


def bad_name(name: str) -> bool:
    return name.startswith("_") or name.startswith(FRAME_PREFIXES)


def check_syntax(code: str) -> ast.Module:
    """Parse ``code`` and refuse private/frame attributes, dunder names, foreign imports."""
    tree = ast.parse(code, "<mutate>")
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and bad_name(node.attr):
            raise Blocked(f"line {node.lineno}: attribute {node.attr!r} is not allowed")
        if isinstance(node, ast.Name) and node.id.startswith("__"):
            raise Blocked(f"line {node.lineno}: name {node.id!r} is not allowed")
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
        if not level and name in views:
            return views[name]
        if not level and name in LAZY_OK:  # C code (datetime.strptime) importing its helpers
            return real_import(name, globals, locals, fromlist, level)
        raise ImportError(f"sandbox: import of {name!r} is not allowed")

    def guarded_getattr(obj, name, *default):
        if not isinstance(name, str) or bad_name(name):
            raise Blocked(f"sandbox: getattr of {name!r} is not allowed")
        return real_getattr(obj, name, *default)

    def guarded_hasattr(obj, name):
        return not bad_name(name) and hasattr(obj, name)

    def guarded_open(path, mode="r", *args, **kwargs):
        full = os.path.realpath(os.path.join(scratch, os.fspath(path)))
        if not (full == scratch or full.startswith(scratch + os.sep)):
            raise Blocked(f"sandbox: open outside the scratch dir: {path!r}")
        return real_open(full, mode, *args, **kwargs)

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
            name = str(args[0])
            if name in SAFE_MODULES or name in LAZY_OK:
                return
            return deny(event, name)
        if event in ALLOWED_EVENTS:
            return
        deny(event, repr(args)[:120])

    def check_open(args):
        path, mode, flags = (list(args) + [None, None, None])[:3]
        if isinstance(path, int):
            return deny("open", f"fd {path}")
        full = os.path.realpath(os.fsdecode(path))
        writes = any(c in str(mode or "") for c in "wax+") or bool(
            (flags or 0) & (os.O_WRONLY | os.O_RDWR | os.O_CREAT)
        )
        if full == scratch or full.startswith(scratch + os.sep):
            return
        if not writes and full.startswith(stdlib + os.sep):
            return
        deny("open", full)

    return hook


def set_limits(limits: dict[str, int]) -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CPU, (limits["cpu_s"], limits["cpu_s"] + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits["memory_bytes"], limits["memory_bytes"]))
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits["output_bytes"] + 4096, limits["output_bytes"] + 4096))
    resource.setrlimit(resource.RLIMIT_NPROC, (0, 0))


def preload() -> dict[str, types.SimpleNamespace]:
    """Import the whitelist (and what they load lazily) before any untrusted code runs."""
    import _strptime  # noqa: F401  (datetime.strptime imports it on first use)

    views = {}
    for name in SAFE_MODULES:
        views[name] = module_view(__import__(name))
    return views


def main(workdir: str) -> int:
    workdir = os.path.realpath(workdir)
    scratch = os.path.join(workdir, "scratch")
    with open(os.path.join(workdir, "job.json"), encoding="utf-8") as fh:
        job = json.load(fh)
    with open(os.path.join(workdir, "input.json"), encoding="utf-8") as fh:
        records = json.load(fh)
    out = open(os.path.join(workdir, "result.json"), "w", encoding="utf-8")
    limits = job["limits"]
    set_limits(limits)
    dumps = json.dumps
    state: dict[str, object] = {"armed": False, "exec_left": 1, "blocked": []}
    try:
        views = preload()
        tree = check_syntax(job["code"]) if limits.get("syntax_filter", 1) else ast.parse(job["code"])
        code = compile(tree, "<mutate>", "exec")
        resource.setrlimit(resource.RLIMIT_NOFILE, (limits["nofile"], limits["nofile"]))
        namespace = {"__builtins__": make_builtins(scratch, views), "__name__": "sandbox"}
        sys.addaudithook(make_hook(scratch, state))
        state["armed"] = True
        exec(code, namespace)
        mutate = namespace.get("mutate")
        if not callable(mutate):
            raise Blocked("the code must define a function mutate(records)")
        result = mutate(records)
        text = dumps({"ok": True, "records": result, "blocked": state["blocked"]}, allow_nan=False)
    except MemoryError:
        text = dumps(
            {"ok": False, "kind": "memory", "error": "memory limit exceeded", "blocked": state["blocked"]}
        )
    except RecursionError:
        text = dumps(
            {"ok": False, "kind": "error", "error": "recursion too deep", "blocked": state["blocked"]}
        )
    except Blocked as exc:
        text = dumps({"ok": False, "kind": "blocked", "error": str(exc)[:500], "blocked": state["blocked"]})
    except BaseException as exc:
        text = dumps(
            {
                "ok": False,
                "kind": "error",
                "error": f"{type(exc).__name__}: {exc}"[:500],
                "blocked": state["blocked"],
            }
        )
    if len(text) > limits["output_bytes"]:
        text = dumps(
            {
                "ok": False,
                "kind": "output",
                "error": f"output of {len(text)} bytes exceeds the limit of {limits['output_bytes']}",
                "blocked": state["blocked"],
            }
        )
    out.write(text)
    out.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
