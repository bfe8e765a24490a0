"""The one executor: how a migration file (or a list of statements) runs on a database.

Everything in schemadiff that runs migration SQL goes through here:
``apply`` (``schemadiff.runner.apply``), the shadow's replay of a directory
(``schemadiff.shadow.replay``), generate's verification of a pair before it
is written (``schemadiff.shadow.verify``), online mode's downs
(``schemadiff.online``) and rename hints (``schemadiff.hints``). So a file
is proven the way it will be applied: the same function, the same
transaction mode, the same session reset, the same error text.

The rules, and where they come from:

* **One transaction per file, unless it cannot be in one.** golang-migrate's
  postgres driver sends a whole file as ONE query (``Exec`` of the file's
  bytes with no arguments: lib/pq's simple query protocol), which
  PostgreSQL runs as one implicit transaction (PostgreSQL docs, "Multiple
  Statements in a Simple Query"). schemadiff's runner runs such a file in
  one explicit transaction, statement by statement, so that the version
  row commits with it and a failure names its statement. A file cannot run
  in one transaction when it holds a statement PostgreSQL refuses in a
  transaction block (docs of each: CREATE/DROP INDEX CONCURRENTLY, REINDEX
  CONCURRENTLY or of a schema, the system or the database, VACUUM, CLUSTER
  without a table, DISCARD ALL, DETACH PARTITION ... CONCURRENTLY, CREATE /
  DROP DATABASE or TABLESPACE, ALTER DATABASE ... SET TABLESPACE, ALTER
  SYSTEM, subscriptions), uses an enum value it adds (``ALTER TYPE ... ADD VALUE``: "unsafe
  use of new value" until the adding transaction commits, docs, ALTER TYPE
  notes), or is marked ``-- schemadiff:no-transaction``
  (:func:`no_transaction_reason`). Such a file runs statement by statement,
  each in its own transaction (autocommit); it must not leave a
  transaction open. A ``BEGIN; ... COMMIT;`` around a whole transactional
  file is dropped (the runner's transaction replaces it); any other
  transaction control in a transactional file is refused.
* **Session state per file.** golang-migrate keeps one connection for a
  whole run, so a file's ``SET``, ``SET ROLE`` or temporary table reaches
  the files after it, but only in a run that was not interrupted. A
  :class:`Session` gives every file the state the connection started with
  (:meth:`Session.reset`, ``DISCARD ALL`` without releasing the advisory
  lock), then its own settings (:class:`Settings`: golang-migrate's
  ``x-statement-timeout``, ``check_function_bodies`` for the shadow's
  replay). Run-time parameters of the URL (``lock_timeout=...``,
  ``search_path=...``, the shadow's time limit) are the connection's
  start-up values, which the reset returns to. The runner, the replay and
  verification all run consecutive files on one session this way.
* **The version table through a hook.** The runner passes a
  :class:`VersionHook`: a transactional file's version row is written in
  the file's transaction; a file that cannot be in one runs under
  golang-migrate's dirty protocol (dirty before, clean after, the error
  recorded on failure). Replay and verification pass none.
* **One error text.** A failing statement raises :class:`MigrationFailed`
  saying ``file:line:column: what failed: reason (SQLSTATE XXXXX)`` (the
  server's error position moves the column; its detail and hint are kept)
  and the statement's first lines, with ``sqlstate``, ``statement`` and
  ``diag`` set for callers that judge the failure. A server that ran out of
  a resource (SQLSTATE classes 53, 54) raises :class:`ServerResourceError`
  naming it; a session's ``classify`` (the shadow's ``server_failure``)
  may say first that the failure is the server's, not the SQL's.

Where golang-migrate differs from this runner, generated files must mean the
same under both (the services run golang-migrate), so verification also
refuses what :func:`golang_migrate_difference` finds: a session ``SET``
(leaks into later files), a non-transactional file of several statements
(golang-migrate sends them as one implicit transaction), and what
PostgreSQL refuses in an implicit transaction block but accepts in the
runner's explicit one (SAVEPOINT, a lone LOCK or DECLARE). golang-migrate's
``x-multi-statement`` (split the file on every ``;`` and run each piece on
its own) is accepted by ``schemadiff.migrateurl`` and not followed: the
grammar-aware split and one transaction per file are safer, and a generated
file means the same either way once it passes the checks above. Its
``x-statement-timeout`` bounds each ``Exec`` (a whole file) with a client
context; here it is PostgreSQL's ``statement_timeout``, per statement.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import psycopg

from . import dburl
from .errors import CommandError, MigrationDirectoryError, MigrationFailed, ServerResourceError, SourcePosition
from .sqlfile import Statement, parse_statements, position_of

NO_TRANSACTION_MARKER = "-- schemadiff:no-transaction"


# --- what a file is, and how it must run ------------------------------------------------------------


@dataclass(frozen=True)
class Script:
    """A migration's statements and how they run.

    ``name``: what the file is called in messages (``000002_add.up.sql``);
    each statement's position names its path. ``transactional``: the
    statements run in one transaction; otherwise ``reason`` says why not
    (:func:`no_transaction_reason`). ``wrapped``: the file's own ``BEGIN;
    ... COMMIT;`` around everything was dropped from ``statements``.
    """

    name: str
    statements: tuple[Statement, ...]
    transactional: bool
    reason: str | None = None
    wrapped: bool = False


def script_from_text(text: str, path: str, name: str | None = None) -> Script:
    """Parse ``text`` and decide how it runs (see the module's rules).

    ``path`` goes into positions, ``name`` (default: ``path``) into
    messages. Raises :class:`SQLSyntaxError` for SQL that does not parse and
    :class:`MigrationDirectoryError` for transaction control inside a
    transactional file other than a ``BEGIN ... COMMIT`` around all of it.
    """
    name = name or path
    statements = parse_statements(text, path)
    reason = no_transaction_reason(text, statements)
    wrapped = False
    if reason is None:
        unwrapped = _unwrap_transaction(statements, name)
        wrapped = len(unwrapped) != len(statements)
        statements = unwrapped
    # Outside a transaction, BEGIN/COMMIT written in the file run as written.
    return Script(name, tuple(statements), reason is None, reason, wrapped)


def script_from_statements(statements: Sequence[str], name: str) -> Script:
    """A script of SQL statements generated in memory (one file's worth), decided as a file of them would be."""
    # Each ";" on a line of its own: a statement ending in a "--" comment must not swallow it.
    return script_from_text("".join(f"{text.rstrip()}\n;\n" for text in statements), name)


def no_transaction_reason(text: str, statements: Sequence[Statement]) -> str | None:
    """Why a migration's text cannot run in one transaction, or None when it can.

    The one rule for the runner, the replay and verification (see the
    module's docstring for where each case comes from).
    """
    if has_comment_line(text, NO_TRANSACTION_MARKER):
        return f"marked `{NO_TRANSACTION_MARKER}`"
    for index, statement in enumerate(statements):
        what = _forbids_transaction(statement, statements[index + 1 :])
        if what:
            return f"{what} at line {statement.position.line} cannot run inside a transaction"
    return None


def has_comment_line(text: str, marker: str) -> bool:
    """Whether ``marker`` is a whole SQL comment of ``text`` (not inside a string or a statement)."""
    from pglast import parser as pg_parser

    if marker not in text:  # the common case: no need to scan every token
        return False
    try:
        tokens = pg_parser.scan(text)
    except pg_parser.ParseError:  # pragma: no cover - the file parsed already
        return False
    return any(
        token.name == "SQL_COMMENT" and text[token.start : token.end + 1].strip() == marker
        for token in tokens
    )


def _unwrap_transaction(statements: list[Statement], name: str) -> list[Statement]:
    """Drop a ``BEGIN; ... COMMIT;`` around the whole file, refuse any other.

    golang-migrate users often wrap files in BEGIN/COMMIT; schemadiff runs
    each file in its own transaction, where a COMMIT in the middle would end
    it early and let the version update miss the changes it covers.
    """
    kinds = [_transaction_kind(s) for s in statements]
    if len(statements) >= 2 and kinds[0] in ("BEGIN", "START") and kinds[-1] == "COMMIT":
        if not any(kind in _BLOCK_CONTROL for kind in kinds[1:-1]):
            return statements[1:-1]
    for statement, kind in zip(statements, kinds):
        if kind in _BLOCK_CONTROL:
            raise MigrationDirectoryError(
                f"{statement.position}: {name} controls transactions itself ({statement.text.strip()})",
                "schemadiff runs each migration file in its own transaction: remove BEGIN/COMMIT/ROLLBACK"
                f" (a BEGIN ... COMMIT around the whole file is fine), or mark the file with a line"
                f" `{NO_TRANSACTION_MARKER}`.",
            )
    return statements


# Statements that open or close a transaction block (savepoints are fine inside one).
_BLOCK_CONTROL = {"BEGIN", "START", "COMMIT", "ROLLBACK", "PREPARE", "COMMIT_PREPARED", "ROLLBACK_PREPARED"}
# Savepoints: accepted in an explicit transaction block, refused in the implicit one of a multi-statement query.
_SAVEPOINTS = {"SAVEPOINT", "RELEASE", "ROLLBACK_TO"}


def _transaction_kind(statement: Statement) -> str | None:
    if statement.kind != "TransactionStmt":
        return None
    return str(statement.node.kind.name).removeprefix("TRANS_STMT_")


def _forbids_transaction(statement: Statement, later: Sequence[Statement]) -> str | None:
    node, kind = statement.node, statement.kind
    if kind == "IndexStmt" and node.concurrent:
        return "CREATE INDEX CONCURRENTLY"
    if kind == "DropStmt" and node.concurrent:
        return "DROP INDEX CONCURRENTLY"
    if kind == "ReindexStmt":
        options = {param.defname for param in node.params or ()}
        if "concurrently" in options:
            return "REINDEX ... CONCURRENTLY"
        if node.kind.name in ("REINDEX_OBJECT_SCHEMA", "REINDEX_OBJECT_SYSTEM", "REINDEX_OBJECT_DATABASE"):
            return "REINDEX SCHEMA/SYSTEM/DATABASE"
    if kind == "VacuumStmt" and node.is_vacuumcmd:
        return "VACUUM"
    if kind == "ClusterStmt" and node.relation is None:
        return "CLUSTER without a table"
    if kind == "DiscardStmt" and node.target.name == "DISCARD_ALL":
        return "DISCARD ALL"
    if kind == "AlterTableStmt" and any(
        cmd.subtype.name == "AT_DetachPartition" and getattr(cmd.def_, "concurrent", False) for cmd in node.cmds
    ):
        return "DETACH PARTITION ... CONCURRENTLY"
    if kind == "AlterDatabaseStmt" and any(option.defname == "tablespace" for option in node.options or ()):
        return "ALTER DATABASE ... SET TABLESPACE"
    if kind in _NEVER_IN_TRANSACTION:
        return _NEVER_IN_TRANSACTION[kind]
    if kind == "AlterEnumStmt" and node.newVal and not node.oldVal:
        # Since PostgreSQL 12 ADD VALUE runs in a transaction, but the new
        # value cannot be used before that transaction commits.
        if any(node.newVal in _string_constants(s.node) for s in later):
            return f"ALTER TYPE ... ADD VALUE '{node.newVal}' used later in the same file"
    return None


# Statements PostgreSQL refuses in a transaction block (its PreventInTransactionBlock
# callers, PostgreSQL 16; those above depend on an option). Partitioned tables'
# CLUSTER/REINDEX are refused too but cannot be told from the text: such a file
# fails in the runner's transaction, and is marked by hand.
_NEVER_IN_TRANSACTION = {
    "CreatedbStmt": "CREATE DATABASE",
    "CreateSubscriptionStmt": "CREATE SUBSCRIPTION",
    "AlterSubscriptionStmt": "ALTER SUBSCRIPTION",
    "DropSubscriptionStmt": "DROP SUBSCRIPTION",
    "DropdbStmt": "DROP DATABASE",
    "AlterSystemStmt": "ALTER SYSTEM",
    "CreateTableSpaceStmt": "CREATE TABLESPACE",
    "DropTableSpaceStmt": "DROP TABLESPACE",
}


def _string_constants(node: object) -> set[str]:
    from pglast import visitors

    found: set[str] = set()

    class Constants(visitors.Visitor):  # type: ignore[misc]
        def visit_A_Const(self, ancestors: object, const: object) -> None:
            value = getattr(const, "val", None)
            if type(value).__name__ == "String":
                found.add(value.sval)  # type: ignore[union-attr]

    Constants()(node)
    return found


def golang_migrate_difference(script: Script) -> MigrationFailed | None:
    """Why ``script`` would not mean under golang-migrate what it means under this runner, or None.

    golang-migrate (v4 postgres driver) runs a directory on one connection
    and sends each file as one query, which PostgreSQL runs as one implicit
    transaction block (a single statement: as itself, outside any block).
    So, for a file this runner accepts:

    * session state (a ``SET``, ``set_config(..., false)``, a temporary
      table, a prepared statement: :func:`_keeps_session_state`) leaks into
      the files after it, and only in an uninterrupted run; this runner
      resets the session per file;
    * a file that cannot run in a transaction but holds several statements
      runs them in one implicit transaction there (CONCURRENTLY fails, an
      added enum value cannot be used); this runner runs them one by one;
    * SAVEPOINT/RELEASE/ROLLBACK TO are refused in an implicit block, and
      LOCK and DECLARE (without HOLD) outside any block (SQLSTATE 25P01),
      while the runner's explicit transaction accepts them.

    Verification refuses such a generated file; the runner still applies
    hand-written ones its own way.
    """
    statements = script.statements
    for statement in statements:
        if _keeps_session_state(statement):
            return MigrationFailed(
                f"{statement.position}: {script.name} changes the session ({statement.text.strip()[:80]}),"
                " which would leak into later files under golang-migrate",
                "Generated files set only SET LOCAL settings and create no temporary objects.",
            )
    if not script.transactional and len(statements) > 1:
        return MigrationFailed(
            f"{script.name} cannot run in one transaction ({script.reason}) but holds {len(statements)}"
            " statements: golang-migrate sends a file as one query, so it would run them in one implicit"
            " transaction",
            "Such a statement must be alone in its file.",
        )
    if script.transactional and not script.wrapped:
        for statement in statements:
            if _transaction_kind(statement) in _SAVEPOINTS:
                return _implicit_block_refuses(script, statement, "a savepoint is refused in the implicit"
                                               " transaction of a multi-statement query")
        if len(statements) == 1 and _needs_transaction_block(statements[0]):
            return _implicit_block_refuses(script, statements[0], "alone in its file, it runs outside any"
                                           " transaction block, where PostgreSQL refuses it")
    return None


def _keeps_session_state(statement: Statement) -> bool:
    """Whether ``statement`` leaves state in the session that outlives its file (and its transaction).

    A session ``SET``/``RESET`` (``SET ROLE`` and ``SET SESSION
    AUTHORIZATION`` included), ``set_config(name, value, false)``, a
    temporary table, view or sequence, a prepared statement, a cursor
    ``WITH HOLD``: what :meth:`Session.reset` undoes between files and
    golang-migrate's reused connection keeps.
    """
    from pglast import visitors

    kind, node = statement.kind, statement.node
    if kind == "VariableSetStmt":
        return not node.is_local
    if kind in ("PrepareStmt",):
        return True
    if kind == "DeclareCursorStmt":
        return bool(node.options & _CURSOR_OPT_HOLD)
    found = False

    class Finder(visitors.Visitor):  # type: ignore[misc]
        def visit_RangeVar(self, ancestors: object, range_var: object) -> None:
            nonlocal found
            # Only where the statement creates the relation: CREATE TABLE/VIEW/SEQUENCE, CREATE TABLE AS, SELECT INTO.
            if getattr(range_var, "relpersistence", "p") == "t" and kind in _CREATES_RELATIONS:
                found = True

        def visit_FuncCall(self, ancestors: object, call: object) -> None:
            nonlocal found
            name = [getattr(part, "sval", "") for part in getattr(call, "funcname", ()) or ()]
            args = list(getattr(call, "args", ()) or ())
            if name and name[-1].lower() == "set_config" and len(args) == 3 and not _is_true(args[2]):
                found = True

    Finder()(node)
    return found


_CREATES_RELATIONS = {"CreateStmt", "CreateTableAsStmt", "ViewStmt", "CreateSeqStmt", "SelectStmt"}
_CURSOR_OPT_HOLD = 0x0020  # PostgreSQL's parsenodes.h


def _is_true(node: object) -> bool:
    value = getattr(node, "val", None)
    if type(value).__name__ == "Boolean":
        return bool(getattr(value, "boolval", False))
    return type(value).__name__ == "String" and str(getattr(value, "sval", "")).lower() in ("t", "true", "on", "yes")


def _needs_transaction_block(statement: Statement) -> bool:
    # PostgreSQL's RequireTransactionBlock callers: LOCK, and DECLARE of a cursor without HOLD.
    if statement.kind == "LockStmt":
        return True
    if statement.kind == "DeclareCursorStmt":
        return not (statement.node.options & _CURSOR_OPT_HOLD)
    return False


def _implicit_block_refuses(script: Script, statement: Statement, why: str) -> MigrationFailed:
    return MigrationFailed(
        f"{statement.position}: {script.name} would fail under golang-migrate ({why}):"
        f" {statement.text.strip()[:80]}",
        "Wrap the file in BEGIN; ... COMMIT; or remove the statement.",
    )


# --- running it --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Settings:
    """A session's own settings, set when it starts and again after every reset.

    ``statement_timeout_ms``: PostgreSQL's ``statement_timeout`` for each
    statement (golang-migrate's ``x-statement-timeout``; None: the server's
    or the connection's own). ``check_function_bodies``: False creates SQL
    functions without checking their bodies, as pg_dump's restore does
    (the shadow's replay, where functions may call ones created later).
    """

    statement_timeout_ms: int | None = None
    check_function_bodies: bool = True


class VersionHook(Protocol):
    """The version-table writes around one file (the runner's; replay and verification pass none).

    ``begun`` runs first inside a transactional file's transaction, before
    its statements; ``in_transaction`` inside it after them, so the version
    commits with them. A file that cannot
    be in one runs under golang-migrate's dirty protocol: ``before``
    (committed before any statement: dirty), then ``after`` on success or
    ``failed`` with the error. Durations are milliseconds.
    """

    def before(self) -> None: ...

    def begun(self) -> None: ...

    def in_transaction(self, duration_ms: int) -> None: ...

    def after(self, duration_ms: int) -> None: ...

    def failed(self, error: MigrationFailed, duration_ms: int) -> None: ...


# Runs a statement some other way (the shadow's administrator creating an
# allow-listed extension); True when it did, False to run it as usual.
Privileged = Callable[[str], bool]
# Says a failure is not the SQL's fault (the shadow server's trouble); None: it is.
Classify = Callable[[psycopg.Error, str], "CommandError | None"]
# The hint of a failure: (transactional, the failing line) -> text.
Hint = Callable[[bool, int], str]

# What a fresh connection would not have, undone between files: settings
# (SET search_path, SET ROLE ... made by a file), session authorization,
# temporary tables, prepared statements, cursors, LISTEN, cached plans and
# sequence state. It is DISCARD ALL without pg_advisory_unlock_all(): the
# runner's migration lock must stay held (PostgreSQL docs, "DISCARD").
# RESET ALL returns to the connection's start-up values (the shadow's time
# limit is one). The connection must not prepare statements itself
# (Session sets prepare_threshold None): psycopg would otherwise prepare
# repeated queries and, not knowing DEALLOCATE ALL removed them, fail the
# next file with 'prepared statement "_pg3_1" does not exist'.
_RESET_SESSION = (
    "CLOSE ALL",
    "SET SESSION AUTHORIZATION DEFAULT",
    "RESET ALL",
    "DEALLOCATE ALL",
    "UNLISTEN *",
    "DISCARD PLANS",
    "DISCARD TEMP",
    "DISCARD SEQUENCES",
)
_RESET_SESSION_SCRIPT = "; ".join(_RESET_SESSION)


class Session:
    """One connection running migration files one after another (see the module's rules).

    ``conn`` must be in autocommit mode (transactions are opened here);
    ``settings`` are set now and after every reset. ``privileged`` and
    ``classify`` are the shadow server's (``schemadiff.shadow.server``:
    allow-listed ``CREATE EXTENSION`` run by its administrator, and server
    failures told apart from the SQL's); None elsewhere.
    """

    def __init__(self, conn: psycopg.Connection, settings: Settings = Settings(), *,
                 privileged: Privileged | None = None, classify: Classify | None = None) -> None:
        self.conn = conn
        self.settings = settings
        self.privileged = privileged
        self.classify = classify
        conn.prepare_threshold = None  # DEALLOCATE ALL in reset() must not pull statements from under psycopg
        self._check_interval: bool | None = None  # does the server know client_connection_check_interval (14+)?
        self.configure()

    @classmethod
    @contextlib.contextmanager
    def open(cls, url: str, settings: Settings = Settings(), *, what: str = "database",
             privileged: Privileged | None = None, classify: Classify | None = None) -> Iterator[Session]:
        """A session on a connection of its own to ``url``, closed after the block."""
        with dburl.connect(url, what=what, autocommit=True) as conn:
            yield cls(conn, settings, privileged=privileged, classify=classify)

    def configure(self) -> None:
        """The session's own settings, after connecting and after each reset."""
        settings = []
        if self.settings.statement_timeout_ms:
            settings.append(f"SET statement_timeout = {int(self.settings.statement_timeout_ms)}")
        if not self.settings.check_function_bodies:
            settings.append("SET check_function_bodies = off")
        if self._check_interval is not False:
            # Let the server notice a vanished client during a long statement and
            # roll back at once, instead of finishing the statement first.
            settings.insert(0, "SET client_connection_check_interval = '1s'")
        if not settings:
            return
        try:
            self.conn.execute("; ".join(settings))  # one round trip, as in reset()
        except psycopg.Error:
            if self._check_interval is not None:
                raise
            # PostgreSQL before 14 has no client_connection_check_interval: without it from now on.
            self._check_interval = False
            self.configure()
            return
        self._check_interval = True

    def reset(self) -> None:
        """Give the next file the session state the connection started with (then :meth:`configure`)."""
        # One round trip, not eight: without parameters psycopg sends the
        # string as one simple query, which PostgreSQL runs statement by
        # statement in one implicit transaction (none of these refuses one;
        # the SETs it undoes are session-level and stay undone). A runner
        # applying hundreds of small files paid ~1.5 ms per file for the
        # separate round trips (benchmarks/scale.py, apply overhead).
        self.conn.execute(_RESET_SESSION_SCRIPT)
        self.configure()

    def run(self, script: Script, *, what: str | None = None, hook: VersionHook | None = None,
            hint: str | Hint | None = None) -> int:
        """Run ``script`` after a session reset; return how long its statements took (milliseconds).

        ``what`` names it in errors (default ``migration NAME``); ``hint``
        replaces the default hint of a failure (a text, or a function of
        the file's transaction mode and the failing line). Raises
        :class:`MigrationFailed` (or what ``classify`` says) for a failing
        statement: a transactional file is rolled back whole (the hook's
        writes with it), a file outside a transaction keeps the statements
        before it and the hook records the failure.
        """
        what = what or f"migration {script.name}"
        self.reset()
        if script.transactional:
            started = time.monotonic()
            with self.conn.transaction():
                if hook is not None:
                    hook.begun()
                self._statements(script, what, hint)
                duration_ms = _elapsed_ms(started)
                if hook is not None:
                    hook.in_transaction(duration_ms)
            return duration_ms
        if hook is not None:
            hook.before()
        started = time.monotonic()
        try:
            self._statements(script, what, hint)
            if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                with contextlib.suppress(psycopg.Error):
                    self.conn.execute("ROLLBACK")
                opened = [s for s in script.statements if _transaction_kind(s) in ("BEGIN", "START")]
                line = (opened or list(script.statements))[-1].position.line
                raise MigrationFailed(
                    f"{script.name} left a transaction open (BEGIN without COMMIT at line {line}); it was rolled"
                    " back",
                    _hint(hint, False, line) if hint is not None else _default_hint(script, line),
                )
        except MigrationFailed as failure:
            if hook is not None:
                with contextlib.suppress(psycopg.Error):
                    if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                        self.conn.execute("ROLLBACK")
                    hook.failed(failure, _elapsed_ms(started))
            raise
        duration_ms = _elapsed_ms(started)
        if hook is not None:
            hook.after(duration_ms)
        return duration_ms

    def _statements(self, script: Script, what: str, hint: str | Hint | None) -> None:
        for statement in script.statements:
            try:
                if not (self.privileged is not None and self.privileged(statement.text)):
                    self.conn.execute(statement.text)
            except psycopg.Error as exc:
                raise self._failure(exc, statement, script, what, hint) from None

    def _failure(self, exc: psycopg.Error, statement: Statement, script: Script, what: str,
                 hint: str | Hint | None) -> CommandError:
        where = error_position(statement, exc)
        code = f" (SQLSTATE {exc.sqlstate})" if exc.sqlstate else ""
        message = f"{where}: {what} failed: {error_reason(exc)}{code}\n    {first_lines(statement.text)}"
        if hint is None:
            shown = _default_hint(script, where.line)
        else:
            shown = _hint(hint, script.transactional, where.line)
        resource = resource_named(exc)
        if resource is not None:  # a resource named with its setting beats the generic server message
            return ServerResourceError(message, shown, resource=resource)
        if self.classify is not None:
            other = self.classify(exc, f"{where}: {what}")
            if other is not None:
                return other
        failed = MigrationFailed(message, shown)
        # For callers that judge the failure (verification on a copy holding rows).
        failed.sqlstate, failed.statement, failed.diag = exc.sqlstate, statement.text, exc.diag
        return failed


def _hint(hint: str | Hint, transactional: bool, line: int) -> str:
    return hint if isinstance(hint, str) else hint(transactional, line)


def _default_hint(script: Script, line: int) -> str:
    if script.transactional:
        return f"Nothing of {script.name} was applied (it ran in one transaction, rolled back)."
    return f"{script.name} runs outside a transaction, so its statements before line {line} stay applied."


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def error_position(statement: Statement, exc: psycopg.Error) -> SourcePosition:
    """The failing spot in the file: the statement's start, moved by the server's error position."""
    start = statement.position
    offset = getattr(getattr(exc, "diag", None), "statement_position", None)
    if not offset or not str(offset).isdigit():
        return start
    inner = position_of(statement.text, int(offset) - 1, start.path)
    column = start.column + inner.column - 1 if inner.line == 1 else inner.column
    return SourcePosition(start.path, start.line + inner.line - 1, column)


def first_lines(text: str, limit: int = 4) -> str:
    """A statement's first ``limit`` lines, indented for a message (``...`` when there are more)."""
    lines = text.strip().splitlines()
    return "\n    ".join(lines[:limit] + (["..."] if len(lines) > limit else []))


def error_reason(exc: psycopg.Error) -> str:
    """The server's message, with its detail and hint when it gives them.

    The hint matters for resource errors: "out of shared memory" alone does
    not say which memory; PostgreSQL's hint names max_locks_per_transaction.
    """
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag else None
    reason = primary or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    detail = getattr(diag, "message_detail", None) if diag else None
    server_hint = getattr(diag, "message_hint", None) if diag else None
    reason = f"{reason} ({detail})" if detail else reason
    return f"{reason}; server hint: {server_hint}" if server_hint else reason


# SQLSTATE classes 53 (insufficient resources) and 54 (program limit
# exceeded), PostgreSQL's errcodes appendix: the server's limits, not the SQL.
_RESOURCES = {
    "53000": "a resource",
    "53100": "disk space",
    "53200": "memory",
    "53300": "connection slots (max_connections)",
    "53400": "a configured limit",
    "54000": "a program limit",
    "54001": "stack depth (max_stack_depth): a statement too complex",
    "54011": "columns (a table holds at most 1,600)",
    "54023": "function arguments (at most 100)",
}


def resource_named(exc: psycopg.Error) -> str | None:
    """What the server ran out of, for SQLSTATE classes 53 and 54; None for any other error."""
    code = getattr(exc, "sqlstate", None) or ""
    if not code.startswith(("53", "54")):
        return None
    server_hint = getattr(getattr(exc, "diag", None), "message_hint", None) or ""
    if code == "53200" and "max_locks_per_transaction" in server_hint:
        # "out of shared memory" from the lock table: one transaction locks
        # more objects than max_locks_per_transaction x connections holds.
        return "lock table space (max_locks_per_transaction)"
    return _RESOURCES.get(code, _RESOURCES[code[:2] + "000"])


def run_migration_text(session: Session, text: str, label: str) -> int:
    """Run a generated file's ``text`` as ``apply`` will and refuse what golang-migrate would run otherwise.

    Verification's entry (``schemadiff.shadow.verify``): the text is read by
    the same rule as a file on disk (:func:`script_from_text`, positions
    named ``label:line:column``), refused with :class:`MigrationFailed` when
    :func:`golang_migrate_difference` finds a difference, then run by
    :meth:`Session.run` exactly as the runner runs a file (session reset,
    transaction mode, error text). Returns the milliseconds it took.
    """
    script = script_from_text(text, label)
    different = golang_migrate_difference(script)
    if different is not None:
        raise different
    return session.run(script, what=label)
