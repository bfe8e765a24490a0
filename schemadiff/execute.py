"""Executing one migration file's text the way the runner does.

A file runs in one transaction unless it holds a statement that cannot
(CREATE INDEX CONCURRENTLY and friends) or carries the
``-- schemadiff:no-transaction`` marker; then it runs statement by statement.
"""

from __future__ import annotations

from . import dburl
from .errors import MigrationFailed
from .sqlfile import parse_statements


def run_migration_text(url: str, text: str, label: str) -> None:
    import psycopg

    statements = parse_statements(text, label)
    transactional = "-- schemadiff:no-transaction" not in text
    with dburl.connect(url, what="database", autocommit=not transactional) as conn:
        for statement in statements:
            try:
                conn.execute(statement.text)
            except psycopg.Error as exc:
                reason = str(exc).strip().splitlines()[0]
                raise MigrationFailed(f"{statement.position}: {reason}\n    {statement.text.strip()[:300]}") from None
