"""A ``pg_dump`` of the target before a step that deletes data.

``apply --backup DIR`` (or the service's ``backup`` setting) calls
:func:`dump` before running anything that carries a ``deletes-data`` hazard;
when the dump fails, nothing runs. The dump is PostgreSQL's custom format
(``pg_dump -Fc``), restored with ``pg_restore`` (see README, "Backups").
The password never appears on a command line or in a message: it goes to
``pg_dump`` through ``PGPASSWORD``, and the URL it is given has none.
"""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

from psycopg import conninfo as pg_conninfo

from .dburl import redact
from .errors import BackupFailed


def find_pg_dump(url: str) -> str:
    """The ``pg_dump`` to use for the server at ``url``: ``$SCHEMADIFF_PG_DUMP``, else one new enough for it.

    pg_dump refuses servers of a newer major version than its own; the
    choice among the embedded server's (PostgreSQL 16) and the one on PATH
    is ``schemadiff.dumpjudge.find_pg_dump``'s. Raises :class:`BackupFailed`.
    """
    explicit = os.environ.get("SCHEMADIFF_PG_DUMP")
    if explicit:
        return explicit
    from .dumpjudge import DumpUnavailable, find_pg_dump as find_for_server, server_major

    try:
        return find_for_server(server_major(url)).path
    except DumpUnavailable as exc:
        raise BackupFailed(
            f"a backup was asked for (--backup) but {exc}".split("; only the catalog judge ran")[0]
            + "; nothing was run",
            "Install PostgreSQL's client tools of the server's version (pg_dump on PATH) or set SCHEMADIFF_PG_DUMP.",
        ) from None


def dump(url: str, directory: Path, database: str, version: int | None) -> Path:
    """Write ``<database>-v<version>-<UTC time>.dump`` (custom format) into ``directory`` and return its path.

    Raises :class:`BackupFailed` naming what went wrong (never the password);
    a failed dump leaves no partial file behind.
    """
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise BackupFailed(f"cannot create the backup directory {directory}: {exc}; nothing was run") from None
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    target = directory / f"{database}-v{version if version is not None else 0}-{stamp}.dump"
    partial = target.with_name(target.name + ".partial")
    params = pg_conninfo.conninfo_to_dict(url)
    env = dict(os.environ)
    password = params.pop("password", None)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    command = [find_pg_dump(url), "--format=custom", f"--file={partial}", f"--dbname={pg_conninfo.make_conninfo(**params)}"]
    try:
        completed = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    except OSError as exc:
        raise BackupFailed(f"cannot run {command[0]}: {exc}; nothing was run") from None
    if completed.returncode != 0:
        partial.unlink(missing_ok=True)
        reason = (completed.stderr.strip().splitlines() or [f"exit code {completed.returncode}"])[-1]
        if password:
            reason = reason.replace(str(password), "***")
        raise BackupFailed(
            f"pg_dump of {redact(url)} failed: {reason}; nothing was run",
            "Fix the cause (disk space, permissions, a pg_dump older than the server) or run without --backup.",
        )
    partial.replace(target)
    return target
