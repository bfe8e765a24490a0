"""Rendering DDL statements for the objects of :mod:`schemadiff.engine.model`.

Pure string building, no database access. Online mode's rewrites render
here too, from the model objects the engine planned with (``Change.subject``),
so no statement is parsed back to be rewritten. Names are quoted the way
PostgreSQL's ``quote_ident`` does, so mixed-case names and keywords survive.
"""

from __future__ import annotations

import functools
import re

from .model import (
    Column,
    Composite,
    Constraint,
    Domain,
    Enum,
    Function,
    Index,
    Policy,
    Range,
    Sequence,
    SequenceOptions,
    Table,
    Trigger,
    View,
)

_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*")


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
