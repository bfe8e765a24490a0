"""golang-migrate's version table and schemadiff's history table.

``schema_migrations (version bigint not null primary key, dirty boolean not
null)`` holds at most one row, exactly as golang-migrate reads and writes it;
no row means nothing is applied, and a dirty ``-1`` row means a failed step
down past the first migration. Every write here checks it touched exactly
one row, so a table changed behind our back is an error, never overwritten.

``schemadiff_history`` is ours alone: one row per applied, reverted,
baselined or forced version, with the file's checksum, timing and, for a
step that failed outside a transaction, the error that left it dirty.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import psycopg
from psycopg import sql

from ..errors import MigrationStateError

VERSION_TABLE = "schema_migrations"
HISTORY_TABLE = "schemadiff_history"

# Column types golang-migrate's version could have been created with.
_INTEGER_TYPES = ("bigint", "integer", "smallint")

# pg_class.relkind values a version table may wrongly have (PostgreSQL docs, pg_class).
_RELKINDS = {"p": "partitioned table", "v": "view", "m": "materialized view", "f": "foreign table"}

# golang-migrate's NilVersion, written only together with dirty = true.
NIL_VERSION = -1


@dataclass(frozen=True)
class VersionState:
    """What ``schema_migrations`` says; ``version`` None means nothing applied.

    ``row`` is the version column exactly as stored (None: no row). It differs
    from ``version`` for the rows golang-migrate writes that name no
    migration: ``-1`` (its NilVersion, written with dirty = true by a failed
    step down past the first migration) and ``0`` (written by ``migrate force
    0``, which golang-migrate's CLI users type to mean "none"). Writes match
    the stored row, so such a row is replaced, never left beside a new one.
    """

    version: int | None
    dirty: bool
    table_exists: bool
    row: int | None = None

    @classmethod
    def after_write(cls, version: int | None, dirty: bool) -> VersionState:
        """The state :meth:`Tables.set_version` leaves for (version, dirty)."""
        row = NIL_VERSION if version is None and dirty else version
        return cls(version, dirty, True, row)


@dataclass(frozen=True)
class HistoryRow:
    id: int
    version: int
    name: str
    direction: str  # up, down, baseline, force
    checksum: str | None
    applied_at: datetime
    duration_ms: int | None
    state: str  # done, running, failed
    error: str | None
    # For an up row: SHA-256 of the version's .down file when the up ran, so
    # an edit to it is seen even without schemadiff.sum (None: no down file,
    # or recorded before schemadiff kept it).
    down_checksum: str | None = None


def history_table_for(version_table: str) -> str:
    """Our history table beside ``version_table``: ``schemadiff_history`` for
    golang-migrate's default name, else one per version table (services that
    share a database each keep their own ``x-migrations-table``)."""
    if version_table == VERSION_TABLE:
        return HISTORY_TABLE
    return f"{HISTORY_TABLE}_{version_table}"[:63]  # PostgreSQL's NAMEDATALEN - 1


class Tables:
    """The two tables, qualified with the schema they live in.

    ``table`` is the version table's name (golang-migrate's
    ``x-migrations-table``; default ``schema_migrations``).
    """

    def __init__(self, conn: psycopg.Connection, schema: str, table: str = VERSION_TABLE) -> None:
        self.conn = conn
        self.schema = schema
        self.table = table
        self.history_table = history_table_for(table)
        self.versions = sql.Identifier(schema, table)
        self.history = sql.Identifier(schema, self.history_table)

    def bookkeeping(self) -> tuple[tuple[str, str], ...]:
        """(schema, table) of both tables when their names are not the defaults the judges always leave out."""
        if self.table == VERSION_TABLE:
            return ()
        return ((self.schema, self.table), (self.schema, self.history_table))

    # --- reading ---------------------------------------------------------

    def exists(self, table: str) -> bool:
        row = self.conn.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = %s AND table_name = %s",
            [self.schema, table],
        ).fetchone()
        return bool(row and row[0])

    def read_state(self, *, any_version: bool = False) -> VersionState:
        """The single row of ``schema_migrations``.

        Raises :class:`MigrationStateError` when the table is not shaped as
        golang-migrate's (an integer ``version`` and a boolean ``dirty``; a
        Rails or Ecto ``schema_migrations`` is not), holds more than one row,
        a NULL ``version`` or ``dirty``, or a version below -1 (golang-migrate's
        ``Force`` refuses those, "version must be >= -1", and its ``up`` and
        ``version`` panic on one): schemadiff never guesses another tool's
        state. ``any_version`` reads a version below -1 as it is stored (the
        returned ``version`` is then None). Every refusal of a
        golang-migrate-shaped table names a ``schemadiff force`` that repairs
        it: force reads with :meth:`read_state_to_replace`, which accepts them.
        """
        if not self.exists(self.table):
            return VersionState(None, False, False)
        self._check_shape()
        rows = self.conn.execute(sql.SQL("SELECT version, dirty FROM {} ORDER BY version").format(self.versions)).fetchall()
        known = sorted({row[0] for row in rows if row[0] is not None and row[0] > 0})
        force = (
            f"If the database is at version {known[-1]}, run `schemadiff force {known[-1]}`"
            if len(known) == 1
            else "Run `schemadiff force VERSION` with the version the database is really at"
        )
        if len(rows) > 1:
            shown = ", ".join(f"({version}, dirty={dirty})" for version, dirty in rows[:5])
            raise MigrationStateError(
                f"{self.schema}.{self.table} has {len(rows)} rows ({shown}); golang-migrate keeps exactly one",
                f"{force} (it replaces the rows with that version, clean); nothing was run.",
            )
        if not rows:
            return VersionState(None, False, True)
        if rows[0][0] is None or rows[0][1] is None:
            column = "version" if rows[0][0] is None else "dirty"
            raise MigrationStateError(
                f"{self.schema}.{self.table} holds version {rows[0][0]} with {column} = NULL;"
                " golang-migrate always writes a version and dirty true or false",
                f"{force} (it writes that version, clean); nothing was run.",
            )
        version, dirty = int(rows[0][0]), bool(rows[0][1])
        if version < NIL_VERSION and not any_version:
            # golang-migrate never writes one (its Force refuses "version must be >= -1") and
            # cannot read one either: `migrate up` and `migrate version` panic on it (suint).
            # Reading it as "nothing applied" would run every migration again.
            raise MigrationStateError(
                f"{self.schema}.{self.table} holds version {version}{' (dirty)' if dirty else ''}, which names no"
                " migration: versions are positive, and golang-migrate writes only -1 (with dirty = true) for"
                " \"no version\"; nothing was run",
                "Find the version the schema really matches and record it with `schemadiff force VERSION`"
                " (`schemadiff force -1` if no migration is applied).",
            )
        # -1 (NilVersion) and 0 (`migrate force 0`) name no migration: nothing applied.
        return VersionState(version if version > 0 else None, dirty, True, version)

    def read_state_to_replace(self) -> VersionState:
        """What ``force`` replaces: like :meth:`read_state`, but a table in a state force repairs is read, not refused.

        Several rows, a NULL ``version`` or a NULL ``dirty`` (states
        golang-migrate never writes, and which :meth:`read_state` refuses with
        a hint to force) read as dirty at their highest version; a version
        below -1 is read as stored (``version`` None); force then deletes
        every row (:meth:`replace_version`). A table of another shape (Rails,
        Ecto) is still refused: it is not golang-migrate's to replace.
        """
        if not self.exists(self.table):
            return VersionState(None, False, False)
        self._check_shape()
        rows = self.conn.execute(sql.SQL("SELECT version, dirty FROM {}").format(self.versions)).fetchall()
        if not rows:
            return VersionState(None, False, True)
        if len(rows) == 1 and rows[0][0] is not None and rows[0][1] is not None:
            version, dirty = int(rows[0][0]), bool(rows[0][1])
            return VersionState(version if version > 0 else None, dirty, True, version)
        versions = [int(row[0]) for row in rows if row[0] is not None]
        highest = max(versions) if versions else None
        return VersionState(highest if highest is not None and highest > 0 else None, True, True, highest)

    def _check_shape(self) -> None:
        """Refuse a table golang-migrate could not have created or could not write.

        golang-migrate creates a plain table ``(version bigint, dirty
        boolean)`` and writes it with ``INSERT (version, dirty)``: an extra
        NOT NULL column without a default makes that insert fail, and a view,
        a partitioned or foreign table is not what it created. Raises
        :class:`MigrationStateError` (exit 1) before anything is written.
        """
        found = self.conn.execute(
            "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),"
            " a.attnotnull AND NOT a.atthasdef AND a.attidentity = '' AND a.attgenerated = '', c.relkind"
            " FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_attribute AS a ON a.attrelid = c.oid"
            " WHERE c.oid = %s::regclass AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            [self.versions.as_string(self.conn)],
        ).fetchall()
        columns = {name: kind for name, kind, _, _ in found}
        relkind = found[0][3] if found else "r"
        required = [name for name, _, must_fill, _ in found if must_fill and name not in ("version", "dirty")]
        shaped = columns.get("version") in _INTEGER_TYPES and columns.get("dirty") == "boolean"
        if shaped and relkind != "r":
            kind = _RELKINDS.get(relkind, f"relation of kind {relkind!r}")
            raise MigrationStateError(
                f"{self.schema}.{self.table} is a {kind}, not golang-migrate's version table (a plain table"
                " it creates itself); nothing was run or written",
                "Drop or rename it (golang-migrate and schemadiff create the table they need), or point"
                " x-migrations-table at another name.",
            )
        if shaped and required:
            raise MigrationStateError(
                f"{self.schema}.{self.table} is not golang-migrate's version table: besides version and dirty it"
                f" has NOT NULL column(s) without a default ({', '.join(required)}), which golang-migrate's"
                " INSERT (version, dirty) cannot fill; nothing was run or written",
                "Give the extra column(s) a default or drop them, or keep this service's versions in another"
                " table (x-migrations-table) or schema.",
            )
        if shaped:
            return
        shown = ", ".join(f"{name} {kind}" for name, kind in columns.items()) or "no columns"
        raise MigrationStateError(
            f"{self.schema}.{self.table} is not golang-migrate's version table (it has {shown}; expected"
            " version bigint, dirty boolean): another tool (Rails, Ecto, ...) keeps its versions there",
            "Nothing was run. Migrate this service in its own schema (search_path in the URL,"
            " e.g. ?options=-csearch_path%3Dmyservice) or rename the other tool's table.",
        )

    def history_rows(self) -> list[HistoryRow]:
        if not self.exists(self.history_table):
            return []
        rows = self.conn.execute(
            sql.SQL(
                # to_jsonb: a history table created before down_checksum existed reads as NULL.
                "SELECT id, version, name, direction, checksum, applied_at, duration_ms, state, error,"
                " to_jsonb(h) ->> 'down_checksum' FROM {} AS h ORDER BY id"
            ).format(self.history)
        ).fetchall()
        return [HistoryRow(*row) for row in rows]

    def last_attempt(self, version: int | None) -> HistoryRow | None:
        """The latest history row that targeted or ran ``version``."""
        rows = [r for r in self.history_rows() if version is None or r.version == version]
        return rows[-1] if rows else None

    # --- writing ---------------------------------------------------------

    def create(self) -> None:
        """Create the version and history tables where they are missing (nothing when both are complete).

        No DDL runs when they exist: every DDL statement fires the database's
        event triggers, and user code must not run on every ``apply`` just
        because the runner keeps its books (the down guard cannot judge what
        runs outside a file's transaction).
        """
        complete = self.conn.execute(
            "SELECT count(*) = 3 FROM pg_catalog.pg_attribute WHERE attnum > 0 AND NOT attisdropped AND"
            " ((attrelid = pg_catalog.to_regclass(%s) AND attname = 'version')"
            " OR (attrelid = pg_catalog.to_regclass(%s) AND attname IN ('version', 'down_checksum')))",
            [self.versions.as_string(self.conn), self.history.as_string(self.conn)],
        ).fetchone()
        if complete and complete[0]:
            return
        # golang-migrate's own statement, so its readers find what they expect.
        self.conn.execute(
            sql.SQL("CREATE TABLE IF NOT EXISTS {} (version bigint not null primary key, dirty boolean not null)").format(
                self.versions
            )
        )
        self.conn.execute(
            sql.SQL(
                """CREATE TABLE IF NOT EXISTS {} (
                    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                    version bigint NOT NULL,
                    name text NOT NULL,
                    direction text NOT NULL CHECK (direction IN ('up', 'down', 'baseline', 'force')),
                    checksum text,
                    applied_at timestamptz NOT NULL DEFAULT now(),
                    duration_ms bigint,
                    state text NOT NULL DEFAULT 'done' CHECK (state IN ('done', 'running', 'failed')),
                    error text
                )"""
            ).format(self.history)
        )
        self.conn.execute(sql.SQL("ALTER TABLE {} ADD COLUMN IF NOT EXISTS down_checksum text").format(self.history))

    def set_version(self, old: VersionState, version: int | None, dirty: bool) -> None:
        """Move the single row from ``old`` to (version, dirty), checking the old row is still there.

        ``old.row`` is matched as stored, so a ``0`` or ``-1`` row left by
        golang-migrate is updated in place (golang-migrate's own SetVersion
        truncates and inserts: either way one row remains).
        """
        new = NIL_VERSION if version is None and dirty else version
        old_row = old.row
        if old_row is None and new is None:
            return
        if old_row is None:
            statement = sql.SQL("INSERT INTO {} (version, dirty) VALUES (%s, %s)").format(self.versions)
            params: list[object] = [new, dirty]
        elif new is None:
            statement = sql.SQL("DELETE FROM {} WHERE version = %s AND dirty = %s").format(self.versions)
            params = [old_row, old.dirty]
        else:
            statement = sql.SQL(
                "UPDATE {} SET version = %s, dirty = %s WHERE version = %s AND dirty = %s"
            ).format(self.versions)
            params = [new, dirty, old_row, old.dirty]
        touched = self.conn.execute(statement, params).rowcount
        if touched != 1:
            raise MigrationStateError(
                f"{self.schema}.{self.table} changed while schemadiff held the migration lock"
                f" (expected the row {old_row}, dirty={old.dirty}; the write touched {touched} rows)",
                "Something wrote the version table without the lock: inspect it, then run"
                " `schemadiff status` and `schemadiff force VERSION` if needed.",
            )

    def replace_version(self, version: int | None) -> None:
        """Force: whatever the table holds, leave (version, clean) or nothing."""
        self.conn.execute(sql.SQL("DELETE FROM {}").format(self.versions))
        if version is not None:
            touched = self.conn.execute(
                sql.SQL("INSERT INTO {} (version, dirty) VALUES (%s, false)").format(self.versions), [version]
            ).rowcount
            if touched != 1:  # pragma: no cover - an INSERT of one row
                raise MigrationStateError(f"could not write version {version} to {self.schema}.{self.table}")

    def record(
        self,
        version: int,
        name: str,
        direction: str,
        checksum: str | None,
        *,
        duration_ms: int | None = None,
        state: str = "done",
        down_checksum: str | None = None,
    ) -> int:
        row = self.conn.execute(
            sql.SQL(
                "INSERT INTO {} (version, name, direction, checksum, duration_ms, state, down_checksum)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id"
            ).format(self.history),
            [version, name, direction, checksum, duration_ms, state, down_checksum],
        ).fetchone()
        assert row is not None
        return int(row[0])

    def finish(self, history_id: int, *, duration_ms: int, error: str | None) -> None:
        touched = self.conn.execute(
            sql.SQL("UPDATE {} SET state = %s, duration_ms = %s, error = %s WHERE id = %s").format(self.history),
            ["failed" if error else "done", duration_ms, error, history_id],
        ).rowcount
        if touched != 1:
            raise MigrationStateError(f"history row {history_id} of {self.schema}.{self.history_table} disappeared")
