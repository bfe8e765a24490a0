"""SQL is built by one module: no statement text is assembled outside ``schemadiff/engine/ddl.py``.

Issue #12 ("SQL is rendered once, at the end, by one module"): the planning
modules (``schemadiff/engine/*.py`` and ``schemadiff/online.py``) decide
what changes and call :mod:`schemadiff.engine.ddl` for the text. This test
reads their source with ``ast`` and fails on any string *building*
expression (an f-string, ``+`` concatenation, ``%`` formatting,
``str.format``, ``str.join`` of a literal list, or ``str.replace``
rewriting one statement into another)
whose text is SQL.

"Is SQL" is decided by PostgreSQL's own grammar (pglast), not by a list of
words, so reviewer-facing messages that merely start with a keyword
("ALTER TABLE {table} rewrites", a hazard's text) are not flagged: the
expression's text, each ``{...}`` replaced by an identifier, is SQL when it
parses, or when the parser runs out of input (a statement's start, such as
``f"ALTER TABLE {ref} ALTER COLUMN {c}"`` completed elsewhere), also as a
clause of ALTER TABLE (``f"SET ({options})"``). When the parser stops at a
``{...}`` (it stood for a keyword, ``f"ALTER {what} {ref}"``), that hole is
retried as ``TABLE x``; stopping there again counts as SQL (a false alarm
is fixed by moving the text to ddl.py, a miss would hide a statement).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
from pglast import parser

PACKAGE = Path(__file__).resolve().parent.parent / "schemadiff"
RENDERER = PACKAGE / "engine" / "ddl.py"
PLANNERS = sorted(p for p in (PACKAGE / "engine").glob("*.py") if p != RENDERER) + [PACKAGE / "online.py"]

# Statement keywords and the ALTER TABLE clause keywords a fragment starts with.
_KEYWORD = re.compile(
    r"\s*(CREATE|ALTER|DROP|COMMENT|GRANT|REVOKE|SET|RESET|VALIDATE|TRUNCATE|REFRESH|SELECT|INSERT|UPDATE|"
    r"DELETE|LOCK|CLUSTER|REINDEX|VACUUM|ANALYZE|SECURITY|ADD|RENAME|ENABLE|DISABLE|FORCE|ATTACH|DETACH|"
    r"INHERIT|NO|OWNED|REPLICA|OWNER)\b"
)
_HOLE = object()  # where an expression stands in the text: {...} of an f-string, an operand of + or %
_CLAUSE_PREFIX = "ALTER TABLE x "


def _template(node: ast.AST) -> list | None:
    """The text ``node`` builds, as str pieces and holes; None when it builds no string."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return [node.value]
    if isinstance(node, ast.JoinedStr):
        pieces: list = []
        for value in node.values:
            pieces.append(value.value if isinstance(value, ast.Constant) else _HOLE)
        return pieces
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = _template(node.left), _template(node.right)
        if left is None and right is None:
            return None
        return (left or [_HOLE]) + (right or [_HOLE])
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod) and _is_str(node.left):
        return [re.sub(r"%[sdr]", "\0", node.left.value)]  # type: ignore[union-attr]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format"
            and _is_str(node.func.value)):
        return [re.sub(r"\{[^{}]*\}", "\0", node.func.value.value)]  # type: ignore[union-attr]
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "join"
            and _is_str(node.func.value) and node.args and isinstance(node.args[0], (ast.List, ast.Tuple))):
        separator = node.func.value.value  # type: ignore[union-attr]
        pieces = []
        for i, element in enumerate(node.args[0].elts):
            if i:
                pieces.append(separator)
            pieces.extend(_template(element) or [_HOLE])
        return pieces
    return None


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _building(node: ast.AST) -> bool:
    """An expression that assembles a string (a lone constant assembles nothing)."""
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return _template(node) is not None
    return isinstance(node, ast.Call) and _template(node) is not None


def _split(pieces: list) -> list:
    """Holes written inside a constant (``%s``, ``{}`` of .format) become holes too."""
    out: list = []
    for piece in pieces:
        if piece is _HOLE:
            out.append(_HOLE)
            continue
        parts = piece.split("\0")
        for i, part in enumerate(parts):
            if i:
                out.append(_HOLE)
            out.append(part)
    return out


def reads_as_sql(pieces: list) -> bool:
    """Whether the text with holes reads as (the start of) a SQL statement or ALTER TABLE clause."""
    pieces = _split(pieces)
    first = next((p for p in pieces if p is not _HOLE and p.strip()), "")
    if not _KEYWORD.match(first):
        return False
    holes = [i for i, p in enumerate(pieces) if p is _HOLE]
    for prefix in ("", _CLAUSE_PREFIX):
        fillers = {i: "x" for i in holes}
        for _ in range(len(holes) + 1):
            text, spans = prefix, {}
            for i, piece in enumerate(pieces):
                if piece is _HOLE:
                    spans[i] = (len(text), len(text) + len(fillers[i]))
                    text += fillers[i]
                else:
                    text += piece
            try:
                parser.parse_sql(text)
                return True
            except parser.ParseError as error:
                location = error.args[1] if len(error.args) > 1 else None
            if location is None:  # "syntax error at end of input": a statement's beginning
                return True
            hole = next((i for i, (start, end) in spans.items() if start <= location < end), None)
            if hole is None:
                break  # the parser refused the expression's own words: not SQL (in this reading)
            if fillers[hole] != "x":
                return True
            fillers[hole] = "TABLE x"
    return False


def inline_sql(path: Path) -> list[str]:
    """``path:line: text`` for each expression outside the renderer that builds SQL."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found: list[str] = []
    inside: set[int] = set()  # nodes within a reported or checked expression
    for node in ast.walk(tree):
        if id(node) in inside:
            continue
        template = None
        if _building(node):
            template = _template(node)
        elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "replace"
              and any(_is_str(arg) and reads_as_sql([arg.value]) for arg in node.args[:2])):  # type: ignore[attr-defined]
            found.append(f"{path.name}:{node.lineno}: rewrites statement text with .replace")
            continue
        if template is None:
            continue
        inside.update(id(child) for child in ast.walk(node))
        if reads_as_sql(template):
            text = "".join("{…}" if p is _HOLE else p for p in _split(template))
            found.append(f"{path.name}:{node.lineno}: {text[:90]!r}")
    return found


def test_no_statement_text_outside_the_renderer():
    found = [line for path in PLANNERS for line in inline_sql(path)]
    assert not found, "SQL built outside schemadiff/engine/ddl.py (add a function there):\n" + "\n".join(found)


@pytest.mark.parametrize("source", [
    'sql = f"ALTER TABLE {ref} ALTER COLUMN {ident(c)} SET STORAGE {storage};"',
    'sql = f"CREATE SCHEMA {ident(name)};"',
    'prefix = f"ALTER TABLE {ref} ALTER COLUMN {ident(c)}"',
    'sql = "DROP EXTENSION " + ident(name) + ";"',
    'sql = "GRANT %s ON %s TO %s;" % (what, target, who)',
    'sql = "REVOKE {} ON {} FROM {};".format(what, target, who)',
    'sql = " ".join(["ALTER TABLE", ref, "SET LOGGED;"])',
    'sql = prefix + " SET LOGGED;"',
    'alter(f"SET ({options})")',
    'sql = f"ALTER {what} {ref} SET WITHOUT CLUSTER;"',
    'sql = f"{note}COMMENT ON {target} IS {text};"',
    'sql = ddl.create_view(view).replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1)',
])
def test_an_inline_statement_is_caught(tmp_path, source):
    module = tmp_path / "planner.py"
    module.write_text(source + "\n", encoding="utf-8")
    assert inline_sql(module), source


@pytest.mark.parametrize("source", [
    'message = f"ALTER TABLE {table} rewrites"',
    'message = f"DROP {removed} deletes what it holds"',
    'message = "VALIDATE CONSTRAINT checks domain"',
    'raise ValueError(f"unexpected index definition: {definition}")',
    'note = f"-- {name} was renamed\\n"',
    'statement = "ALTER TABLE ADD CONSTRAINT"',  # a lock table key, not built text
    'def f():\n    """ALTER TABLE ... SET NOT NULL, in a docstring."""',
])
def test_messages_and_keys_are_not_sql(tmp_path, source):
    module = tmp_path / "planner.py"
    module.write_text(source + "\n", encoding="utf-8")
    assert not inline_sql(module), source
