"""The migration lock, shared with golang-migrate.

golang-migrate's postgres driver holds ``pg_advisory_lock(key)`` for the
whole run, with ``key = GenerateAdvisoryLockId(database, schema, table)``:
CRC-32 (IEEE) of ``schema NUL table NUL database`` (the additional names
first, the database last), times 1486364155, modulo 2**32. Its command line takes ``database`` from the URL's path, leading
slash included ("/mydb"), while services embedding it with an open
connection get ``current_database()`` ("mydb"). schemadiff takes both keys,
so it excludes golang-migrate however golang-migrate was started.

Unlike golang-migrate, which waits forever, schemadiff polls
``pg_try_advisory_lock`` and gives up after a timeout, naming the holder.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import psycopg

from ..errors import LockTimeout

_SALT = 1486364155
_POLL_SECONDS = 0.25


def advisory_lock_id(database: str, *additional: str) -> int:
    """golang-migrate's ``database.GenerateAdvisoryLockId``."""
    joined = "\x00".join((*additional, database)).encode("utf-8")
    return (zlib.crc32(joined) * _SALT) % 2**32


def lock_keys(database: str, schema: str, table: str, *, url_path: str | None = None) -> tuple[int, ...]:
    """The keys golang-migrate may use for this version table (see module doc).

    ``url_path``: the path of the URL golang-migrate was given, which it
    hashes as it stands; it is "/" + the database name unless the URL names
    the database otherwise (``?dbname=``, percent-escapes).
    """
    names = [database, "/" + database]
    if url_path and url_path not in names:
        names.append(url_path)
    return tuple(advisory_lock_id(name, schema, table) for name in names)


@dataclass(frozen=True)
class LockHolder:
    """The session that holds the lock, from pg_locks and pg_stat_activity."""

    pid: int
    application_name: str | None
    client_addr: str | None
    query_start: datetime | None
    query: str | None

    def describe(self) -> str:
        parts = [f"pid {self.pid}"]
        if self.application_name:
            parts.append(f"application {self.application_name!r}")
        parts.append(f"client {self.client_addr or 'local socket'}")
        if self.query_start:
            parts.append(f"query started {self.query_start.isoformat(timespec='seconds')}")
        return ", ".join(parts)


def find_holder(conn: psycopg.Connection, keys: tuple[int, ...]) -> LockHolder | None:
    # A bigint advisory key k appears in pg_locks as classid = k >> 32,
    # objid = k & 0xffffffff, objsubid = 1.
    row = conn.execute(
        """
        SELECT l.pid, a.application_name, a.client_addr::text, a.query_start, a.query
          FROM pg_locks l
          LEFT JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND (l.classid::bigint << 32) + l.objid::bigint = ANY(%s)
           AND l.pid <> pg_backend_pid()
         LIMIT 1
        """,
        [list(keys)],
    ).fetchone()
    return LockHolder(*row) if row else None


def find_waiters(conn: psycopg.Connection, keys: tuple[int, ...]) -> list[LockHolder]:
    """Other sessions blocked waiting for one of ``keys`` (golang-migrate's pg_advisory_lock)."""
    rows = conn.execute(
        """
        SELECT l.pid, a.application_name, a.client_addr::text, a.query_start, a.query
          FROM pg_locks l
          LEFT JOIN pg_stat_activity a ON a.pid = l.pid
         WHERE l.locktype = 'advisory' AND NOT l.granted AND l.objsubid = 1
           AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
           AND (l.classid::bigint << 32) + l.objid::bigint = ANY(%s)
           AND l.pid <> pg_backend_pid()
        """,
        [list(keys)],
    ).fetchall()
    return [LockHolder(*row) for row in rows]


def acquire(
    conn: psycopg.Connection,
    keys: tuple[int, ...],
    timeout: float,
    on_wait: Callable[[LockHolder | None], None] = lambda holder: None,
) -> None:
    """Take every key (session-level) or raise :class:`LockTimeout` after ``timeout`` seconds.

    Keys are tried in one fixed order and all released when one is busy, so
    two schemadiff runs never hold one key each and wait on each other.
    """
    deadline = time.monotonic() + timeout
    warned = False
    while True:
        taken: list[int] = []
        for key in keys:
            if not conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]:  # type: ignore[index]
                break
            taken.append(key)
        if len(taken) == len(keys):
            return
        release(conn, tuple(taken))
        holder = find_holder(conn, keys)
        if time.monotonic() >= deadline:
            who = holder.describe() if holder else "a session that has just released it"
            raise LockTimeout(
                f"could not take the migration lock within {timeout:g}s: it is held by {who}",
                "Another migration is running: wait for it and try again, or raise the lock timeout."
                " If that session is stuck, end it with SELECT pg_terminate_backend(<pid>).",
            )
        if not warned:
            on_wait(holder)
            warned = True
        time.sleep(min(_POLL_SECONDS, max(0.0, deadline - time.monotonic())))


def holds(conn: psycopg.Connection, keys: tuple[int, ...]) -> bool:
    """Whether this session still holds every key (a file may have run ``pg_advisory_unlock_all()`` or,
    outside a transaction, ``DISCARD ALL``, which releases session-level advisory locks: PostgreSQL docs,
    "DISCARD"). Raises psycopg.Error."""
    row = conn.execute(
        """
        SELECT count(DISTINCT (l.classid::bigint << 32) + l.objid::bigint)
          FROM pg_locks l
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.pid = pg_backend_pid()
           AND (l.classid::bigint << 32) + l.objid::bigint = ANY(%s)
        """,
        [list(keys)],
    ).fetchone()
    return bool(row) and row[0] == len(set(keys))


def retake(conn: psycopg.Connection, keys: tuple[int, ...]) -> bool:
    """Take again, without waiting, the keys this session no longer holds; False (nothing kept) when one is
    held by another session. Raises psycopg.Error."""
    held = {row[0] for row in conn.execute(
        """
        SELECT (l.classid::bigint << 32) + l.objid::bigint FROM pg_locks l
         WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 AND l.pid = pg_backend_pid()
        """
    )}
    taken = []
    for key in keys:
        if key in held:
            continue
        if not conn.execute("SELECT pg_try_advisory_lock(%s)", [key]).fetchone()[0]:  # type: ignore[index]
            release(conn, tuple(taken))
            return False
        taken.append(key)
    return True


def release(conn: psycopg.Connection, keys: tuple[int, ...]) -> None:
    for key in keys:
        conn.execute("SELECT pg_advisory_unlock(%s)", [key])


# --- a CREATE INDEX CONCURRENTLY under the lock ------------------------------
#
# CREATE INDEX CONCURRENTLY (and REINDEX CONCURRENTLY) waits, before it
# finishes, for every transaction whose snapshot is older than its reference
# snapshot (PostgreSQL docs, "Building Indexes Concurrently"; the backend
# skips only sessions without a snapshot). golang-migrate waits for the lock
# in `SELECT pg_advisory_lock($1)`, a statement that holds a snapshot for as
# long as it waits; every other query it could block in (reading the version
# table) takes its snapshot before it waits as well. So a golang-migrate
# process that starts while schemadiff builds an index concurrently waits for
# the build, and the build waits for it: PostgreSQL finds the deadlock after
# deadlock_timeout and usually cancels the build, which leaves an INVALID
# index and a dirty database (golang-migrate issue #960 shows the same between
# two golang-migrate processes). Nothing schemadiff can hold makes
# golang-migrate wait without a snapshot, so the cycle is broken on its side,
# before the server sees it: while such a statement runs, a watcher cancels
# any session that starts waiting for the migration lock, well within
# deadlock_timeout. The canceled golang-migrate run fails at once with
# "try lock failed ... canceling statement due to user request", having done
# nothing; run again (or restarted) after the build, it finds the database
# clean. schemadiff itself never waits like that: it polls
# pg_try_advisory_lock, each attempt a statement of its own, so it never holds
# a snapshot while golang-migrate builds an index.

_WATCH_MIN_SECONDS = 0.02


@dataclass(frozen=True)
class CanceledWaiter:
    """A session whose wait for the migration lock was canceled (see above)."""

    pid: int
    application_name: str | None
    query: str | None


class WaiterGuard:
    """While open, cancel every other session that waits for ``keys``.

    Runs a thread with its own connection to ``conninfo``; polls pg_locks
    every quarter of the server's ``deadlock_timeout`` (at most 0.1 s), so a
    waiter is gone before the server would look for a deadlock. ``canceled``
    lists what it canceled. Errors of the watcher are kept quiet: it is a
    safeguard, never the reason a migration fails.
    """

    def __init__(self, conninfo: str, keys: tuple[int, ...], own_pid: int) -> None:
        self.conninfo = conninfo
        self.keys = keys
        self.own_pid = own_pid
        self.canceled: list[CanceledWaiter] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="schemadiff-lock-watcher", daemon=True)

    def __enter__(self) -> WaiterGuard:
        self._thread.start()
        self._ready.wait(10)  # connected (or gave up): the statement may start
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)

    def _watch(self) -> None:
        try:
            conn = psycopg.connect(self.conninfo, autocommit=True, connect_timeout=10,
                                   application_name="schemadiff lock watcher")
        except psycopg.Error:
            self._ready.set()
            return
        with conn:
            try:
                ms = conn.execute(
                    "SELECT setting::float FROM pg_settings WHERE name = 'deadlock_timeout'"
                ).fetchone()[0]  # type: ignore[index]
                interval = max(_WATCH_MIN_SECONDS, min(0.1, float(ms) / 1000 / 4))
            except psycopg.Error:
                interval = 0.1
            self._ready.set()
            while not self._stop.is_set():
                try:
                    self._cancel_waiters(conn)
                except psycopg.Error:
                    return
                self._stop.wait(interval)

    def _cancel_waiters(self, conn: psycopg.Connection) -> None:
        rows = conn.execute(
            """
            SELECT l.pid, a.application_name, a.query, pg_cancel_backend(l.pid)
              FROM pg_locks l
              LEFT JOIN pg_stat_activity a ON a.pid = l.pid
             WHERE l.locktype = 'advisory' AND NOT l.granted AND l.objsubid = 1
               AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
               AND (l.classid::bigint << 32) + l.objid::bigint = ANY(%s)
               AND l.pid NOT IN (%s, pg_backend_pid())
            """,
            [list(self.keys), self.own_pid],
        ).fetchall()
        for pid, application, query, _ in rows:
            self.canceled.append(CanceledWaiter(pid, application, query))
