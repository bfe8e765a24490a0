"""A ``pg_dump`` of the target before a step that deletes data.

``apply --backup DIR`` (or the service's ``backup`` setting) calls
:func:`dump` before running anything that carries a ``deletes-data`` hazard;
when the dump fails, nothing runs. The dump is PostgreSQL's custom format
(``pg_dump -Fc``), restored with ``pg_restore`` (see README, "Backups").
The password never appears on a command line or in a message: it goes to
``pg_dump`` through ``PGPASSWORD``, and the URL it is given has none.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import subprocess
import tempfile
import time
from pathlib import Path

from psycopg import conninfo as pg_conninfo

from ..dburl import redact
from ..errors import BackupFailed


def find_pg_dump(url: str) -> str:
    """The ``pg_dump`` to use for the server at ``url``: ``$SCHEMADIFF_PG_DUMP``, else one new enough for it.

    pg_dump refuses servers of a newer major version than its own; the
    choice among the embedded server's (PostgreSQL 16) and the one on PATH
    is ``schemadiff.shadow.dumpjudge.find_pg_dump``'s. Raises :class:`BackupFailed`.
    """
    explicit = os.environ.get("SCHEMADIFF_PG_DUMP")
    if explicit:
        return explicit
    from ..shadow.dumpjudge import DumpUnavailable, find_pg_dump as find_for_server, server_major

    try:
        return find_for_server(server_major(url)).path
    except DumpUnavailable as exc:
        raise BackupFailed(
            f"a backup was asked for (--backup) but {exc}".split("; only the catalog judge ran")[0]
            + "; nothing was run",
            "Install PostgreSQL's client tools of the server's version (pg_dump on PATH) or set SCHEMADIFF_PG_DUMP.",
        ) from None


def file_name(database: str, version: int | None, stamp: str) -> str:
    """The dump's file name: ``<database>-v<version>-<stamp>.dump``, made safe to join to a directory.

    A database name may hold any character but NUL (PostgreSQL docs,
    "Identifiers and Key Words"), so ``/``, ``..``, a leading ``.`` or ``-``,
    control characters and names near the file system's 255-byte limit are
    possible: anything but ASCII letters, digits, ``_`` and ``-`` becomes
    ``_``, at most 48 characters are kept, and a name that was changed gets
    8 hex digits of its SHA-256 so that two databases never share a file.
    The result is a single path component.
    """
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", database)[:48].lstrip("-_") or "database"
    if safe != database:
        safe += "_" + hashlib.sha256(database.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{safe}-v{version if version is not None else 0}-{stamp}.dump"


def dump(url: str, directory: Path, database: str, version: int | None) -> Path:
    """Write ``<database>-v<version>-<UTC time>.dump`` (custom format) into ``directory`` and return its path.

    The file holds the database's rows, so it is created mode 0600 (the
    owner only, whatever the umask), and ``directory`` 0700 when this
    creates it. ``pg_dump`` writes into a hidden temporary file beside it
    (``.<name>.partial-*``), which is synced and then linked under the final
    name, which never exists half-written: a failure, Ctrl-C or SIGTERM
    removes the temporary file (``kill -9`` may leave it, never a ``.dump``).
    The name comes from :func:`file_name`; an existing file is never
    overwritten (``-1``, ``-2`` ... is added). Raises :class:`BackupFailed`
    naming what went wrong (never the password).
    """
    try:
        directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupFailed(f"cannot create the backup directory {directory}: {exc}; nothing was run") from None
    name = file_name(database, version, time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()))
    params = pg_conninfo.conninfo_to_dict(url)
    env = dict(os.environ)
    password = params.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    # No --file: pg_dump would create it with the umask's mode. It writes to
    # our 0600 file descriptor instead (custom format to stdout is supported).
    command = [find_pg_dump(url), "--format=custom", f"--dbname={pg_conninfo.make_conninfo(**params)}"]
    try:
        handle, partial_name = tempfile.mkstemp(prefix=f".{name}.partial-", dir=directory)  # mode 0600
    except OSError as exc:
        raise BackupFailed(f"cannot write into the backup directory {directory}: {exc}; nothing was run") from None
    partial = Path(partial_name)
    try:
        with os.fdopen(handle, "wb") as out:
            try:
                completed = subprocess.run(command, env=env, stdout=out, stderr=subprocess.PIPE, check=False)
            except OSError as exc:
                raise BackupFailed(f"cannot run {command[0]}: {exc}; nothing was run") from None
            if completed.returncode != 0:
                stderr = completed.stderr.decode("utf-8", "replace")
                reason = (stderr.strip().splitlines() or [f"exit code {completed.returncode}"])[-1]
                if password:
                    reason = reason.replace(str(password), "***")
                raise BackupFailed(
                    f"pg_dump of {redact(url)} failed: {reason}; nothing was run",
                    "Fix the cause (disk space, permissions, a pg_dump older than the server) or run without"
                    " --backup.",
                )
            out.flush()
            os.fsync(out.fileno())
        target = _link_unused(partial, directory, name)
    except OSError as exc:
        raise BackupFailed(f"cannot write the backup into {directory}: {exc}; nothing was run") from None
    finally:
        partial.unlink(missing_ok=True)  # linked under its name already, or half-written
    _sync_directory(directory)
    return target


def _link_unused(partial: Path, directory: Path, name: str) -> Path:
    """Give ``partial`` the name ``name`` (or ``name`` with ``-N`` before ``.dump``) that no file has yet."""
    stem = name[: -len(".dump")]
    for attempt in range(1000):
        target = directory / (name if attempt == 0 else f"{stem}-{attempt}.dump")
        try:
            os.link(partial, target)  # fails when the name exists: never overwrites
            return target
        except FileExistsError:
            continue
        except OSError:  # a file system without hard links: a rename, after checking the name is free
            if target.exists():
                continue
            os.rename(partial, target)
            return target
    raise BackupFailed(f"cannot find an unused file name for the backup in {directory}; nothing was run")


def _sync_directory(directory: Path) -> None:
    with contextlib.suppress(OSError):
        handle = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(handle)
        finally:
            os.close(handle)
