"""What a planned migration would meet in a live database's rows.

The shadow database a plan is proven on is empty; a live one is not. For
``plan --db`` this module asks the live database, in a read-only
transaction, whether it holds rows a planned statement is certain to fail
on, so the plan says so before a deploy does:

- ``ADD COLUMN ... NOT NULL`` without a default (hazard
  ``fails-on-existing-rows``): fails as soon as the table holds one row
  (PostgreSQL fills existing rows with the default, else NULL);
- ``ALTER COLUMN ... SET NOT NULL``: fails when the column holds a NULL.

Each check is one ``EXISTS`` query, which stops at the first row found.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import psycopg

from .. import dburl
from ..engine import hazards as hz
from ..engine.ddl import ident, qualified_name
from ..errors import DatabaseError

if TYPE_CHECKING:
    from ..engine.change import Change


def live_row_problems(url: str, changes: Sequence[Change]) -> list[str]:
    """One sentence per planned statement the live database's rows make fail (empty: none).

    ``url`` is the live database (opened read-only here); ``changes`` the
    plan's statements, in order. Raises :class:`schemadiff.errors.DatabaseError`
    when the database cannot be reached.
    """
    checks: list[tuple[str, str]] = []  # (query, problem)
    for change in changes:
        if change.table is None:
            continue
        table = qualified_name(change.table)
        if hz.FAILS_ON_EXISTING_ROWS in change.hazards:
            checks.append((f"SELECT EXISTS (SELECT 1 FROM {table})",
                           f"{change.table} holds rows, so `{change.sql}` fails: a NOT NULL column needs a"
                           " value for them (give it a DEFAULT, or add it nullable, backfill, then SET NOT NULL)"))
        elif change.statement == "ALTER TABLE ALTER COLUMN SET NOT NULL":  # the engine's statement kind, not its text
            column = change.name[len(change.table) + 1:]
            checks.append((f"SELECT EXISTS (SELECT 1 FROM {table} WHERE {ident(column)} IS NULL)",
                           f"{change.table}.{column} holds NULL in some rows, so `{change.sql}` fails"
                           " (fill them in first, or give the column a DEFAULT and update the NULL rows)"))
    if not checks:
        return []
    problems = []
    with dburl.connect(dburl.read_only(url), what="database") as conn:
        conn.execute("SET TRANSACTION READ ONLY")
        for query, problem in checks:
            try:
                found = conn.execute(query).fetchone()[0]
            except psycopg.Error as exc:
                reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                raise DatabaseError(
                    f"cannot check the live database's rows ({query}): {reason}",
                    "plan --db reads whether the tables it changes hold rows: grant the role SELECT on them.",
                ) from None
            if found:
                problems.append(problem)
    return problems
