"""SQL is built by one module: no statement text is assembled outside ``schemadiff/engine/ddl.py``.

Issue #12 ("SQL is rendered once, at the end, by one module"): the planning
modules (``schemadiff/engine/*.py`` and ``schemadiff/online.py``) decide
what changes and call :mod:`schemadiff.engine.ddl` for the text. This test
reads their source with ``ast`` and fails on any string *building*
expression whose text is SQL: an f-string, ``+`` concatenation, ``%``
formatting, ``str.format`` / ``str.format_map`` / ``string.Template``
substitution on a template written in place or held in a name, a dict, a
list or an attribute (any assignment in the module, or in the package's
module it is imported from), ``str.join`` over any
parts (a literal list, a comprehension, a name the module fills with
``append``), ``+=`` continuing the text a name holds, quoted text
(``ident``/``literal``/``qualified``, or a name assigned from them) spliced
into other text, and ``str.replace`` / ``re.sub`` whose pattern or
replacement is SQL or quoted text, or that rewrites printed SQL the model
holds (``index.definition``, ``column.default``, ``function.identity_args``,
``change.sql``...) whatever the replacement.

"Is SQL" is decided by PostgreSQL's own grammar (pglast), not by a list of
words, so reviewer-facing messages that merely start with a keyword
("ALTER TABLE {table} rewrites", a hazard's text) are not flagged. The
expression's text, each hole (``{...}``, an operand, ``%s``) replaced by an
identifier, after any leading ``--``/``/* */`` note and leading holes, is
SQL when:

* it starts with a statement or ALTER TABLE clause keyword, in any letter
  case (PostgreSQL folds keywords), and parses or runs out of input (a
  statement's start, ``f"ALTER TABLE {ref} ALTER COLUMN {c}"`` completed
  elsewhere), also as a clause of ALTER TABLE (``f"SET ({options})"``);
* or it starts with another SQL keyword (``"TABLE " + name``,
  ``f"{verb} TABLE {ref};"``, ``definition + " NOT VALID"``) and parses or
  runs out of input after what would complete it: a verb, COMMENT ON,
  GRANT ... ON, or a constraint, index or column definition as PostgreSQL
  prints it. Such a fragment counts when its first word is upper case, the
  way the renderer writes keywords, or it ends with ``;``: messages name
  objects in lower case ("table {name}", "index {name}: ..."), and those are
  not SQL.

When the parser stops at a hole (it stood for a keyword,
``f"ALTER {what} {ref}"``), that hole is retried as ``TABLE x``; stopping
there again counts as SQL for a statement (a false alarm is fixed by moving
the text to ddl.py, a miss would hide a statement). There is no allow-list.
"""

from __future__ import annotations

import ast
import itertools
import re
from pathlib import Path

import pytest
from pglast import parser
from pglast.keywords import COL_NAME_KEYWORDS, RESERVED_KEYWORDS, TYPE_FUNC_NAME_KEYWORDS, UNRESERVED_KEYWORDS

PACKAGE = Path(__file__).resolve().parent.parent / "schemadiff"
RENDERER = PACKAGE / "engine" / "ddl.py"
PLANNERS = sorted(p for p in (PACKAGE / "engine").glob("*.py") if p != RENDERER) + [PACKAGE / "online.py"]

# Statement keywords and the ALTER TABLE clause keywords a fragment starts with (any letter case: PostgreSQL
# folds keywords).
_KEYWORD = re.compile(
    r"(CREATE|ALTER|DROP|COMMENT|GRANT|REVOKE|SET|RESET|VALIDATE|TRUNCATE|REFRESH|SELECT|INSERT|UPDATE|"
    r"DELETE|LOCK|CLUSTER|REINDEX|VACUUM|ANALYZE|SECURITY|ADD|RENAME|ENABLE|DISABLE|FORCE|ATTACH|DETACH|"
    r"INHERIT|NO|OWNED|REPLICA|OWNER)\b",
    re.IGNORECASE,
)
_SQL_WORDS = {word.upper() for word in itertools.chain(COL_NAME_KEYWORDS, RESERVED_KEYWORDS,
                                                       TYPE_FUNC_NAME_KEYWORDS, UNRESERVED_KEYWORDS)}
HOLE = "\0"  # where an expression stands in the text: {...} of an f-string, an operand of +, a %s, a {} of .format
# Readings of a fragment that starts with a statement keyword: itself, or a clause of ALTER TABLE.
_STATEMENT_PREFIXES = ("", "ALTER TABLE x ")
# Readings of a fragment that starts with another SQL word: what completes it. A verb in a hole
# (f"{verb} TABLE {ref}"), GRANT's and COMMENT's object clause ("TABLE " + name), or text appended to a
# definition the model holds as printed by PostgreSQL (constraint.definition + " NOT VALID", an index's,
# a column's).
_CONTINUED_PREFIXES = (
    "CREATE ", "DROP ", "ALTER ", "COMMENT ON ", "GRANT ALL ON ", "ALTER TABLE x ALTER COLUMN c ",
    "ALTER TABLE x ADD CONSTRAINT c CHECK (x) ", "ALTER TABLE x ADD CONSTRAINT c FOREIGN KEY (a) REFERENCES r (b) ",
    "CREATE UNIQUE INDEX i ON t USING btree (x) ", "CREATE TABLE t (x int ", "DROP TABLE x ",
)
# The renderer's quoting helpers: text spliced from them is SQL (an identifier, a literal).
_QUOTERS = {"ident", "literal", "qualified", "qualified_name", "table_ref", "quote_ident", "quote_literal"}
_COMMENTS = re.compile(r"(\s*(--[^\n]*(\n|$)|/\*.*?\*/))*\s*", re.DOTALL)
_PERCENT = re.compile(r"%(\([^)]*\))?[-#0 +]*\d*(\.\d+)?[sdrifgex]")
_BRACES = re.compile(r"\{[^{}]*\}")
_DOLLAR = re.compile(r"\$(\w+|\{\w+\})")
_MAX = 32  # candidate texts kept per expression (a name assigned many times)
_MODULES: dict[Path, "_Module"] = {}  # modules read for a name imported from them
_SAME_TEXT = {"strip", "rstrip", "lstrip", "upper", "lower", "casefold", "title", "capitalize"}  # text in, text out


class _Module:
    """What a module's names hold: every value assigned to a name or attribute, and every item added to it.

    A name is looked up in its function first, then at module level (``lines`` in one function is not
    ``lines`` in another); an attribute (``self.TEMPLATE``, a class attribute) anywhere in the module."""

    def __init__(self, tree: ast.AST, path: Path | None = None):
        self.values: dict[str, list[ast.expr]] = {}  # key (see _keys) -> assigned expressions
        self.items: dict[str, list[ast.expr]] = {}  # key -> items appended, inserted, extended
        self.imported: dict[str, tuple[Path, str | None]] = {}  # name -> (module file, its name there)
        self.scope: dict[int, str] = {}  # id(node) -> the function it is in ("" at module or class level)
        self._scopes(tree, "", False)
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and path is not None:
                self._import(node, path)
            elif isinstance(node, ast.Assign):
                for target in node.targets:
                    self._assign(target, node.value)
            elif isinstance(node, (ast.AnnAssign, ast.AugAssign)) and node.value is not None:
                self._assign(node.target, node.value)
            elif isinstance(node, ast.NamedExpr):
                self._assign(node.target, node.value)
            elif (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                  and node.func.attr in ("append", "extend", "insert", "add", "appendleft") and node.args):
                if isinstance(node.func.value, (ast.Name, ast.Attribute)):
                    value = node.args[-1]
                    store = self.values if node.func.attr == "extend" else self.items
                    store.setdefault(self._key(node.func.value), []).append(value)

    def _scopes(self, node: ast.AST, scope: str, in_class: bool) -> None:
        self.scope[id(node)] = scope + ("@class" if in_class and not scope else "")
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                self._scopes(child, str(id(child)), False)
            elif isinstance(child, ast.ClassDef):
                self._scopes(child, scope, True)
            else:
                self._scopes(child, scope, in_class and not scope)

    def _key(self, node: ast.AST) -> str:
        if isinstance(node, ast.Attribute):
            return "." + node.attr
        scope = self.scope.get(id(node), "")
        return f"{'' if scope == '@class' else scope}:{node.id}"  # type: ignore[attr-defined]

    def _keys(self, node: ast.AST) -> list[str]:
        """Where what ``node`` names may be held: its function's name, then the module's."""
        key = self._key(node)
        return [key] if key.startswith((".", ":")) else [key, ":" + key.split(":", 1)[1]]

    def _held(self, store: dict[str, list[ast.expr]], node: ast.AST) -> list[ast.expr]:
        return next((store[k] for k in self._keys(node) if k in store), [])

    def _import(self, node: ast.ImportFrom, path: Path) -> None:
        """``from .templates import DROP`` / ``from . import templates``: a template may be held in another
        module of the package; remember where (modules outside the package are not read)."""
        base = path.parent
        for _ in range(max(node.level - 1, 0)):
            base = base.parent
        if node.level == 0:
            if not (node.module or "").startswith(PACKAGE.name):
                return
            base = PACKAGE.parent
        parts = (node.module or "").split(".") if node.module else []
        for alias in node.names:
            for file, name in ((base.joinpath(*parts).with_suffix(".py") if parts else None, alias.name),
                               (base.joinpath(*parts, alias.name).with_suffix(".py"), None)):
                if file is not None and file.is_file():
                    self.imported[alias.asname or alias.name] = (file, name)
                    break

    def _other(self, name: str) -> tuple[_Module, str | None] | None:
        """The module (parsed once) a name was imported from, and the name there (None: the module itself)."""
        if name not in self.imported:
            return None
        file, there = self.imported[name]
        if file not in _MODULES:
            _MODULES[file] = _Module(ast.parse(file.read_text(encoding="utf-8")), file)
        return _MODULES[file], there

    def _assign(self, target: ast.AST, value: ast.expr) -> None:
        if isinstance(target, (ast.Tuple, ast.List)) and isinstance(value, (ast.Tuple, ast.List)):
            for t, v in zip(target.elts, value.elts):
                self._assign(t, v)
            return
        if isinstance(target, ast.Subscript):  # TEMPLATES["drop"] = "DROP TABLE {};"
            if isinstance(target.value, (ast.Name, ast.Attribute)):
                self.items.setdefault(self._key(target.value), []).append(value)
            return
        if isinstance(target, (ast.Name, ast.Attribute)):
            self.values.setdefault(self._key(target), []).append(value)
            if self.scope.get(id(target)) == "@class":  # a class attribute, read as self.NAME
                self.values.setdefault("." + target.id, []).append(value)  # type: ignore[attr-defined]

    def quoted(self, node: ast.AST) -> bool:
        """A name or attribute the module assigns quoted SQL (``ref = qualified(schema, name)``)."""
        return isinstance(node, (ast.Name, ast.Attribute)) and any(
            _quoter(value) for value in self._held(self.values, node))

    def strings(self, node: ast.AST, depth: int = 0) -> list[str]:
        """The texts (holes as HOLE) ``node`` may hold: a literal, a template, or a name, attribute or
        subscript whose assignments hold them."""
        if depth > 4:
            return []
        texts = self.templates(node, depth)
        if texts:
            return texts
        if isinstance(node, ast.Subscript):
            return [t for item in self.elements(node.value, depth + 1) for t in self.strings(item, depth + 1)][:_MAX]
        name = _name(node)
        if name is None:
            return []
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):  # templates.DROP
            other = self._other(node.value.id)
            if other is not None and other[1] is None:
                return other[0].strings(ast.Name(id=name), depth + 1)
        if isinstance(node, ast.Name) and not self._held(self.values, node):  # from .templates import DROP
            other = self._other(name)
            if other is not None and other[1] is not None:
                return other[0].strings(ast.Name(id=other[1]), depth + 1)
        out: list[str] = []
        for value in self._held(self.values, node):
            if not isinstance(value, (ast.Name, ast.Attribute)) or _name(value) != name:
                out.extend(self.strings(value, depth + 1))
        return out[:_MAX]

    def elements(self, node: ast.AST, depth: int = 0) -> list[ast.expr]:
        """The items of a collection expression: a literal list/tuple/set/dict (its values), a comprehension
        (its element, or the items it iterates over when it yields them as they are), a name's assigned
        collections and added items, or the argument of sorted()/list()/tuple()/reversed()."""
        if depth > 4:
            return []
        if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
            return [e.value if isinstance(e, ast.Starred) else e for e in node.elts]
        if isinstance(node, ast.Dict):
            return list(node.values)
        if isinstance(node, ast.DictComp):
            return [node.value]
        if isinstance(node, (ast.GeneratorExp, ast.ListComp, ast.SetComp)):
            target = node.generators[0].target
            if isinstance(node.elt, ast.Name) and isinstance(target, ast.Name) and node.elt.id == target.id:
                iterated = self.elements(node.generators[0].iter, depth + 1)
                if iterated:
                    return iterated
            return [node.elt]
        if isinstance(node, ast.Call) and node.args and _name(node.func) in (
                "sorted", "list", "tuple", "reversed", "set", "iter", "filter", "map", "chain"):
            # the items pass through (filter(None, parts)), or are mapped (map(str.upper, parts)): the
            # texts joined are the iterables' items either way
            iterables = node.args[1:] if _name(node.func) in ("filter", "map") else node.args
            return [e for arg in iterables for e in self.elements(arg, depth + 1)]
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "values"
                and not node.args):
            return self.elements(node.func.value, depth + 1)
        name = _name(node)
        if name is None:
            return []
        out: list[ast.expr] = []
        for value in self._held(self.values, node):
            if _name(value) != name:
                out.extend(self.elements(value, depth + 1))
        out.extend(self._held(self.items, node))
        return out

    def templates(self, node: ast.AST, depth: int = 0) -> list[str]:
        """The texts ``node`` builds or is (a str literal), holes as HOLE; [] when it is not a string."""
        if _quoter(node) or self.quoted(node):
            return [HOLE]
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return [node.value]
        if isinstance(node, ast.JoinedStr):
            return ["".join(v.value if isinstance(v, ast.Constant) else HOLE for v in node.values)]
        if isinstance(node, ast.IfExp):  # "DROP " + ("VIEW" if view else "TABLE"): either text
            return (self.strings(node.body, depth + 1) + self.strings(node.orelse, depth + 1))[:_MAX]
        if isinstance(node, ast.BoolOp):  # (column.default or "")
            return [t for value in node.values for t in self.strings(value, depth + 1)][:_MAX]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
            left, right = self.templates(node.left, depth), self.templates(node.right, depth)
            if not left and not right:
                return []
            return [a + b for a in (left or [HOLE]) for b in (right or [HOLE])][:_MAX]
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Mod):
            return [_PERCENT.sub(HOLE, t.replace("%%", "%")) for t in self.strings(node.left, depth + 1)]
        if not isinstance(node, ast.Call):
            return []
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in _SAME_TEXT:  # ("drop table " + ref).upper()
            return self.templates(func.value, depth)
        if _name(func) in ("dedent", "str") and node.args:  # textwrap.dedent(f"""...""")
            return self.templates(node.args[0], depth)
        if isinstance(func, ast.Attribute) and func.attr in ("format", "format_map"):
            receiver = func.value
            while isinstance(receiver, ast.Call) and (_name(receiver.func) in ("dedent", "str") and receiver.args
                                                      or isinstance(receiver.func, ast.Attribute)
                                                      and receiver.func.attr in _SAME_TEXT):
                # textwrap.dedent("""...""").format(...), TEMPLATE.strip().format(...)
                receiver = receiver.args[0] if _name(receiver.func) in ("dedent", "str") else receiver.func.value
            return [_BRACES.sub(HOLE, t) for t in self.strings(receiver, depth + 1)]
        if isinstance(func, ast.Attribute) and func.attr in ("substitute", "safe_substitute"):
            receiver = func.value  # string.Template("...").substitute(...) or a name holding one
            if isinstance(receiver, ast.Call) and receiver.args:
                receiver = receiver.args[0]
            return [_DOLLAR.sub(HOLE, t) for t in self.strings(receiver, depth + 1)]
        if isinstance(func, ast.Attribute) and func.attr == "join" and node.args:
            separator, joined_parts = func.value, node.args[0]
            if isinstance(separator, ast.Name) and separator.id == "str" and len(node.args) > 1:
                separator, joined_parts = node.args  # str.join(" ", parts)
            separators = self.strings(separator, depth + 1) or [" "]
            parts = [self.strings(e, depth + 1) or [HOLE] for e in self.elements(joined_parts, depth + 1)]
            if not any(p != [HOLE] for p in parts):
                return [HOLE] if parts or not isinstance(joined_parts, (ast.List, ast.Tuple)) else [""]
            # the parts in source order (a name's assigned items, then those appended), the first text each
            # may hold
            return [separators[0].join(p[0] for p in parts)]
        return []


def _name(node: ast.AST) -> str | None:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    return None


def _quoter(node: ast.AST) -> bool:
    """A call of a quoting helper (``ident(x)``, ``ddl.literal(x)``): its result is SQL text."""
    return isinstance(node, ast.Call) and _name(node.func) in _QUOTERS


def reads_as_sql(text: str) -> bool:
    """Whether ``text`` (holes as HOLE) reads as (the start of) a SQL statement, an ALTER TABLE clause, or a
    fragment a statement completes (GRANT's object clause, a verb in a hole, a clause appended to a
    definition), in any letter case, after any leading ``--``/``/* */`` note lines and holes."""
    if not re.search(r"[A-Za-z]", text.replace(HOLE, "")):
        return False  # punctuation and whitespace around holes: statements joined or terminated, not built
    body = _COMMENTS.sub("", text, count=1) if _COMMENTS.match(text) else text
    while True:  # a leading hole is a note, a verb or a definition the text continues: read it as empty
        glued = re.match(HOLE + r"([A-Za-z_]+)", body)
        if glued and not glued.group(1).isupper():
            return False  # f"{mode}Lock": the hole is part of a word, not a statement before it
        stripped = _COMMENTS.sub("", body.lstrip(HOLE + " \t\n;"), count=1)  # f"{first};\nDROP ..."
        if stripped == body:
            break
        body = stripped
    first = re.match(r"[A-Za-z_]+", body)
    if first is None:
        return False
    if _KEYWORD.match(body):
        # Written in upper case, the way statements are: its start counts. In lower case it counts when the
        # words read as SQL with each hole a name ("drop table " + ref): prose that starts with a keyword
        # ("comment on {label}", "lock timeout {t} is not a number") stops at a hole or a word.
        upper = _KEYWORD.match(body).group(1).isupper()
        return any(_parses(prefix, body, completed=not upper, retry=upper) for prefix in _STATEMENT_PREFIXES)
    # A fragment a statement completes is written the renderer's way, its first word upper case ("TABLE " +
    # name) or as a whole statement (ending with ';'): messages name objects in lower case ("table {name}").
    if first.group().upper() in _SQL_WORDS and (first.group().isupper() or body.rstrip().endswith(";")):
        return any(_parses(prefix, body, completed=True) for prefix in _CONTINUED_PREFIXES)
    return False


def _parses(prefix: str, body: str, completed: bool = False, retry: bool = True) -> bool:
    """Whether ``prefix + body`` parses or runs out of input, each hole read as a name, or (``retry``),
    where the parser stops at one, as ``TABLE x`` (a hole standing for a keyword); stopping there again
    counts, unless the prefix is a guess at what completes the fragment (``completed``)."""
    pieces = body.split(HOLE)
    fillers = ["x"] * (len(pieces) - 1)
    for _ in range(len(fillers) + 1 if retry else 1):
        text, spans = prefix, []
        for i, piece in enumerate(pieces):
            if i:
                spans.append((len(text), len(text) + len(fillers[i - 1])))
                text += fillers[i - 1]
            text += piece
        try:
            parser.parse_sql(text)
            return True
        except parser.ParseError as error:
            location = error.args[1] if len(error.args) > 1 else None
        if location is None:  # "syntax error at end of input": a statement's beginning
            return True
        hole = next((i for i, (start, end) in enumerate(spans) if start <= location < end), None)
        if hole is None:
            return False  # the parser refused the prefix or the expression's own words: not SQL this way
        if fillers[hole] != "x":
            return not completed
        fillers[hole] = "TABLE x"
    return False


_REWRITERS = {"replace", "sub", "subn"}
# Model fields and names that hold SQL as PostgreSQL printed it (pg_get_indexdef, pg_get_constraintdef,
# pg_get_expr, pg_get_viewdef...) or a rendered statement: rewriting them as text is rendering SQL.
_PRINTED = {"sql", "definition", "default", "check", "using", "with_check", "generated", "partition_bound",
            "partition_key", "query", "expression", "identity_args", "statement_text"}


def _printed(node: ast.AST) -> bool:
    """An expression naming printed SQL text: ``index.definition``, ``(column.default or "")``, ``sql``."""
    if isinstance(node, ast.BoolOp):
        return any(_printed(value) for value in node.values)
    return _name(node) in _PRINTED


def _rewrites(module: _Module, node: ast.AST) -> bool:
    """``text.replace(a, b)`` / ``re.sub(pattern, repl, text)`` / ``pattern.sub(repl, text)`` that rewrites
    printed SQL, or whose pattern or replacement is SQL (a statement or a quoted name)."""
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in _REWRITERS):
        return False
    if node.func.attr == "replace" and _printed(node.func.value):
        return True
    if node.func.attr in ("sub", "subn") and any(_printed(arg) for arg in node.args[1:3]):
        return True
    return any(_quoter(arg) or module.quoted(arg) or any(reads_as_sql(t) for t in module.templates(arg)) for arg in node.args[:3])


def inline_sql(path: Path) -> list[str]:
    """``path:line: text`` for each expression outside the renderer that builds or rewrites SQL."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = _Module(tree, path)
    found: list[str] = []
    inside: set[int] = set()  # nodes within a reported or checked expression
    for node in ast.walk(tree):
        if id(node) in inside:
            continue
        if _rewrites(module, node):
            found.append(f"{path.name}:{node.lineno}: rewrites statement text with .{node.func.attr}")
            inside.update(id(child) for child in ast.walk(node))
            continue
        if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Add):
            # sql += " CASCADE": the text the name held, continued
            added = module.templates(node.value)
            held = module.strings(node.target) or [HOLE]
            texts = [a + b for a in held for b in added][:_MAX]
        elif _building(node):
            texts = module.templates(node)
        else:
            continue
        if not texts:
            continue
        spliced = any(_quoter(child) or module.quoted(child) for child in ast.walk(node))
        hit = next((t for t in texts if reads_as_sql(t)), None)
        if hit is not None:
            inside.update(id(child) for child in ast.walk(node))
            shown = hit.replace(HOLE, "{…}")
            found.append(f"{path.name}:{node.lineno}: {shown[:90]!r}")
        elif spliced and not any(re.search(r"[A-Za-z]", t.replace(HOLE, "")) for t in texts):
            # quoted SQL (ident/literal/qualified) spliced into other text: a slice of a printed definition,
            # quoted names joined
            inside.update(id(child) for child in ast.walk(node))
            found.append(f"{path.name}:{node.lineno}: splices quoted SQL into text")
    return found


def _building(node: ast.AST) -> bool:
    """An expression that assembles a string (a lone constant assembles nothing)."""
    if isinstance(node, ast.JoinedStr):
        return True
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return True
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in (
        "format", "format_map", "join", "substitute", "safe_substitute")


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
    'sql = "Alter Table %(t)s Drop Column %(c)s;" % values',  # mixed case, named % fields
    'DROP = "DROP VIEW %s;"\nsql = DROP % ref',  # a % template held in a name
    'sql = string.Template("DROP TABLE $t;").substitute(t=ref)',
    'text = re.sub(pattern, " INDEX " + ident(new) + " ON ", text)',  # re.sub whose replacement is SQL
    'text = text[:start] + literal(new) + text[end:]',  # a quoted literal spliced into printed text
    'default = default.replace(literal(old), literal(new))',  # printed text rewritten with quoted text
    'clause = "SEQUENCE " + qualified(s, n)',
    'column = f"{definition} NOT NULL"',
    'sql = f"DROP TABLE {ref}"\nsql += " CASCADE;"',  # a statement continued in place
    'sql = str.join(" ", ["DROP TABLE", ref])',
    'index.definition = index.definition.replace(old, new)',  # printed SQL rewritten with plain names
    'text = re.sub(pattern, new, view.definition)',
    'column.default = (column.default or "").replace(old, new)',
    'sql = change.sql.replace(";", " CASCADE;")',
    'sql = "DROP " + ("VIEW" if view else "TABLE") + " " + ref',
    'sql = " ".join(filter(None, ["ALTER TABLE", ref, clause]))',
    'sql = textwrap.dedent("""\n    CREATE INDEX {} ON {} (x);\n""").format(name, table)',
    'sql = ("drop table " + ref).upper()',
    'sql = f"{first};\\nDROP TABLE {ref};"',  # a second statement after the first
])
def test_an_inline_statement_is_caught(tmp_path, source):
    module = tmp_path / "planner.py"
    module.write_text(source + "\n", encoding="utf-8")
    assert inline_sql(module), source


@pytest.mark.parametrize("use", [
    "from .templates import DROP\nsql = DROP.format(ref)",
    "from . import templates\nsql = templates.DROP.format(ref)",
    "from .templates import DROP as D\nsql = D % ref",
])
def test_a_template_held_in_another_module_is_caught(tmp_path, use):
    (tmp_path / "templates.py").write_text('DROP = "DROP TABLE {};"\n' if "%" not in use else 'DROP = "DROP TABLE %s;"\n',
                                           encoding="utf-8")
    module = tmp_path / "planner.py"
    module.write_text(use + "\n", encoding="utf-8")
    assert inline_sql(module), use


@pytest.mark.parametrize("source", [
    'message = f"ALTER TABLE {table} rewrites"',
    'message = f"DROP {removed} deletes what it holds"',
    'message = "VALIDATE CONSTRAINT checks domain"',
    'raise ValueError(f"unexpected index definition: {definition}")',
    'note = f"-- {name} was renamed\\n"',
    'statement = "ALTER TABLE ADD CONSTRAINT"',  # a lock table key, not built text
    'def f():\n    """ALTER TABLE ... SET NOT NULL, in a docstring."""',
    'raise NotModelled(f"index {old_q}: unexpected definition")',  # objects named in lower case
    'label = f"table {name}"',
    'message = ", ".join(f"index {i}" for i in names)',
    'message = f"{kind} {name} is dropped"',
    'mode = f"{level}Lock"',  # a hole glued to a word: a lock mode's name, not LOCK
    'hazard = f"CALL {name}: a procedure may delete data"',
    'hazard = f"LOAD {path!r} runs a library\'s code the file does not show"',
    'message = f"SET NOT NULL on {column} scans the table"',
    'raise NotModelled(f"{what}: the label {old!r} appears in {text!r} where its new text cannot be derived")',
    'sql = "\\n".join(change.sql for change in changes)',  # statements joined into a file, not built
    'text = f"{preamble}{sql}\\n"',
    'key = f"{schema}.{name}"',
    'text = raw[1:-1].replace("\'\'", "\'")',  # unquoting a literal's value
    'hint = "rename the column instead: " + f"{old} -> {new}"',
    'message = f"{table} is rewritten"\nmessage += " (it may take long)"',
    'label = name.replace("_", " ")',
    'words = " ".join(["rename", kind, "first"])',
    'label = f"comment on {label}"',  # lower-case prose starting with a keyword
    'raise ValueError(f"lock timeout {t} is not a number of seconds; give 0 or more (e.g. 60)")',
    'message = f"Set {name} to the seconds a statement may run"',
    # a list of comment lines joined in one function; another function's list of the same name holds SQL
    'def header():\n    lines = ["-- written by hand", "-- review it"]\n    return "\\n".join(lines)\n'
    'def body(sql):\n    lines = []\n    lines.append("SET LOCAL lock_timeout = 0;")\n    return lines',
])
def test_messages_and_keys_are_not_sql(tmp_path, source):
    module = tmp_path / "planner.py"
    module.write_text(source + "\n", encoding="utf-8")
    assert not inline_sql(module), source
