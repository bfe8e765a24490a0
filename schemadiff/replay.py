"""Loading SQL into shadow databases: a desired-state file, or the up files of
a migration directory replayed in version order.

Statements run one at a time so that a failure can be reported with the
file, line and statement that failed; the database is a throwaway one, so a
failure leaves nothing behind that matters (the caller drops it).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import psycopg

from . import dburl
from .errors import DatabaseError
from .sqlfile import Statement, parse_file


def load_statements(url: str, statements: Iterable[Statement], what: str) -> None:
    """Execute parsed statements into the database at ``url`` (autocommit).

    Autocommit, because desired files and migrations may legitimately hold
    statements that refuse to run in a transaction block (CREATE INDEX
    CONCURRENTLY).
    """
    with dburl.connect(url, what="shadow database", autocommit=True) as conn:
        for statement in statements:
            try:
                conn.execute(statement.text)
            except psycopg.Error as exc:
                raise DatabaseError(
                    f"{statement.position}: {what} does not load on PostgreSQL: {_reason(exc)}\n    "
                    + "\n    ".join(statement.text.strip().splitlines()[:6]),
                    "Fix the SQL (it parses, but the server rejects it) and run the command again; nothing was written.",
                ) from None


def load_file(url: str, path: str | Path, what: str = "desired-state file") -> None:
    load_statements(url, parse_file(path, what), what)


def _reason(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag else None
    reason = primary or str(exc).strip().splitlines()[0]
    detail = getattr(diag, "message_detail", None) if diag else None
    return f"{reason} ({detail})" if detail else reason
