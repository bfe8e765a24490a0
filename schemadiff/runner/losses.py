"""What a file really did to stored data, read from PostgreSQL inside the file's transaction.

The down guard's first judge reads the file (``schemadiff.engine.hazards``):
it decides before anything runs, so a terminal can be asked, but it only
knows what it can read, and SQL can reach data in more ways than any
reading follows (expressions evaluated by DDL, user code, casts, renames
made earlier in the file). This is the second judge, which shares nothing
with the first: the server's own counters and catalog, read after the
file's statements and before its transaction commits. What it finds is
rolled back with the file.

Before the file (:meth:`Snapshot.take`): every ordinary and partitioned
table and sequence outside the system schemas, with its storage file
(``pg_class.relfilenode``), persistence, whether it stored anything
(``pg_relation_size`` > 0) and its columns; sequences' positions; large
objects. At the start of the file's transaction (:meth:`Snapshot.begin`)
the row counters. After the file, in its transaction
(:meth:`Snapshot.losses`), for the relations that existed before:

* rows deleted or updated: ``pg_stat_get_xact_tuples_deleted`` /
  ``_updated`` (PostgreSQL docs, "pg_stat_xact_all_tables": actions
  taken so far within the current transaction, subtransactions and
  cascades included), counted from :meth:`Snapshot.begin`;
* a new storage file (TRUNCATE, or a table rewrite) where the old one
  stored something: emptied when the table now holds no more rows than
  the transaction inserted into it (TRUNCATE leaves none; a rewrite copies
  the rows, through a transient relation, so they are not counted as
  inserted); otherwise rewritten, which counts unless the file itself
  visibly rewrites that table (``explained``: ``ALTER TABLE ... ADD COLUMN``
  with a volatile default, ``SET TABLESPACE``, ``CLUSTER``...), since
  ``ALTER COLUMN ... TYPE same_type USING expr`` changes every value and
  no catalog entry;
* made UNLOGGED (its rows are lost at a crash, PostgreSQL docs, CREATE
  TABLE "UNLOGGED");
* a table, column or sequence gone, a column's type changed (the same
  rule as the first judge: a type change may narrow);
* a sequence given a new storage file (ALTER SEQUENCE ... RESTART, which
  is transactional) and now behind where it was;
* large objects gone (``lo_unlink``).

Only what this transaction did counts: a catalog change (a drop, a new
storage file, a column) is the file's only when the transaction holds a
lock on that relation (PostgreSQL takes one for each of them), so another
session's TRUNCATE meanwhile is not blamed on the file.

The judge reads with its own session state: ``search_path`` set to
``pg_catalog`` only (a file may put its own ``unnest`` or ``>`` first),
``row_security`` off (counting rows runs no policy; a table whose policies
would apply cannot be counted and counts as emptied).

Limits, said where users read them (README "What is guaranteed"): work
done in another session (``dblink``, ``COPY ... PROGRAM`` running a
client) is not this transaction's; a superuser's file can turn
``track_counts`` off and on again around a deletion; large objects'
contents are not compared; ``setval`` is not transactional and leaves no
catalog trace (the first judge counts a ``setval`` to a fixed value);
files that cannot run in a transaction are judged by the first judge
only (which counts every statement of a down file that is not what made
it non-transactional).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

# The judge's own session state inside the file's transaction (LOCAL: gone at its end).
OWN_STATE = ("SET LOCAL search_path TO pg_catalog, pg_temp", "SET LOCAL row_security TO off",
             "SET LOCAL standard_conforming_strings TO on")

# The system schemas hold no user data (temporary schemas are other sessions').
# A table another session holds ACCESS EXCLUSIVE is not sized (pg_relation_size
# would wait for it): it counts as storing rows.
_USER_RELATIONS = """
    SELECT c.oid::bigint, n.nspname, c.relname, c.relkind, c.relfilenode::bigint, c.relpersistence,
           c.relkind OPERATOR(pg_catalog.=) 'r' AND (
               EXISTS (SELECT FROM pg_catalog.pg_locks AS l
                       WHERE l.relation OPERATOR(pg_catalog.=) c.oid AND l.granted
                         AND l.mode OPERATOR(pg_catalog.=) 'AccessExclusiveLock'
                         AND l.pid OPERATOR(pg_catalog.<>) pg_catalog.pg_backend_pid())
               OR pg_catalog.pg_relation_size(c.oid) OPERATOR(pg_catalog.>) 0)
    FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
    WHERE c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p', 'S']::"char"[])
      AND n.nspname OPERATOR(pg_catalog.<>) 'information_schema'
      AND n.nspname OPERATOR(pg_catalog.!~~) 'pg\\_%'
"""

_COLUMNS = """
    SELECT a.attrelid::bigint, a.attnum, a.attname, a.atttypid::bigint, a.atttypmod
    FROM pg_catalog.pg_attribute AS a
    WHERE a.attrelid OPERATOR(pg_catalog.=) ANY (%s::pg_catalog.oid[]) AND a.attnum OPERATOR(pg_catalog.>) 0
      AND NOT a.attisdropped
"""

# pg_sequences gives NULL where the role may not read the sequence, or it
# has not been read from (is_called false).
_SEQUENCES = """
    SELECT c.oid::bigint, s.last_value
    FROM pg_catalog.pg_sequences AS s
    JOIN pg_catalog.pg_namespace AS n ON n.nspname OPERATOR(pg_catalog.=) s.schemaname
    JOIN pg_catalog.pg_class AS c ON c.relnamespace OPERATOR(pg_catalog.=) n.oid
     AND c.relname OPERATOR(pg_catalog.=) s.sequencename
"""

# The xact counters also hold what earlier transactions of this session
# did and the backend has not yet flushed to the shared statistics (it
# flushes when idle, at most once a second): read at the start of the
# transaction and subtracted. Nothing is flushed inside a transaction.
_COUNTS = """
    SELECT o.oid::bigint,
           pg_catalog.pg_stat_get_xact_tuples_deleted(o.oid),
           pg_catalog.pg_stat_get_xact_tuples_updated(o.oid),
           pg_catalog.pg_stat_get_xact_tuples_inserted(o.oid)
    FROM pg_catalog.unnest(%s::pg_catalog.oid[]) AS o(oid)
"""

_AFTER = """
    SELECT o.oid::bigint, c.oid IS NOT NULL, c.relfilenode::bigint, c.relpersistence
    FROM pg_catalog.unnest(%s::pg_catalog.oid[]) AS o(oid)
    LEFT JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) o.oid
"""

# The relations this transaction holds a lock on (it took one on each it dropped, truncated or altered).
_LOCKED_HERE = """
    SELECT DISTINCT l.relation::bigint FROM pg_catalog.pg_locks AS l
    WHERE l.pid OPERATOR(pg_catalog.=) pg_catalog.pg_backend_pid() AND l.locktype OPERATOR(pg_catalog.=) 'relation'
      AND l.granted AND l.relation IS NOT NULL
"""

# A table and the tables it descends from (partitions, inheritance children).
_ANCESTORS = """
    WITH RECURSIVE up(child, parent) AS (
        SELECT %s::pg_catalog.oid, %s::pg_catalog.oid
        UNION SELECT up.child, i.inhparent FROM up JOIN pg_catalog.pg_inherits AS i
                                                ON i.inhrelid OPERATOR(pg_catalog.=) up.parent)
    SELECT n.nspname, c.relname FROM up
    JOIN pg_catalog.pg_class AS c ON c.oid OPERATOR(pg_catalog.=) up.parent
    JOIN pg_catalog.pg_namespace AS n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
"""

# Beyond this many large objects, only their number is compared.
_LARGE_OBJECTS_LISTED = 100_000
_LOCK_TIMEOUT = "5s"  # reading the snapshot waits no longer for another session's lock


@dataclass(frozen=True)
class _Relation:
    schema: str
    name: str
    kind: str  # pg_class.relkind: 'r' table, 'p' partitioned table, 'S' sequence
    filenode: int
    persistence: str
    stored: bool  # an ordinary table whose storage is not empty (or could not be sized)

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass
class Snapshot:
    """The user relations of a database before a file runs (see the module's rules).

    ``relations``: oid -> what it was; ``columns``: table oid -> {attnum:
    (name, type oid, typmod)}; ``sequences``: oid -> last value (None:
    unknown); ``large_objects``: their oids, or None beyond 100,000 (then
    ``large_object_count`` only); ``counted``: oid -> (deleted, updated,
    inserted) at :meth:`begin`.
    """

    relations: dict[int, _Relation]
    columns: dict[int, dict[int, tuple[str, int, int]]]
    sequences: dict[int, int | None]
    large_objects: frozenset[int] | None
    large_object_count: int
    counted: dict[int, tuple[int, int, int]] = field(default_factory=dict)

    @classmethod
    def take(cls, conn: psycopg.Connection, *, leave_out: tuple[tuple[str, str], ...] = ()) -> Snapshot:
        """Read the user relations through ``conn`` (autocommit, no transaction open) in one short
        transaction of its own; ``leave_out``: (schema, table) pairs the caller writes itself (the version
        and history tables). Raises psycopg.Error."""
        skipped = set(leave_out)
        with conn.transaction():
            for statement in OWN_STATE:
                conn.execute(statement)
            conn.execute(f"SET LOCAL lock_timeout TO '{_LOCK_TIMEOUT}'")
            relations = {
                oid: _Relation(schema, name, kind, filenode, persistence, stored)
                for oid, schema, name, kind, filenode, persistence, stored in conn.execute(_USER_RELATIONS)
                if (schema, name) not in skipped
            }
            tables = [oid for oid, relation in relations.items() if relation.kind != "S"]
            columns: dict[int, dict[int, tuple[str, int, int]]] = {oid: {} for oid in tables}
            for oid, number, name, type_oid, typmod in conn.execute(_COLUMNS, [tables]):
                columns[oid][number] = (name, type_oid, typmod)
            count = conn.execute("SELECT pg_catalog.count(*) FROM pg_catalog.pg_largeobject_metadata").fetchone()
            large_object_count = int(count[0]) if count else 0
            large_objects = None
            if large_object_count <= _LARGE_OBJECTS_LISTED:
                large_objects = frozenset(
                    row[0] for row in conn.execute("SELECT oid::bigint FROM pg_catalog.pg_largeobject_metadata")
                )
        sequences: dict[int, int | None] = {}
        try:
            with conn.transaction():  # apart: a sequence locked elsewhere only leaves positions unknown
                for statement in OWN_STATE:
                    conn.execute(statement)
                conn.execute(f"SET LOCAL lock_timeout TO '{_LOCK_TIMEOUT}'")
                sequences = {oid: value for oid, value in conn.execute(_SEQUENCES) if oid in relations}
        except psycopg.errors.LockNotAvailable:
            pass
        return cls(relations, columns, sequences, large_objects, large_object_count)

    def begin(self, conn: psycopg.Connection) -> None:
        """Read the row counters first thing in the file's transaction (see ``_COUNTS``), with the session
        the executor has just reset (no state of the judge's own: the file's statements come next). Raises
        psycopg.Error."""
        self.counted = self._counts(conn)

    def _counts(self, conn: psycopg.Connection) -> dict[int, tuple[int, int, int]]:
        return {oid: (deleted, updated, inserted)
                for oid, deleted, updated, inserted in conn.execute(_COUNTS, [list(self.relations)])}

    def losses(self, conn: psycopg.Connection, explained: Iterable[tuple[str | None, str]] = ()) -> list[str]:
        """What the transaction open on ``conn`` did to the data that existed at :meth:`take`
        (rows counted since :meth:`begin`, which must have run in the same transaction).

        ``explained``: (schema or None, table) the file's own statements
        visibly rewrite (a table rewritten by them, or one of its partitions
        or inheritance children, is not a loss for being rewritten). One line
        per finding ("public.users: 3 rows deleted"), empty when nothing
        stored was lost. Sets its own session state (``OWN_STATE``, LOCAL to
        the transaction) and reads catalogs, statistics and, for a table
        given a new storage file, its row count. Raises psycopg.Error.
        """
        for statement in OWN_STATE:
            conn.execute(statement)
        explained = set(explained)
        found: list[str] = []
        if conn.execute("SELECT pg_catalog.current_setting('track_counts')").fetchone() != ("on",):
            found.append("track_counts is off on this server, so the rows the file deleted or updated cannot be"
                         " counted")
        oids = list(self.relations)
        now = {row[0]: row[1:] for row in conn.execute(_AFTER, [oids])}
        counts = self._counts(conn)
        locked = {row[0] for row in conn.execute(_LOCKED_HERE)}
        for oid, before in sorted(self.relations.items(), key=lambda item: item[1].qualified):
            exists, filenode, persistence = now.get(oid, (False, None, None))
            deleted, updated, inserted = (
                count - start for count, start in zip(counts.get(oid, (0, 0, 0)), self.counted.get(oid, (0, 0, 0)))
            )
            what = "sequence" if before.kind == "S" else "table"
            ours = oid in locked  # a catalog change another session made meanwhile is not the file's
            if not exists:
                if ours:
                    found.append(f"{before.qualified}: {what} dropped")
                continue
            if deleted > 0:
                found.append(f"{before.qualified}: {_rows(deleted)} deleted")
            if updated > 0:
                found.append(f"{before.qualified}: {_rows(updated)} updated (their old values are overwritten)")
            if not ours:
                continue
            if before.kind == "r" and filenode != before.filenode and before.stored:
                found += self._new_storage(conn, oid, before, inserted, explained)
            if before.kind == "S" and filenode != before.filenode:
                found += self._sequence_moved_back(conn, oid, before)
            if before.persistence == "p" and persistence == "u":
                found.append(f"{before.qualified}: made UNLOGGED (its rows are lost if the server crashes)")
        found += self._columns_lost(conn, locked)
        found += self._large_objects_lost(conn)
        return found

    def _new_storage(self, conn: psycopg.Connection, oid: int, before: _Relation, inserted: int,
                     explained: set[tuple[str | None, str]]) -> list[str]:
        rows = _row_count(conn, before)
        if rows is None or rows <= inserted:
            return [f"{before.qualified}: emptied (TRUNCATE, or its storage replaced)"
                    + (f" and {_rows(inserted)} inserted" if inserted else "")
                    + (" (its rows could not be counted)" if rows is None else "")]
        names = {(schema, name) for schema, name in conn.execute(_ANCESTORS, [oid, oid])}
        if any((schema, name) in explained or (None, name) in explained for schema, name in names):
            return []
        return [f"{before.qualified}: rewritten by something the file does not show (ALTER COLUMN ... TYPE ..."
                " USING can change every value and keep the type)"]

    def _sequence_moved_back(self, conn: psycopg.Connection, oid: int, before: _Relation) -> list[str]:
        # The transaction holds this sequence's lock (it gave it a new storage file): reading it waits for
        # no one. The next value it would give, against the last one it gave before the file.
        old = self.sequences.get(oid)
        if old is None:
            return []  # never used (or not readable) before: no number was given out
        try:
            with conn.transaction():
                last, called = conn.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(
                    sql.Identifier(before.schema, before.name))).fetchone()
                row = conn.execute("SELECT seqincrement FROM pg_catalog.pg_sequence"
                                   " WHERE seqrelid OPERATOR(pg_catalog.=) %s::pg_catalog.oid", [oid]).fetchone()
        except psycopg.Error:
            return [f"{before.qualified}: sequence altered and its position could not be read"]
        increment = row[0] if row else 1
        upcoming = last + increment if called else last
        if (upcoming > old) if increment > 0 else (upcoming < old):
            return []
        return [f"{before.qualified}: sequence moved back (its next value {upcoming} was already given; the last"
                f" was {old}), so new rows would reuse numbers"]

    def _columns_lost(self, conn: psycopg.Connection, locked: set[int]) -> list[str]:
        tables = [oid for oid in self.columns if oid in locked]
        if not tables:
            return []
        after: dict[int, dict[int, tuple[str, int, int]]] = {}
        for oid, number, name, type_oid, typmod in conn.execute(_COLUMNS, [tables]):
            after.setdefault(oid, {})[number] = (name, type_oid, typmod)
        existing = {row[0] for row in conn.execute(
            "SELECT oid::bigint FROM pg_catalog.pg_class WHERE oid OPERATOR(pg_catalog.=) ANY (%s::pg_catalog.oid[])",
            [tables])}
        found = []
        for oid in tables:
            if oid not in existing:
                continue  # the table is gone: said once, above
            relation, now = self.relations[oid], after.get(oid, {})
            for number, (name, type_oid, typmod) in sorted(self.columns[oid].items()):
                if number not in now:
                    found.append(f"{relation.qualified}.{name}: column dropped")
                elif now[number][1:] != (type_oid, typmod):
                    old_type, new_type = conn.execute(
                        "SELECT pg_catalog.format_type(%s::pg_catalog.oid, %s), pg_catalog.format_type(%s::pg_catalog.oid, %s)",
                        [type_oid, typmod, now[number][1], now[number][2]]).fetchone()
                    found.append(f"{relation.qualified}.{name}: type changed from {old_type} to {new_type}"
                                 " (a type change may narrow or rewrite its values)")
        return found

    def _large_objects_lost(self, conn: psycopg.Connection) -> list[str]:
        if self.large_objects is None:
            row = conn.execute("SELECT pg_catalog.count(*) FROM pg_catalog.pg_largeobject_metadata").fetchone()
            count = int(row[0]) if row else 0
            return [f"large objects: {self.large_object_count - count} fewer"] if count < self.large_object_count else []
        if not self.large_objects:
            return []
        row = conn.execute(
            "SELECT pg_catalog.count(*) FROM pg_catalog.pg_largeobject_metadata"
            " WHERE oid OPERATOR(pg_catalog.=) ANY (%s::pg_catalog.oid[])",
            [sorted(self.large_objects)],
        ).fetchone()
        gone = len(self.large_objects) - (int(row[0]) if row else 0)
        return [f"large objects: {gone} removed (lo_unlink)"] if gone else []


def _row_count(conn: psycopg.Connection, relation: _Relation) -> int | None:
    """The table's rows now, in this transaction; None when they cannot be counted without running a policy."""
    try:
        with conn.transaction():  # a savepoint: a refusal must not abort the file's transaction
            row = conn.execute(sql.SQL("SELECT pg_catalog.count(*) FROM ONLY {}").format(
                sql.Identifier(relation.schema, relation.name))).fetchone()
    except psycopg.Error:
        return None  # row_security off refuses a table whose policies would apply: unknown
    return int(row[0]) if row else None


def _rows(count: int) -> str:
    return f"{count} row{'s' if count != 1 else ''}"
