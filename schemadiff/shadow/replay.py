"""Loading SQL into shadow databases: a desired-state file, or the up files of
a migration directory replayed in version order.

A desired file loads in batches, replayed one statement at a time only to
name the statement that failed; migration files run through the one
executor (``schemadiff.execute``) on a :func:`session` of the shadow, the way
``apply`` runs them. The database is a throwaway one: a failure leaves
nothing behind that matters (the caller drops it).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import psycopg

from .. import dburl
from ..errors import CommandError, DatabaseError, MigrationDirectoryError
from ..execute import Session, Settings, error_reason
from ..migrations import MigrationDirectory, read_script
from .server import may_be_privileged, run_privileged, server_failure, timeout_failure
from ..sqlfile import Statement

# SQL function bodies may call functions defined further down the file (or
# each other): like pg_dump's own output, the shadow checks them when they
# are called, not when they are created. (PostgreSQL docs, runtime config:
# check_function_bodies "false ... when loading function definitions".)
SKIP_FUNCTION_BODY_CHECKS = "SET check_function_bodies = off"

_BATCH = 250  # statements per round trip: one implicit transaction must not exhaust the lock table


def load_statements(url: str, statements: Sequence[Statement], what: str) -> None:
    """Execute parsed statements into the database at ``url``.

    Fast path: a few hundred statements per round trip, each batch one
    implicit transaction (a whole 3,000-table file in one would run out of
    the server's lock table), so a failing batch leaves nothing of itself
    applied. That batch, or one holding statements that refuse a
    transaction block (CREATE INDEX CONCURRENTLY), then runs one statement
    at a time in autocommit, which tells which statement failed and where.
    """
    if not statements:
        return
    with dburl.connect(url, what="shadow database", autocommit=True) as conn:
        conn.execute(SKIP_FUNCTION_BODY_CHECKS)
        for batch in _batches(statements):
            if len(batch) == 1 and _privileged(url, batch[0], what):
                continue
            try:
                conn.execute(";\n".join(statement.text for statement in batch))
                continue
            except psycopg.Error as exc:
                # Stopped by the time limit: running the batch again one by one would take as long again.
                stopped = timeout_failure(exc, _span(batch, what))
                if stopped is not None:
                    raise stopped from None
                # else replayed one by one below, for the message or for CONCURRENTLY
            for statement in batch:
                try:
                    conn.execute(statement.text)
                except psycopg.Error as exc:
                    raise _load_failure(exc, statement, what) from None


def _span(batch: Sequence[Statement], what: str) -> str:
    """Where a batch sits: ``file:line: what`` for one statement, ``file lines A-B: what`` for several."""
    first, last = batch[0].position, batch[-1].position
    if len(batch) == 1:
        return f"{first}: {what}"
    return f"{first.path} lines {first.line}-{last.line}: {what}"


def _batches(statements: Sequence[Statement]) -> Iterator[Sequence[Statement]]:
    """Runs of up to _BATCH statements; a CREATE EXTENSION is a batch of its own (it may run as the administrator)."""
    start = 0
    for index, statement in enumerate(statements):
        if index - start >= _BATCH or (index > start and may_be_privileged(statement.text)):
            yield statements[start:index]
            start = index
        if may_be_privileged(statement.text):
            yield statements[index : index + 1]
            start = index + 1
    if start < len(statements):
        yield statements[start:]


def _privileged(url: str, statement: Statement, what: str) -> bool:
    """Run an allow-listed CREATE EXTENSION as the shadow's administrator (see ``shadow.run_privileged``)."""
    try:
        return run_privileged(url, statement.text)
    except psycopg.Error as exc:
        raise _load_failure(exc, statement, what) from None


def _load_failure(exc: psycopg.Error, statement: Statement, what: str) -> CommandError:
    """What a statement the server refused means: the server's trouble, or the SQL's (with its first lines)."""
    failure = server_failure(exc, f"{statement.position}: {what}")
    if failure is not None:
        return failure
    return DatabaseError(
        f"{statement.position}: {what} does not load on PostgreSQL: {error_reason(exc)}\n    "
        + "\n    ".join(statement.text.strip().splitlines()[:6]),
        "Fix the SQL (it parses, but the server rejects it) and run the command again; nothing was written.",
    )


@contextlib.contextmanager
def session(url: str, *, check_function_bodies: bool = True) -> Iterator[Session]:
    """An executor session (``schemadiff.execute.Session``) on the shadow database at ``url``.

    As ``apply``'s, with the shadow's two differences: an allow-listed
    ``CREATE EXTENSION`` runs as the server's administrator
    (``server.run_privileged``), and a failure that is the server's (a
    missing extension, a resource, the time limit) or a statement the
    loader may not run is said as such (``server.server_failure``).
    ``check_function_bodies=False`` is a replay's setting (see
    :data:`SKIP_FUNCTION_BODY_CHECKS`).
    """

    def privileged(text: str) -> bool:
        return may_be_privileged(text) and run_privileged(url, text)

    settings = Settings(check_function_bodies=check_function_bodies)
    with Session.open(url, settings, what="shadow database", privileged=privileged,
                      classify=server_failure) as opened:
        yield opened


def replay_directory(url: str, directory: MigrationDirectory) -> None:
    """Run every up migration of ``directory`` in version order.

    Each file runs as ``apply`` runs it (the same executor: one transaction,
    or statement by statement when it cannot be in one; one session, reset
    between files), so the shadow holds the state production reaches, not
    an approximation of it; only SQL function bodies are not checked at
    creation, as in a pg_dump restore.
    """
    with session(url, check_function_bodies=False) as replaying:
        for migration in directory.migrations:
            if migration.up is None:
                raise MigrationDirectoryError(
                    f"migration {migration.label} in {directory.path} has no .up.sql file",
                    "Every version needs an up file; restore it or remove the version's files.",
                )
            script = read_script(migration.up)
            replaying.run(
                script.script,
                what=f"migration {migration.up.name} (replayed into the shadow database)",
                hint="The migration directory does not replay on a fresh database; fix the file"
                " (then `schemadiff hash`).",
            )
