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
from typing import TYPE_CHECKING

from .change import Change

if TYPE_CHECKING:  # only a type here; sqlfile is imported where statements are read
    from .sqlfile import Statement

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
    """The statements of a migration file that delete stored data, one line each (``file:line: SQL``).

    For files schemadiff did not plan (hand-written, or a down file run
    later), read from the statements' parse trees: DROP of a table, schema,
    type, domain, sequence or extension, any DROP ... CASCADE, ALTER TABLE
    ... DROP COLUMN, TRUNCATE, DELETE, DROP OWNED. The same kinds of change
    the engine marks ``deletes-data`` (see ``DESCRIPTIONS``); a type change
    that narrows a column cannot be judged without the column's type and is
    not listed.
    """
    found = []
    for statement in statements:
        if _deletes_data(statement):
            first = " ".join(statement.text.split())
            shown = first if len(first) <= 100 else first[:97] + "..."
            found.append(f"{statement.position}: {shown}")
    return found


# Objects whose DROP takes rows with it (their own, or, for a type, domain or
# extension, the columns that use it). Views, functions, indexes and
# constraints hold no data.
_DATA_OBJECTS = {"OBJECT_TABLE", "OBJECT_SCHEMA", "OBJECT_TYPE", "OBJECT_DOMAIN", "OBJECT_SEQUENCE", "OBJECT_EXTENSION"}


def _deletes_data(statement: Statement) -> bool:
    kind = statement.kind
    node = statement.node
    if kind == "DropStmt":
        cascade = getattr(node.behavior, "name", "") == "DROP_CASCADE"
        return cascade or getattr(node.removeType, "name", "") in _DATA_OBJECTS
    if kind == "AlterTableStmt":
        return any(getattr(cmd.subtype, "name", "") == "AT_DropColumn" for cmd in node.cmds or ())
    return kind in ("TruncateStmt", "DeleteStmt", "DropOwnedStmt")
