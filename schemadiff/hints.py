"""Rename hints: telling the planner that an object was renamed, not replaced.

A schema diff sees only two states: a column ``mail`` that disappeared and a
column ``email`` that appeared. Planned as drop + add, that loses every
value of the column. In the desired SQL, a comment at the end of the line
that defines the object says what it was called before::

    CREATE TABLE members (                 -- schemadiff:renamed-from users
        email text NOT NULL,               -- schemadiff:renamed-from mail
        CONSTRAINT members_email_key UNIQUE (email)  -- schemadiff:renamed-from users_mail_key
    );
    CREATE INDEX members_email_idx ON members (email);  -- schemadiff:renamed-from users_mail_idx
    CREATE TYPE mood AS ENUM (
        'joyful',                          -- schemadiff:renamed-from happy
        'sad'
    );

:func:`read_rename_hints` finds those comments with pglast's scanner and
works out, from the parse tree, which object each hinted line defines.
:func:`plan_with_renames` turns a plan's drop + create into ``RENAME``
statements followed by whatever else differs (a renamed column whose type
changed too): the hints become the engine's rename map on the current
model (:mod:`schemadiff.engine.renames`), with a database copy as the
fallback for what the model cannot follow exactly. Hints that no longer apply (the rename already happened) are
ignored, so they can stay in the file. :func:`probable_renames` lists, for
plans without hints, drops and adds that look like renames.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pglast import ast, enums, parser

from .engine import renames
from .engine.ddl import ident, index_definition_unnamed, literal
from .engine.model import Enum
from .engine.renames import Rename
from .errors import CommandError, SourcePosition
from .sqlfile import Statement, parse_statements, position_of, read_text

if TYPE_CHECKING:
    from .engine.change import Change
    from .engine.model import Schema

MARKER = "schemadiff:renamed-from"
KINDS = ("table", "column", "index", "constraint", "enum value")


class RenameHintError(CommandError):
    """A rename hint is malformed, sits on the wrong line, or names nothing that exists."""


@dataclass(frozen=True)
class RenameHint:
    """One ``-- schemadiff:renamed-from`` comment, resolved.

    ``new_name`` / ``old_name`` are qualified (``public.users.email``; enum
    values as ``public.mood.joyful``). ``schema``, ``parent`` (the table of
    a column or constraint, the type of an enum value, None otherwise), ``new``
    and ``old`` are the unquoted parts. ``old_parent`` is the parent's name in
    the old state: different from ``parent`` when the table itself is renamed
    by another hint.
    """

    kind: str
    new_name: str
    old_name: str
    position: SourcePosition
    schema: str = "public"
    parent: str | None = None
    new: str = ""
    old: str = ""
    old_parent: str | None = None

    def inverted(self) -> RenameHint:
        """The hint for the way back (down migrations)."""
        return dataclasses.replace(
            self,
            new_name=self.old_name,
            old_name=self.new_name,
            new=self.old,
            old=self.new,
            parent=self.old_parent,
            old_parent=self.parent,
        )


def invert_hints(hints: Sequence[RenameHint]) -> list[RenameHint]:
    return [hint.inverted() for hint in hints]


# --------------------------------------------------------------------------
# Reading hints


@dataclass(frozen=True)
class _Definition:
    kind: str
    schema: str
    parent: str | None
    name: str


def read_rename_hints(source: str | Path, *, path: str | None = None) -> list[RenameHint]:
    """The rename hints of a SQL file (a ``Path``) or of SQL text (a ``str``)."""
    if isinstance(source, Path):
        label = path or str(source)
        text = read_text(source, "desired-state file")
    else:
        label = path or "<sql>"
        text = source
    comments = [token for token in _scan(text, label) if token.name == "SQL_COMMENT"]
    hinted = [(token, _hint_argument(text[token.start : token.end + 1])) for token in comments]
    hinted = [(token, argument) for token, argument in hinted if argument is not None]
    if not hinted:
        return []
    definitions = _definitions_by_line(parse_statements(text, label), text)
    hints: list[RenameHint] = []
    for token, argument in hinted:
        position = position_of(text, token.start, label)
        found = definitions.get(position.line, [])
        if not found:
            raise RenameHintError(
                f"{position}: rename hint on a line that defines no table, column, index, constraint or enum value",
                "Put `-- schemadiff:renamed-from OLD_NAME` at the end of the line that defines the renamed object"
                " (its CREATE TABLE, column, CONSTRAINT, CREATE INDEX or enum label line).",
            )
        if len(found) > 1:
            listed = ", ".join(f"{d.kind} {d.name}" for d in found)
            raise RenameHintError(
                f"{position}: rename hint on a line that defines several objects ({listed})",
                "Put the renamed object's definition on a line of its own, with the hint at its end.",
            )
        hints.append(_make_hint(found[0], argument, position))
    return _link_renamed_parents(hints)


def hint_comment(hint: RenameHint) -> str:
    """The comment that states ``hint`` again: ``-- schemadiff:renamed-from OLD`` (enum labels quoted as strings)."""
    old = literal(hint.old) if hint.kind == "enum value" else ident(hint.old)
    return f"-- {MARKER} {old}"


def attach_rename_hints(text: str, hints: Sequence[RenameHint], *, path: str = "<sql>") -> str:
    """``text`` with each hint whose object it defines written at the end of that object's line.

    ``derive`` uses this to carry the archive's hints into a service's file,
    which is printed afresh (pglast's printer keeps no comments). A hint is
    matched by what it names (kind, schema, parent and new name), never by
    line number; hints about objects ``text`` does not define are skipped
    (they belong to another service). Raises RenameHintError when a hinted
    object shares its line with another definition, where the hint would be
    ambiguous.
    """
    if not hints:
        return text
    wanted = {(h.kind, h.schema, h.parent, h.new): h for h in hints}
    definitions = _definitions_by_line(parse_statements(text, path), text)
    lines = text.split("\n")
    for line, found in sorted(definitions.items()):
        matched = [wanted[key] for d in found if (key := (d.kind, d.schema, d.parent, d.name)) in wanted]
        if not matched:
            continue
        if len(found) > 1:
            raise RenameHintError(
                f"{matched[0].position}: the {matched[0].kind} {matched[0].new_name} is printed on a line"
                f" of {path} that defines several objects, so its rename hint cannot be carried there",
                "Report this as a bug in schemadiff; meanwhile write the hint in the service's file by hand.",
            )
        lines[line - 1] = f"{lines[line - 1]}  {hint_comment(matched[0])}"
    return "\n".join(lines)


def _hint_argument(comment: str) -> list[str] | None:
    """The old name's parts in a hint comment; None for any other comment."""
    body = comment[2:].strip()
    if not body.startswith(MARKER):
        return None
    rest = body[len(MARKER) :]
    if rest and not rest[0].isspace():
        return None  # e.g. "schemadiff:renamed-fromage"
    return _name_parts(rest.strip())


def _name_parts(text: str) -> list[str]:
    """``old`` / ``schema.old`` / ``"Old"`` / ``'old label'`` as unquoted parts (empty if malformed)."""
    if not text:
        return []
    try:
        tokens = list(parser.scan(text))
    except parser.ParseError:
        return []
    parts: list[str] = []
    expect_name = True
    for token in tokens:
        raw = text[token.start : token.end + 1]
        if expect_name and token.name == "SCONST":
            parts.append(_string_value(raw))
        elif expect_name and (token.name == "IDENT" or token.kind != "NO_KEYWORD"):
            parts.append(_identifier_value(raw))
        elif not expect_name and raw == ".":
            pass
        else:
            return []
        expect_name = not expect_name
    return parts if not expect_name else []


def _identifier_value(raw: str) -> str:
    if raw.startswith('"'):
        return raw[1:-1].replace('""', '"')
    return raw.lower()


def _string_value(raw: str) -> str:
    node = parser.parse_sql(f"SELECT {raw}")[0].stmt.targetList[0].val
    return node.val.sval


def _make_hint(definition: _Definition, argument: list[str], position: SourcePosition) -> RenameHint:
    if not argument:
        raise RenameHintError(
            f"{position}: rename hint without a valid old name",
            "Write `-- schemadiff:renamed-from OLD_NAME` (quote it \"Like This\" if it needs quotes).",
        )
    if definition.kind == "table" and len(argument) == 2:
        if argument[0] != definition.schema:
            raise RenameHintError(
                f"{position}: rename hint moves table {definition.name} from schema {argument[0]}:"
                " moving a table between schemas is not a rename",
                "Write the old name without its schema, or move the table by hand (ALTER TABLE ... SET SCHEMA).",
            )
        argument = argument[1:]
    if len(argument) != 1:
        raise RenameHintError(
            f"{position}: rename hint names {'.'.join(argument)}; a {definition.kind} is renamed within its"
            f" {'schema' if definition.kind in ('table', 'index') else 'table' if definition.kind != 'enum value' else 'type'}",
            "Write only the old name, without a schema or table.",
        )
    old = argument[0]
    return RenameHint(
        kind=definition.kind,
        new_name=_qualified(definition.schema, definition.parent, definition.name),
        old_name=_qualified(definition.schema, definition.parent, old),
        position=position,
        schema=definition.schema,
        parent=definition.parent,
        new=definition.name,
        old=old,
        old_parent=definition.parent,
    )


def _link_renamed_parents(hints: list[RenameHint]) -> list[RenameHint]:
    """A column of a renamed table lived in the table's old name."""
    tables = {(h.schema, h.new): h.old for h in hints if h.kind == "table"}
    linked = []
    for hint in hints:
        if hint.kind in ("column", "constraint") and (hint.schema, hint.parent) in tables:
            old_parent = tables[(hint.schema, hint.parent)]
            hint = dataclasses.replace(
                hint, old_parent=old_parent, old_name=_qualified(hint.schema, old_parent, hint.old)
            )
        linked.append(hint)
    return linked


def _scan(text: str, label: str) -> list[Any]:
    try:
        return list(parser.scan(text))
    except parser.ParseError:
        parse_statements(text, label)  # raises the located SQLSyntaxError
        raise  # pragma: no cover - the scanner failed where the parser did not


def _definitions_by_line(statements: list[Statement], text: str) -> dict[int, list[_Definition]]:
    lines: dict[int, list[_Definition]] = {}
    starts = _line_starts(text)
    for statement in statements:
        base = starts[statement.position.line - 1] + statement.position.column - 1
        for offset, definition in _definitions(statement, base, text):
            line = text.count("\n", 0, offset) + 1
            lines.setdefault(line, []).append(definition)
    return lines


def _line_starts(text: str) -> list[int]:
    starts = [0]
    for index, char in enumerate(text):
        if char == "\n":
            starts.append(index + 1)
    return starts


def _definitions(statement: Statement, base: int, text: str) -> Iterator[tuple[int, _Definition]]:
    node = statement.node
    if isinstance(node, ast.CreateStmt) and node.relation is not None:
        schema, table = node.relation.schemaname or "public", node.relation.relname
        yield base + _location(node.relation, 0), _Definition("table", schema, None, table)
        column_lines: set[int] = set()
        for element in node.tableElts or ():
            if isinstance(element, ast.ColumnDef):
                offset = base + _location(element, 0)
                column_lines.add(text.count("\n", 0, offset))
                yield offset, _Definition("column", schema, table, element.colname)
        for element in node.tableElts or ():
            if isinstance(element, ast.Constraint) and element.conname:
                yield base + _location(element, 0), _Definition("constraint", schema, table, element.conname)
            elif isinstance(element, ast.ColumnDef):
                # A named constraint written on its own line inside a column definition.
                for constraint in element.constraints or ():
                    if isinstance(constraint, ast.Constraint) and constraint.conname:
                        offset = base + _location(constraint, 0)
                        if text.count("\n", 0, offset) not in column_lines:
                            yield offset, _Definition("constraint", schema, table, constraint.conname)
    elif isinstance(node, ast.IndexStmt) and node.idxname:
        schema = node.relation.schemaname or "public"
        yield base, _Definition("index", schema, None, node.idxname)
    elif isinstance(node, ast.AlterTableStmt) and node.relation is not None:
        schema, table = node.relation.schemaname or "public", node.relation.relname
        for command in node.cmds or ():
            if command.subtype == enums.AlterTableType.AT_AddConstraint and isinstance(command.def_, ast.Constraint):
                if command.def_.conname:
                    yield base + _location(command.def_, 0), _Definition("constraint", schema, table, command.def_.conname)
            elif command.subtype == enums.AlterTableType.AT_AddColumn and isinstance(command.def_, ast.ColumnDef):
                yield base + _location(command.def_, 0), _Definition("column", schema, table, command.def_.colname)
    elif isinstance(node, ast.CreateEnumStmt):
        names = [part.sval for part in node.typeName]
        schema = names[-2] if len(names) > 1 else "public"
        type_name = names[-1]
        labels = [value.sval for value in node.vals or ()]
        body = statement.text
        # String nodes carry no location: the labels are the statement's
        # string constants, in order.
        constants = [token for token in parser.scan(body) if token.name == "SCONST"]
        for token, label in zip(constants, labels):
            yield base + token.start, _Definition("enum value", schema, type_name, label)


def _location(node: Any, default: int) -> int:
    location = getattr(node, "location", None)
    return location if isinstance(location, int) and location >= 0 else default


def _qualified(schema: str, parent: str | None, name: str) -> str:
    return ".".join(ident(part) for part in (schema, parent, name) if part is not None)


# --------------------------------------------------------------------------
# Applying hints


def rename_of(hint: RenameHint) -> Rename:
    """The engine's rename (:class:`schemadiff.engine.renames.Rename`) a hint asks for."""
    return Rename(hint.kind, hint.schema, hint.parent, hint.old, hint.new)


def rename_sql(hint: RenameHint) -> str:
    """The statement renaming ``hint.old`` to ``hint.new`` (its parent already carrying ``hint.parent``)."""
    return renames.rename_sql(rename_of(hint))


def apply_rename_hints(
    changes: list[Change], hints: Sequence[RenameHint], current_url: str, desired_url: str, *, owners: bool = False,
    settle: Callable[[Any, Any], Any] | None = None,
) -> list[Change]:
    """The plan from database ``current_url`` to ``desired_url`` with hinted drop + create pairs made renames.

    Reads both databases into models and calls :func:`plan_with_renames`
    (the URLs serve its fallback). ``changes`` is the plan without hints,
    returned as it is when no hint applies.
    """
    if not hints:
        return changes
    from .inspect import inspect_database

    current, desired = inspect_database(current_url), inspect_database(desired_url)
    return plan_with_renames(changes, hints, current, desired, owners=owners, settle=settle,
                             databases=lambda: contextlib.nullcontext((current_url, desired_url)))


def plan_with_renames(
    changes: list[Change], hints: Sequence[RenameHint], current: Schema, desired: Schema, *, owners: bool = False,
    settle: Callable[[Any, Any], Any] | None = None,
    databases: Callable[[], contextlib.AbstractContextManager[tuple[str, str]]] | None = None,
) -> list[Change]:
    """The plan from model ``current`` to ``desired`` with hinted drop + create pairs replaced by renames.

    ``changes`` is the plan without hints (returned as it is when no hint
    applies). ``owners``: the diff compares owners too (the target's
    setting). ``settle(current, desired)``: the current model with
    expressions that differ only as PostgreSQL prints them settled (the
    caller's ``_same_expressions``, see ``schemadiff.engine.reprint``),
    applied to the renamed model as to the plan's own.

    The hints become a rename map on the current model
    (:func:`schemadiff.engine.renames.apply_renames`): the plan is the
    renames, then the engine's diff of the renamed model against the
    desired one (what else changed about the renamed objects, and
    everything else). No database is touched.

    When the model cannot say exactly what a rename does to something that
    depends on the renamed object (a view over a renamed column, say:
    :class:`~schemadiff.engine.renames.NotModelled`), the renames are tried
    on a copy of a database instead, as before the rename map: ``databases()``
    gives a context yielding (current URL, desired URL); the copy is of the
    current database when it is one of schemadiff's temporary databases,
    else (a live database, never written to) the reverse renames run on a
    copy of the desired one, whose diff then comes first and the renames
    last. Without ``databases`` that case raises RenameHintError.

    For down migrations call it with :func:`invert_hints` and the two models swapped.
    Raises RenameHintError for a hint naming an old object that exists nowhere.
    """
    if not hints:
        return changes
    applicable = _applicable(hints, current, desired)
    if not applicable:
        return changes
    rename_map = [rename_of(hint) for hint in applicable]
    from .engine.diff import diff_schemas

    try:
        renamed = renames.apply_renames(current, rename_map)
    except renames.NotModelled as exc:
        if databases is None:
            raise RenameHintError(f"cannot apply the rename hints in the model ({exc.reason})") from None
        with databases() as (current_url, desired_url):
            return _renamed_on_a_copy(applicable, current_url, desired_url, owners, settle)
    rest = diff_schemas(renamed, desired, owners=owners)
    if rest and settle is not None:
        settled = settle(renamed, desired)
        if settled is not renamed:
            rest = diff_schemas(settled, desired, owners=owners)
    return renames.rename_changes(rename_map, renamed) + rest


def _renamed_on_a_copy(applicable: list[RenameHint], current_url: str, desired_url: str, owners: bool,
                       settle) -> list[Change]:
    """The fallback for renames the model cannot follow exactly: run them on a database copy and read it again."""
    rename_map = [rename_of(hint) for hint in applicable]
    forward = renames.rename_changes(rename_map)
    if _is_temporary(current_url):
        with _copy_of(current_url) as copy_url:
            _run(copy_url, [change.sql for change in forward])
            rest = _diff(copy_url, desired_url, owners, settle)
        return forward + rest
    backward = [renames.rename_sql(rename_of(hint.inverted()))
                for hint in sorted(applicable, key=lambda h: -renames.KINDS.index(h.kind))]
    with _copy_of(desired_url) as copy_url:
        _run(copy_url, backward)
        rest = _diff(current_url, copy_url, owners, settle)
    return rest + forward


def _diff(current_url: str, desired_url: str, owners: bool, settle) -> list[Change]:
    """The engine's diff of two databases, expressions settled by ``settle`` when it is given."""
    from .engine.diff import diff_schemas
    from .inspect import inspect_database

    current, desired = inspect_database(current_url), inspect_database(desired_url)
    changes = diff_schemas(current, desired, owners=owners)
    if changes and settle is not None:
        settled = settle(current, desired)
        if settled is not current:
            changes = diff_schemas(settled, desired, owners=owners)
    return changes


def _is_temporary(url: str) -> bool:
    from .shadow.server import is_temporary

    return is_temporary(url)


def _copy_of(url: str):
    """A temporary clone of a schemadiff temporary database, on its server."""
    from .shadow.server import clone_of

    if not _is_temporary(url):
        raise RenameHintError(
            "cannot apply rename hints: neither database is a schemadiff temporary database that can be copied"
        )
    return clone_of(url)


def _run(url: str, statements: Sequence[str]) -> None:
    """Run the renames on a copy through the one executor (one transaction, as in the file they go to)."""
    from .errors import MigrationFailed
    from .execute import script_from_statements
    from .shadow.replay import session

    try:
        with session(url) as running:
            running.run(script_from_statements(statements, "rename hints"), what="a rename")
    except MigrationFailed as exc:
        raise RenameHintError(
            f"the rename hints cannot be applied: {exc.message}",
            "Check the hints (a rename onto a name still in use needs two steps).",
        ) from None


def _applicable(hints: Sequence[RenameHint], current: Schema, desired: Schema) -> list[RenameHint]:
    """Hints whose old object is only in current and new object only in desired (models).

    A hint whose rename has already happened (new in current, old gone) is
    silently skipped: hints may stay in the desired file. A hint naming an
    old object that exists nowhere, while the new one is still to be
    created, is a typo that would turn a rename into drop + create: error.
    """
    applicable = []
    for hint in hints:
        if hint.old_parent != hint.parent and hint.kind in ("column", "constraint"):
            # The table's own rename happened in an earlier migration (its hint stays in the file), so
            # that hint does not apply: this column or constraint is on the table as it is named in both.
            if (not _exists(current, "table", hint.schema, None, hint.old_parent)
                    and _exists(current, "table", hint.schema, None, hint.parent)):
                hint = dataclasses.replace(hint, old_parent=hint.parent,
                                           old_name=_qualified(hint.schema, hint.parent, hint.old))
            elif (not _exists(desired, "table", hint.schema, None, hint.parent)
                    and _exists(desired, "table", hint.schema, None, hint.old_parent)):  # the way down
                hint = dataclasses.replace(hint, parent=hint.old_parent,
                                           new_name=_qualified(hint.schema, hint.old_parent, hint.new))
        old_in_current = _exists(current, hint.kind, hint.schema, hint.old_parent, hint.old)
        new_in_current = _exists(current, hint.kind, hint.schema, hint.old_parent, hint.new) or (
            hint.old_parent != hint.parent and _exists(current, hint.kind, hint.schema, hint.parent, hint.new)
        )
        new_in_desired = _exists(desired, hint.kind, hint.schema, hint.parent, hint.new)
        old_in_desired = _exists(desired, hint.kind, hint.schema, hint.parent, hint.old)
        if old_in_current and new_in_desired and not new_in_current and not old_in_desired:
            applicable.append(hint)
            continue
        parent_in_current = hint.old_parent is None or _exists(
            current, "type" if hint.kind == "enum value" else "table", hint.schema, None, hint.old_parent
        )
        if new_in_desired and not old_in_current and not new_in_current and parent_in_current:
            raise RenameHintError(
                f"{hint.position}: rename hint for {hint.kind} {hint.new_name}: the current state has no"
                f" {hint.kind} {hint.old_name} to rename",
                "Correct the old name in the hint, or remove the hint if the object is new.",
            )
    return applicable


def _exists(schema: Schema, kind: str, namespace: str, parent: str | None, name: str) -> bool:
    """Whether the model holds the object (a relation name is taken by any relation kind, as in pg_class)."""
    if kind == "table":
        return f"{namespace}.{name}" in schema.tables
    if kind == "index":
        # pg_class: a PRIMARY KEY, UNIQUE or EXCLUDE constraint's index carries the constraint's name.
        return f"{namespace}.{name}" in schema.indexes or any(
            c.schema == namespace and c.name == name and c.type in "pux" for c in schema.constraints.values())
    if kind == "column":
        table = schema.tables.get(f"{namespace}.{parent}")
        return table is not None and name in table.columns
    if kind == "constraint":
        return f"{namespace}.{parent}.{name}" in schema.constraints
    if kind == "enum value":
        found = schema.types.get(f"{namespace}.{parent}")
        return isinstance(found, Enum) and name in found.labels
    if kind == "type":
        return f"{namespace}.{name}" in schema.types
    raise ValueError(f"unknown kind {kind}")  # pragma: no cover


# --------------------------------------------------------------------------
# Suggesting hints


def probable_renames(
    changes: Sequence[Change], current: Schema, desired: Schema, *, write_in: str = "the desired file"
) -> list[ProbableRename]:
    """Drops and adds in one plan that look like renames, with the hint to write.

    ``write_in`` names the file the hint belongs in: the archive when the
    desired file is derived from one (a derived file says "do not edit").

    Columns dropped from and added to the same table with the same type,
    indexes and constraints of one table whose definitions differ only by
    name, and tables whose columns are the same. Read from the inspected
    models, so suggesting costs no database work.
    """
    dropped = {change.kind for change in changes if change.action == "drop"}
    created = {change.kind for change in changes if change.action == "create"}
    # Columns are only compared within tables that lost one: a thousand
    # tables should not be signed to look at three.
    losing_columns = {change.table for change in changes if change.kind == "column" and change.action == "drop"}
    suggestions: list[str] = []
    for kind, signatures in (
        ("column", lambda schema: _column_signatures(schema, losing_columns)),
        ("index", _index_signatures),
        ("constraint", _constraint_signatures),
        ("table", _table_signatures),
    ):
        if kind not in dropped or kind not in created:
            continue
        before, after = signatures(current), signatures(desired)
        gone = {key: value for key, value in before.items() if key not in after}
        new = {key: value for key, value in after.items() if key not in before}
        for (group, new_name), signature in sorted(new.items()):
            candidates = [old for (old_group, old), sig in gone.items() if old_group == group and sig == signature]
            if len(candidates) != 1:
                continue
            old = candidates[0]
            where = f"{group}.{ident(new_name)}" if group else ident(new_name)
            suggestions.append(ProbableRename(
                kind, where, f"{group}.{ident(old)}" if group else ident(old), f"-- {MARKER} {ident(old)}",
                write_in, ident(new_name), ident(old),
            ))
    return suggestions


@dataclass(frozen=True)
class ProbableRename:
    """A drop plus an add that look like a rename: ``old`` and ``new`` are qualified names, ``hint`` the comment to write.

    ``str()`` gives the sentence shown to people; ``--format json`` gives
    the fields.
    """

    kind: str
    new: str
    old: str
    hint: str
    write_in: str
    new_name: str  # unqualified, as written in SQL
    old_name: str

    def __str__(self) -> str:
        return (
            f"{self.kind} {self.new} looks like {self.old_name} renamed; if it is, write `{self.hint}` at the end of"
            f" the line defining {self.new_name} in {self.write_in}, otherwise its data is dropped"
        )

    def __contains__(self, text: str) -> bool:  # `"renamed-from x" in suggestion`, as for the sentence
        return text in str(self)


# Each function maps (group, name) -> signature: objects of one group (their
# table, or their schema) with equal signatures are interchangeable but for
# their name.


def _column_signatures(schema: Schema, tables: set[str | None]) -> dict[tuple[str, str], str]:
    return {
        (table.qualified, column.name): column.type
        for table in (schema.tables.get(name) for name in tables if name)
        if table is not None
        for column in table.columns.values()
        if not column.inherited
    }


def _index_signatures(schema: Schema) -> dict[tuple[str, str], str]:
    # The definition without the index's name, by the engine's own rule (the key it finds renamed indexes by).
    return {(index.table, index.name): index_definition_unnamed(index.definition, index.name)
            for index in schema.indexes.values()}


def _constraint_signatures(schema: Schema) -> dict[tuple[str, str], str]:
    return {
        (constraint.table, constraint.name): f"{constraint.type} {constraint.definition}"
        for constraint in schema.constraints.values()
    }


def _table_signatures(schema: Schema) -> dict[tuple[str, str], str]:
    return {
        (table.schema, table.name): ", ".join(
            f"{column.name} {column.type}" for column in sorted(table.columns.values(), key=lambda c: c.name)
        )
        for table in schema.tables.values()
    }


