"""Rendering SQL statements for the objects of :mod:`schemadiff.engine.model`: the one module that builds statement text.

Pure string building, no database access. The planning modules
(``engine/diff.py``, ``tables.py``, ``usertypes.py``, ``objects.py``,
``privileges.py``, ``renames.py``) and online mode (``schemadiff/online.py``)
decide what changes and call a function here, named after the statement
(:func:`create_schema`, :func:`alter_column_set_storage`, :func:`grant`...),
that takes model objects or plain names and returns the statement's text
(ending with ';'); a few return a clause or an expression that such a
function takes (COMMENT ON targets, GRANT's object clause, ALTER DEFAULT
PRIVILEGES' object type, a sequence's position), and a few rewrite text the
model holds as PostgreSQL printed it, the way PostgreSQL prints it after a
rename (an index's definition, identifiers and enum constants in a view's
or constraint's text, a default's sequence). None of the planners assembles
or rewrites SQL itself; tests/test_render_layout.py reads their source and
fails on any f-string, concatenation, formatting, join, substitution or
replacement that builds or rewrites SQL outside this module.
Online mode's rewrites render here too, from the model objects the engine
planned with (``Change.subject``), so no statement is parsed back to be
rewritten. Names are quoted the way PostgreSQL's ``quote_ident`` does, so
mixed-case names and keywords survive.

The planners do not call a renderer directly: ``op.create_schema(name)``
makes an :class:`Op` (the function's name and its arguments), which
``Plan.add`` (``engine/context.py``) keeps as ``Change.op``; online mode and rename hints
transform or make operations (``with_options``); the text is rendered
once, when ``Change.sql`` is first read (the plan shown or written).

One module rather than a package: the functions are small and share the
quoting helpers and clause builders (sequence options, column definitions,
identity clauses), sections below follow the object kinds.
"""

from __future__ import annotations

import functools
import re
import types
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .model import (
    PUBLIC_GRANTEE,
    Attribute,
    Column,
    Composite,
    Constraint,
    Domain,
    Enum,
    EventTrigger,
    Function,
    Index,
    Policy,
    Range,
    Rule,
    Sequence,
    SequenceOptions,
    Statistics,
    Table,
    Trigger,
    View,
)

_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*")


@dataclass(frozen=True, eq=False, slots=True)
class Op:
    """A statement as data: the function of this module that renders it, and its arguments.

    ``function`` the name of a public function here (``"create_index"``),
    ``args`` its positional arguments (model objects, names; an argument
    that is itself an Op is rendered first: ALTER DEFAULT PRIVILEGES wraps a
    GRANT), ``kwargs`` its keyword arguments as (name, value) pairs.
    :class:`~schemadiff.engine.change.Change` carries the Op its ``sql`` is
    rendered from, so a later rewrite (online mode) changes the
    operation, ``op.with_options(concurrently=True)``, instead of
    editing text. Compared by identity: the arguments are
    mutable model objects.
    """

    function: str
    args: tuple[Any, ...] = ()
    kwargs: tuple[tuple[str, Any], ...] = ()

    def render(self) -> str:
        """The statement's text, as the function renders it from the arguments now.

        Raises AttributeError when ``function`` is not one of this module's renderers."""
        args = [a.render() if isinstance(a, Op) else a for a in self.args]
        return _renderer(self.function)(*args, **dict(self.kwargs))

    def with_options(self, **options: Any) -> Op:
        """The same operation with keyword arguments set (``concurrently=True``, ``not_valid=True``)."""
        return Op(self.function, self.args, tuple(sorted({**dict(self.kwargs), **options}.items())))


class _Ops:
    """``op.create_schema(name)``: the :class:`Op` for ``create_schema(name)``, not yet rendered."""

    def __getattr__(self, function: str) -> Callable[..., Op]:
        _renderer(function)  # fails now, where the operation is planned, not when it is rendered

        def make(*args: Any, **kwargs: Any) -> Op:
            return Op(function, args, tuple(sorted(kwargs.items())))

        return make


op = _Ops()


def _renderer(function: str) -> Callable[..., str]:
    """The public function of this module named ``function``; AttributeError for anything else (a private
    helper, a name imported here such as a model class or ``re``)."""
    found = None if function.startswith("_") else globals().get(function)
    if not (isinstance(found, types.FunctionType) and found.__module__ == __name__):
        raise AttributeError(f"schemadiff.engine.ddl has no renderer {function!r}")
    return found


@functools.cache
def _needs_quotes() -> frozenset[str]:
    # Read on first use: importing pglast costs ~60 ms, which an answer
    # from cache (unpickling changes imports this module) should not pay.
    from pglast import keywords

    return frozenset(keywords.RESERVED_KEYWORDS | keywords.TYPE_FUNC_NAME_KEYWORDS | keywords.COL_NAME_KEYWORDS)


INT_RANGES = {
    "smallint": (-32768, 32767),
    "integer": (-2147483648, 2147483647),
    "bigint": (-9223372036854775808, 9223372036854775807),
}


def ident(name: str) -> str:
    """Quote an identifier when PostgreSQL would (like ``quote_ident``)."""
    if _PLAIN.fullmatch(name) and name not in _needs_quotes():
        return name
    return '"' + name.replace('"', '""') + '"'


def qualified(schema: str, name: str) -> str:
    return f"{ident(schema)}.{ident(name)}"


def qualified_name(dotted: str) -> str:
    """Quote a ``schema.name`` key (names may themselves contain dots)."""
    schema, _, name = dotted.partition(".")
    return qualified(schema, name)


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def table_ref(table: Table) -> str:
    return qualified(table.schema, table.name)


# -- sequences -----------------------------------------------------------------------


def sequence_option_clauses(options: SequenceOptions, old: SequenceOptions | None = None,
                            with_type: bool = True) -> list[str]:
    """Option clauses; with ``old``, only those that differ from it."""
    low, high = INT_RANGES.get(options.type, INT_RANGES["bigint"])
    clauses = []
    if with_type and (old is None or old.type != options.type):
        clauses.append(f"AS {options.type}")
    if old is None or old.start != options.start:
        clauses.append(f"START WITH {options.start}")
    if old is None or old.increment != options.increment:
        clauses.append(f"INCREMENT BY {options.increment}")
    if old is None or old.minvalue != options.minvalue or old.type != options.type:
        default_min = 1 if options.increment > 0 else low
        if old is not None or options.minvalue != default_min:
            clauses.append(f"MINVALUE {options.minvalue}")
    if old is None or old.maxvalue != options.maxvalue or old.type != options.type:
        default_max = high if options.increment > 0 else -1
        if old is not None or options.maxvalue != default_max:
            clauses.append(f"MAXVALUE {options.maxvalue}")
    if old is None or old.cache != options.cache:
        if old is not None or options.cache != 1:
            clauses.append(f"CACHE {options.cache}")
    if old is None or old.cycle != options.cycle:
        if old is not None or options.cycle:
            clauses.append("CYCLE" if options.cycle else "NO CYCLE")
    return clauses


def create_sequence(seq: Sequence) -> str:
    clauses = sequence_option_clauses(seq.options)
    return f"CREATE SEQUENCE {qualified(seq.schema, seq.name)} {' '.join(clauses)};".replace(" ;", ";")


# -- tables and columns --------------------------------------------------------------


def identity_clause(column: Column) -> str:
    kind = "ALWAYS" if column.identity == "a" else "BY DEFAULT"
    clause = f"GENERATED {kind} AS IDENTITY"
    if column.identity_options is not None:
        options = sequence_option_clauses(column.identity_options, with_type=False)
        if options:
            clause += f" ({' '.join(options)})"
    return clause


def column_definition(column: Column) -> str:
    parts = [ident(column.name), column.type]
    if column.collation:
        parts.append(f"COLLATE {column.collation}")
    if column.generated is not None:
        parts.append(f"GENERATED ALWAYS AS {_parenthesized(column.generated)} STORED")
    if column.identity:
        parts.append(identity_clause(column))
    if column.default is not None:
        parts.append(f"DEFAULT {column.default}")
    if column.notnull:
        parts.append("NOT NULL")
    return " ".join(parts)


def _parenthesized(expression: str) -> str:
    # pg_get_expr already parenthesizes most generated expressions; the
    # grammar wants exactly one outer pair, so add one when it is missing.
    if expression.startswith("(") and _balanced_outer(expression):
        return expression
    return f"({expression})"


def _balanced_outer(expression: str) -> bool:
    depth = 0
    quote = False
    for i, char in enumerate(expression):
        if char == "'":
            quote = not quote
        if quote:
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0 and i != len(expression) - 1:
                return False
    return depth == 0


def create_table(table: Table) -> str:
    name = table_ref(table)
    unlogged = "UNLOGGED " if table.persistence == "u" else ""
    own_columns = [c for c in sorted(table.columns.values(), key=lambda c: c.position) if not c.inherited]
    if table.partition_bound is not None and table.parents:
        sql = f"CREATE {unlogged}TABLE {name} PARTITION OF {qualified_name(table.parents[0])}"
        overrides = [_partition_column_override(c) for c in table.columns.values() if c.inherited]
        overrides = [o for o in overrides if o]
        if overrides:
            sql += " (" + ", ".join(overrides) + ")"
        sql += f" {table.partition_bound}"
    else:
        body = ",\n    ".join(column_definition(c) for c in own_columns)
        sql = f"CREATE {unlogged}TABLE {name} (\n    {body}\n)" if body else f"CREATE {unlogged}TABLE {name} ()"
        if table.parents:
            sql += " INHERITS (" + ", ".join(qualified_name(p) for p in table.parents) + ")"
    if table.partition_key:
        sql += f" PARTITION BY {table.partition_key}"
    if table.options:
        sql += f" WITH ({', '.join(table.options)})"
    return sql + ";"


def _partition_column_override(column: Column) -> str:
    # A partition inherits its columns; only a local default is its own.
    if column.default is not None and not column.identity:
        return f"{ident(column.name)} DEFAULT {column.default}"
    return ""


# -- constraints, indexes, views -----------------------------------------------------


def constraint_definition(constraint: Constraint) -> str:
    """The constraint clause for ADD CONSTRAINT, with the index's storage parameters.

    pg_get_constraintdef omits ``WITH (...)`` for PRIMARY KEY / UNIQUE; the
    grammar puts it after the column and INCLUDE lists and before the
    DEFERRABLE / INITIALLY attributes (CREATE TABLE, "index_parameters").
    """
    definition = constraint.definition
    if constraint.type not in ("p", "u") or not constraint.index_options:
        return definition
    with_clause = f" WITH ({', '.join(constraint.index_options)})"
    for attribute in (" NOT DEFERRABLE", " DEFERRABLE", " INITIALLY "):
        at = definition.find(attribute)
        if at >= 0 and definition.rfind(")", 0, at) == at - 1:
            return definition[:at] + with_clause + definition[at:]
    return definition + with_clause


def add_constraint(constraint: Constraint, *, not_valid: bool = False) -> str:
    """``ALTER TABLE ... ADD CONSTRAINT name definition;``

    ``not_valid``: add a FOREIGN KEY or CHECK without checking the rows
    already there (PostgreSQL, ALTER TABLE: "NOT VALID"; the constraint is
    enforced for new rows at once and checked later by
    :func:`validate_constraint`). The grammar accepts NOT VALID after the
    DEFERRABLE / INITIALLY attributes a definition may end with.
    """
    suffix = " NOT VALID" if not_valid else ""
    return (
        f"ALTER TABLE {qualified_name(constraint.table)} ADD CONSTRAINT {ident(constraint.name)} "
        f"{constraint_definition(constraint)}{suffix};"
    )


def add_not_null_check(table: str, column: str, name: str) -> str:
    """``ADD CONSTRAINT name CHECK (column IS NOT NULL) NOT VALID`` on the table keyed ``table`` (``schema.name``).

    Online mode's first step of SET NOT NULL: once validated, PostgreSQL 12+
    proves the column holds no NULL from this check and skips its own scan
    (ALTER TABLE, SET NOT NULL).
    """
    return (
        f"ALTER TABLE {qualified_name(table)} ADD CONSTRAINT {ident(name)} CHECK ({ident(column)} IS NOT NULL)"
        " NOT VALID;"
    )


def validate_constraint(table: str, name: str) -> str:
    """``ALTER TABLE ... VALIDATE CONSTRAINT name``: checks the existing rows under SHARE UPDATE EXCLUSIVE."""
    return f"ALTER TABLE {qualified_name(table)} VALIDATE CONSTRAINT {ident(name)};"


def set_not_null(table: str, column: str) -> str:
    return f"ALTER TABLE {qualified_name(table)} ALTER COLUMN {ident(column)} SET NOT NULL;"


def drop_constraint(constraint: Constraint) -> str:
    return drop_constraint_named(constraint.table, constraint.name)


def drop_constraint_named(table: str, name: str) -> str:
    """``ALTER TABLE ... DROP CONSTRAINT name`` on the table keyed ``table`` (``schema.name``)."""
    return f"ALTER TABLE {qualified_name(table)} DROP CONSTRAINT {ident(name)};"


def unique_index_of(constraint: Constraint, *, concurrently: bool = False) -> str:
    """The unique index a PRIMARY KEY or UNIQUE constraint would build, as a CREATE INDEX of its own.

    Built from the constraint's parts (its key and INCLUDE columns, NULLS
    NOT DISTINCT, storage parameters, tablespace; see
    :class:`~schemadiff.engine.model.Constraint`), named as the constraint,
    in the order of PostgreSQL's grammar (CREATE INDEX: ``( columns )
    INCLUDE (...) NULLS NOT DISTINCT WITH (...) TABLESPACE ...``), btree
    being the default method. ``concurrently``: built without blocking
    writes, for :func:`add_constraint_using_index` to attach.
    """
    unique = "CREATE UNIQUE INDEX CONCURRENTLY" if concurrently else "CREATE UNIQUE INDEX"
    sql = f"{unique} {ident(constraint.name)} ON {qualified_name(constraint.table)}"
    sql += f" ({', '.join(ident(column) for column in constraint.columns)})"
    if constraint.include:
        sql += f" INCLUDE ({', '.join(ident(column) for column in constraint.include)})"
    if constraint.nulls_not_distinct:
        sql += " NULLS NOT DISTINCT"
    if constraint.index_options:
        sql += f" WITH ({', '.join(_storage_parameter(option) for option in constraint.index_options)})"
    if constraint.tablespace:
        sql += f" TABLESPACE {ident(constraint.tablespace)}"
    return sql + ";"


_NUMBER = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def _storage_parameter(option: str) -> str:
    """``name=value`` as stored in reloptions, written ``name = value``, the value quoted unless a number."""
    name, _, value = option.partition("=")
    return f"{name} = {value if _NUMBER.fullmatch(value) else literal(value)}"


def add_constraint_using_index(constraint: Constraint) -> str:
    """``ADD CONSTRAINT name PRIMARY KEY | UNIQUE USING INDEX name`` with the constraint's deferrability.

    Attaches the index :func:`unique_index_of` built (PostgreSQL, ALTER
    TABLE, ``table_constraint_using_index``): the index becomes the
    constraint's, under the constraint's name, without a new scan.
    """
    what = "PRIMARY KEY" if constraint.type == "p" else "UNIQUE"
    sql = (
        f"ALTER TABLE {qualified_name(constraint.table)} ADD CONSTRAINT {ident(constraint.name)} {what}"
        f" USING INDEX {ident(constraint.name)}"
    )
    if constraint.deferrable:
        sql += " DEFERRABLE"
    if constraint.deferred:
        sql += " INITIALLY DEFERRED"
    return sql + ";"


def create_index(index: Index, partitioned_owner: bool, *, concurrently: bool = False,
                 name: str | None = None) -> str:
    """The index's CREATE INDEX: its ``pg_get_indexdef``, which always begins
    ``CREATE [UNIQUE] INDEX <name> ON``.

    ``partitioned_owner``: the table is partitioned, so one plain CREATE
    INDEX creates and attaches its partitions' copies. ``concurrently``:
    built without blocking writes (``CREATE INDEX CONCURRENTLY``, which
    cannot run inside a transaction block). ``name``: built under another
    name (online mode builds a replacement beside the index it replaces).
    """
    definition = index.definition
    if partitioned_owner:
        # pg_get_indexdef says ON ONLY for a partitioned table's index, whose
        # partitions' copies are attached separately; one plain CREATE INDEX
        # creates and attaches them all.
        definition = definition.replace(" ON ONLY ", " ON ", 1)
    head = "CREATE UNIQUE INDEX " if definition.startswith("CREATE UNIQUE INDEX ") else "CREATE INDEX "
    rest = definition[len(head):]
    if name is not None:
        own = f"{ident(index.name)} ON "
        if not rest.startswith(own):  # pragma: no cover - pg_get_indexdef always names the index first
            raise ValueError(f"unexpected index definition: {index.definition}")
        rest = f"{ident(name)} ON " + rest[len(own):]
    if concurrently:
        head += "CONCURRENTLY "
    return head + rest + ";"


def drop_index(index: Index, *, concurrently: bool = False, if_exists: bool = False) -> str:
    """``DROP INDEX [CONCURRENTLY] [IF EXISTS] schema.name;``"""
    options = ("CONCURRENTLY " if concurrently else "") + ("IF EXISTS " if if_exists else "")
    return f"DROP INDEX {options}{qualified(index.schema, index.name)};"


def rename_index(schema: str, old: str, new: str) -> str:
    """``ALTER INDEX schema.old RENAME TO new;`` (an index stays in its table's schema)."""
    return f"ALTER INDEX {qualified(schema, old)} RENAME TO {ident(new)};"


def create_view(view: View) -> str:
    name = qualified(view.schema, view.name)
    body = view.definition.strip().rstrip(";")
    if view.materialized:
        options = f" WITH ({', '.join(view.options)})" if view.options else ""
        data = "" if view.populated else "\n  WITH NO DATA"
        return f"CREATE MATERIALIZED VIEW {name}{options} AS\n{body}{data};"
    options = [o for o in view.options if not o.startswith("check_option=")]
    check = [o.split("=", 1)[1] for o in view.options if o.startswith("check_option=")]
    sql = f"CREATE VIEW {name}"
    if options:
        sql += f" WITH ({', '.join(options)})"
    sql += f" AS\n{body}"
    if check:
        sql += f"\n  WITH {check[0].upper()} CHECK OPTION"
    return sql + ";"


def drop_view(view: View) -> str:
    what = "MATERIALIZED VIEW" if view.materialized else "VIEW"
    return f"DROP {what} {qualified(view.schema, view.name)};"


# -- types ----------------------------------------------------------------------------


def create_type(obj: Enum | Domain | Composite | Range) -> str:
    name = qualified(obj.schema, obj.name)
    if isinstance(obj, Range):
        return f"CREATE TYPE {name} AS RANGE ({obj.options});"
    if isinstance(obj, Enum):
        return f"CREATE TYPE {name} AS ENUM ({', '.join(literal(label) for label in obj.labels)});"
    if isinstance(obj, Composite):
        attributes = ", ".join(
            f"{ident(a.name)} {a.type}" + (f" COLLATE {a.collation}" if a.collation else "") for a in obj.attributes
        )
        return f"CREATE TYPE {name} AS ({attributes});"
    sql = f"CREATE DOMAIN {name} AS {obj.base}"
    if obj.collation:
        sql += f" COLLATE {obj.collation}"
    if obj.default is not None:
        sql += f" DEFAULT {obj.default}"
    if obj.notnull:
        sql += " NOT NULL"
    for check_name, definition in sorted(obj.checks.items()):
        sql += f" CONSTRAINT {ident(check_name)} {definition}"
    return sql + ";"


def drop_type(obj: Enum | Domain | Composite | Range) -> str:
    what = "DOMAIN" if isinstance(obj, Domain) else "TYPE"
    return f"DROP {what} {qualified(obj.schema, obj.name)};"


# -- functions, triggers, policies -----------------------------------------------------


def function_kind(function: Function) -> str:
    return {"p": "PROCEDURE", "a": "AGGREGATE"}.get(function.kind, "FUNCTION")


def function_ref(function: Function) -> str:
    args = function.identity_args or ("*" if function.kind == "a" else "")
    return f"{qualified(function.schema, function.name)}({args})"


def drop_function(function: Function) -> str:
    return f"DROP {function_kind(function)} {function_ref(function)};"


def create_trigger(trigger: Trigger) -> str:
    return trigger.definition + ";"


def drop_trigger(trigger: Trigger) -> str:
    return f"DROP TRIGGER {ident(trigger.name)} ON {qualified_name(trigger.table)};"


_TRIGGER_STATE = {"O": "ENABLE TRIGGER", "D": "DISABLE TRIGGER", "R": "ENABLE REPLICA TRIGGER",
                  "A": "ENABLE ALWAYS TRIGGER"}


def trigger_state(trigger: Trigger) -> str:
    return f"ALTER TABLE {qualified_name(trigger.table)} {_TRIGGER_STATE[trigger.enabled]} {ident(trigger.name)};"


_POLICY_COMMANDS = {"r": "SELECT", "a": "INSERT", "w": "UPDATE", "d": "DELETE", "*": "ALL"}


def create_policy(policy: Policy) -> str:
    sql = f"CREATE POLICY {ident(policy.name)} ON {qualified_name(policy.table)}"
    sql += " AS PERMISSIVE" if policy.permissive else " AS RESTRICTIVE"
    sql += f" FOR {_POLICY_COMMANDS[policy.command]}"
    return sql + _policy_targets(policy)


def alter_policy(policy: Policy) -> str:
    return f"ALTER POLICY {ident(policy.name)} ON {qualified_name(policy.table)}" + _policy_targets(policy)


def _policy_targets(policy: Policy) -> str:
    """The roles and expressions, the part CREATE and ALTER POLICY share."""
    sql = f" TO {', '.join(policy.roles)}"
    if policy.using is not None:
        sql += f" USING ({policy.using})"
    if policy.check is not None:
        sql += f" WITH CHECK ({policy.check})"
    return sql + ";"


def drop_policy(policy: Policy) -> str:
    return f"DROP POLICY {ident(policy.name)} ON {qualified_name(policy.table)};"


def comment(target: str, text: str | None) -> str:
    return f"COMMENT ON {target} IS {'NULL' if text is None else literal(text)};"


# -- schemas and extensions ------------------------------------------------------------


def create_schema(name: str) -> str:
    """``CREATE SCHEMA name;``"""
    return f"CREATE SCHEMA {ident(name)};"


def drop_schema(name: str) -> str:
    """``DROP SCHEMA name;`` (no CASCADE: the plan drops what it holds first)."""
    return f"DROP SCHEMA {ident(name)};"


def create_extension(name: str, schema: str) -> str:
    """``CREATE EXTENSION IF NOT EXISTS name WITH SCHEMA schema;``

    IF NOT EXISTS: on managed PostgreSQL a DBA usually creates the extension
    beforehand and the migrating role may not create it.
    """
    return f"CREATE EXTENSION IF NOT EXISTS {ident(name)} WITH SCHEMA {ident(schema)};"


def drop_extension(name: str) -> str:
    """``DROP EXTENSION name;``"""
    return f"DROP EXTENSION {ident(name)};"


def alter_extension_set_schema(name: str, schema: str) -> str:
    """``ALTER EXTENSION name SET SCHEMA schema;`` (moves the extension's objects)."""
    return f"ALTER EXTENSION {ident(name)} SET SCHEMA {ident(schema)};"


# -- sequences (statements) -------------------------------------------------------------


def drop_sequence(seq: Sequence) -> str:
    """``DROP SEQUENCE schema.name;``"""
    return f"DROP SEQUENCE {qualified(seq.schema, seq.name)};"


def alter_sequence_options(seq: Sequence, old: SequenceOptions) -> str:
    """``ALTER SEQUENCE ... <the option clauses that differ from old>;`` (some must: see :func:`sequence_option_clauses`)."""
    clauses = sequence_option_clauses(seq.options, old)
    return f"ALTER SEQUENCE {qualified(seq.schema, seq.name)} {' '.join(clauses)};"


def alter_sequence_owned_by(schema: str, name: str, owner: tuple[str, str] | None) -> str:
    """``ALTER SEQUENCE schema.name OWNED BY table.column | NONE;``; ``owner`` (table key ``schema.name``, column)."""
    target = "NONE" if owner is None else f"{qualified_name(owner[0])}.{ident(owner[1])}"
    return f"ALTER SEQUENCE {qualified(schema, name)} OWNED BY {target};"


def rename_sequence(schema: str, old: str, new: str) -> str:
    """``ALTER SEQUENCE schema.old RENAME TO new;``"""
    return f"ALTER SEQUENCE {qualified(schema, old)} RENAME TO {ident(new)};"


# -- constraints and indexes (renames and options) -----------------------------------------


def rename_constraint(table: str, old: str, new: str) -> str:
    """``ALTER TABLE table RENAME CONSTRAINT old TO new;`` on the table keyed ``table`` (``schema.name``)."""
    return f"ALTER TABLE {qualified_name(table)} RENAME CONSTRAINT {ident(old)} TO {ident(new)};"


def alter_index_set(schema: str, name: str, options: list[str] | tuple[str, ...]) -> str:
    """``ALTER INDEX schema.name SET (option=value, ...);`` (applies to pages written from now on)."""
    return f"ALTER INDEX {qualified(schema, name)} SET ({', '.join(options)});"


def alter_index_reset(schema: str, name: str, options: list[str] | tuple[str, ...]) -> str:
    """``ALTER INDEX schema.name RESET (option, ...);``"""
    return f"ALTER INDEX {qualified(schema, name)} RESET ({', '.join(options)});"


def cluster_on(table: str, index: str, *, materialized: bool = False) -> str:
    """``ALTER TABLE | MATERIALIZED VIEW table CLUSTER ON index;``: the index a bare CLUSTER uses."""
    what = "MATERIALIZED VIEW" if materialized else "TABLE"
    return f"ALTER {what} {qualified_name(table)} CLUSTER ON {ident(index)};"


def set_without_cluster(table: str, *, materialized: bool = False) -> str:
    """``ALTER TABLE | MATERIALIZED VIEW table SET WITHOUT CLUSTER;``"""
    what = "MATERIALIZED VIEW" if materialized else "TABLE"
    return f"ALTER {what} {qualified_name(table)} SET WITHOUT CLUSTER;"


# -- views, functions, rules, statistics, event triggers -----------------------------------


def create_or_replace_view(view: View) -> str:
    """:func:`create_view` as ``CREATE OR REPLACE VIEW`` (same columns first: replaced in place)."""
    return create_view(view).replace("CREATE VIEW", "CREATE OR REPLACE VIEW", 1)


def refresh_materialized_view(view: View) -> str:
    """``REFRESH MATERIALIZED VIEW name [WITH NO DATA];`` as the view's ``populated`` says."""
    data = "" if view.populated else " WITH NO DATA"
    return f"REFRESH MATERIALIZED VIEW {qualified(view.schema, view.name)}{data};"


def alter_view_column_default(view: View, column: str, default: str | None) -> str:
    """``ALTER VIEW ... ALTER COLUMN column SET DEFAULT expression | DROP DEFAULT;``"""
    clause = "DROP DEFAULT" if default is None else f"SET DEFAULT {default}"
    return f"ALTER VIEW {qualified(view.schema, view.name)} ALTER COLUMN {ident(column)} {clause};"


def create_function(function: Function) -> str:
    """The function's ``pg_get_functiondef`` (``CREATE OR REPLACE FUNCTION ...``) as a statement."""
    return function.definition + ";"


def create_rule(rule: Rule) -> str:
    """The rule's ``pg_get_ruledef`` (it ends with ';' already)."""
    return rule.definition


def create_or_replace_rule(rule: Rule) -> str:
    """:func:`create_rule` as ``CREATE OR REPLACE RULE``: same name and relation, replaced atomically."""
    return rule.definition.replace("CREATE RULE", "CREATE OR REPLACE RULE", 1)


def drop_rule(rule: Rule) -> str:
    """``DROP RULE name ON relation;``"""
    return f"DROP RULE {ident(rule.name)} ON {qualified_name(rule.table)};"


_RULE_STATE = {"O": "ENABLE RULE", "D": "DISABLE RULE", "R": "ENABLE REPLICA RULE", "A": "ENABLE ALWAYS RULE"}


def rule_state(rule: Rule) -> str:
    """``ALTER TABLE relation ENABLE | DISABLE | ENABLE REPLICA | ENABLE ALWAYS RULE name;`` (views too, as pg_dump writes it)."""
    return f"ALTER TABLE {qualified_name(rule.table)} {_RULE_STATE[rule.enabled]} {ident(rule.name)};"


def create_statistics(stats: Statistics) -> str:
    """The statistics object's ``pg_get_statisticsobjdef`` as a statement."""
    return stats.definition + ";"


def drop_statistics(stats: Statistics) -> str:
    """``DROP STATISTICS schema.name;``"""
    return f"DROP STATISTICS {qualified(stats.schema, stats.name)};"


def alter_statistics_target(stats: Statistics) -> str:
    """``ALTER STATISTICS ... SET STATISTICS target;`` (-1, the default, when ``target`` is None)."""
    target = -1 if stats.target is None else stats.target
    return f"ALTER STATISTICS {qualified(stats.schema, stats.name)} SET STATISTICS {target};"


def create_event_trigger(trigger: EventTrigger) -> str:
    """``CREATE EVENT TRIGGER name ON event [WHEN TAG IN (...)] EXECUTE FUNCTION function();``"""
    when = f" WHEN TAG IN ({', '.join(literal(t) for t in trigger.tags)})" if trigger.tags else ""
    return (f"CREATE EVENT TRIGGER {ident(trigger.name)} ON {ident(trigger.event)}{when}"
            f" EXECUTE FUNCTION {trigger.function}();")


def drop_event_trigger(name: str) -> str:
    """``DROP EVENT TRIGGER name;``"""
    return f"DROP EVENT TRIGGER {ident(name)};"


_EVENT_TRIGGER_STATE = {"O": "ENABLE", "D": "DISABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}


def event_trigger_state(trigger: EventTrigger) -> str:
    """``ALTER EVENT TRIGGER name ENABLE | DISABLE | ENABLE REPLICA | ENABLE ALWAYS;``"""
    return f"ALTER EVENT TRIGGER {ident(trigger.name)} {_EVENT_TRIGGER_STATE[trigger.enabled]};"


# -- tables (statements) ---------------------------------------------------------------


def drop_table(table: Table) -> str:
    """``DROP TABLE schema.name;``"""
    return f"DROP TABLE {table_ref(table)};"


def row_level_security(table: Table, enabled: bool) -> str:
    """``ALTER TABLE ... ENABLE | DISABLE ROW LEVEL SECURITY;``"""
    return f"ALTER TABLE {table_ref(table)} {'ENABLE' if enabled else 'DISABLE'} ROW LEVEL SECURITY;"


def force_row_level_security(table: Table, forced: bool) -> str:
    """``ALTER TABLE ... FORCE | NO FORCE ROW LEVEL SECURITY;`` (whether the owner is subject to the policies)."""
    return f"ALTER TABLE {table_ref(table)} {'FORCE' if forced else 'NO FORCE'} ROW LEVEL SECURITY;"


_REPLICA_IDENTITY = {"d": "DEFAULT", "f": "FULL", "n": "NOTHING"}


def replica_identity(table: Table) -> str:
    """``ALTER TABLE ... REPLICA IDENTITY DEFAULT | FULL | NOTHING | USING INDEX name;``

    From ``relreplident`` (d f n, else i with ``replica_index``).
    """
    clause = _REPLICA_IDENTITY.get(table.replica_identity) or f"USING INDEX {ident(table.replica_index or '')}"
    return f"ALTER TABLE {table_ref(table)} REPLICA IDENTITY {clause};"


def set_logged(table: Table) -> str:
    """``ALTER TABLE ... SET LOGGED | SET UNLOGGED;`` as ``persistence`` says (u: unlogged); rewrites the table."""
    return f"ALTER TABLE {table_ref(table)} {'SET UNLOGGED' if table.persistence == 'u' else 'SET LOGGED'};"


def alter_table_set(table: Table, options: list[str] | tuple[str, ...]) -> str:
    """``ALTER TABLE ... SET (name=value, ...);`` storage parameters."""
    return f"ALTER TABLE {table_ref(table)} SET ({', '.join(options)});"


def alter_table_reset(table: Table, names: list[str] | tuple[str, ...]) -> str:
    """``ALTER TABLE ... RESET (name, ...);`` storage parameters."""
    return f"ALTER TABLE {table_ref(table)} RESET ({', '.join(names)});"


def attach_partition(parent: str, table: Table) -> str:
    """``ALTER TABLE parent ATTACH PARTITION table <partition_bound>;``, ``parent`` keyed ``schema.name``."""
    return f"ALTER TABLE {qualified_name(parent)} ATTACH PARTITION {table_ref(table)} {table.partition_bound};"


def detach_partition(parent: str, table: Table) -> str:
    """``ALTER TABLE parent DETACH PARTITION table;``, ``parent`` keyed ``schema.name``."""
    return f"ALTER TABLE {qualified_name(parent)} DETACH PARTITION {table_ref(table)};"


def inherit(table: Table, parent: str) -> str:
    """``ALTER TABLE table INHERIT parent;``, ``parent`` keyed ``schema.name``."""
    return f"ALTER TABLE {table_ref(table)} INHERIT {qualified_name(parent)};"


def no_inherit(table: Table, parent: str) -> str:
    """``ALTER TABLE table NO INHERIT parent;``, ``parent`` keyed ``schema.name``."""
    return f"ALTER TABLE {table_ref(table)} NO INHERIT {qualified_name(parent)};"


# -- columns (statements) --------------------------------------------------------------


def add_column(table: Table, column: Column) -> str:
    """``ALTER TABLE ... ADD COLUMN <column definition>;``"""
    return f"ALTER TABLE {table_ref(table)} ADD COLUMN {column_definition(column)};"


def drop_column(table: Table, column: Column) -> str:
    """``ALTER TABLE ... DROP COLUMN name;``"""
    return f"ALTER TABLE {table_ref(table)} DROP COLUMN {ident(column.name)};"


def _alter_column(table: Table, column: Column, clause: str) -> str:
    return f"ALTER TABLE {table_ref(table)} ALTER COLUMN {ident(column.name)} {clause};"


_STORAGE = {"p": "PLAIN", "e": "EXTERNAL", "x": "EXTENDED", "m": "MAIN"}


def alter_column_set_storage(table: Table, column: Column) -> str:
    """``ALTER COLUMN ... SET STORAGE PLAIN | EXTERNAL | EXTENDED | MAIN | DEFAULT;`` from ``attstorage``."""
    return _alter_column(table, column, f"SET STORAGE {_STORAGE.get(column.storage or '', 'DEFAULT')}")


def alter_column_set_statistics(table: Table, column: Column) -> str:
    """``ALTER COLUMN ... SET STATISTICS target;`` (-1, the default, when ``statistics`` is None)."""
    target = -1 if column.statistics is None else column.statistics
    return _alter_column(table, column, f"SET STATISTICS {target}")


def alter_column_set_compression(table: Table, column: Column) -> str:
    """``ALTER COLUMN ... SET COMPRESSION pglz | lz4 | DEFAULT;`` from ``attcompression`` (p, l, empty).

    Applies to values stored from now on; existing values keep theirs
    (PostgreSQL, ALTER TABLE).
    """
    method = {"p": "pglz", "l": "lz4"}.get(column.compression or "", "DEFAULT")
    return _alter_column(table, column, f"SET COMPRESSION {method}")


def alter_column_set_options(table: Table, column: Column, options: list[str] | tuple[str, ...]) -> str:
    """``ALTER COLUMN ... SET (name=value, ...);`` attribute options (n_distinct...)."""
    return _alter_column(table, column, f"SET ({', '.join(options)})")


def alter_column_reset_options(table: Table, column: Column, names: list[str] | tuple[str, ...]) -> str:
    """``ALTER COLUMN ... RESET (name, ...);`` attribute options."""
    return _alter_column(table, column, f"RESET ({', '.join(names)})")


def alter_column_drop_expression(table: Table, column: Column) -> str:
    """``ALTER COLUMN ... DROP EXPRESSION;``: a generated column becomes a plain one, keeping its values."""
    return _alter_column(table, column, "DROP EXPRESSION")


def alter_column_drop_identity(table: Table, column: Column) -> str:
    """``ALTER COLUMN ... DROP IDENTITY;`` (drops the identity's sequence too)."""
    return _alter_column(table, column, "DROP IDENTITY")


def alter_column_drop_default(table: Table, column: Column) -> str:
    """``ALTER COLUMN ... DROP DEFAULT;``"""
    return _alter_column(table, column, "DROP DEFAULT")


def alter_column_set_default(table: Table, column: Column) -> str:
    """``ALTER COLUMN ... SET DEFAULT <column.default>;``"""
    return _alter_column(table, column, f"SET DEFAULT {column.default}")


def alter_column_drop_not_null(table: Table, column: Column) -> str:
    """``ALTER COLUMN ... DROP NOT NULL;``"""
    return _alter_column(table, column, "DROP NOT NULL")


def alter_column_set_not_null(table: Table, column: Column) -> str:
    """``ALTER COLUMN ... SET NOT NULL;`` (scans the table unless a valid CHECK proves it, PostgreSQL 12+)."""
    return _alter_column(table, column, "SET NOT NULL")


def alter_column_type(table: Table, column: Column, *, collation: str | None = None,
                      using_via: str | None = None, using: bool = False) -> str:
    """``ALTER COLUMN ... TYPE <column.type> [COLLATE collation] [USING name[::via]::type];``

    ``collation``: the COLLATE clause's collation, None for none.
    ``using``: convert with an explicit cast of the column
    (``USING name::type``), ``using_via`` the type cast through first
    (``text`` for an enum, whose values have no cast to other types).
    """
    clause = f"TYPE {column.type}"
    if collation is not None:
        clause += f" COLLATE {collation}"
    if using:
        through = f"::{using_via}" if using_via else ""
        clause += f" USING {ident(column.name)}{through}::{column.type}"
    return _alter_column(table, column, clause)


def alter_column_add_identity(table: Table, column: Column) -> str:
    """``ALTER COLUMN ... ADD GENERATED ALWAYS | BY DEFAULT AS IDENTITY [(options)];``"""
    return _alter_column(table, column, f"ADD {identity_clause(column)}")


def alter_column_set_generated(table: Table, column: Column) -> str:
    """``ALTER COLUMN ... SET GENERATED ALWAYS | BY DEFAULT;`` from ``attidentity`` (a: always)."""
    return _alter_column(table, column, f"SET GENERATED {'ALWAYS' if column.identity == 'a' else 'BY DEFAULT'}")


def identity_option_changes(old: SequenceOptions, new: SequenceOptions) -> list[str]:
    """The sequence option clauses (``START WITH 5``...) that turn an identity's ``old`` options into ``new``.

    A bound that is its type's default follows the column's type change by
    itself, so it is not repeated then.
    """
    clauses = []
    if old.start != new.start:
        clauses.append(f"START WITH {new.start}")
    if old.increment != new.increment:
        clauses.append(f"INCREMENT BY {new.increment}")
    for which in ("min", "max"):
        old_bound, new_bound = getattr(old, f"{which}value"), getattr(new, f"{which}value")
        if old_bound != new_bound and not (old.type != new.type and _default_bound(old, which)
                                           and _default_bound(new, which)):
            clauses.append(f"{which.upper()}VALUE {new_bound}")
    if old.cache != new.cache:
        clauses.append(f"CACHE {new.cache}")
    if old.cycle != new.cycle:
        clauses.append("CYCLE" if new.cycle else "NO CYCLE")
    return clauses


def _default_bound(options: SequenceOptions, which: str) -> bool:
    low, high = INT_RANGES.get(options.type, INT_RANGES["bigint"])
    if which == "min":
        return options.minvalue == (1 if options.increment > 0 else low)
    return options.maxvalue == (high if options.increment > 0 else -1)


def alter_column_set_identity_options(table: Table, column: Column, clauses: list[str]) -> str:
    """``ALTER COLUMN ... SET START WITH 5 SET CACHE 10 ...;`` for the clauses of :func:`identity_option_changes`."""
    return _alter_column(table, column, " ".join(f"SET {c}" for c in clauses))


# -- carrying a sequence's position over -------------------------------------------------


def serial_sequence(table: Table, column: Column) -> str:
    """``pg_get_serial_sequence('table', 'column')``: an identity's sequence, as an expression."""
    return f"pg_get_serial_sequence({literal(table_ref(table))}, {literal(column.name)})"


def regclass(name: str) -> str:
    """``'name'::regclass``: a sequence as a ``nextval`` default names it, as an expression."""
    return f"{literal(name)}::regclass"


def sequence_position(sequence: str, *, cast: bool = False) -> str:
    """Where a sequence stands: its last value, else (never used) its START, as an expression.

    ``sequence`` an expression naming it (:func:`serial_sequence`,
    :func:`regclass`); ``cast``: add ``::regclass`` where the catalog is
    searched by it (a ``pg_get_serial_sequence`` text). pg_sequence_last_value
    is NULL until the first nextval.
    """
    seqrelid = f"{sequence}::regclass" if cast else sequence
    return (f"coalesce(pg_sequence_last_value({sequence}), "
            f"(SELECT seqstart FROM pg_catalog.pg_sequence WHERE seqrelid = {seqrelid}))")


def continue_sequence(sequence: str, table: Table, column: Column, *, descending: bool, position: str) -> str:
    """``SELECT setval(sequence, max(column)) FROM table HAVING max(column) >= position;``

    Moves a sequence that begins to feed ``column`` past the values it
    holds (min and <= for a ``descending`` one), only when they have reached
    ``position`` (an expression: the sequence's START or
    :func:`sequence_position`). PostgreSQL docs, "Sequence Manipulation
    Functions".
    """
    aggregate, reached = ("min", "<=") if descending else ("max", ">=")
    value = f"{aggregate}({ident(column.name)})"
    return f"SELECT setval({sequence}, {value}) FROM {table_ref(table)} HAVING {value} {reached} {position};"


def keep_sequence_position_in_bounds(sequence: str, new: SequenceOptions) -> str:
    """Set a sequence standing outside ``new``'s bounds to the nearest one, not yet called; else nothing.

    ``sequence`` a ``pg_get_serial_sequence`` expression
    (:func:`serial_sequence`). ALTER SEQUENCE refuses bounds that exclude
    the current position (PostgreSQL docs, ALTER SEQUENCE).
    """
    position = sequence_position(sequence, cast=True)
    return (f"SELECT setval({sequence}, least(greatest(p.position, {new.minvalue}), {new.maxvalue}), false)"
            f" FROM (SELECT {position} AS position) AS p"
            f" WHERE p.position < {new.minvalue} OR p.position > {new.maxvalue};")


# -- renames ---------------------------------------------------------------------------


def rename_table(schema: str, old: str, new: str) -> str:
    """``ALTER TABLE schema.old RENAME TO new;``"""
    return f"ALTER TABLE {qualified(schema, old)} RENAME TO {ident(new)};"


def rename_column(schema: str, table: str, old: str, new: str) -> str:
    """``ALTER TABLE schema.table RENAME COLUMN old TO new;``"""
    return f"ALTER TABLE {qualified(schema, table)} RENAME COLUMN {ident(old)} TO {ident(new)};"


def rename_table_constraint(schema: str, table: str, old: str, new: str) -> str:
    """:func:`rename_constraint` with the table as schema and name."""
    return f"ALTER TABLE {qualified(schema, table)} RENAME CONSTRAINT {ident(old)} TO {ident(new)};"


def rename_enum_value(schema: str, enum: str, old: str, new: str) -> str:
    """``ALTER TYPE schema.enum RENAME VALUE 'old' TO 'new';`` (PostgreSQL 10+)."""
    return f"ALTER TYPE {qualified(schema, enum)} RENAME VALUE {literal(old)} TO {literal(new)};"


def rename_type(schema: str, old: str, new: str) -> str:
    """``ALTER TYPE schema.old RENAME TO new;`` (domains too: ALTER TYPE renames any type)."""
    return f"ALTER TYPE {qualified(schema, old)} RENAME TO {ident(new)};"


# -- enums, domains, composite types (alterations) ---------------------------------------


def add_enum_value(enum: Enum, label: str, *, after: str | None = None, before: str | None = None) -> str:
    """``ALTER TYPE ... ADD VALUE 'label' [AFTER 'after' | BEFORE 'before'];`` (no position: at the end)."""
    where = f" AFTER {literal(after)}" if after is not None else f" BEFORE {literal(before)}" if before is not None else ""
    return f"ALTER TYPE {qualified(enum.schema, enum.name)} ADD VALUE {literal(label)}{where};"


def alter_domain_default(domain: Domain) -> str:
    """``ALTER DOMAIN ... SET DEFAULT expression | DROP DEFAULT;`` as ``domain.default`` says."""
    ref = qualified(domain.schema, domain.name)
    if domain.default is not None:
        return f"ALTER DOMAIN {ref} SET DEFAULT {domain.default};"
    return f"ALTER DOMAIN {ref} DROP DEFAULT;"


def alter_domain_not_null(domain: Domain) -> str:
    """``ALTER DOMAIN ... SET NOT NULL | DROP NOT NULL;`` as ``domain.notnull`` says."""
    return f"ALTER DOMAIN {qualified(domain.schema, domain.name)} {'SET' if domain.notnull else 'DROP'} NOT NULL;"


def alter_domain_add_constraint(domain: Domain, name: str, definition: str) -> str:
    """``ALTER DOMAIN ... ADD CONSTRAINT name definition;`` (``definition`` as pg_get_constraintdef prints it)."""
    return f"ALTER DOMAIN {qualified(domain.schema, domain.name)} ADD CONSTRAINT {ident(name)} {definition};"


def alter_domain_drop_constraint(domain: Domain, name: str) -> str:
    """``ALTER DOMAIN ... DROP CONSTRAINT name;``"""
    return f"ALTER DOMAIN {qualified(domain.schema, domain.name)} DROP CONSTRAINT {ident(name)};"


def _attribute_type(attribute: Attribute) -> str:
    return attribute.type + (f" COLLATE {attribute.collation}" if attribute.collation else "")


def alter_type_add_attribute(composite: Composite, attribute: Attribute) -> str:
    """``ALTER TYPE ... ADD ATTRIBUTE name type [COLLATE collation];``"""
    return (f"ALTER TYPE {qualified(composite.schema, composite.name)} ADD ATTRIBUTE {ident(attribute.name)}"
            f" {_attribute_type(attribute)};")


def alter_type_alter_attribute(composite: Composite, attribute: Attribute) -> str:
    """``ALTER TYPE ... ALTER ATTRIBUTE name TYPE type [COLLATE collation];``"""
    return (f"ALTER TYPE {qualified(composite.schema, composite.name)} ALTER ATTRIBUTE {ident(attribute.name)}"
            f" TYPE {_attribute_type(attribute)};")


def alter_type_drop_attribute(composite: Composite, name: str) -> str:
    """``ALTER TYPE ... DROP ATTRIBUTE name;``"""
    return f"ALTER TYPE {qualified(composite.schema, composite.name)} DROP ATTRIBUTE {ident(name)};"


# -- privileges and owners ---------------------------------------------------------------

# The order privileges are listed in a statement (GRANT's own order).
_PRIVILEGE_ORDER = ("SELECT", "INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER", "MAINTAIN",
                    "USAGE", "CREATE", "EXECUTE")


def _listed_privileges(privileges: Iterable[str], column: str | None) -> str:
    rank = {p: i for i, p in enumerate(_PRIVILEGE_ORDER)}
    columns = f" ({ident(column)})" if column is not None else ""
    return ", ".join(f"{p}{columns}" for p in sorted(set(privileges), key=lambda p: (rank.get(p, len(rank)), p)))


def _grantee(name: str) -> str:
    return "PUBLIC" if name == PUBLIC_GRANTEE else ident(name)


def grant(privileges: Iterable[str], target: str, grantee: str, *, column: str | None = None,
          with_grant_option: bool = False) -> str:
    """``GRANT privilege [(column)], ... ON target TO grantee [WITH GRANT OPTION];``

    ``target`` GRANT's object clause (:func:`privilege_target`, or
    ``TABLES`` ... inside :func:`alter_default_privileges`); ``grantee`` a
    role name or ``model.PUBLIC_GRANTEE``; privileges in GRANT's order.
    """
    option = " WITH GRANT OPTION" if with_grant_option else ""
    return f"GRANT {_listed_privileges(privileges, column)} ON {target} TO {_grantee(grantee)}{option};"


def revoke(privileges: Iterable[str], target: str, grantee: str, *, column: str | None = None,
           grant_option_only: bool = False) -> str:
    """``REVOKE [GRANT OPTION FOR] privilege [(column)], ... ON target FROM grantee;`` (see :func:`grant`)."""
    option = "GRANT OPTION FOR " if grant_option_only else ""
    return f"REVOKE {option}{_listed_privileges(privileges, column)} ON {target} FROM {_grantee(grantee)};"


def alter_default_privileges(role: str | None, schema: str | None, statement: str) -> str:
    """``ALTER DEFAULT PRIVILEGES [FOR ROLE role] [IN SCHEMA schema] <GRANT or REVOKE statement>``.

    ``role`` None: the role running the migration; ``schema`` None: the
    global entry. ``statement`` from :func:`grant` / :func:`revoke` with a
    plural object type (``TABLES``) as target.
    """
    prefix = "ALTER DEFAULT PRIVILEGES" + (f" FOR ROLE {ident(role)}" if role else "") + (
        f" IN SCHEMA {ident(schema)}" if schema else "")
    return f"{prefix} {statement}"


def _object_clauses(kind: str, name: str, obj: object) -> tuple[str, str]:
    """(GRANT's object clause, the ALTER ... command naming the object) for the object keyed (kind, name)."""
    if kind == "schema":
        return f"SCHEMA {ident(name)}", f"ALTER SCHEMA {ident(name)}"
    if kind == "language":
        return f"LANGUAGE {ident(name)}", f"ALTER LANGUAGE {ident(name)}"
    if isinstance(obj, Function):
        word = "PROCEDURE" if obj.kind == "p" else "FUNCTION"
        alter = {"p": "PROCEDURE", "a": "AGGREGATE"}.get(obj.kind, "FUNCTION")
        return f"{word} {function_ref(obj)}", f"ALTER {alter} {function_ref(obj)}"
    if isinstance(obj, (Enum, Domain, Composite, Range)):
        ref = qualified(obj.schema, obj.name)
        return f"TYPE {ref}", f"ALTER {'DOMAIN' if isinstance(obj, Domain) else 'TYPE'} {ref}"
    if isinstance(obj, Sequence):
        ref = qualified(obj.schema, obj.name)
        return f"SEQUENCE {ref}", f"ALTER SEQUENCE {ref}"
    ref = qualified_name(name)
    if isinstance(obj, View):
        return f"TABLE {ref}", f"ALTER {'MATERIALIZED VIEW' if obj.materialized else 'VIEW'} {ref}"
    return f"TABLE {ref}", f"ALTER TABLE {ref}"


def privilege_target(kind: str, name: str, obj: object) -> str:
    """GRANT's object clause (``TABLE public.t``, ``FUNCTION public.f(integer)``) for the object keyed (kind, name).

    ``obj`` the model object (a Table, View, Sequence, Function, type...),
    None for a schema or language; a view is a ``TABLE`` to GRANT.
    """
    return _object_clauses(kind, name, obj)[0]


def alter_owner(kind: str, name: str, obj: object, owner: str) -> str:
    """``ALTER TABLE | VIEW | SEQUENCE | FUNCTION | TYPE | DOMAIN | SCHEMA ... OWNER TO owner;`` (see :func:`privilege_target`)."""
    return f"{_object_clauses(kind, name, obj)[1]} OWNER TO {ident(owner)};"


# -- session settings (online mode's file preamble) --------------------------------------


def set_local(parameter: str, value: str) -> str:
    """``SET LOCAL parameter = 'value';``: a setting for the rest of the transaction only (PostgreSQL, SET)."""
    return f"SET LOCAL {parameter} = {literal(value)};"


# -- COMMENT ON targets ----------------------------------------------------------------
#
# The object clause of COMMENT ON (PostgreSQL, COMMENT), from the engine's
# kind names ("materialized view" -> MATERIALIZED VIEW); :func:`comment`
# renders the statement.


def named_target(kind: str, name: str) -> str:
    """``SCHEMA name``, ``EXTENSION name``, ``EVENT TRIGGER name``: an object with an unqualified name."""
    return f"{kind.upper()} {ident(name)}"


def relation_target(kind: str, schema: str, name: str) -> str:
    """``TABLE s.t``, ``VIEW s.v``, ``SEQUENCE s.q``, ``INDEX s.i``, ``STATISTICS s.x``, ``TYPE s.t``, ``DOMAIN s.d``..."""
    return f"{kind.upper()} {qualified(schema, name)}"


def column_target(schema: str, relation: str, column: str) -> str:
    """``COLUMN schema.relation.column`` (a table's or a view's)."""
    return f"COLUMN {qualified(schema, relation)}.{ident(column)}"


def member_target(kind: str, name: str, table: str) -> str:
    """``CONSTRAINT name ON t``, ``TRIGGER name ON t``, ``POLICY name ON t``, ``RULE name ON t``; ``table`` keyed ``schema.name``."""
    return f"{kind.upper()} {ident(name)} ON {qualified_name(table)}"


def domain_constraint_target(name: str, domain: Domain) -> str:
    """``CONSTRAINT name ON DOMAIN schema.domain``."""
    return f"CONSTRAINT {ident(name)} ON DOMAIN {qualified(domain.schema, domain.name)}"


def function_target(function: Function) -> str:
    """``FUNCTION | PROCEDURE | AGGREGATE schema.name(argument types)``."""
    return f"{function_kind(function)} {function_ref(function)}"


# -- printed definitions rewritten for a rename ----------------------------------------
#
# The model keeps index, constraint, view and default text as PostgreSQL prints it
# (pg_get_indexdef, pg_get_constraintdef, pg_get_viewdef, pg_get_expr). After a rename
# PostgreSQL prints the new name there (it stores oids and attribute numbers, not text), so
# the engine's model of the renamed database holds the same text with the name rewritten.
# The planners find *where* (token spans from PostgreSQL's own scanner, via pglast); these
# functions write *what*, quoted as PostgreSQL prints it, so no quoting rule lives elsewhere.


def index_definition_renamed(definition: str, old: str, new: str) -> str | None:
    """pg_get_indexdef's ``CREATE [UNIQUE] INDEX old ON ...`` with the index named ``new``.

    ``old``/``new`` bare index names. PostgreSQL prints the name quoted as
    ``quote_ident`` does between ``INDEX`` and ``ON`` (pg_get_indexdef;
    ``CONCURRENTLY`` is never printed); the first ``" INDEX old ON "`` is that name,
    since the definition's columns and predicate come after ``ON``. None when the
    definition has no such text: the caller cannot derive what PostgreSQL will print.
    """
    marker = f" INDEX {ident(old)} ON "
    if marker not in definition:
        return None
    return definition.replace(marker, f" INDEX {ident(new)} ON ", 1)


def index_definition_unnamed(definition: str, name: str) -> str:
    """pg_get_indexdef's text for index ``name`` with the name left out (``CREATE INDEX ON s.t ...``).

    A comparison key, never executed: two indexes that differ only in their names
    (see :func:`index_definition_renamed` for where PostgreSQL prints the name) have
    equal keys. The text is returned unchanged if it does not name the index that way.
    """
    return definition.replace(f" INDEX {ident(name)} ON ", " INDEX ON ", 1)


def default_sequence_renamed(default: str, old: str, new: str) -> str:
    """A column default (pg_get_expr text, ``nextval('s.old_seq'::regclass)``) naming sequence ``new``.

    ``old``/``new`` the sequences as ``regclass`` text prints them (quoted
    qualified names, :func:`qualified`): PostgreSQL stores the default's
    ``regclass`` constant as the sequence's oid and prints its current name,
    as a string literal (:func:`regclass`), so after ALTER SEQUENCE ... RENAME
    the default reads the new name; every such literal is rewritten.
    """
    return default.replace(literal(old), literal(new))


def type_name_renamed(type_name: str, old_ref: str, new_ref: str) -> str:
    """A type name as ``format_type`` prints it (``public.mood``, ``public.mood[]``) naming ``new_ref``
    where it named ``old_ref`` or an array of it; any other name unchanged.

    ``old_ref``/``new_ref`` quoted qualified names (:func:`qualified`), as
    format_type prints a user type outside the search path; PostgreSQL
    prints a column's, attribute's or domain's type by its oid, so after
    ALTER TYPE ... RENAME they read the new name.
    """
    if type_name == old_ref or type_name.startswith(old_ref + "["):
        return new_ref + type_name[len(old_ref):]
    return type_name


def type_references_renamed(text: str, old_ref: str, new_ref: str) -> str:
    """A function's argument or result types as PostgreSQL prints them
    (``pg_get_function_identity_arguments``, format_type) with each whole reference to type
    ``old_ref`` written ``new_ref`` (see :func:`type_name_renamed`).

    Whole references only: not part of a longer or quoted name
    (``public.mood_x``, ``"public.mood"``), so an argument's own name or
    another type is left as it is. ``new_ref`` is inserted as it is (no
    regular expression escapes).
    """
    pattern = re.compile(r'(?<![\w."])' + re.escape(old_ref) + r'(?![\w"])')
    return pattern.sub(lambda match: new_ref, text)


def _spliced(text: str, spans: Iterable[tuple[int, int]], replacement: Callable[[int], str]) -> str:
    for start, end in sorted(spans, reverse=True):  # from the end: earlier offsets stay valid
        text = text[:start] + replacement(start) + text[end:]
    return text


def identifiers_renamed(text: str, spans: Iterable[tuple[int, int]], new: str, *, old: str = "",
                        keep_name: Iterable[int] = ()) -> str:
    """Printed SQL text (a view's query, a constraint's or policy's expression) with each identifier
    token at ``spans`` written as ``new``, quoted as PostgreSQL prints it (:func:`ident`).

    ``spans`` (start, end) character offsets, end exclusive, of the tokens
    that name the renamed object (found with PostgreSQL's scanner by the
    caller); a token whose start is in ``keep_name`` becomes ``new AS old``:
    a view's output column that was the renamed column keeps its name
    (pg_get_viewdef prints ``b AS a`` after RENAME COLUMN a TO b). Nothing
    outside the spans changes.
    """
    kept = set(keep_name)
    return _spliced(text, spans, lambda start: ident(new) + (f" AS {ident(old)}" if start in kept else ""))


def enum_constants_renamed(text: str, spans: Iterable[tuple[int, int]], new: str) -> str:
    """Printed SQL text with each string constant at ``spans`` (an enum label's ``'old'`` before
    ``::type``) written as the literal ``'new'`` (:func:`literal`).

    PostgreSQL stores an enum constant by its pg_enum oid and prints the
    label it has now, so after ALTER TYPE ... RENAME VALUE the text reads the
    new label. ``spans`` (start, end) offsets, end exclusive, found by the
    caller with PostgreSQL's scanner.
    """
    return _spliced(text, spans, lambda start: literal(new))


def dotted_name(*parts: str | None) -> str:
    """``schema.relation.member`` with each part quoted (:func:`ident`), None parts left out
    (``public."T".col`` for a column, ``public.t`` for a table): how a rename names the renamed
    object in the plan (``Change.name`` of :func:`schemadiff.engine.renames.rename_changes`)."""
    return ".".join(ident(p) for p in parts if p is not None)


def default_privileges_target(objtype: str) -> str:
    """The object-type word of ALTER DEFAULT PRIVILEGES ... GRANT ... ON <word> for pg_default_acl's
    ``defaclobjtype`` (``r`` TABLES, ``S`` SEQUENCES, ``f`` FUNCTIONS, ``T`` TYPES, ``n`` SCHEMAS;
    PostgreSQL, ALTER DEFAULT PRIVILEGES): the target :func:`grant`/:func:`revoke` take inside
    :func:`alter_default_privileges`. KeyError for another letter (the model reads only these)."""
    return {"r": "TABLES", "S": "SEQUENCES", "f": "FUNCTIONS", "T": "TYPES", "n": "SCHEMAS"}[objtype]
