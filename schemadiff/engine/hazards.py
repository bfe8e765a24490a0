"""Hazard codes carried by planned changes.

A hazard says what a statement may do to a live database beyond changing its
schema: lose data, rewrite a table, hold a lock that stops traffic. The diff
engine attaches them; ``plan`` shows them and ``apply`` refuses changes that
delete data unless told otherwise. ``deleting_statements`` reads the same
from a file's parsed statements, for files the engine did not plan. No
database access here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .change import Change

if TYPE_CHECKING:  # only a type here; sqlfile is imported where statements are read
    from ..sqlfile import Statement

DELETES_DATA = "deletes-data"
REWRITES_TABLE = "rewrites-table"
ACCESS_EXCLUSIVE = "access-exclusive-lock"
BLOCKS_WRITES = "blocks-writes"
VALIDATES = "scans-to-validate"
NON_TRANSACTIONAL = "non-transactional"
FAILS_ON_EXISTING_ROWS = "fails-on-existing-rows"
BREAKS_CLIENTS = "breaks-running-app"
REBUILDS_INDEXES = "rebuilds-indexes"

DESCRIPTIONS: dict[str, str] = {
    DELETES_DATA: "removes stored data (a table, a column, a type or enum value in use, a sequence's position,"
    " or values a narrower column type cannot hold) that cannot be recovered from the schema",
    REWRITES_TABLE: "rewrites every row of the table (and rebuilds its indexes); takes time and disk"
    " proportional to the table's size",
    ACCESS_EXCLUSIVE: "holds an ACCESS EXCLUSIVE lock for the whole operation: reads and writes of the table wait",
    BLOCKS_WRITES: "builds or drops an index without CONCURRENTLY: writes to the table wait until it ends",
    VALIDATES: "scans the whole table to check existing rows while holding a lock",
    NON_TRANSACTIONAL: "cannot run inside a transaction block: if a later statement fails, this one stays applied",
    FAILS_ON_EXISTING_ROWS: "fails if the table holds any row (a NOT NULL column added without a default gets"
    " NULL in every existing row); fine only for a table known to be empty",
    # squawk's renaming-column / renaming-table rules call these errors.
    BREAKS_CLIENTS: "renames a table or column the running application still uses by its old name: its queries"
    " fail from this moment until the new code is deployed (expand first: add, backfill, switch, then drop)",
    REBUILDS_INDEXES: "rebuilds every index on the column (a collation change) while holding the table's lock",
}

# The hazards shown first and loudest: what a reviewer must not miss.
SEVERE = (DELETES_DATA, BREAKS_CLIENTS)


def destructive(changes: Iterable[Change]) -> list[Change]:
    """The changes that delete data."""
    return [change for change in changes if DELETES_DATA in change.hazards]


def fails_on_existing_rows(changes: Iterable[Change]) -> list[Change]:
    """The changes that fail on a table holding rows, whatever the rows hold."""
    return [change for change in changes if FAILS_ON_EXISTING_ROWS in change.hazards]


def lock_duration(change: Change) -> str | None:
    """How long the statement's ACCESS EXCLUSIVE lock is expected to be held.

    "instant" when only the catalog changes; "proportional to table size"
    when the statement also rewrites or scans the table under that lock.
    None when the statement takes no ACCESS EXCLUSIVE lock.
    """
    if ACCESS_EXCLUSIVE not in change.hazards:
        return None
    if REWRITES_TABLE in change.hazards or VALIDATES in change.hazards or REBUILDS_INDEXES in change.hazards:
        return "proportional to table size"
    return "instant"


def describe(change: Change) -> list[str]:
    """The change's hazards as short labels, the lock's expected duration included."""
    labels = []
    for hazard in change.hazards:
        if hazard == ACCESS_EXCLUSIVE:
            labels.append(f"{hazard} ({lock_duration(change)})")
        else:
            labels.append(hazard)
    return labels


def deleting_statements(statements: Iterable[Statement]) -> list[str]:
    """The statements of a migration file that delete, or may delete, stored data: ``file:line: SQL (why)``.

    For files schemadiff did not plan (hand-written, or a down file run
    later), read from each statement's whole parse tree (pglast), so a
    statement counts wherever the data-deleting part sits: in a ``WITH``
    query, a ``MERGE`` action, one command of a multi-command ``ALTER``,
    a ``PREPARE`` or an ``EXPLAIN``. What counts (see :func:`deletion_reasons`):
    DROP of a table, schema, type, domain, sequence or extension, any
    DROP ... CASCADE, DROP DATABASE, DROP OWNED; ALTER TABLE/TYPE ... DROP
    COLUMN/ATTRIBUTE and ALTER COLUMN ... TYPE (a type change may narrow; the
    file does not say the old type); TRUNCATE, DELETE, UPDATE (it overwrites
    the values it replaces), MERGE ... THEN DELETE/UPDATE, INSERT ... ON
    CONFLICT DO UPDATE. A statement whose effect cannot be read from the
    file counts too, conservatively: ``DO`` blocks, ``CALL``, ``EXECUTE`` of
    a prepared statement, and a query calling a function outside
    :data:`HARMLESS_FUNCTIONS` (a user's function may delete rows).

    Not read: what triggers and rules do when a statement fires them, and
    the bodies of functions, procedures, rules, triggers and views a file
    creates (they run later, when called: the call is what counts).
    """
    found = []
    for statement in statements:
        reasons = deletion_reasons(statement.node)
        if reasons:
            first = " ".join(statement.text.split())
            shown = first if len(first) <= 100 else first[:97] + "..."
            found.append(f"{statement.position}: {shown} ({'; '.join(reasons)})")
    return found


# Objects whose DROP takes rows with it (their own, or, for a type, domain or
# extension, the columns that use it). Views, functions, indexes and
# constraints hold no data.
_DATA_OBJECTS = {"OBJECT_TABLE", "OBJECT_SCHEMA", "OBJECT_TYPE", "OBJECT_DOMAIN", "OBJECT_SEQUENCE", "OBJECT_EXTENSION"}

# Built-in functions a data migration or a generated file calls that change
# no stored data (the sequence functions move a sequence only, as the
# engine's own `SELECT setval(...)` does). A call of any other function in a
# query that runs (SELECT, INSERT, COPY, EXPLAIN, CREATE TABLE AS) counts as
# possibly deleting data: a parse tree cannot tell a user's function that
# deletes rows (or `lo_unlink`, `dblink_exec`) from a harmless one.
HARMLESS_FUNCTIONS = frozenset({
    "setval", "nextval", "currval", "lastval", "pg_sequence_last_value",
    "count", "max", "min", "sum", "avg", "bool_and", "bool_or", "every", "array_agg", "string_agg",
    "json_agg", "jsonb_agg", "json_object_agg", "jsonb_object_agg",
    "now", "clock_timestamp", "statement_timestamp", "transaction_timestamp", "timezone", "date_trunc",
    "date_part", "extract", "to_char", "to_date", "to_timestamp", "to_number", "make_interval", "age",
    "lower", "upper", "length", "char_length", "octet_length", "substr", "substring", "trim", "btrim", "ltrim",
    "rtrim", "replace", "regexp_replace", "regexp_match", "split_part", "concat", "concat_ws", "format",
    "left", "right", "lpad", "rpad", "initcap", "md5", "encode", "decode", "quote_ident", "quote_literal",
    "abs", "round", "ceil", "floor", "trunc", "mod", "power", "sqrt", "random", "gen_random_uuid",
    "uuid_generate_v4", "to_json", "to_jsonb", "json_build_object", "jsonb_build_object", "json_build_array",
    "jsonb_build_array", "jsonb_set", "jsonb_strip_nulls", "row_to_json", "array_length", "cardinality",
    "unnest", "generate_series", "array_to_string", "string_to_array", "array_append", "array_remove",
    "current_setting", "pg_advisory_xact_lock", "pg_try_advisory_xact_lock", "pg_get_serial_sequence",
    "nullif", "coalesce", "greatest", "least", "row_number", "rank", "dense_rank", "lag", "lead",
    "first_value", "last_value",
})

# Statements whose queries run when the statement does: their function calls count.
_RUNNING_QUERIES = {"SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "CopyStmt",
                    "ExplainStmt", "CreateTableAsStmt", "DeclareCursorStmt", "PrepareStmt"}
# Definitions: their bodies run later, when called or fired (the call counts then).
_DEFINITIONS = {"CreateFunctionStmt", "RuleStmt", "CreateTrigStmt", "ViewStmt", "CreatePolicyStmt",
                "AlterPolicyStmt", "CreateEventTrigStmt"}
# Column commands of ALTER TABLE / ALTER TYPE that lose stored values.
_DELETING_COLUMN_COMMANDS = {
    "AT_DropColumn": "drops a column (or a type's attribute) and its values",
    "AT_AlterColumnType": "changes a column's type: values the new type cannot hold are rounded, cut or fail,"
    " and a USING expression may rewrite them",
}


def deletion_reasons(node: object) -> list[str]:
    """Why the statement ``node`` (a pglast parse tree) deletes or may delete stored data; [] when it does not.

    Walks the whole tree (see :func:`deleting_statements` for what counts
    and what is not read); each reason is a short phrase, listed once.
    """
    reasons: list[str] = []
    _walk(node, reasons, running=type(node).__name__ in _RUNNING_QUERIES)
    return list(dict.fromkeys(reasons))


def _walk(node: object, reasons: list[str], *, running: bool) -> None:
    from pglast import ast

    if isinstance(node, (list, tuple)):
        for item in node:
            _walk(item, reasons, running=running)
        return
    if not isinstance(node, ast.Node):
        return
    kind = type(node).__name__
    if kind in _DEFINITIONS:
        return
    reason = _own_reason(node, kind, running)
    if reason:
        reasons.append(reason)
    if kind in ("DoStmt", "CallStmt"):
        return  # opaque: one reason is enough, the arguments are no help
    running = running or kind in _RUNNING_QUERIES
    for name in node:
        _walk(getattr(node, name), reasons, running=running)


def _own_reason(node: Any, kind: str, running: bool) -> str | None:
    """What this one node does to stored data, not counting its children."""
    if kind == "DropStmt":
        if getattr(node.behavior, "name", "") == "DROP_CASCADE":
            return "DROP ... CASCADE also drops what depends on it, tables and columns included"
        removed = getattr(node.removeType, "name", "")
        if removed in _DATA_OBJECTS:
            return f"DROP {removed.removeprefix('OBJECT_')} deletes what it holds"
        return None
    if kind == "DropdbStmt":
        return "DROP DATABASE deletes a whole database"
    if kind == "DropOwnedStmt":
        return "DROP OWNED drops every object the role owns, tables included"
    if kind == "TruncateStmt":
        return "TRUNCATE deletes every row"
    if kind == "DeleteStmt":
        return "DELETE deletes rows"
    if kind == "UpdateStmt":
        return "UPDATE overwrites values; the old ones are not kept"
    if kind == "MergeStmt":
        actions = {getattr(clause.commandType, "name", "") for clause in node.mergeWhenClauses or ()}
        if "CMD_DELETE" in actions:
            return "MERGE ... THEN DELETE deletes rows"
        if "CMD_UPDATE" in actions:
            return "MERGE ... THEN UPDATE overwrites values"
        return None
    if kind == "OnConflictClause" and getattr(node.action, "name", "") == "ONCONFLICT_UPDATE":
        return "INSERT ... ON CONFLICT DO UPDATE overwrites values"
    if kind == "AlterTableCmd":
        return _DELETING_COLUMN_COMMANDS.get(getattr(node.subtype, "name", ""))
    if kind == "DoStmt":
        return "a DO block runs code the file does not show as statements (it may delete data)"
    if kind == "CallStmt":
        return f"CALL {_function_name(node.funccall)}: a procedure may delete data"
    if kind == "ExecuteStmt":
        return f"EXECUTE {node.name}: runs a prepared statement the file does not show"
    if kind == "FuncCall" and running:
        name = _function_name(node)
        schema, _, bare = name.rpartition(".")
        if schema not in ("", "pg_catalog") or bare.lower() not in HARMLESS_FUNCTIONS:
            return f"calls {name}(), which may delete data"
    return None


def _function_name(call: Any) -> str:
    return ".".join(getattr(part, "sval", "?") for part in getattr(call, "funcname", None) or ())
