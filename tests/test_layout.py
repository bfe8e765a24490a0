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
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
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
    return names


def _graph() -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    modules = _modules()
    internal, external = {}, {}
    for name, path in modules.items():
        imported = _imports(name, path)
        internal[name] = {m for m in modules if m != name and m in imported}
        external[name] = {m.split(".")[0] for m in imported if not m.startswith("schemadiff")}
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
