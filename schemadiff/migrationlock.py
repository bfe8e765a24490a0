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

import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import psycopg

from .errors import LockTimeout

_SALT = 1486364155
_POLL_SECONDS = 0.25


def advisory_lock_id(database: str, *additional: str) -> int:
    """golang-migrate's ``database.GenerateAdvisoryLockId``."""
    joined = "\x00".join((*additional, database)).encode("utf-8")
    return (zlib.crc32(joined) * _SALT) % 2**32


def lock_keys(database: str, schema: str, table: str) -> tuple[int, ...]:
    """The keys golang-migrate may use for this version table (see module doc)."""
    return (advisory_lock_id(database, schema, table), advisory_lock_id("/" + database, schema, table))


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


def release(conn: psycopg.Connection, keys: tuple[int, ...]) -> None:
    for key in keys:
        conn.execute("SELECT pg_advisory_unlock(%s)", [key])
