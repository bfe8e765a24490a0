"""Executing one migration's text the way the runner executes its file.

Used where a migration is not yet a file (generate's verification): one
transaction, unless the text cannot run in one (the same rule as the
runner's: CONCURRENTLY, a new enum value used at once, or the
``-- schemadiff:no-transaction`` marker); then statement by statement.
"""

from __future__ import annotations

from . import dburl
from .errors import MigrationFailed
from .migrations import no_transaction_reason
from .sqlfile import parse_statements


def run_migration_text(url: str, text: str, label: str) -> None:
    import psycopg

    statements = parse_statements(text, label)
    transactional = no_transaction_reason(text, statements) is None
    with dburl.connect(url, what="database", autocommit=not transactional) as conn:
        for statement in statements:
            try:
                conn.execute(statement.text)
            except psycopg.Error as exc:
                reason = str(exc).strip().splitlines()[0]
                raise MigrationFailed(f"{statement.position}: {reason}\n    {statement.text.strip()[:300]}") from None
