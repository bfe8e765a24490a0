"""Hazard codes carried by planned changes.

A hazard says what a statement may do to a live database beyond changing its
schema: lose data, rewrite a table, hold a lock that stops traffic. The diff
engine attaches them; ``plan`` shows them and ``apply`` refuses changes that
delete data unless told otherwise. ``deleting_statements`` reads the same
from a file's parsed statements, for files the engine did not plan, given
what user code the database holds (read by ``schemadiff.runner.usercode``). No
database access here.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from .change import Change
from .locks import LockMode

from .usercode import ANY_SCHEMA, READ, REBUILD, WRITE, UserCode

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
    None when the statement takes no ACCESS EXCLUSIVE lock: neither by its
    lock mode (``change.lock``, PostgreSQL's table 13.2, see
    ``engine.locks``) nor by its hazards (an ADD COLUMN takes one, briefly,
    without a hazard being listed for it).
    """
    if ACCESS_EXCLUSIVE not in change.hazards and change.lock is not LockMode.ACCESS_EXCLUSIVE:
        return None
    if REWRITES_TABLE in change.hazards or VALIDATES in change.hazards or REBUILDS_INDEXES in change.hazards:
        return "proportional to table size"
    return "instant"


def restated(codes: Iterable[str], lock: LockMode | None) -> tuple[str, ...]:
    """``codes`` for a statement rewritten into one taking ``lock`` (online mode's CONCURRENTLY forms).

    The lock hazards describe the statement's lock, so they follow it: a
    statement that no longer takes ACCESS EXCLUSIVE loses
    ``access-exclusive-lock``, one whose lock lets writes through (SHARE
    UPDATE EXCLUSIVE, PostgreSQL "Explicit Locking" table 13.2) loses
    ``blocks-writes``. The others (deletes data, rewrites) are about what
    the statement does, and stay.
    """
    kept = []
    for code in codes:
        if code == ACCESS_EXCLUSIVE and lock is not LockMode.ACCESS_EXCLUSIVE:
            continue
        if code == BLOCKS_WRITES and not (lock is not None and lock.blocks_writes):
            continue
        kept.append(code)
    return tuple(kept)


# The forms online mode (schemadiff.online) rewrites a statement into. It
# only transforms the plan; what each form's hazards are is decided here.
CONCURRENTLY = "concurrently"  # CREATE / DROP INDEX CONCURRENTLY
NOT_VALID = "not valid"  # ADD CONSTRAINT ... NOT VALID (FOREIGN KEY, CHECK)
USING_INDEX = "using index"  # ADD CONSTRAINT ... PRIMARY KEY / UNIQUE USING INDEX
PROVEN_NOT_NULL = "proven not null"  # SET NOT NULL after a validated CHECK (col IS NOT NULL)
HELPER = "helper"  # a statement online mode adds: a temporary check, VALIDATE, its drop, an index's rename

# form -> (codes the form no longer has, codes it gains, whether the lock hazards follow its lock)
_REWRITTEN: dict[str, tuple[frozenset[str], tuple[str, ...], bool]] = {
    # Built or dropped beside the table's traffic, under SHARE UPDATE EXCLUSIVE, outside any
    # transaction block (PostgreSQL, CREATE INDEX "Building Indexes Concurrently"); a unique
    # index still reads every row to check it (scans-to-validate stays).
    CONCURRENTLY: (frozenset({BLOCKS_WRITES, NON_TRANSACTIONAL}), (NON_TRANSACTIONAL,), True),
    # The existing rows are not checked (ALTER TABLE, "NOT VALID"); VALIDATE checks them later.
    NOT_VALID: (frozenset({VALIDATES}), (), False),
    # Catalog only: the index was built concurrently before (ALTER TABLE, "USING INDEX").
    USING_INDEX: (frozenset({BLOCKS_WRITES, VALIDATES}), (), True),
    # PostgreSQL 12+ proves the column has no NULL from the validated check and skips its
    # scan (ALTER TABLE, SET NOT NULL): its ACCESS EXCLUSIVE lock lasts an instant.
    PROVEN_NOT_NULL: (frozenset({VALIDATES, ACCESS_EXCLUSIVE}), (), False),
}


def rewritten(codes: Iterable[str], form: str, lock: LockMode | None) -> tuple[str, ...]:
    """The hazard codes of a statement (``codes``) once online mode has rewritten it into ``form``
    (one of the constants above), taking ``lock`` on its table.

    ``HELPER`` statements have none of the plan's hazards: a temporary NOT
    VALID check and its drop are catalog only, VALIDATE CONSTRAINT lets
    reads and writes through (SHARE UPDATE EXCLUSIVE), renaming an index is
    catalog only. For the other forms see ``_REWRITTEN``; where the lock
    hazards follow the new lock, :func:`restated` decides them.
    """
    if form == HELPER:
        return ()
    removed, added, follow_lock = _REWRITTEN[form]
    kept = (*(code for code in codes if code not in removed), *added)
    return restated(kept, lock) if follow_lock else kept


def describe(change: Change) -> list[str]:
    """The change's hazards as short labels, the lock's expected duration included."""
    labels = []
    for hazard in change.hazards:
        if hazard == ACCESS_EXCLUSIVE:
            labels.append(f"{hazard} ({lock_duration(change)})")
        else:
            labels.append(hazard)
    return labels


def shown_statement(statement: Statement) -> str:
    """A statement on one line, at most 100 characters, as the down guard lists it."""
    first = " ".join(statement.text.split())
    return first if len(first) <= 100 else first[:97] + "..."


def deleting_statements(statements: Iterable[Statement], code: UserCode | None = None) -> list[str]:
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
    a prepared statement, ``COPY ... PROGRAM``, and a query calling a
    function outside :data:`HARMLESS_FUNCTIONS` (a user's function may
    delete rows).

    And a statement that may run user code (``code``, the database's, read
    before the file runs; see :mod:`schemadiff.runner.usercode`): a function or
    operator name that user code also bears in any schema (PostgreSQL picks
    by search_path and argument types), a cast to a type that a user cast
    function converts to, reading a view or a table whose query or policies
    call user code, an INSERT or COPY FROM into a table whose triggers,
    rules, defaults, checks, domain checks or index expressions do, a
    VALIDATE CONSTRAINT, ATTACH PARTITION, table rewrite, index build,
    ANALYZE, REINDEX, CLUSTER or REFRESH that evaluates such expressions,
    and any DDL when the database has event triggers. ``code`` is updated
    with what each statement defines (functions, operators, casts,
    triggers, rules, policies, domains, tables, views), so later statements
    and files read against it see them; None: a database with no user code.

    Not read: the bodies of functions, procedures, rules, triggers and views
    a file creates (they run later, when called or fired: the call is what
    counts), and code only a superuser can install (see schemadiff.runner.usercode).
    """
    code = UserCode() if code is None else code
    found = []
    for statement in statements:
        reasons = deletion_reasons(statement.node, code)
        if reasons:
            found.append(f"{statement.position}: {shown_statement(statement)} ({'; '.join(reasons)})")
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
# deletes rows (or `lo_unlink`, `dblink_exec`) from a harmless one. A name
# listed here still counts when the database (or the file) holds a user
# function of that name: PostgreSQL may resolve the call to it.
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

# How a subtree's expressions run. QUERY: a query that runs now (its function
# calls must be harmless built-ins, its relations are read). EXPR: an
# expression evaluated now over existing rows (an index, a new column's
# default, a new or validated constraint): only user code counts, built-in
# functions there cannot change data (an index expression is IMMUTABLE).
# None: stored for later (a table's defaults, a view, a function body).
QUERY = "query"
EXPR = "expr"

# Statements whose queries run when the statement does: their function calls count.
_RUNNING_QUERIES = {"SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "CopyStmt",
                    "ExplainStmt", "CreateTableAsStmt", "DeclareCursorStmt", "PrepareStmt"}
# Statements that evaluate the expressions they carry over existing rows.
_EVALUATING = {"IndexStmt", "AlterTableStmt", "AlterDomainStmt"}
# Definitions: their bodies run later, when called or fired (the call counts then).
_DEFINITIONS = {"CreateFunctionStmt", "RuleStmt", "CreateTrigStmt", "ViewStmt", "CreatePolicyStmt",
                "AlterPolicyStmt", "CreateEventTrigStmt"}
# Column commands of ALTER TABLE / ALTER TYPE that lose stored values.
_DELETING_COLUMN_COMMANDS = {
    "AT_DropColumn": "drops a column (or a type's attribute) and its values",
    "AT_AlterColumnType": "changes a column's type: values the new type cannot hold are rounded, cut or fail,"
    " and a USING expression may rewrite them",
}
# ALTER TABLE commands that check or rebuild existing rows: the table's
# constraints, partition key and index expressions are evaluated again
# (VALIDATE, ATTACH, and the commands that rewrite the table). ADD
# CONSTRAINT evaluates only its own expression (walked as EXPR); ADD
# COLUMN rewrites only in some cases (_rewrites).
_REBUILDING_COMMANDS = {"AT_ValidateConstraint", "AT_AttachPartition", "AT_SetAccessMethod", "AT_SetLogged",
                        "AT_SetUnLogged", "AT_SetExpression", "AT_AlterColumnType",
                        "AT_SplitPartition", "AT_MergePartitions"}
# Statements that fire no event trigger (PostgreSQL's event trigger firing
# matrix covers DDL only, SELECT INTO and, from PostgreSQL 17, REINDEX);
# every other statement fires them.
_NOT_DDL = {"SelectStmt", "InsertStmt", "UpdateStmt", "DeleteStmt", "MergeStmt", "CopyStmt", "ExplainStmt",
            "VariableSetStmt", "VariableShowStmt", "TransactionStmt", "LockStmt", "NotifyStmt", "ListenStmt",
            "UnlistenStmt", "DeclareCursorStmt", "FetchStmt", "ClosePortalStmt", "PrepareStmt", "ExecuteStmt",
            "DeallocateStmt", "CallStmt", "DoStmt", "TruncateStmt", "VacuumStmt", "CheckPointStmt", "DiscardStmt",
            "ClusterStmt", "ConstraintsSetStmt"}
_COMPARISONS = ("<", ">", "<=", ">=")


def deletion_reasons(node: object, code: UserCode | None = None) -> list[str]:
    """Why the statement ``node`` (a pglast parse tree) deletes or may delete stored data; [] when it does not.

    Walks the whole tree (see :func:`deleting_statements` for what counts
    and what is not read) against ``code``, the user code the database
    holds, then records in ``code`` what the statement defines. Each reason
    is a short phrase, listed once.
    """
    code = UserCode() if code is None else code
    kind = type(node).__name__
    mode = QUERY if kind in _RUNNING_QUERIES else EXPR if kind in _EVALUATING else None
    reasons: list[str] = []
    _walk(node, reasons, code, mode=mode)
    ddl = kind not in _NOT_DDL or (kind == "SelectStmt" and node.intoClause is not None)  # SELECT INTO fires too
    if code.event_triggers and ddl:
        reasons.extend(code.event_triggers)
    if code.implicit_casts and (mode or kind in _RUNNING_QUERIES):
        reasons.extend(f"may apply {why}" for why in code.implicit_casts)
    _record_definitions(node, kind, code)
    return list(dict.fromkeys(reasons))


def _walk(node: object, reasons: list[str], code: UserCode, *, mode: str | None) -> None:
    from pglast import ast

    if isinstance(node, (list, tuple)):
        for item in node:
            _walk(item, reasons, code, mode=mode)
        return
    if not isinstance(node, ast.Node):
        return
    kind = type(node).__name__
    if kind in _DEFINITIONS:
        return
    reason = _own_reason(node, kind, mode == QUERY, code)
    if reason:
        reasons.append(reason)
    if not (reason and kind == "FuncCall"):  # a call already counted needs no second reason
        reasons.extend(_user_code(node, kind, mode, code))
    if kind in ("DoStmt", "CallStmt"):
        return  # opaque: one reason is enough, the arguments are no help
    if kind in _RUNNING_QUERIES:
        mode = QUERY
    elif kind == "AlterTableCmd" and getattr(node.subtype, "name", "") == "AT_ColumnDefault":
        mode = None  # SET DEFAULT stores the expression; it runs on later INSERTs (counted there)
    elif kind == "AlterDomainStmt" and node.subtype == "T":
        mode = None  # the same for a domain's SET DEFAULT
    for name in node:
        _walk(getattr(node, name), reasons, code, mode=mode)


def _own_reason(node: Any, kind: str, running: bool, code: UserCode) -> str | None:
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
    if kind == "VariableSetStmt" and (node.name or "").lower() == "track_counts":
        # The second judge (schemadiff.runner.losses) counts the rows a file deletes with these counters.
        return "setting track_counts stops PostgreSQL counting the rows the file deletes"
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
    if kind == "CopyStmt" and node.is_program:
        return "COPY ... PROGRAM runs a shell command the file does not show (it may delete data)"
    if kind == "CopyStmt" and not node.is_from and node.filename:
        return "COPY ... TO a server file overwrites whatever file the server can write there"
    if kind == "LoadStmt":
        return f"LOAD {node.filename!r} runs a library's code the file does not show"
    if kind == "FuncCall" and running:
        name = _function_name(node)
        schema, _, bare = name.rpartition(".")
        if schema not in ("", "pg_catalog") or bare not in HARMLESS_FUNCTIONS:
            return f"calls {name}(), which may delete data"
        if bare == "setval" and len(node.args or ()) >= 2 and not _reads_columns(node.args[1]):
            # generate's setval continues from the rows or the old position (an expression over columns); a
            # value that reads none is fixed and may move the sequence back, and setval is not transactional:
            # no rollback undoes it.
            return "setval to a fixed value may move a sequence back (new rows would reuse numbers); no rollback undoes it"
    return None


def _user_code(node: Any, kind: str, mode: str | None, code: UserCode) -> list[str]:
    """The user code this one node may run (see :func:`deleting_statements`), not counting its children."""
    if kind == "InsertStmt":
        return _relation_code(code, node.relation, "INSERT INTO", WRITE)
    if kind == "MergeStmt":  # its INSERT action fires the target's code (UPDATE and DELETE count anyway)
        return _relation_code(code, node.relation, "MERGE INTO", WRITE)
    if kind == "CopyStmt" and node.relation is not None and node.is_from:
        return _relation_code(code, node.relation, "COPY FROM into", WRITE)
    if kind == "AlterTableStmt":
        return _alter_table_code(node, code)
    if kind == "AlterDomainStmt" and node.subtype == "V":
        return _domain_code(code, node.typeName, "VALIDATE CONSTRAINT checks domain")
    if kind in ("ReindexStmt", "ClusterStmt", "RefreshMatViewStmt") or (kind == "VacuumStmt"):
        targets = [rel.relation for rel in node.rels or ()] if kind == "VacuumStmt" else [node.relation]
        targets = [target for target in targets if target is not None]
        verb = {"ReindexStmt": "REINDEX", "ClusterStmt": "CLUSTER", "RefreshMatViewStmt": "REFRESH",
                "VacuumStmt": "VACUUM/ANALYZE"}[kind]
        if not targets:
            return [f"{verb} of every table: {why}" for why in code.all_relations(REBUILD)]
        return [why for target in targets for why in _relation_code(code, target, verb, REBUILD)]
    if kind == "CreateStmt" and node.partbound is not None:
        return [why for parent in node.inhRelations or ()
                for why in _relation_code(code, parent, "a new partition is checked against", REBUILD)]
    if mode is None:
        return []
    if kind == "RangeVar" and mode == QUERY:
        return _relation_code(code, node, "reading", READ)
    if kind == "FuncCall":
        schema, name = _split(node.funcname)
        found = []
        if code.calls_function(schema, name):
            found.append(f"{_joined(node.funcname)}() may resolve to a user function of that name"
                         f" ({_matches(code.functions, schema, name)})")
        if schema is None and name in code.cast_targets:  # `mytype(x)`: a function-style cast
            found.extend(f"{name}(...) may apply {why}" for why in code.cast_targets[name])
        return found
    if kind == "TypeCast" and node.typeName is not None:
        _, name = _split(node.typeName.names)
        return ([f"a cast to {name} applies {why}" for why in code.cast_targets.get(name, ())]
                + _domain_code(code, node.typeName.names, "a cast to domain checks"))
    return [f"operator {'.'.join(filter(None, op))} may resolve to user code"
            f" ({_matches(code.operators, *op)})" for op in _operators(node, kind)
            if code.calls_operator(*op)]


def _operators(node: Any, kind: str) -> list[tuple[str | None, str]]:
    """The operators (schema or None, name) an expression node applies, by name or implicitly."""
    if kind == "A_Expr":
        schema, name = _split(node.name)
        if name in ("BETWEEN", "NOT BETWEEN", "BETWEEN SYMMETRIC", "NOT BETWEEN SYMMETRIC"):
            return [(None, op) for op in _COMPARISONS]
        return [(schema, name)]
    if kind == "SubLink" and getattr(node.subLinkType, "name", "") in ("ANY_SUBLINK", "ALL_SUBLINK",
                                                                       "ROWCOMPARE_SUBLINK"):
        return [_split(node.operName)] if node.operName else [(None, "=")]
    if kind == "CaseExpr" and node.arg is not None:
        return [(None, "=")]
    if kind == "SortBy" and node.useOp:
        return [_split(node.useOp)]
    return []


def _alter_table_code(node: Any, code: UserCode) -> list[str]:
    """What an ALTER TABLE's commands run of the table's own code: checks, partition keys, index expressions."""
    found: list[str] = []
    table = _relation_name(node.relation)
    for command in node.cmds or ():
        subtype = getattr(command.subtype, "name", "")
        if subtype in _REBUILDING_COMMANDS:
            found.extend(_relation_code(code, node.relation, f"ALTER TABLE {table} re-checks", REBUILD))
        elif subtype == "AT_AddColumn" and command.def_ is not None:
            column = command.def_
            if _rewrites(column, code):
                found.extend(_relation_code(code, node.relation, f"ALTER TABLE {table} rewrites", REBUILD))
            if column.typeName is not None:
                found.extend(_domain_code(code, column.typeName.names, "the new column checks domain"))
    return found


def _rewrites(column: Any, code: UserCode) -> bool:
    """Whether ADD COLUMN ``column`` rewrites the table (rebuilding its indexes, so evaluating their expressions).

    PostgreSQL (ATExecAddColumn) rewrites for a volatile default, a stored
    generated column, an identity, or a type that is a domain with
    constraints; a constant default is stored once ("fast default"). Any
    default but a constant is taken as possibly volatile.
    """
    for constraint in column.constraints or ():
        contype = getattr(constraint.contype, "name", "")
        if contype in ("CONSTR_GENERATED", "CONSTR_IDENTITY"):
            return True
        if contype == "CONSTR_DEFAULT" and not _constant(constraint.raw_expr):
            return True
    if column.typeName is None:
        return False
    schema, name = _split(column.typeName.names)
    return any(d_name == name and (schema is None or d_schema in (schema, ANY_SCHEMA))
               for d_schema, d_name in code.checked_domains)


def _reads_columns(expr: Any) -> bool:
    """Whether an expression's tree names a column anywhere (a value computed from rows or positions)."""
    from pglast import ast

    if isinstance(expr, (list, tuple)):
        return any(_reads_columns(item) for item in expr)
    if not isinstance(expr, ast.Node):
        return False
    if isinstance(expr, ast.ColumnRef):
        return True
    return any(_reads_columns(getattr(expr, name)) for name in expr)


def _constant(expr: Any) -> bool:
    """A literal, possibly cast or negated: evaluated once, whatever the table holds."""
    kind = type(expr).__name__
    if kind == "A_Const":
        return True
    if kind == "TypeCast":
        return _constant(expr.arg)
    if kind == "A_Expr" and expr.lexpr is None:  # unary minus
        return _constant(expr.rexpr)
    return False


def _relation_code(code: UserCode, relation: Any, verb: str, *roles: str) -> list[str]:
    schema = getattr(relation, "schemaname", None) or None
    return [f"{verb} {_relation_name(relation)}: {why}" for why in code.relation(schema, relation.relname, *roles)]


def _domain_code(code: UserCode, names: Any, verb: str) -> list[str]:
    schema, name = _split(names)
    return [f"{verb} {name}: {why}" for why in code.domain(schema, name)]


def _record_definitions(node: Any, kind: str, code: UserCode) -> None:
    """Add to ``code`` the user code the statement ``node`` defines, for the statements after it."""
    if kind == "CreateFunctionStmt":
        code.functions.add(_defined(node.funcname))
    elif kind == "DefineStmt" and getattr(node.kind, "name", "") == "OBJECT_AGGREGATE":
        code.functions.add(_defined(node.defnames))
    elif kind == "DefineStmt" and getattr(node.kind, "name", "") == "OBJECT_OPERATOR":
        code.operators.add(_defined(node.defnames))
    elif kind == "RenameStmt" and getattr(node.renameType, "name", "") in (
            "OBJECT_FUNCTION", "OBJECT_PROCEDURE", "OBJECT_ROUTINE", "OBJECT_AGGREGATE"):
        code.functions.add((ANY_SCHEMA, node.newname))
    elif kind == "AlterObjectSchemaStmt" and getattr(node.objectType, "name", "") in (
            "OBJECT_FUNCTION", "OBJECT_PROCEDURE", "OBJECT_ROUTINE", "OBJECT_AGGREGATE"):
        code.functions.add((ANY_SCHEMA, _split(node.object.objname)[1]))
    elif kind == "CreateCastStmt" and node.func is not None:
        target = _split(node.targettype.names)[1]
        why = f"the cast to {target} this file creates, which calls {_joined(node.func.objname)}()"
        code.cast_targets.setdefault(target, []).append(why)
        if getattr(node.context, "name", "") in ("COERCION_IMPLICIT", "COERCION_ASSIGNMENT"):
            code.implicit_casts.append(why)
    elif kind == "CreateEventTrigStmt":
        code.event_triggers.append(f"event trigger {node.trigname} (created by this file) runs on DDL")
    elif kind == "AlterEventTrigStmt" and node.tgenabled != "D":
        code.event_triggers.append(f"event trigger {node.trigname} (enabled by this file) runs on DDL")
    elif kind == "CreateStatsStmt":
        for why in _evaluated(node.exprs, code, EXPR):
            for relation in node.relations or ():
                code.add_relation(_key(relation), (REBUILD,), f"statistics {_joined(node.defnames)}: {why}")
    elif kind == "CreateTrigStmt" and code.calls_function(*_split(node.funcname)):
        code.add_relation(_key(node.relation), (WRITE,), f"trigger {node.trigname} (created by this file) runs"
                          f" {_joined(node.funcname)}()")
    elif kind == "RuleStmt":
        code.add_relation(_key(node.relation), (WRITE,), f"rule {node.rulename} (created by this file) runs its"
                          " actions")
    elif kind in ("CreatePolicyStmt", "AlterPolicyStmt"):
        for why in _evaluated([node.qual, node.with_check], code, EXPR):
            code.add_relation(_key(node.table), (READ, WRITE), f"policy {node.policy_name}: {why}")
    elif kind == "CreateDomainStmt":
        whys = _evaluated(node.constraints, code, EXPR) + _domain_code(code, node.typeName.names, "base domain")
        if whys:
            code.domains[_defined(node.domainname)] = whys
        base_schema, base = _split(node.typeName.names)
        if node.constraints or any(n == base and (base_schema is None or s in (base_schema, ANY_SCHEMA))
                                   for s, n in code.checked_domains):
            code.checked_domains.add(_defined(node.domainname))
    elif kind == "AlterDomainStmt" and node.subtype in ("C", "O"):  # a constraint or SET NOT NULL added
        code.checked_domains.add(_defined(node.typeName))
    elif kind == "CreateStmt":
        _record_table(node, code)
    elif kind == "IndexStmt":
        for why in _evaluated([node.indexParams, node.whereClause], code, EXPR):
            code.add_relation(_key(node.relation), (WRITE, REBUILD), f"index {node.idxname or ''}: {why}")
    elif kind == "AlterTableStmt":
        for command in node.cmds or ():
            for why in _evaluated(command.def_, code, EXPR):
                code.add_relation(_key(node.relation), (WRITE, REBUILD), why)
            if getattr(command.subtype, "name", "") == "AT_AttachPartition":
                _inherit(code, _key(node.relation), _key(command.def_.name))
    elif kind == "ViewStmt":
        for why in _evaluated(node.query, code, QUERY):
            code.add_relation(_key(node.view), (READ, WRITE), f"its query: {why}")
    elif kind == "CreateTableAsStmt" and getattr(node.objtype, "name", "") == "OBJECT_MATVIEW":
        for why in _evaluated(node.query, code, QUERY):
            code.add_relation(_key(node.into.rel), (REBUILD,), f"its query: {why}")
    elif kind == "RenameStmt" and node.relation is not None and node.newname and getattr(
            node.renameType, "name", "") in ("OBJECT_TABLE", "OBJECT_VIEW", "OBJECT_MATVIEW",
                                             "OBJECT_FOREIGN_TABLE"):
        _copy_relation(code, node.relation, (ANY_SCHEMA, node.newname))
    elif kind == "AlterObjectSchemaStmt" and node.relation is not None:
        _copy_relation(code, node.relation, (ANY_SCHEMA, node.relation.relname))


def _record_table(node: Any, code: UserCode) -> None:
    """A new table's defaults, checks, generated columns and domain columns run on later writes."""
    table = _key(node.relation)
    for why in _evaluated(node.tableElts, code, EXPR):
        code.add_relation(table, (WRITE, REBUILD), why)
    for element in node.tableElts or ():
        if type(element).__name__ == "ColumnDef" and element.typeName is not None:
            for why in _domain_code(code, element.typeName.names, f"column {element.colname} of domain"):
                code.add_relation(table, (WRITE, REBUILD), why)
    for parent in node.inhRelations or ():  # a partition or child shares code with its parent both ways
        _inherit(code, _key(parent), table)


def _inherit(code: UserCode, parent: tuple[str, str], child: tuple[str, str]) -> None:
    for (schema, name), by_role in list(code.relations.items()):
        if name == parent[1] and parent[0] in (schema, ANY_SCHEMA):
            for role, whys in by_role.items():
                for why in whys:
                    code.add_relation(child, (role,), why)
        if name == child[1] and child[0] in (schema, ANY_SCHEMA):  # writes and ALTERs of the parent reach the child
            for role in (WRITE, REBUILD):
                for why in by_role.get(role, ()):
                    code.add_relation(parent, (role,), why)


def _copy_relation(code: UserCode, relation: Any, new: tuple[str, str]) -> None:
    schema = getattr(relation, "schemaname", None) or None
    for role in (READ, WRITE, REBUILD):
        for why in code.relation(schema, relation.relname, role):
            code.add_relation(new, (role,), why)


def _evaluated(subtree: object, code: UserCode, mode: str) -> list[str]:
    """The user code ``subtree``'s expressions would run, evaluated in ``mode``."""
    found: list[str] = []
    _walk(subtree, found, code, mode=mode)
    return list(dict.fromkeys(found))


def _split(names: Any) -> tuple[str | None, str]:
    """(schema or None, name) from a pglast name list (``String`` nodes)."""
    parts = [getattr(part, "sval", "?") for part in names or ()]
    if not parts:
        return None, "?"
    return (parts[-2] if len(parts) > 1 else None), parts[-1]


def _defined(names: Any) -> tuple[str, str]:
    schema, name = _split(names)
    return (schema or ANY_SCHEMA, name)


def _key(relation: Any) -> tuple[str, str]:
    return (getattr(relation, "schemaname", None) or ANY_SCHEMA, relation.relname)


def _relation_name(relation: Any) -> str:
    schema = getattr(relation, "schemaname", None)
    return f"{schema}.{relation.relname}" if schema else relation.relname


def _matches(pairs: set[tuple[str, str]], schema: str | None, name: str) -> str:
    shown = sorted(f"{s}.{n}" if s != ANY_SCHEMA else f"{n}, created by a file" for s, n in pairs
                   if n == name and (schema is None or s in (schema, ANY_SCHEMA)))
    return ", ".join(shown[:3]) + (" ..." if len(shown) > 3 else "")


def _joined(names: Any) -> str:
    return ".".join(getattr(part, "sval", "?") for part in names or ())


def _function_name(call: Any) -> str:
    return _joined(getattr(call, "funcname", None))
