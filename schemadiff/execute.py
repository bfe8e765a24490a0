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
from .errors import MigrationFailed
from .migrations import no_transaction_reason
from .sqlfile import Statement, parse_statements


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
    from .shadow import may_be_privileged, run_privileged, server_failure

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
                if failure is not None:
                    raise failure from None
                failed = MigrationFailed(
                    f"{statement.position}: {what} fails: {error_reason(exc)}\n    {statement.text.strip()[:300]}",
                    hint,
                )
                # For callers that judge the failure (verification on a copy holding rows).
                failed.sqlstate, failed.statement, failed.diag = exc.sqlstate, statement.text, exc.diag
                raise failed from None


def run_migration_text(url: str, text: str, label: str) -> None:
    statements = parse_statements(text, label)
    run_statements(url, statements, transactional=no_transaction_reason(text, statements) is None, what=label)


def error_reason(exc: psycopg.Error) -> str:
    """The server's message, with its detail when it gives one."""
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag else None
    reason = primary or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    detail = getattr(diag, "message_detail", None) if diag else None
    return f"{reason} ({detail})" if detail else reason
