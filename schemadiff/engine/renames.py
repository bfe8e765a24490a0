"""Renames applied to a schema model in memory: what PostgreSQL changes when an object is renamed.

A rename hint (:mod:`schemadiff.hints`) says that an object of the current
state carries another name in the desired one. The differ is given the
current model *as it will be right after the renames* (:func:`apply_renames`)
and compares that with the desired model, so the plan is the typed rename
operations (:func:`rename_changes`) followed by whatever else differs.

Renaming in the model must do exactly what PostgreSQL does, or the plan is
a wrong migration that looks right. PostgreSQL keeps dependent objects by
oid and attribute number and prints them again with the new name
(PostgreSQL docs, ALTER TABLE: "RENAME ... no effect on the stored data";
expressions are stored as trees and re-printed by ``ruleutils``): CHECK,
index and statistics definitions, generated columns, partition keys,
policies, trigger definitions, foreign keys of other tables, enum labels in
stored constants. What it does *not* change is modelled too: the names of
constraints, indexes and sequences (``tags_pkey`` and ``tags_id_seq`` stay
after ``ALTER TABLE tags RENAME TO labels``; the differ then renames them as
it renames any index, constraint or serial sequence whose name alone
differs), column privileges, comments, owners.

Each expression text is rewritten token by token (pglast's scanner), and
only when pglast's parse tree accounts for every occurrence of the old name
as a reference to the renamed object: a name that also appears as something
else (a function, an alias, a column of another table in a subquery) makes
the text ambiguous. Kinds whose printed text cannot be derived this way
(views, rules, SQL-standard function bodies that use the renamed object,
columns of the table's row type, partition bounds naming an enum label)
raise :class:`NotModelled`; the caller (``schemadiff.hints``) then falls
back to renaming a copy of the database and reading it again. Pure
computation: no I/O, no psycopg.
"""

from __future__ import annotations

import copy
import dataclasses
import json
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pglast import parser

from . import hazards as hz
from .change import Change
from . import ddl
from .ddl import qualified
from .locks import LockMode, lock_of
from .model import Constraint, Enum, Key, Schema, Table

KINDS = ("table", "column", "constraint", "index", "enum value")  # also the order renames run in
_MAX_IDENTIFIER_BYTES = 63  # NAMEDATALEN - 1 (an enum label's limit is the same)


class NotModelled(Exception):
    """A dependent of a renamed object whose state after the rename cannot be derived exactly from the model.

    ``reason`` names it (``"view public.v uses public.users"``); the caller
    falls back to renaming a database copy (see module docstring).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Rename:
    """One rename of the map: ``kind`` one of :data:`KINDS`, within ``schema``.

    ``parent`` is the table of a column or constraint, the enum type of an
    enum value (unqualified; for a column or constraint of a table renamed by
    the same map, the table's *new* name, since table renames run first),
    None for a table or an index. ``old`` / ``new`` are unquoted names (the
    label's text for an enum value).
    """

    kind: str
    schema: str
    parent: str | None
    old: str
    new: str


RenameMap = Sequence[Rename]


def ordered(renames: Iterable[Rename]) -> list[Rename]:
    """``renames`` in the order they run: tables, columns, constraints, indexes, enum values."""
    return sorted(renames, key=lambda r: KINDS.index(r.kind))


# --------------------------------------------------------------------------
# The rename operations, as typed changes

# The statement kind (schemadiff.engine.locks.STATEMENT_LOCKS) of each rename.
STATEMENTS = {"table": "ALTER TABLE RENAME", "column": "ALTER TABLE RENAME COLUMN",
              "index": "ALTER INDEX RENAME", "constraint": "ALTER TABLE RENAME CONSTRAINT",
              "enum value": "ALTER TYPE RENAME VALUE"}


def rename_op(rename: Rename) -> ddl.Op:
    """The operation renaming ``rename.old`` to ``rename.new`` (its parent already carrying ``rename.parent``)."""
    if rename.kind == "table":
        return ddl.op.rename_table(rename.schema, rename.old, rename.new)
    if rename.kind == "column":
        return ddl.op.rename_column(rename.schema, rename.parent or "", rename.old, rename.new)
    if rename.kind == "index":
        return ddl.op.rename_index(rename.schema, rename.old, rename.new)
    if rename.kind == "constraint":
        return ddl.op.rename_table_constraint(rename.schema, rename.parent or "", rename.old, rename.new)
    if rename.kind == "enum value":
        return ddl.op.rename_enum_value(rename.schema, rename.parent or "", rename.old, rename.new)
    raise ValueError(f"unknown rename kind {rename.kind}")  # pragma: no cover


def rename_sql(rename: Rename) -> str:
    """The statement renaming ``rename.old`` to ``rename.new``: :func:`rename_op` rendered."""
    return rename_op(rename).render()


def rename_hazards(kind: str) -> tuple[str, ...]:
    """A renamed table or column breaks the running application's queries (squawk: renaming-column/-table);
    the lock hazard follows the rename's lock (engine.locks): ACCESS EXCLUSIVE on the table for a table,
    column or constraint, none on any table for an index (only the index is locked) or an enum value."""
    breaks = (hz.BREAKS_CLIENTS,) if kind in ("table", "column") else ()
    locks = lock_of(STATEMENTS[kind]) is LockMode.ACCESS_EXCLUSIVE
    return breaks + ((hz.ACCESS_EXCLUSIVE,) if locks else ())


def rename_changes(renames: RenameMap, renamed: Schema | None = None) -> list[Change]:
    """The typed ``rename`` changes of ``renames``, in the order they run (see :func:`ordered`).

    ``renamed``: the model after the renames, where an index rename finds its table (a summary groups the
    rename under it); None: an index rename names no table.
    """
    index_tables = {(index.schema, index.name): index.table for index in renamed.indexes.values()} if renamed else {}
    changes = []
    for rename in ordered(renames):
        statement = STATEMENTS[rename.kind]
        lock = lock_of(statement)
        on_table = rename.kind in ("table", "column", "constraint")
        table = (qualified(rename.schema, rename.new if rename.kind == "table" else rename.parent or "")
                 if on_table else index_tables.get((rename.schema, rename.new)) if rename.kind == "index" else None)
        operation = rename_op(rename)
        changes.append(Change(
            text=None,
            op=operation,
            action="rename",
            kind=rename.kind,
            name=ddl.dotted_name(rename.schema, rename.parent, rename.new),
            table=table,
            hazards=rename_hazards(rename.kind),
            statement=statement,
            lock=lock,
            # The relation the rename locks, as the model names it when it runs: a table under its old name.
            relation=(f"{rename.schema}.{rename.old}" if rename.kind == "table" else f"{rename.schema}.{rename.parent}")
            if lock is not None and on_table else None,
        ))
    return changes


# --------------------------------------------------------------------------
# The model after the renames


def apply_renames(schema: Schema, renames: RenameMap) -> Schema:
    """A copy of ``schema`` as PostgreSQL leaves it after running ``renames`` (in :func:`ordered` order).

    ``schema`` is not modified (it may be cached). Raises
    :class:`NotModelled` when a dependent's state after the rename cannot be
    derived exactly, or when the renamed object is not in the model as such
    (the index of a PRIMARY KEY, UNIQUE or EXCLUDE constraint, say, which
    PostgreSQL renames with its constraint).
    """
    renamed = _copy(schema)
    for rename in ordered(renames):
        if len(rename.new.encode()) > _MAX_IDENTIFIER_BYTES:
            # PostgreSQL truncates a longer name (PostgreSQL docs, "Identifiers and Key Words": NAMEDATALEN).
            raise NotModelled(f"{rename.kind} {rename.new}: longer than {_MAX_IDENTIFIER_BYTES} bytes")
        try:
            _RENAMERS[rename.kind](renamed, rename)
        except KeyError as exc:
            raise NotModelled(f"{rename.kind} {rename.old}: {exc.args[0]} is not in the model") from None
    return renamed


def _copy(schema: Schema) -> Schema:
    """A copy of ``schema`` that renaming may change: every object copied, their fields shared.

    The renamers assign new values to fields and never change a shared
    list, dict or set in place; a deep copy of a thousand-table model took
    ten times as long as the rest of the plan.
    """
    copied = copy.copy(schema)
    for field in dataclasses.fields(Schema):
        value = getattr(schema, field.name)
        if isinstance(value, dict):
            setattr(copied, field.name, {key: copy.copy(obj) if dataclasses.is_dataclass(obj) else obj
                                         for key, obj in value.items()})
    for table in copied.tables.values():
        table.columns = {name: copy.copy(column) for name, column in table.columns.items()}
    return copied


def _rekey(schema: Schema, mapping: dict[Key, Key]) -> None:
    """Replace keys in the dependency graph, privileges and owners."""
    if not mapping:
        return
    schema.depends = {(mapping.get(d, d), mapping.get(r, r), t) for d, r, t in schema.depends}
    schema.acls = {mapping.get(k, k): v for k, v in schema.acls.items()}
    schema.owners = {mapping.get(k, k): v for k, v in schema.owners.items()}


def _dependents(schema: Schema, keys: set[Key]) -> set[Key]:
    return {d for d, r, _ in schema.depends if r in keys and d not in keys}


def _object(schema: Schema, key: Key) -> Any:
    collection = {"constraint": schema.constraints, "trigger": schema.triggers, "policy": schema.policies,
                  "index": schema.indexes, "statistics": schema.statistics}.get(key[0], {})
    return collection.get(key[1])


def _refuse_dependents(schema: Schema, keys: set[Key], allowed: Callable[[Key], bool], what: str) -> None:
    for key in sorted(_dependents(schema, keys)):
        if not allowed(key):
            raise NotModelled(f"{key[0]} {key[1]} uses {what}")


def _rename_table(schema: Schema, rename: Rename) -> None:
    s, old, new = rename.schema, rename.old, rename.new
    old_q, new_q = f"{s}.{old}", f"{s}.{new}"
    if new_q in schema.tables or new_q in schema.views or new_q in schema.sequences or new_q in schema.indexes:
        raise NotModelled(f"{new_q} already names a relation")
    table = schema.tables[old_q]
    own = {("table", old_q)} | {("column", f"{old_q}.{c}") for c in table.columns}

    def allowed(key: Key) -> bool:
        kind, name = key
        if kind == "column":
            return name.startswith(old_q + ".") and name[len(old_q) + 1:] in table.columns
        if kind in ("constraint", "trigger", "policy"):
            obj = _object(schema, key)
            return obj is not None and (obj.table == old_q or (kind == "constraint" and obj.references == old_q))
        if kind in ("index", "statistics"):
            obj = _object(schema, key)
            return obj is not None and obj.table == old_q
        if kind == "sequence":
            seq = schema.sequences.get(name)
            return seq is not None and seq.owned_by is not None and seq.owned_by[0] == old_q
        if kind == "table":
            return name in schema.tables and old_q in schema.tables[name].parents
        return kind == "view"  # rewritten below, or NotModelled; rules, functions, types, the row type: no

    _refuse_dependents(schema, own, allowed, f"table {old_q}")
    for rule in schema.rules.values():
        if rule.table == old_q:
            raise NotModelled(f"rule {rule.name} on {old_q}")
    # Text that names the table without a recorded dependency (the row type in a column type, say).
    _refuse_mentions(schema, old, f"table {old_q}")
    views = {name: _view_after_table_rename(view, s, old, new)
             for name, view in schema.views.items() if _may_name(view.definition, old)}

    mapping: dict[Key, Key] = {("table", old_q): ("table", new_q)}
    mapping.update({("column", f"{old_q}.{c}"): ("column", f"{new_q}.{c}") for c in table.columns})
    table.name = new
    schema.tables = {new_q if k == old_q else k: v for k, v in schema.tables.items()}
    for other in schema.tables.values():
        other.parents = [new_q if p == old_q else p for p in other.parents]
    counter = _relation_counter(s, old)
    for kind, collection in (("constraint", "constraints"), ("trigger", "triggers"), ("policy", "policies")):
        objects: dict = getattr(schema, collection)
        moved = {}
        for name, obj in objects.items():
            if obj.table == old_q:
                new_name = f"{new_q}.{obj.name}"
                mapping[(kind, name)] = (kind, new_name)
                obj.table = new_q
                name = new_name
            moved[name] = obj
        setattr(schema, collection, moved)
    for constraint in schema.constraints.values():
        if constraint.table == new_q or constraint.references == old_q:
            constraint.definition = _rewrite_statement(
                constraint.definition, old, new, counter, prefix=_ADD_CONSTRAINT, what=f"constraint {constraint.name}")
        if constraint.references == old_q:
            constraint.references = new_q
    for index in schema.indexes.values():
        if index.table == old_q:
            index.table = new_q
            index.definition = _rewrite_statement(index.definition, old, new, counter, what=f"index {index.name}")
    for trigger in schema.triggers.values():
        if trigger.table == new_q:
            trigger.definition = _rewrite_statement(trigger.definition, old, new, counter,
                                                    what=f"trigger {trigger.name}")
    for policy in schema.policies.values():
        if policy.table == new_q:
            policy.using = _rewrite_expression(policy.using, old, new, counter, what=f"policy {policy.name}")
            policy.check = _rewrite_expression(policy.check, old, new, counter, what=f"policy {policy.name}")
    for stats in schema.statistics.values():
        if stats.table == old_q:
            stats.table = new_q
            stats.definition = _rewrite_statement(stats.definition, old, new, counter, what=f"statistics {stats.name}")
    for column in table.columns.values():
        column.generated = _rewrite_expression(column.generated, old, new, counter, what=f"column {column.name}")
    if table.partition_key is not None:
        table.partition_key = _rewrite_statement(table.partition_key, old, new, counter, prefix=_PARTITION_BY,
                                                 what=f"the partition key of {old_q}")
    for seq in schema.sequences.values():
        if seq.owned_by is not None and seq.owned_by[0] == old_q:
            seq.owned_by = (new_q, seq.owned_by[1])
    for name, definition in views.items():
        schema.views[name].definition = definition
    _rekey(schema, mapping)


def _rename_column(schema: Schema, rename: Rename) -> None:
    table = schema.tables[f"{rename.schema}.{rename.parent}"]
    _rename_column_of(schema, table, rename.old, rename.new, top=True)


def _rename_column_of(schema: Schema, table: Table, old: str, new: str, *, top: bool) -> None:
    """Rename column ``old`` of ``table`` and, as PostgreSQL does (ALTER TABLE ... RENAME COLUMN recurses),
    of every table that inherits it."""
    q = table.qualified
    if new in table.columns:
        raise NotModelled(f"{q} already has a column {new}")
    column = table.columns[old]
    if top and column.inherited:
        raise NotModelled(f"column {q}.{old} is inherited")  # PostgreSQL refuses; let the database say so
    old_key, new_key = ("column", f"{q}.{old}"), ("column", f"{q}.{new}")

    def allowed(key: Key) -> bool:
        kind, name = key
        if kind == "column":
            return name.startswith(q + ".")  # a generated column of the same table
        if kind == "table":
            return name == q  # the partition key
        if kind in ("constraint", "trigger", "policy"):
            obj = _object(schema, key)
            return obj is not None and (obj.table == q or (kind == "constraint" and obj.references == q))
        if kind in ("index", "statistics"):
            obj = _object(schema, key)
            return obj is not None and obj.table == q
        if kind == "sequence":
            seq = schema.sequences.get(name)
            return seq is not None and seq.owned_by == (q, old)
        return kind == "view"  # rewritten below, or NotModelled; rules, functions, other tables' policies: no

    _refuse_dependents(schema, {old_key}, allowed, f"column {q}.{old}")
    for rule in schema.rules.values():
        if rule.table == q:
            raise NotModelled(f"rule {rule.name} on {q}")
    views = {d[1]: _view_after_column_rename(schema.views[d[1]], table.schema, table.name, old, new)
             for d in _dependents(schema, {old_key}) if d[0] == "view" and d[1] in schema.views}
    children = [t for t in schema.tables.values() if q in t.parents]
    for child in children:
        if len(child.parents) > 1 and old in child.columns:
            raise NotModelled(f"{child.qualified} inherits {old} from several parents")

    column.name = new
    table.columns = {new if k == old else k: v for k, v in table.columns.items()}
    own = _column_counter(old, own=True, referenced=False)
    for other in table.columns.values():
        other.generated = _rewrite_expression(other.generated, old, new, own, what=f"column {q}.{other.name}")
    if table.partition_key is not None:
        table.partition_key = _rewrite_statement(table.partition_key, old, new, own, prefix=_PARTITION_BY,
                                                 what=f"the partition key of {q}")
    for constraint in schema.constraints.values():
        if constraint.type == "f" and (constraint.table == q or constraint.references == q):
            constraint.definition = _rewrite_foreign_key(constraint.definition, old, new, own=constraint.table == q,
                                                         referenced=constraint.references == q,
                                                         what=f"constraint {constraint.name}")
        elif constraint.table == q:
            counter = _column_counter(old, own=True, referenced=False)
            constraint.definition = _rewrite_statement(constraint.definition, old, new, counter,
                                                       prefix=_ADD_CONSTRAINT, what=f"constraint {constraint.name}")
        if constraint.table == q:
            # The key and INCLUDE columns online mode builds a constraint's index from (not compared).
            constraint.columns = tuple(new if c == old else c for c in getattr(constraint, "columns", ()))
            constraint.include = tuple(new if c == old else c for c in getattr(constraint, "include", ()))
    for index in schema.indexes.values():
        if index.table == q:
            index.definition = _rewrite_statement(index.definition, old, new, own, what=f"index {index.name}")
    trigger_counter = _column_counter(old, own=True, referenced=False, qualifiers=("new", "old"))
    for trigger in schema.triggers.values():
        if trigger.table == q:
            trigger.definition = _rewrite_statement(trigger.definition, old, new, trigger_counter,
                                                    what=f"trigger {trigger.name}")
    for policy in schema.policies.values():
        if policy.table == q:
            policy.using = _rewrite_expression(policy.using, old, new, own, what=f"policy {policy.name}")
            policy.check = _rewrite_expression(policy.check, old, new, own, what=f"policy {policy.name}")
    for stats in schema.statistics.values():
        if stats.table == q:
            stats.definition = _rewrite_statement(stats.definition, old, new, own, what=f"statistics {stats.name}")
    for seq in schema.sequences.values():
        if seq.owned_by == (q, old):
            seq.owned_by = (q, new)
    for name, definition in views.items():
        schema.views[name].definition = definition
    _rekey(schema, {old_key: new_key})
    for child in children:
        if old in child.columns:
            _rename_column_of(schema, child, old, new, top=False)


def _rename_constraint(schema: Schema, rename: Rename) -> None:
    q = f"{rename.schema}.{rename.parent}"
    old_name, new_name = f"{q}.{rename.old}", f"{q}.{rename.new}"
    if new_name in schema.constraints:
        raise NotModelled(f"{q} already has a constraint {rename.new}")
    constraint: Constraint = schema.constraints[old_name]
    if constraint.type in "pux" and f"{rename.schema}.{rename.new}" in schema.indexes:
        raise NotModelled(f"index {rename.schema}.{rename.new} exists")
    # ALTER TABLE ... RENAME CONSTRAINT renames a CHECK inherited by children too; those that are
    # also defined locally are in the model under the old name.
    for child in schema.tables.values():
        if q in child.parents and f"{child.qualified}.{rename.old}" in schema.constraints:
            raise NotModelled(f"{child.qualified} has its own constraint {rename.old}")
    constraint.name = rename.new
    schema.constraints = {new_name if k == old_name else k: v for k, v in schema.constraints.items()}
    table = schema.tables.get(q)
    if constraint.type in "pux" and table is not None and table.replica_index == rename.old:
        table.replica_index = rename.new  # the backing index is renamed with its constraint
    _rekey(schema, {("constraint", old_name): ("constraint", new_name)})


def _rename_index(schema: Schema, rename: Rename) -> None:
    old_q, new_q = f"{rename.schema}.{rename.old}", f"{rename.schema}.{rename.new}"
    if new_q in schema.indexes or new_q in schema.tables or new_q in schema.views or new_q in schema.sequences:
        raise NotModelled(f"{new_q} already names a relation")
    index = schema.indexes[old_q]
    definition = ddl.index_definition_renamed(index.definition, rename.old, rename.new)
    if definition is None:
        raise NotModelled(f"index {old_q}: unexpected definition")
    index.definition = definition
    index.name = rename.new
    schema.indexes = {new_q if k == old_q else k: v for k, v in schema.indexes.items()}
    table = schema.tables.get(index.table)
    if table is not None and table.replica_index == rename.old:
        table.replica_index = rename.new
    _rekey(schema, {("index", old_q): ("index", new_q)})


def _rename_enum_value(schema: Schema, rename: Rename) -> None:
    """PostgreSQL stores an enum constant by its label's oid (pg_enum) and prints the label it has now:
    every ``'old'::schema.type`` in a stored expression reads ``'new'::schema.type`` afterwards."""
    q = f"{rename.schema}.{rename.parent}"
    enum = schema.types[q]
    if not isinstance(enum, Enum) or rename.old not in enum.labels or rename.new in enum.labels:
        raise NotModelled(f"type {q} has no label {rename.old} to rename")
    enum.labels = [rename.new if label == rename.old else label for label in enum.labels]
    type_ref = qualified(rename.schema, rename.parent or "")

    def fix(text: str | None, what: str) -> str | None:
        return None if text is None else _rewrite_enum_constants(text, type_ref, rename.old, rename.new, what)

    for table in schema.tables.values():
        for column in table.columns.values():
            column.default = fix(column.default, f"column {table.qualified}.{column.name}")
            column.generated = fix(column.generated, f"column {table.qualified}.{column.name}")
        table.partition_bound = fix(table.partition_bound, f"the partition bound of {table.qualified}")
        table.partition_key = fix(table.partition_key, f"the partition key of {table.qualified}")
    for collection in (schema.constraints, schema.indexes, schema.triggers, schema.rules, schema.statistics):
        for name, obj in collection.items():
            obj.definition = fix(obj.definition, name)
    for name, policy in schema.policies.items():
        policy.using, policy.check = fix(policy.using, name), fix(policy.check, name)
    for name, view in schema.views.items():
        view.definition = fix(view.definition, f"view {name}")
        view.column_defaults = {c: fix(d, f"view {name}") for c, d in view.column_defaults.items()}
    for name, function in schema.functions.items():
        function.definition = fix(function.definition, f"function {name}")
        function.arguments = fix(function.arguments, f"function {name}")
    for name, other in schema.types.items():
        if hasattr(other, "default"):
            other.default = fix(other.default, f"domain {name}")
            other.checks = {c: fix(d, f"domain {name}") for c, d in other.checks.items()}


_RENAMERS: dict[str, Callable[[Schema, Rename], None]] = {
    "table": _rename_table, "column": _rename_column, "constraint": _rename_constraint,
    "index": _rename_index, "enum value": _rename_enum_value,
}


# --------------------------------------------------------------------------
# Rewriting printed SQL

# Placeholders around a text that is not a statement by itself; "\x01" names nothing a user has.
_ADD_CONSTRAINT = 'ALTER TABLE "\x01"."\x01" ADD CONSTRAINT "\x01" '
_PARTITION_BY = 'CREATE TABLE "\x01"."\x01" () PARTITION BY '

Counter = Callable[[Any], int]


def _identifier(text: str, token: Any) -> str | None:
    """The name an identifier or keyword token stands for (unquoted, folded as PostgreSQL folds it); None otherwise."""
    raw = text[token.start: token.end + 1]
    if token.name == "IDENT":
        return raw[1:-1].replace('""', '"') if raw.startswith('"') else raw.lower()
    if token.kind != "NO_KEYWORD":
        return raw.lower()
    return None


def _may_name(text: str, name: str) -> bool:
    """False when no token of ``text`` can stand for identifier ``name`` (saves scanning most texts)."""
    return '"' in name or name.lower() in text.lower()


def _scan(text: str, what: str) -> list[Any]:
    try:
        return list(parser.scan(text))
    except parser.ParseError:
        raise NotModelled(f"{what}: pglast cannot read {text!r}") from None


def _tree(text: str, what: str) -> Any:
    try:
        return json.loads(parser.parse_sql_json(text))
    except parser.ParseError:
        raise NotModelled(f"{what}: pglast cannot read {text!r}") from None


def _rewrite(text: str, old: str, new: str, counter: Counter, *, prefix: str, what: str) -> str:
    """``text`` with every identifier token ``old`` written ``new`` (quoted as PostgreSQL would), when the
    parse tree of ``prefix + text`` holds exactly as many references to the renamed object (``counter``)
    as ``text`` holds tokens ``old``; otherwise some occurrence is something else: NotModelled."""
    if not _may_name(text, old):
        return text
    tokens = [t for t in _scan(text, what) if _identifier(text, t) == old]
    if not tokens:
        return text
    references = counter(_tree(prefix + text, what))
    if references != len(tokens):
        raise NotModelled(f"{what}: {old} appears in {text!r} as something other than the renamed object")
    return ddl.identifiers_renamed(text, [(t.start, t.end + 1) for t in tokens], new)


def _rewrite_foreign_key(text: str, old: str, new: str, *, own: bool, referenced: bool, what: str) -> str:
    """A foreign key's definition with column ``old`` renamed on its own side (``own``: the columns before
    REFERENCES) and/or on the referenced side (``referenced``: the list after the referenced table).

    pg_get_constraintdef prints ``FOREIGN KEY (a, b) REFERENCES s.t(c, d) [MATCH ...] [ON ...]``: column
    lists only, so each side's tokens ``old`` must be exactly that side's occurrences in the parse tree.
    """
    if not _may_name(text, old):
        return text
    tokens = _scan(text, what)
    split = next((i for i, t in enumerate(tokens) if t.name == "REFERENCES"), None)
    if split is None:
        raise NotModelled(f"{what}: no REFERENCES in {text!r}")
    constraint: dict = {}

    def visit(kind: str, fields: dict) -> bool:
        if kind == "Constraint":
            constraint.update(fields)
        return False

    _walk(_tree(_ADD_CONSTRAINT + text, what), visit)
    sides = []
    for part, names, wanted in ((tokens[:split], "fk_attrs", own), (tokens[split:], "pk_attrs", referenced)):
        found = [t for t in part if _identifier(text, t) == old]
        if len(found) != _names(constraint.get(names)).count(old):
            raise NotModelled(f"{what}: {old} appears in {text!r} as something other than a column")
        if wanted:
            sides.extend(found)
    return ddl.identifiers_renamed(text, [(t.start, t.end + 1) for t in sides], new)


def _rewrite_statement(text: str, old: str, new: str, counter: Counter, *, prefix: str = "", what: str) -> str:
    return _rewrite(text, old, new, counter, prefix=prefix, what=what)


def _rewrite_expression(text: str | None, old: str, new: str, counter: Counter, *, what: str) -> str | None:
    if text is None:
        return None
    prefix = "SELECT "
    return _rewrite(text, old, new, counter, prefix=prefix, what=what)


def _walk(node: Any, visit: Callable[[str, dict], bool]) -> None:
    """Call ``visit(node_type, fields)`` on every node of a pglast JSON tree; a True answer skips its children.

    A field whose type is fixed is printed without its node type (``"relation": {"relname": ...}``):
    such a range variable is visited as "RangeVar", a type name as "TypeName".
    """
    stack = [node]
    while stack:
        item = stack.pop()
        if isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, dict):
            if "relname" in item:
                if not visit("RangeVar", item):
                    stack.extend(item.values())
                continue
            if "names" in item and "typemod" in item:
                if not visit("TypeName", item):
                    stack.extend(item.values())
                continue
            for key, value in item.items():
                if key[:1].isupper() and isinstance(value, dict):
                    if not visit(key, value):
                        stack.extend(value.values())  # the fields, not the node again
                else:
                    stack.append(value)


def _names(items: Any) -> list[str]:
    return [item["String"]["sval"] for item in items or () if isinstance(item, dict) and "String" in item]


def _relation_counter(schema: str, old: str) -> Counter:
    """References to table ``schema.old`` (printed qualified: everything is read with search_path '')."""

    def count(tree: Any) -> int:
        found = 0

        def visit(kind: str, fields: dict) -> bool:
            nonlocal found
            if kind == "RangeVar" and fields.get("relname") == old and fields.get("schemaname") == schema:
                found += 1
            elif kind == "TypeName" and _names(fields.get("names")) == [schema, old]:
                found += 1  # the table's row type, renamed with it
            return False

        _walk(tree, visit)
        return found

    return count


def _column_counter(old: str, *, own: bool, referenced: bool, qualifiers: tuple[str, ...] = ()) -> Counter:
    """References to column ``old`` of one table in a text about that table (``own``: its column lists and
    expressions) or about a table whose foreign key references it (``referenced``: the REFERENCES list).

    An unqualified column reference inside a subquery may belong to the subquery's tables: NotModelled.
    ``qualifiers``: the range names allowed before the column (``new`` / ``old`` in a trigger's WHEN).
    """

    def count(tree: Any) -> int:
        found = 0
        subquery = False

        def visit(kind: str, fields: dict) -> bool:
            nonlocal found, subquery
            if kind == "ColumnRef":
                names = _names(fields.get("fields"))
                if names and names[-1] == old:
                    if own and (len(names) == 1 or (len(names) == 2 and names[0] in qualifiers)):
                        found += 1
                    # else: another table's column, counted as nothing (the token count then differs)
                return True
            if kind in ("SubLink", "RangeSubselect"):
                subquery = True
            if own and kind in ("IndexElem", "StatsElem", "PartitionElem") and fields.get("name") == old:
                found += 1
            if kind == "Constraint":
                lists = (["keys", "fk_attrs", "including"] if own else []) + (["pk_attrs"] if referenced else [])
                found += sum(_names(fields.get(name)).count(old) for name in lists)
            if kind == "CreateTrigStmt" and own:
                found += _names(fields.get("columns")).count(old)
            return False

        _walk(tree, visit)
        if subquery and found:
            raise NotModelled(f"a subquery may read another table's {old}")
        return found

    return count


def _refuse_mentions(schema: Schema, name: str, what: str) -> None:
    """NotModelled when a type text (a column's, a view column's, a domain's base, a composite's attribute)
    or an SQL-standard function body names ``name``: PostgreSQL would print them with the new name."""
    texts: list[tuple[str, str]] = []
    for table in schema.tables.values():
        texts.extend((f"column {table.qualified}.{c.name}", c.type) for c in table.columns.values())
    for qname, view in schema.views.items():
        texts.extend((f"view {qname}", t) for t in view.column_types)
    for qname, other in schema.types.items():
        for attribute in getattr(other, "attributes", ()):
            texts.append((f"type {qname}", attribute.type))
        if hasattr(other, "base"):
            texts.append((f"domain {qname}", other.base))
    for qname, function in schema.functions.items():
        texts.append((f"function {qname}", function.definition))
    for where, text in texts:
        if _may_name(text, name) and any(_identifier(text, t) == name for t in _scan(text, where)):
            raise NotModelled(f"{where} may use {what}")


def _rewrite_enum_constants(text: str, type_ref: str, old: str, new: str, what: str) -> str:
    """``'old'::type_ref`` written ``'new'::type_ref``; NotModelled where the label appears otherwise
    (uncast, in an array literal of the type, cast to another user type such as a domain over it)."""
    if old not in text and old.replace("'", "''") not in text:  # printed as a literal: quotes doubled
        return text
    tokens = _scan(text, what)
    replace: list[Any] = []
    for index, token in enumerate(tokens):
        if token.name != "SCONST":
            continue
        raw = text[token.start: token.end + 1]
        value = _string_value(raw)
        if value is None:
            if raw[:1] in ("E", "e") and old in raw:  # an escaped constant: not compared in this form
                raise NotModelled(f"{what}: the label {old!r} may appear in {raw!r}")
            continue  # a dollar-quoted function body: PostgreSQL keeps its text
        if old not in value:
            continue
        cast = _cast_after(text, tokens, index)
        if cast == type_ref and value == old:
            replace.append(token)
        elif cast is not None and "." not in cast and value == old:
            continue  # a built-in type (printed unqualified): a text 'old' is not the label
        elif value == old or cast is not None and "." in cast:
            raise NotModelled(f"{what}: the label {old!r} appears in {text!r} where its new text cannot be derived")
    return ddl.enum_constants_renamed(text, [(t.start, t.end + 1) for t in replace], new)


def _string_value(raw: str) -> str | None:
    if raw.startswith("'") and raw.endswith("'"):
        return raw[1:-1].replace("''", "'")
    return None  # E'', $$..$$ (function bodies): not a stored constant PostgreSQL prints again


def _cast_after(text: str, tokens: list[Any], index: int) -> str | None:
    """The type name after a ``::`` that follows token ``index`` as printed (``public.mood``, ``text``,
    ``public.mood[]``), None when no cast follows."""
    if index + 1 >= len(tokens) or tokens[index + 1].name != "TYPECAST":
        return None
    parts: list[str] = []
    position = index + 2
    expect_name = True
    while position < len(tokens):
        token = tokens[position]
        raw = text[token.start: token.end + 1]
        if expect_name and _identifier(text, token) is not None:
            parts.append(raw)
        elif not expect_name and raw == ".":
            parts.append(raw)
        else:
            break
        expect_name = not expect_name
        position += 1
    while position + 1 < len(tokens) and text[tokens[position].start] == "[" and \
            text[tokens[position + 1].start] == "]":
        parts.append("[]")
        position += 2
    return "".join(parts) or None


# -- views ---------------------------------------------------------------------------
#
# pg_get_viewdef prints a view from its stored query tree (ruleutils.c): a
# relation by its current name, a column reference as ``refname.column``
# (unqualified when the query reads one relation, PostgreSQL 16), where the
# refname is the relation's alias, or its current name when it has none (made
# unique by appending ``_1``... when two would clash), and an output column
# ``expr AS name`` unless the expression prints as that name already. A
# renamed column read as an output column keeps the output column's name:
# ``SELECT a FROM t`` prints ``SELECT b AS a FROM t`` after ``RENAME COLUMN a
# TO b``. Shapes where more of ruleutils would decide (subqueries, set
# operations, CTEs, joins with USING or NATURAL, whole-row references, a
# refname that could clash) are NotModelled.

_COMPLEX = ("SubLink", "RangeSubselect", "CommonTableExpr", "RangeFunction", "RangeTableFunc", "RangeTableSample")


def _view_shape(text: str, what: str) -> tuple[dict, list[dict], set[str]]:
    """The view's top SELECT, its range variables, and the node types it holds."""
    tree = _tree(text, what)
    statement = tree["stmts"][0]["stmt"] if tree.get("stmts") else {}
    select = statement.get("SelectStmt")
    if select is None or select.get("op", "SETOP_NONE") != "SETOP_NONE":
        raise NotModelled(f"{what}: a set operation or another statement")
    ranges: list[dict] = []
    kinds: set[str] = set()

    def visit(kind: str, fields: dict) -> bool:
        kinds.add(kind)
        if kind == "RangeVar":
            ranges.append(fields)
        if kind == "JoinExpr" and (fields.get("usingClause") or fields.get("isNatural")):
            kinds.add("USING")
        if kind == "ColumnRef" and any("A_Star" in f for f in fields.get("fields", ())):
            kinds.add("A_Star")
        return False

    _walk(select, visit)
    return select, ranges, kinds


def _view_after_table_rename(view: Any, schema: str, old: str, new: str) -> str:
    text, what = view.definition, f"view {view.schema}.{view.name}"
    names = {_identifier(text, t) for t in _scan(text, what)}
    if old not in names:
        return text
    if new in names or any(n and n.startswith(old + "_") and n[len(old) + 1:].isdigit() for n in names):
        raise NotModelled(f"{what}: the refname PostgreSQL gives {new} may clash")
    _, ranges, kinds = _view_shape(text, what)
    ours = [r for r in ranges if r.get("relname") == old and r.get("schemaname") == schema]
    if kinds & {"A_Star", "USING"} or len(ours) != 1 or any(
            (r.get("alias") or {}).get("aliasname") in (old, new) or (r.get("relname") == old and r not in ours)
            for r in ranges):
        raise NotModelled(f"{what}: a shape whose printed form after the rename is not derived here")
    aliased = bool(ours[0].get("alias"))

    def count(tree: Any) -> int:
        found = 0

        def visit(kind: str, fields: dict) -> bool:
            nonlocal found
            if kind == "RangeVar" and fields.get("relname") == old and fields.get("schemaname") == schema:
                found += 1
            elif kind == "TypeName" and _names(fields.get("names")) == [schema, old]:
                found += 1
            elif kind == "ColumnRef":
                names = _names(fields.get("fields"))
                if len(names) == 2 and names[0] == old and not aliased:
                    found += 1  # the refname: the table's name, now the new one
                return True
            return False

        _walk(tree, visit)
        return found

    return _rewrite(text, old, new, count, prefix="", what=what)


def _view_after_column_rename(view: Any, schema: str, table: str, old: str, new: str) -> str:
    text, what = view.definition, f"view {view.schema}.{view.name}"
    tokens = [t for t in _scan(text, what) if _identifier(text, t) == old]
    if not tokens:
        return text
    select, ranges, kinds = _view_shape(text, what)
    ours = [r for r in ranges if r.get("relname") == table and r.get("schemaname") == schema]
    if kinds & ({"A_Star", "USING"} | set(_COMPLEX)) or len(ours) != 1:
        raise NotModelled(f"{what}: a shape whose printed form after the rename is not derived here")
    refname = (ours[0].get("alias") or {}).get("aliasname") or table
    if any(old in (r.get("relname"), (r.get("alias") or {}).get("aliasname")) for r in ranges):
        raise NotModelled(f"{what}: a relation named {old} too")  # its name's tokens would read as the column's
    single = len(ranges) == 1 and "JoinExpr" not in kinds

    def ours_ref(fields: dict) -> bool:
        names = _names(fields.get("fields"))
        return names == [refname, old] or (single and names == [old])

    # Every token "old" must be a column reference: ours (renamed) or another relation's, qualified by
    # that relation's refname (refnames are unique in a printed query, so "o.a" is not ours).
    starts = sorted(t.start for t in tokens)
    renamed: set[int] = set()
    accounted: set[int] = set()

    def token_of(fields: dict) -> int | None:
        return next((start for start in starts if start >= fields.get("location", -1)), None)

    def visit(kind: str, fields: dict) -> bool:
        if kind == "ColumnRef":
            names = _names(fields.get("fields"))
            if names and names[-1] == old:
                start = token_of(fields)
                if ours_ref(fields):
                    renamed.add(start)
                elif len(names) == 2 and names[0] != refname:
                    accounted.add(start)
                else:
                    raise NotModelled(f"{what}: {'.'.join(names)} may be the renamed column")
            return True
        return False

    _walk(select, visit)
    if renamed & accounted or (renamed | accounted) != set(starts):
        raise NotModelled(f"{what}: {old} appears as something other than a column reference")
    tokens = [t for t in tokens if t.start in renamed]
    # Output columns that were the column itself keep its old name: "b AS a".
    keep_name: set[int] = set()
    for target in select.get("targetList", ()):
        fields = target.get("ResTarget", {})
        value = fields.get("val", {}).get("ColumnRef")
        if value is None or not ours_ref(value):
            continue
        if fields.get("name") == new:
            raise NotModelled(f"{what}: an output column named {new} after the renamed column")
        if fields.get("name") is None:
            keep_name.add(min(t.start for t in tokens if t.start >= value["location"]))
    return ddl.identifiers_renamed(text, [(t.start, t.end + 1) for t in tokens], new, old=old, keep_name=keep_name)
