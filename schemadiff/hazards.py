"""Hazard codes carried by planned changes.

A hazard says what a statement may do to a live database beyond changing its
schema: lose data, rewrite a table, hold a lock that stops traffic. The diff
engine attaches them; ``plan`` shows them and ``apply`` refuses changes that
delete data unless told otherwise. No database access here: plain constants.
"""

from __future__ import annotations

from collections.abc import Iterable

from .change import Change

DELETES_DATA = "deletes-data"
REWRITES_TABLE = "rewrites-table"
ACCESS_EXCLUSIVE = "access-exclusive-lock"
BLOCKS_WRITES = "blocks-writes"
VALIDATES = "scans-to-validate"
NON_TRANSACTIONAL = "non-transactional"
FAILS_ON_EXISTING_ROWS = "fails-on-existing-rows"

DESCRIPTIONS: dict[str, str] = {
    DELETES_DATA: "removes stored data (a table, a column, a type or enum value in use, a sequence's position,"
    " or values a narrower column type cannot hold) that cannot be recovered from the schema",
    REWRITES_TABLE: "rewrites every row of the table (and rebuilds its indexes); takes time and disk"
    " proportional to the table's size",
    ACCESS_EXCLUSIVE: "holds an ACCESS EXCLUSIVE lock for the whole operation: reads and writes of the table wait",
    BLOCKS_WRITES: "builds an index without CONCURRENTLY: writes to the table wait until the build ends",
    VALIDATES: "scans the whole table to check existing rows while holding a lock",
    NON_TRANSACTIONAL: "cannot run inside a transaction block: if a later statement fails, this one stays applied",
    FAILS_ON_EXISTING_ROWS: "fails if the table holds any row (a NOT NULL column added without a default gets"
    " NULL in every existing row); fine only for a table known to be empty",
}


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
    if REWRITES_TABLE in change.hazards or VALIDATES in change.hazards:
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
