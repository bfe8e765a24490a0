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
objects. After it, in its transaction (:meth:`Snapshot.losses`), for the
relations that existed before:

* rows deleted or updated: ``pg_stat_get_xact_tuples_deleted`` /
  ``_updated`` (PostgreSQL docs, "pg_stat_xact_all_tables": actions
  taken so far within the current transaction, subtransactions and
  cascades included);
* emptied: a new storage file (TRUNCATE gives one) that is now empty, or
  holds rows this transaction inserted, where the old one stored
  something. A rewrite (ALTER TABLE ... TYPE, SET TABLESPACE, CLUSTER)
  also gives a new file, but copies the rows through a transient
  relation, so the table's own insert counter stays 0 and its new file
  is not empty: not counted here (a type change is counted below);
* made UNLOGGED (its rows are lost at a crash, PostgreSQL docs, CREATE
  TABLE "UNLOGGED");
* a table, column or sequence gone, a column's type changed (the same
  rule as the first judge: a type change may narrow);
* a sequence moved back or restarted (ALTER SEQUENCE RESTART, setval):
  the next rows get numbers already used;
* large objects gone (``lo_unlink``).

Limits, said where users read them (README "What is guaranteed"): work
done in another session (``dblink``, ``COPY ... PROGRAM`` running a
client) is not this transaction's; a superuser can turn ``track_counts``
off (judged as unknown, so refused); large objects' contents and the
position of a sequence are not transactional (``setval``, ``lo_put``
stay done after the rollback: the first judge reads for them); files
that cannot run in a transaction are judged by the first judge only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import psycopg

# The system schemas hold no user data (temporary schemas are other sessions').
_USER_RELATIONS = """
    SELECT c.oid::bigint, n.nspname, c.relname, c.relkind, c.relfilenode::bigint, c.relpersistence,
           c.relkind = 'r' AND pg_catalog.pg_relation_size(c.oid) > 0
    FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'S')
      AND n.nspname <> 'information_schema' AND n.nspname NOT LIKE 'pg\\_%'
"""

_COLUMNS = """
    SELECT a.attrelid::bigint, a.attnum, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)
    FROM pg_catalog.pg_attribute AS a
    WHERE a.attrelid = ANY(%s::oid[]) AND a.attnum > 0 AND NOT a.attisdropped
"""

# pg_sequences gives NULL where the role may not read the sequence, or it
# has not been read from (is_called false): compared only where known.
_SEQUENCES = """
    SELECT c.oid::bigint, s.last_value
    FROM pg_catalog.pg_sequences AS s
    JOIN pg_catalog.pg_namespace AS n ON n.nspname = s.schemaname
    JOIN pg_catalog.pg_class AS c ON c.relnamespace = n.oid AND c.relname = s.sequencename
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
    FROM unnest(%s::oid[]) AS o(oid)
"""

# No size here: pg_relation_size waits for a lock on the table, and only
# the tables given a new storage file need one (see _stores_rows).
_AFTER = """
    SELECT o.oid::bigint, c.oid IS NOT NULL, c.relfilenode::bigint, c.relpersistence
    FROM unnest(%s::oid[]) AS o(oid) LEFT JOIN pg_catalog.pg_class AS c ON c.oid = o.oid
"""

# Beyond this many large objects, only their number is compared.
_LARGE_OBJECTS_LISTED = 100_000


@dataclass(frozen=True)
class _Relation:
    schema: str
    name: str
    kind: str  # pg_class.relkind: 'r' table, 'p' partitioned table, 'S' sequence
    filenode: int
    persistence: str
    stored: bool  # an ordinary table whose storage is not empty

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass
class Snapshot:
    """The user relations of a database before a file runs (see the module's rules).

    ``relations``: oid -> what it was; ``columns``: table oid -> {attnum:
    (name, type as ``format_type`` prints it)}; ``sequences``: oid -> last
    value (None: unknown); ``large_objects``: their oids, or None beyond
    100,000 (then ``large_object_count`` only).
    """

    relations: dict[int, _Relation]
    columns: dict[int, dict[int, tuple[str, str]]]
    sequences: dict[int, int | None]
    large_objects: frozenset[int] | None
    large_object_count: int
    counted: dict[int, tuple[int, int, int]] = field(default_factory=dict)  # oid -> (deleted, updated, inserted)

    @classmethod
    def take(cls, conn: psycopg.Connection, *, leave_out: tuple[tuple[str, str], ...] = ()) -> Snapshot:
        """Read the user relations through ``conn`` (any transaction state); ``leave_out``: (schema,
        table) pairs the caller writes itself (the version and history tables). Raises psycopg.Error."""
        skipped = set(leave_out)
        relations = {
            oid: _Relation(schema, name, kind, filenode, persistence, stored)
            for oid, schema, name, kind, filenode, persistence, stored in conn.execute(_USER_RELATIONS).fetchall()
            if (schema, name) not in skipped
        }
        tables = [oid for oid, relation in relations.items() if relation.kind != "S"]
        columns: dict[int, dict[int, tuple[str, str]]] = {oid: {} for oid in tables}
        for oid, number, name, type_name in conn.execute(_COLUMNS, [tables]).fetchall():
            columns[oid][number] = (name, type_name)
        sequences = {oid: value for oid, value in conn.execute(_SEQUENCES).fetchall() if oid in relations}
        count = conn.execute("SELECT count(*) FROM pg_catalog.pg_largeobject_metadata").fetchone()[0]
        large_objects = None
        if count <= _LARGE_OBJECTS_LISTED:
            large_objects = frozenset(
                row[0] for row in conn.execute("SELECT oid::bigint FROM pg_catalog.pg_largeobject_metadata")
            )
        return cls(relations, columns, sequences, large_objects, count)

    def begin(self, conn: psycopg.Connection) -> None:
        """Read the row counters first thing in the file's transaction (see ``_COUNTS``). Raises psycopg.Error."""
        self.counted = self._counts(conn)

    def _counts(self, conn: psycopg.Connection) -> dict[int, tuple[int, int, int]]:
        return {oid: (deleted, updated, inserted)
                for oid, deleted, updated, inserted in conn.execute(_COUNTS, [list(self.relations)]).fetchall()}

    def losses(self, conn: psycopg.Connection) -> list[str]:
        """What the transaction open on ``conn`` did to the data that existed at :meth:`take`
        (rows counted since :meth:`begin`, which must have run in the same transaction).

        One line per finding ("public.users: 3 rows deleted"), empty when
        nothing stored was lost. Reads only catalogs and statistics (never a
        user table: a policy or a view could run user code). Raises
        psycopg.Error.
        """
        found: list[str] = []
        if conn.execute("SELECT pg_catalog.current_setting('track_counts')").fetchone()[0] != "on":
            found.append("track_counts is off on this server, so the rows the file deleted or updated cannot be"
                         " counted")
        oids = list(self.relations)
        now: dict[int, tuple[bool, int, str]] = {
            row[0]: row[1:] for row in conn.execute(_AFTER, [oids]).fetchall()
        }
        counts = self._counts(conn)
        for oid, before in sorted(self.relations.items(), key=lambda item: item[1].qualified):
            exists, filenode, persistence = now[oid]
            deleted, updated, inserted = (
                count - start for count, start in zip(counts[oid], self.counted.get(oid, (0, 0, 0)))
            )
            what = "sequence" if before.kind == "S" else "table"
            if not exists:
                found.append(f"{before.qualified}: {what} dropped")
                continue
            if deleted:
                found.append(f"{before.qualified}: {_rows(deleted)} deleted")
            if updated:
                found.append(f"{before.qualified}: {_rows(updated)} updated (their old values are overwritten)")
            if (before.kind == "r" and filenode != before.filenode and before.stored
                    and (inserted or not _stores_rows(conn, oid))):
                found.append(f"{before.qualified}: emptied (TRUNCATE, or its storage replaced)"
                             + (f" and {_rows(inserted)} inserted" if inserted else ""))
            if before.persistence == "p" and persistence == "u":
                found.append(f"{before.qualified}: made UNLOGGED (its rows are lost if the server crashes)")
        found += self._columns_lost(conn)
        found += self._sequences_moved_back(conn)
        found += self._large_objects_lost(conn)
        return found

    def _columns_lost(self, conn: psycopg.Connection) -> list[str]:
        tables = [oid for oid in self.columns]
        after: dict[int, dict[int, tuple[str, str]]] = {}
        for oid, number, name, type_name in conn.execute(_COLUMNS, [tables]).fetchall():
            after.setdefault(oid, {})[number] = (name, type_name)
        found = []
        for oid, columns in self.columns.items():
            relation = self.relations[oid]
            if oid not in after and not conn.execute(
                "SELECT 1 FROM pg_catalog.pg_class WHERE oid = %s", [oid]
            ).fetchone():
                continue  # the table is gone: said once, above
            now = after.get(oid, {})
            for number, (name, type_name) in sorted(columns.items()):
                if number not in now:
                    found.append(f"{relation.qualified}.{name}: column dropped")
                elif now[number][1] != type_name:
                    found.append(f"{relation.qualified}.{name}: type changed from {type_name} to {now[number][1]}"
                                 " (a type change may narrow or rewrite its values)")
        return found

    def _sequences_moved_back(self, conn: psycopg.Connection) -> list[str]:
        found = []
        for oid, value in conn.execute(_SEQUENCES).fetchall():
            before = self.sequences.get(oid)
            if before is None or oid not in self.relations:
                continue
            if value is None or value < before:
                relation = self.relations[oid]
                where = "restarted" if value is None else f"moved back from {before} to {value}"
                found.append(f"{relation.qualified}: sequence {where} (new rows would reuse numbers already given)")
        return found

    def _large_objects_lost(self, conn: psycopg.Connection) -> list[str]:
        if self.large_objects is None:
            count = conn.execute("SELECT count(*) FROM pg_catalog.pg_largeobject_metadata").fetchone()[0]
            return [f"large objects: {self.large_object_count - count} fewer"] if count < self.large_object_count else []
        if not self.large_objects:
            return []
        still = conn.execute(
            "SELECT count(*) FROM pg_catalog.pg_largeobject_metadata WHERE oid = ANY(%s::oid[])",
            [sorted(self.large_objects)],
        ).fetchone()[0]
        gone = len(self.large_objects) - still
        return [f"large objects: {gone} removed (lo_unlink)"] if gone else []


def _stores_rows(conn: psycopg.Connection, oid: int) -> bool:
    # The transaction gave the table its new storage, so it holds the table's lock already: no wait.
    return bool(conn.execute("SELECT pg_catalog.pg_relation_size(%s::oid) > 0", [oid]).fetchone()[0])


def _rows(count: int) -> str:
    return f"{count} row{'s' if count != 1 else ''}"
