"""The layer order of docs/architecture.md, enforced on the source (AST, no imports run).

Every ``inspectorate`` module belongs to one unit (a top-level module or package); units
sit in layers, lowest first. A module may import its own unit and the units of lower
layers, never a peer in its own layer nor anything above. Counted as imports: ``import``
and ``from ... import`` anywhere (module level, inside functions, under
``TYPE_CHECKING``), ``import_module("inspectorate....")``, and any string naming an
``inspectorate`` module (lazy-export tables, fingerprint lists). The one way a lower layer
may name a higher one is the by-name lazy hook of a dispatch registry
(``LAYOUTS.register_lazy(..., "inspectorate.scale._layout")``, Dask's ``register_lazy``).

The CLI layer is ``cli.py`` plus every module that imports typer (each package's
commands); nothing outside it may import such a module.

Run ``python tests/test_layers.py [SRC]`` for the counts (upward arrows, package cycles).
"""

from __future__ import annotations

import ast
import re
import sys
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# Lowest first; units in one tuple are peers (neither may import the other).
LAYERS: list[tuple[str, ...]] = [
    ("errors",),
    ("_plugins", "_lazy", "_paths", "data", "decisions"),
    ("trace",),
    ("commitment", "ledger"),
    ("capture", "scale"),
    ("models",),
    ("replay", "difr"),
    ("verify", "handover"),
    ("agent", "testbed"),
    ("attacks",),
    ("report",),
    ("bench",),
    ("_commands", "plugins"),
    ("demo",),
    ("cli", "_cli_options"),
]
LEVEL = {unit: level for level, units in enumerate(LAYERS) for unit in units}
CLI_LEVEL = LEVEL["cli"]
MODULE_NAME = re.compile(r"inspectorate(\.[A-Za-z_][A-Za-z0-9_]*)+")
LAZY_HOOKS = {"register_lazy"}  # registry methods that may name a higher module


@dataclass(frozen=True)
class Import:
    source: str  # importing module
    target: str  # imported module (or module.name)
    line: int
    how: str  # "import", "string"


def module_name(path: Path, src: Path) -> str:
    parts = list(path.relative_to(src).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _absolute(node: ast.ImportFrom, module: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def _lazy_hook_strings(tree: ast.AST) -> set[int]:
    """ids of the string constants that name a module without importing it here: those
    passed to a registry's by-name lazy hook, and ``-m MODULE`` of a child process's argv."""
    allowed: set[int] = set()
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in LAZY_HOOKS
        ):
            allowed.update(id(arg) for arg in [*node.args, *(k.value for k in node.keywords)])
        if isinstance(node, (ast.List, ast.Tuple)):
            for flag, arg in zip(node.elts, node.elts[1:]):
                if isinstance(flag, ast.Constant) and flag.value == "-m":
                    allowed.add(id(arg))
    return allowed


def imports_of(path: Path, src: Path) -> tuple[list[Import], bool]:
    """(every inspectorate import in the file, whether it imports typer)."""
    module = module_name(path, src)
    is_package = path.name == "__init__.py"
    tree = ast.parse(path.read_text(), str(path))
    hooked = _lazy_hook_strings(tree)
    found: list[Import] = []
    uses_typer = False
    for node in ast.walk(tree):
        targets: list[str] = []
        how = "import"
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, module, is_package)
            targets = [base] + [f"{base}.{alias.name}" for alias in node.names]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in hooked:
            if MODULE_NAME.fullmatch(node.value):
                targets, how = [node.value], "string"
        uses_typer |= any(t == "typer" or t.startswith("typer.") for t in targets)
        found += [
            Import(module, t, getattr(node, "lineno", 0), how)
            for t in targets
            if t == "inspectorate" or t.startswith("inspectorate.")
        ]
    return found, uses_typer


def unit_of(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "inspectorate"


def scan(src: Path = SRC) -> tuple[list[Import], set[str]]:
    """All imports under ``src/inspectorate`` and the CLI-layer modules."""
    imports: list[Import] = []
    cli_modules: set[str] = set()
    for path in sorted((src / "inspectorate").rglob("*.py")):
        found, uses_typer = imports_of(path, src)
        imports += found
        if uses_typer:
            cli_modules.add(module_name(path, src))
    return imports, cli_modules


def level_of(module: str, cli_modules: set[str]) -> int | None:
    if module in cli_modules or any(module.startswith(m + ".") for m in cli_modules):
        return CLI_LEVEL
    return LEVEL.get(unit_of(module))


def violations(src: Path = SRC) -> list[str]:
    """Each import that runs upward or sideways between peers, as 'module:line -> target'."""
    imports, cli_modules = scan(src)
    bad: dict[tuple[str, int], str] = {}
    for imp in imports:
        here, there = unit_of(imp.source), unit_of(imp.target)
        if imp.source == "inspectorate" or there == "inspectorate":
            continue  # the root package is the front door; importing it imports nothing new
        mine, theirs = level_of(imp.source, cli_modules), level_of(imp.target, cli_modules)
        if mine is None or theirs is None:
            continue  # reported by test_every_unit_has_a_layer
        if here == there and not (theirs == CLI_LEVEL and mine != CLI_LEVEL):
            continue
        if theirs > mine or (theirs == mine and here != there and mine != CLI_LEVEL):
            text = f"{imp.target} ({imp.how}; {here}@{mine} -> {there}@{theirs})"
            bad.setdefault((imp.source, imp.line), text)  # one per statement
    return [f"{source}:{line} -> {text}" for (source, line), text in sorted(bad.items())]


def package_graph(src: Path = SRC) -> dict[str, set[str]]:
    """unit -> units it imports (CLI modules excluded: they sit above every package)."""
    imports, cli_modules = scan(src)
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in imports:
        here, there = unit_of(imp.source), unit_of(imp.target)
        if imp.source in cli_modules or "inspectorate" in (here, there) or here == there:
            continue
        if imp.target in cli_modules or any(imp.target.startswith(m + ".") for m in cli_modules):
            there = "cli"
        graph[here].add(there)
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one node (each closes at least one cycle)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    groups: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(set(graph) | {n for targets in graph.values() for n in targets}):
        if node not in index:
            visit(node)
    return groups


def module_graph(src: Path = SRC) -> dict[str, set[str]]:
    """module -> modules it imports inside its own package (package ``__init__``s left out:
    a submodule naming its package re-export is not a dependency on its siblings)."""
    imports, _ = scan(src)
    modules = {module_name(p, src) for p in (src / "inspectorate").rglob("*.py")}
    graph: dict[str, set[str]] = defaultdict(set)
    for imp in imports:
        target = imp.target if imp.target in modules else imp.target.rpartition(".")[0]
        if target in modules and target != imp.source and unit_of(target) == unit_of(imp.source):
            if not (src / Path(*target.split("."))).is_dir():  # a package's __init__
                graph[imp.source].add(target)
    return graph


def units(src: Path = SRC) -> set[str]:
    root = src / "inspectorate"
    return {p.stem if p.is_file() else p.name for p in root.iterdir() if _is_unit(p)}


def _is_unit(path: Path) -> bool:
    if path.is_dir():
        return (path / "__init__.py").exists()
    return path.suffix == ".py" and path.name != "__init__.py"


def test_every_unit_has_a_layer():
    assert sorted(units() - set(LEVEL)) == [], "add the new package to LAYERS and docs/architecture.md"


def test_no_import_runs_upward_or_between_peers():
    assert violations() == []


def test_no_package_cycles():
    assert cycles(package_graph()) == []


# Cycles among one package's modules that close through deferred imports, left as they
# were (docs/architecture.md, "Known debt"): none may grow and no new one may appear.
KNOWN_MODULE_CYCLES = [
    # the attack registry loads its modules by name; each registers through it
    [
        "attacks._accounting_provenance_attacks",
        "attacks._compound_attacks",
        "attacks._evasion_attacks",
        "attacks._label_job_time_attacks",
        "attacks._registry",
    ],
    ["bench._baselines", "bench._ours", "bench._verifier"],
    ["commitment._registry", "commitment.rules.semantic"],
    ["trace._fastchain", "trace._io", "trace._jsonl", "trace._trace"],
    ["verify._accounting", "verify._physics", "verify._posttrain", "verify._properties", "verify._registry"],
]


def test_no_new_module_cycles_inside_a_package():
    found = [[m.removeprefix("inspectorate.") for m in group] for group in cycles(module_graph())]
    assert [g for g in found if g not in KNOWN_MODULE_CYCLES] == []
    assert not any(m.startswith("scale.") for g in found for m in g)  # _dag <-> _dask is gone


def test_the_layers_in_the_doc_are_the_layers_enforced():
    doc = (SRC.parent / "docs" / "architecture.md").read_text()
    table = [line for line in doc.splitlines() if re.match(r"\|\s*\d+\s*\|", line)]
    assert len(table) == len(LAYERS)
    for row, units_here in zip(table, LAYERS, strict=True):
        named = set(re.findall(r"`([a-z_]+)`", row.split("|")[2]))
        assert named == set(units_here), row


def test_the_checker_sees_deferred_typed_and_by_name_imports(tmp_path):
    """A planted upward import of each kind is caught; the lazy hook is not."""
    pkg = tmp_path / "inspectorate"
    for unit in ("trace", "scale"):
        (pkg / unit).mkdir(parents=True)
        (pkg / unit / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "trace" / "_a.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from inspectorate.scale import x\n"
        "def f():\n    from inspectorate.scale._b import y\n"
        "def g():\n    import importlib\n    importlib.import_module('inspectorate.scale')\n"
        "EXPORTS = {'z': 'inspectorate.scale._b'}\n"
        "LAYOUTS.register_lazy('p', 'm.json', 'inspectorate.scale._b')\n"
    )
    (pkg / "scale" / "_b.py").write_text("from inspectorate.trace import _a\n")
    found = violations(tmp_path)
    assert [v.split(" ->")[0] for v in found] == [f"inspectorate.trace._a:{n}" for n in (3, 5, 8, 9)]
    assert cycles(package_graph(tmp_path)) == [["scale", "trace"]]


def test_a_library_module_may_not_import_a_cli_module(tmp_path):
    pkg = tmp_path / "inspectorate"
    (pkg / "verify").mkdir(parents=True)
    for path in (pkg / "__init__.py", pkg / "verify" / "__init__.py"):
        path.write_text("")
    (pkg / "verify" / "_cli.py").write_text("import typer\nfrom inspectorate.report import x\n")
    (pkg / "verify" / "_lib.py").write_text("def f():\n    from inspectorate.verify._cli import verify\n")
    found = violations(tmp_path)
    assert len(found) == 1 and found[0].startswith("inspectorate.verify._lib:2")


def main(src: Path) -> None:
    graph = package_graph(src)
    upward = violations(src)
    pairs = sorted(
        {f"{unit_of(v.split(':')[0])} -> {unit_of(v.split(' -> ')[1].split(' ')[0])}" for v in upward}
    )
    print(f"upward or peer imports: {len(upward)}")
    for line in upward:
        print("  ", line)
    print(f"upward package arrows: {len(pairs)}: {pairs}")
    print(f"package cycles (strongly connected groups): {cycles(graph)}")
    print(f"module cycles inside packages: {cycles(module_graph(src))}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else SRC)
