"""Executing a migration's statements the way the runner executes its file.

Used where the runner itself is not: replaying a directory into a shadow
database, and generate's verification of a migration that is not yet a
file. One transaction, unless the file cannot run in one (the runner's own
rule: CONCURRENTLY, a new enum value used at once, or the
``-- schemadiff:no-transaction`` marker); then statement by statement.
"""

from __future__ import annotations

from collections.abc import Sequence

import psycopg

from . import dburl
from .errors import MigrationFailed, ServerResourceError
from .migrations import no_transaction_reason
from .sqlfile import Statement, parse_statements, position_of


def run_statements(
    url: str,
    statements: Sequence[Statement],
    *,
    transactional: bool,
    what: str,
    hint: str | None = None,
    check_function_bodies: bool = True,
) -> None:
    """Run ``statements``; a failure names the statement and its position.

    ``check_function_bodies=False`` creates SQL functions without checking
    their bodies (PostgreSQL's setting of that name), as pg_dump's restore
    does, so functions may refer to ones created later.
    """
    from .shadow.server import may_be_privileged, run_privileged, server_failure

    with dburl.connect(url, what="database", autocommit=not transactional) as conn:
        if not check_function_bodies:
            conn.execute("SET check_function_bodies = off")
        for statement in statements:
            try:
                # On a shadow database, an allow-listed CREATE EXTENSION runs
                # as its administrator (the loader may not); anywhere else,
                # and for every other statement, run_privileged does nothing.
                if not (may_be_privileged(statement.text) and run_privileged(url, statement.text)):
                    conn.execute(statement.text)
            except psycopg.Error as exc:
                failure = server_failure(exc, f"{statement.position}: {what}")
                message = f"{statement.position}: {what} fails: {error_reason(exc)}\n    {statement.text.strip()[:300]}"
                resource = resource_named(exc)
                if resource is not None:  # a resource named with its setting beats the generic server message
                    raise ServerResourceError(message, hint, resource=resource) from None
                if failure is not None:
                    raise failure from None
                failed = MigrationFailed(message, hint)
                # For callers that judge the failure (verification on a copy holding rows).
                failed.sqlstate, failed.statement, failed.diag = exc.sqlstate, statement.text, exc.diag
                raise failed from None


def run_migration_text(url: str, text: str, label: str) -> None:
    """Run a migration file's text both runners' way, or raise :class:`MigrationFailed`.

    golang-migrate's postgres driver sends the whole file as ONE query
    (``Exec`` of the file's bytes, simple query protocol), which PostgreSQL
    runs as one implicit transaction: a statement that refuses a transaction
    block (CREATE INDEX CONCURRENTLY) works only alone in its file, and an
    enum value added by the file cannot be used by it. schemadiff's runner
    runs a transactional file in one transaction (the same thing) and any
    other file statement by statement. So the file is run here as
    golang-migrate sends it, after checking that schemadiff's runner would
    run it the same way: in one transaction, or as its single statement.
    """
    statements = parse_statements(text, label)
    for statement in statements:
        if statement.kind == "VariableSetStmt" and not statement.node.is_local:
            # golang-migrate runs a whole directory on one connection: a session
            # SET would change what the next files do, and only in a run that
            # was not interrupted (schemadiff resets the session between files).
            raise MigrationFailed(
                f"{statement.position}: {label} changes the session ({statement.text.strip()[:80]}),"
                " which would leak into later files under golang-migrate",
                "Generated files set only SET LOCAL settings.",
            )
    reason = no_transaction_reason(text, statements)
    if reason is not None and len(statements) > 1:
        raise MigrationFailed(
            f"{label} cannot run in one transaction ({reason}) but holds {len(statements)} statements:"
            " golang-migrate sends a file as one query, so it would run them in one implicit transaction",
            "Such a statement must be alone in its file.",
        )
    if not statements:
        return
    from .shadow.server import may_be_privileged, run_privileged

    with dburl.connect(url, what="database", autocommit=True) as conn:
        if not any(may_be_privileged(statement.text) for statement in statements):
            _send(conn, text, label, label)  # no parameters: psycopg sends it as one simple query, like lib/pq
            return
        # On a shadow database, an allow-listed CREATE EXTENSION runs as its
        # administrator (the loader may not): the statements before it are
        # sent as one query, it runs as the administrator, then the rest.
        # Anywhere else run_privileged runs nothing and the file is one query.
        batch: list[Statement] = []
        for statement in statements:
            if may_be_privileged(statement.text):
                try:
                    if batch:
                        _send_batch(conn, batch, label)
                        batch = []
                    if run_privileged(url, statement.text):
                        continue
                except psycopg.Error as exc:
                    _raise(exc, f"{statement.position}", label, statement.text)
            batch.append(statement)
        if batch:
            _send_batch(conn, batch, label)


def _send_batch(conn: psycopg.Connection, batch: Sequence[Statement], label: str) -> None:
    if len(batch) == 1:
        try:
            conn.execute(batch[0].text)
        except psycopg.Error as exc:
            _raise(exc, f"{batch[0].position}", label, batch[0].text)
        return
    _send(conn, ";\n".join(statement.text for statement in batch), f"{batch[0].position}", label)


def _send(conn: psycopg.Connection, text: str, where: str, label: str) -> None:
    try:
        conn.execute(text)
    except psycopg.Error as exc:
        offset = getattr(getattr(exc, "diag", None), "statement_position", None)
        if where == label and offset and str(offset).isdigit():
            where = position_of(text, int(offset) - 1, label)
        _raise(exc, where, label, text)


def _raise(exc: psycopg.Error, where: str, label: str, text: str | None = None) -> None:
    """Raise what a failed statement means, as run_statements does.

    A server's limit (ServerResourceError) and a statement the shadow's loader
    may not run (shadow.server_failure) are said as such, not as a wrong
    migration; anything else is a MigrationFailed carrying the SQLSTATE and
    the diagnostics (verification on a copy holding rows reads them).
    """
    from .shadow.server import server_failure

    prefix = f"{where}: {label}" if where != label else label  # the label alone when no position
    message = f"{prefix} fails: {error_reason(exc)}"
    resource = resource_named(exc)
    if resource is not None:  # a limit of the server, named with its setting: not the SQL's fault
        raise ServerResourceError(message, resource=resource) from None
    failure = server_failure(exc, prefix)
    if failure is not None:
        raise failure from None
    failed = MigrationFailed(message)
    # For callers that judge the failure (verification on a copy holding rows).
    failed.sqlstate, failed.statement, failed.diag = exc.sqlstate, text, exc.diag
    raise failed from None


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
