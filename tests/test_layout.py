"""The package's shape, read from its source: no import circles, and the core never imports the CLI's libraries.

Imports are read with ``ast`` (every ``import``, at module level or inside
a function, TYPE_CHECKING blocks included), so a circle hidden in a
function-local import counts as one.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "schemadiff"
CLI_LIBRARIES = {"typer", "rich", "click"}
CLI_MODULES = {"schemadiff.cli", "schemadiff.entry", "schemadiff.__main__"}


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path) -> set[str]:
    return _imports_in(path.read_text(encoding="utf-8"), name, is_package=path.name == "__init__.py")


DYNAMIC = "<dynamic import>"  # an importlib.import_module / __import__ whose module name is not a literal
_IMPORT_FUNCTIONS = {"import_module", "__import__"}


def _imports_in(source: str, name: str, *, is_package: bool = False) -> set[str]:
    """The modules ``source`` (module ``name``) imports: statements, and calls of ``importlib.import_module``
    or ``__import__`` with a literal name (``"psycopg"``, ``f"{__package__}.hints"``); DYNAMIC for a call
    whose name is computed, which the judges below cannot follow."""
    package = name if is_package else name.rsplit(".", 1)[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                module = ".".join(base + ([node.module] if node.module else []))
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.Call) and node.args:
            function = node.func
            called = function.attr if isinstance(function, ast.Attribute) else getattr(function, "id", None)
            if called in _IMPORT_FUNCTIONS:
                names.add(_literal_module(node.args[0], package, name) or DYNAMIC)
    return names


def _literal_module(node: ast.expr, package: str, name: str) -> str | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    if isinstance(node, ast.JoinedStr):
        text = []
        for part in node.values:
            if isinstance(part, ast.Constant):
                text.append(str(part.value))
            elif isinstance(part.value, ast.Name) and part.value.id in ("__package__", "__name__"):
                text.append(package if part.value.id == "__package__" else name)
            else:
                return None
        return "".join(text)
    return None


def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    modules = _modules()
    internal, external = {}, {}
    for name, path in modules.items():
        imported = _imports(name, path)
        internal[name] = {m for m in modules if m != name and m in imported}
        external[name] = {m.split(".")[0] for m in imported if not m.startswith("schemadiff") and m != DYNAMIC}
        if DYNAMIC in imported:
            external[name].add(DYNAMIC)
    # command.py's PEP 562 re-exports for the CLI import their modules by a computed name: its table says which.
    from schemadiff import command

    internal["schemadiff.command"] |= {f"schemadiff.{module}" for module in set(command._RENDERING.values())}
    external["schemadiff.command"].discard(DYNAMIC)
    return internal, external


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan's algorithm)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in sorted(graph[node]):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_the_package_has_no_import_circles():
    internal, _ = _graph()
    assert _cycles(internal) == []


def test_the_cycle_finder_finds_a_cycle():
    # The judge above must be able to fail.
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_only_the_cli_imports_the_cli_libraries():
    internal, external = _graph()
    offenders = {name: sorted(libs & CLI_LIBRARIES) for name, libs in external.items() if libs & CLI_LIBRARIES}
    assert set(offenders) <= CLI_MODULES, offenders
    # and no core module reaches the CLI module itself
    reaching_cli = sorted(name for name, targets in internal.items() if name not in CLI_MODULES and targets & CLI_MODULES)
    assert reaching_cli == []


# The four places (README, "Layout") and what each may import; the package docstrings say why.
SHARED = {"schemadiff", "schemadiff.errors", "schemadiff.sqlfile"}
# The engine is pure computation: none of these connect, start processes or read a live catalog.
ENGINE_FORBIDDEN_LIBRARIES = {"psycopg", "psycopg_pool", "subprocess", "socket", "typer", "rich", "click"}
# ... and a list of what is forbidden misses every other driver (psycopg2, asyncpg, pg8000), the embedded
# server's packages, os, urllib: what the engine may import is listed instead. pglast parses SQL text;
# the shared helpers (SHARED) may also use pathlib and stat (sqlfile reads a desired file when asked).
ENGINE_LIBRARIES = {"__future__", "abc", "bisect", "collections", "copy", "dataclasses", "enum", "functools", "heapq",
                    "itertools", "json", "keyword", "math", "operator", "pglast", "re", "string", "textwrap", "types",
                    "typing", "unicodedata"}
SHARED_LIBRARIES = ENGINE_LIBRARIES | {"pathlib", "stat"}


def _closure(internal: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), [start]
    while todo:
        for target in internal[todo.pop()]:
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def _in(package: str, name: str) -> bool:
    return name == package or name.startswith(package + ".")


def test_the_engine_imports_only_itself_and_pure_helpers():
    internal, external = _graph()
    engine = [name for name in internal if _in("schemadiff.engine", name)]
    assert "schemadiff.engine.diff" in engine and "schemadiff.engine.model" in engine
    for name in engine:
        reached = _closure(internal, name)
        outside = sorted(m for m in reached if not _in("schemadiff.engine", m) and m not in SHARED)
        assert outside == [], (name, outside)
        libraries = set().union(*(external[m] for m in reached | {name}))
        assert not libraries & ENGINE_FORBIDDEN_LIBRARIES, (name, sorted(libraries & ENGINE_FORBIDDEN_LIBRARIES))
        for module in reached | {name}:
            allowed = SHARED_LIBRARIES if module in SHARED else ENGINE_LIBRARIES
            assert external[module] <= allowed, (name, module, sorted(external[module] - allowed))


def test_the_shadow_and_the_runner_do_not_reach_the_command_layer():
    internal, _ = _graph()
    command_layer = {"schemadiff.command", "schemadiff.api", *CLI_MODULES}
    for name in internal:
        if _in("schemadiff.shadow", name) or _in("schemadiff.runner", name):
            assert not _closure(internal, name) & command_layer, name
        if _in("schemadiff.shadow", name):
            assert not any(_in("schemadiff.runner", m) for m in _closure(internal, name)), name


COMPARISONS = ("diff", "tables", "usertypes", "objects", "privileges")


def test_the_engine_compares_with_plain_functions_over_a_frozen_context():
    """Issue #12: per-kind comparison as plain functions over two models and a frozen context, not mixins
    sharing mutable state. The comparison modules define no class with methods (diff.py's SchemaIndex is a
    frozen record), nothing assigns to the context, and the context refuses assignment."""
    import dataclasses

    import pytest

    from schemadiff.engine.context import Context
    from schemadiff.engine.model import Schema

    for name in COMPARISONS:
        tree = ast.parse((PACKAGE / "engine" / f"{name}.py").read_text(encoding="utf-8"))
        classes = [node.name for node in tree.body if isinstance(node, ast.ClassDef)
                   and any(isinstance(item, ast.FunctionDef) for item in node.body)]
        assert not classes, f"engine/{name}.py: classes with methods {classes}"
        assigned = [node.lineno for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AugAssign))
                    for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
                    if isinstance(target, (ast.Attribute, ast.Subscript))
                    and isinstance(getattr(target, "value", None), ast.Attribute)
                    and isinstance(target.value.value, ast.Name) and target.value.value.id == "ctx"
                    or isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name)
                    and target.value.id == "ctx"]
        assert not assigned, f"engine/{name}.py assigns to the context at lines {assigned}"
    empty = Schema()
    ctx = Context(empty, empty, False, {}, {}, {}, {}, {}, {}, frozenset(), frozenset(), {}, {}, frozenset(),
                  frozenset())
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.replaced = frozenset({("table", "public.t")})  # type: ignore[misc]


def test_the_cli_imports_only_the_command_layer():
    internal, _ = _graph()
    assert internal["schemadiff.cli"] <= {"schemadiff", "schemadiff.command", "schemadiff.errors"}, internal["schemadiff.cli"]


def test_the_layout_judges_can_fail():
    # A module of the engine that reached psycopg through dburl would be caught by the closure.
    internal = {"schemadiff.engine.x": {"schemadiff.dburl"}, "schemadiff.dburl": set()}
    assert _closure(internal, "schemadiff.engine.x") == {"schemadiff.dburl"}


def test_a_module_name_in_a_call_is_an_import_too():
    # importlib.import_module("psycopg") in the engine is an import of psycopg; a computed name is flagged.
    source = """
import importlib
def f(module):
    importlib.import_module("psycopg")
    __import__("asyncpg")
    importlib.import_module(f"{__package__}.hints")
    importlib.import_module(module)
"""
    found = _imports_in(source, "schemadiff.engine.x")
    assert {"psycopg", "asyncpg", "schemadiff.engine.hints", DYNAMIC} <= found, found


def test_no_module_imports_by_a_computed_name():
    # A computed name hides an edge from every judge above (command.py's table is read in _graph).
    _, external = _graph()
    assert sorted(name for name, libraries in external.items() if DYNAMIC in libraries) == []
