"""The table-level lock each kind of statement the engine plans takes, as data.

PostgreSQL documents the lock mode of every DDL command (docs, "Explicit
Locking", 13.3.1 "Table-Level Locks" and table 13.2 "Conflicting Lock
Modes"; each ALTER TABLE subcommand's mode in the ALTER TABLE page, "the
lock acquired will be the strictest one required by any subcommand").
:data:`STATEMENT_LOCKS` writes that down per statement kind the engine
emits; the differ names the kind of every statement it plans
(``Change.statement``), so the lock is read from here, never guessed from
the SQL text. tests/test_locks.py checks every entry the test plans reach
against the server itself (``pg_locks`` inside the statement's
transaction), a judge that does not share this table.

Only locks on relations queries name (tables, views, materialized views,
sequences, foreign tables) are described: a lock on an index alone blocks
no query. A relation the statement creates is not counted (nobody else
can see it before the transaction commits). ACCESS SHARE, taken by every
statement that merely reads a relation's definition (a view over a table),
is recorded as such on the statement's own relation but is not listed for
other relations. A lock on a partitioned or inherited table is also taken
on its partitions and children (PostgreSQL recurses), which are not listed.

Pure data and comparisons: no database access here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass


class LockMode(enum.Enum):
    """PostgreSQL's table-level lock modes, weakest first; the value is the docs' name ("ACCESS EXCLUSIVE").

    Each mode conflicts with every mode at least as strong as the one it
    is the mirror of (table 13.2); for ordering, later means stronger:
    ACCESS EXCLUSIVE blocks reads, EXCLUSIVE and stronger block writes too
    (SHARE and SHARE ROW EXCLUSIVE block writes but not reads), SHARE
    UPDATE EXCLUSIVE blocks neither.
    """

    ACCESS_SHARE = "ACCESS SHARE"
    ROW_SHARE = "ROW SHARE"
    ROW_EXCLUSIVE = "ROW EXCLUSIVE"
    SHARE_UPDATE_EXCLUSIVE = "SHARE UPDATE EXCLUSIVE"
    SHARE = "SHARE"
    SHARE_ROW_EXCLUSIVE = "SHARE ROW EXCLUSIVE"
    EXCLUSIVE = "EXCLUSIVE"
    ACCESS_EXCLUSIVE = "ACCESS EXCLUSIVE"

    @property
    def strength(self) -> int:
        """0 (ACCESS SHARE) to 7 (ACCESS EXCLUSIVE)."""
        return list(LockMode).index(self)

    @property
    def pg_locks_name(self) -> str:
        """The mode as ``pg_locks.mode`` shows it: "AccessExclusiveLock"."""
        return "".join(word.capitalize() for word in self.value.split()) + "Lock"

    @property
    def blocks_reads(self) -> bool:
        """Whether a plain SELECT on the relation waits (only ACCESS EXCLUSIVE conflicts with ACCESS SHARE)."""
        return self is LockMode.ACCESS_EXCLUSIVE

    @property
    def blocks_writes(self) -> bool:
        """Whether INSERT/UPDATE/DELETE wait (ROW EXCLUSIVE conflicts with SHARE and stronger)."""
        return self.strength >= LockMode.SHARE.strength

    @classmethod
    def from_pg_locks(cls, name: str) -> LockMode:
        """The mode whose ``pg_locks.mode`` spelling is ``name``; ValueError for another name."""
        for mode in cls:
            if mode.pg_locks_name == name:
                return mode
        raise ValueError(f"not a table-level lock mode: {name!r}")


AE, SRE, SHARE, SUE = (LockMode.ACCESS_EXCLUSIVE, LockMode.SHARE_ROW_EXCLUSIVE, LockMode.SHARE,
                       LockMode.SHARE_UPDATE_EXCLUSIVE)

# Statement kind -> the lock it takes on the relation it names (Change.relation);
# None: it takes none on an existing relation (it creates one, or its object is
# not a relation). Sources: the reference page of each command, "Explicit Locking".
STATEMENT_LOCKS: dict[str, LockMode | None] = {
    # Relations created: invisible to others until commit.
    "CREATE TABLE": None,
    "CREATE VIEW": None,
    "CREATE MATERIALIZED VIEW": None,
    "CREATE SEQUENCE": None,
    # DROP of a relation: ACCESS EXCLUSIVE (docs, DROP TABLE / DROP VIEW / DROP SEQUENCE).
    "DROP TABLE": AE,
    "DROP VIEW": AE,
    "DROP MATERIALIZED VIEW": AE,
    "DROP SEQUENCE": AE,
    # ALTER TABLE: ACCESS EXCLUSIVE "unless explicitly noted" (docs, ALTER TABLE).
    "ALTER TABLE ADD COLUMN": AE,
    "ALTER TABLE DROP COLUMN": AE,
    "ALTER TABLE ALTER COLUMN TYPE": AE,
    "ALTER TABLE ALTER COLUMN SET DEFAULT": AE,
    "ALTER TABLE ALTER COLUMN DROP DEFAULT": AE,
    "ALTER TABLE ALTER COLUMN SET NOT NULL": AE,
    "ALTER TABLE ALTER COLUMN DROP NOT NULL": AE,
    "ALTER TABLE ALTER COLUMN ADD IDENTITY": AE,
    "ALTER TABLE ALTER COLUMN SET IDENTITY": AE,
    "ALTER TABLE ALTER COLUMN DROP IDENTITY": AE,
    "ALTER TABLE ALTER COLUMN DROP EXPRESSION": AE,
    "ALTER TABLE ALTER COLUMN SET STORAGE": AE,
    "ALTER TABLE ALTER COLUMN SET COMPRESSION": AE,
    # "SET STATISTICS acquires a SHARE UPDATE EXCLUSIVE lock"; so do SET/RESET of attribute options.
    "ALTER TABLE ALTER COLUMN SET STATISTICS": SUE,
    "ALTER TABLE ALTER COLUMN SET (attribute options)": SUE,
    # ADD CONSTRAINT: ACCESS EXCLUSIVE, but a FOREIGN KEY takes SHARE ROW
    # EXCLUSIVE on the table and on the referenced table (Change.also_locks).
    "ALTER TABLE ADD CONSTRAINT": AE,
    "ALTER TABLE ADD CONSTRAINT FOREIGN KEY": SRE,
    "ALTER TABLE ADD CONSTRAINT USING INDEX": AE,
    "ALTER TABLE VALIDATE CONSTRAINT": SUE,
    # Dropping a foreign key removes its triggers on the referenced table too: ACCESS EXCLUSIVE there as well.
    "ALTER TABLE DROP CONSTRAINT": AE,
    "ALTER TABLE RENAME CONSTRAINT": AE,
    "ALTER TABLE RENAME": AE,
    "ALTER TABLE RENAME COLUMN": AE,
    "ALTER TABLE ENABLE/DISABLE ROW LEVEL SECURITY": AE,
    "ALTER TABLE FORCE/NO FORCE ROW LEVEL SECURITY": AE,
    "ALTER TABLE REPLICA IDENTITY": AE,
    "ALTER TABLE SET LOGGED/UNLOGGED": AE,
    # Storage parameters (fillfactor, autovacuum_*): SHARE UPDATE EXCLUSIVE.
    "ALTER TABLE SET (storage parameters)": SUE,
    "ALTER TABLE CLUSTER ON": SUE,
    "ALTER TABLE SET WITHOUT CLUSTER": SUE,
    # ATTACH PARTITION: SHARE UPDATE EXCLUSIVE on the parent (also_locks), ACCESS
    # EXCLUSIVE on the table attached; DETACH (not CONCURRENTLY): ACCESS EXCLUSIVE on both.
    "ALTER TABLE ATTACH PARTITION": AE,
    "ALTER TABLE DETACH PARTITION": AE,
    "ALTER TABLE INHERIT": AE,
    "ALTER TABLE NO INHERIT": AE,
    "ALTER TABLE ENABLE/DISABLE TRIGGER": SRE,
    "ALTER TABLE ENABLE/DISABLE RULE": AE,
    "ALTER TABLE OWNER TO": AE,
    # Indexes (docs, CREATE INDEX / DROP INDEX): the lock on the index's table.
    "CREATE INDEX": SHARE,
    "CREATE INDEX CONCURRENTLY": SUE,
    "DROP INDEX": AE,
    "DROP INDEX CONCURRENTLY": SUE,
    # Index renames and storage parameters lock the index alone (SHARE UPDATE EXCLUSIVE).
    "ALTER INDEX RENAME": None,
    "ALTER INDEX SET (storage parameters)": None,
    # Views.
    "CREATE OR REPLACE VIEW": AE,
    "ALTER VIEW ALTER COLUMN SET/DROP DEFAULT": AE,
    "REFRESH MATERIALIZED VIEW": AE,
    "REFRESH MATERIALIZED VIEW CONCURRENTLY": LockMode.EXCLUSIVE,
    # Sequences: ALTER SEQUENCE takes SHARE ROW EXCLUSIVE; a rename ACCESS EXCLUSIVE.
    "ALTER SEQUENCE": SRE,
    "ALTER SEQUENCE RENAME": AE,
    # Continuing a sequence past a column's values reads the table (ACCESS
    # SHARE); setval() takes ROW EXCLUSIVE on the sequence only when the rows
    # make it move. Keeping a position in new bounds reads no table.
    "SELECT setval": LockMode.ACCESS_SHARE,
    "SELECT setval (position only)": None,
    # Triggers, rules, policies, statistics on a relation.
    "CREATE TRIGGER": SRE,
    "DROP TRIGGER": AE,
    "CREATE RULE": AE,
    "CREATE OR REPLACE RULE": AE,
    "DROP RULE": AE,
    "CREATE POLICY": AE,
    "ALTER POLICY": AE,
    "DROP POLICY": AE,
    "CREATE STATISTICS": SUE,
    "DROP STATISTICS": SUE,
    "ALTER STATISTICS": None,
    # COMMENT ON a relation or its column: SHARE UPDATE EXCLUSIVE on it; on anything else no relation lock.
    "COMMENT ON relation": SUE,
    "COMMENT ON": None,
    # Objects that are not relations: no table-level lock.
    "GRANT": None,
    "REVOKE": None,
    "ALTER DEFAULT PRIVILEGES": None,
    "ALTER OWNER TO": None,
    "CREATE SCHEMA": None,
    "DROP SCHEMA": None,
    "CREATE EXTENSION": None,
    "DROP EXTENSION": None,
    "ALTER EXTENSION": None,
    "CREATE FUNCTION": None,
    "CREATE OR REPLACE FUNCTION": None,
    "DROP FUNCTION": None,
    "CREATE TYPE": None,
    "DROP TYPE": None,
    "ALTER TYPE": None,
    "ALTER TYPE ADD VALUE": None,
    "ALTER TYPE RENAME": None,
    "ALTER TYPE RENAME VALUE": None,
    "CREATE EVENT TRIGGER": None,
    "DROP EVENT TRIGGER": None,
    "ALTER EVENT TRIGGER": None,
    # ALTER DOMAIN that checks stored values (ADD CONSTRAINT, SET NOT NULL)
    # takes SHARE on every table using the domain: not listed (the engine does
    # not know those tables here); tests/test_locks.py names this gap.
    "ALTER DOMAIN": None,
}


@dataclass(frozen=True)
class Lock:
    """A lock a statement takes: ``mode`` on ``relation`` (qualified name, as the model writes it)."""

    relation: str
    mode: LockMode


def lock_of(statement: str) -> LockMode | None:
    """The lock ``statement`` (a key of :data:`STATEMENT_LOCKS`) takes on the relation it names.

    Raises KeyError for a statement kind not in the table: every kind the
    engine emits must be described here.
    """
    return STATEMENT_LOCKS[statement]
