"""Database URLs: connecting, switching database, and never leaking passwords."""

from __future__ import annotations

import re
from typing import Any

import psycopg
from psycopg import conninfo as pg_conninfo

from .errors import DatabaseError

_URL_PASSWORD = re.compile(r"^(?P<head>[a-z][a-z0-9+.-]*://[^:/?#@]*:)(?P<password>[^@/?#]*)@", re.I)
_KV_PASSWORD = re.compile(r"(password\s*=\s*)('(?:[^'\\]|\\.)*'|\S+)", re.I)


def redact(url: str) -> str:
    """The URL with any password replaced by ``***``, for messages and logs."""
    redacted = _URL_PASSWORD.sub(lambda m: f"{m['head']}***@" if m["password"] else m[0], url)
    return _KV_PASSWORD.sub(r"\1***", redacted)


def with_database(url: str, dbname: str) -> str:
    """The same server and credentials, another database (libpq key=value form)."""
    params = pg_conninfo.conninfo_to_dict(url)
    params["dbname"] = dbname
    return pg_conninfo.make_conninfo(**params)


def database_name(url: str) -> str:
    """The database a URL names (libpq's default is the user name)."""
    params = pg_conninfo.conninfo_to_dict(url)
    return str(params.get("dbname") or params.get("user") or "postgres")


def connect(url: str, *, what: str = "database", autocommit: bool = False, **kwargs: Any) -> psycopg.Connection:
    """Connect, turning libpq's failure into one clear :class:`DatabaseError`."""
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10, **kwargs)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseError(
            f"cannot connect to the {what} at {redact(url)}: {reason}",
            "Check that the server is running and the URL (host, port, user, password, database) is right.",
        ) from None
    except psycopg.ProgrammingError as exc:  # pragma: no cover - malformed URL
        raise DatabaseError(f"invalid {what} URL {redact(url)}: {exc}") from None


def read_only(url: str) -> str:
    """The URL with every transaction read-only, for inspecting live databases.

    ``plan --db`` must not be able to change anything, whatever a bug
    elsewhere might try: the server itself refuses writes.
    """
    params = pg_conninfo.conninfo_to_dict(url)
    options = str(params.get("options") or "")
    params["options"] = (options + " -c default_transaction_read_only=on").strip()
    return pg_conninfo.make_conninfo(**params)


def check_url(url: str, *, what: str = "database") -> str:
    """Return ``url`` if libpq can parse it, else raise one clear :class:`DatabaseError` (password hidden).

    Called where a URL enters (``--db``, an environment variable), so a typo
    is reported as such before anything runs, not as a failure deep inside.
    """
    try:
        pg_conninfo.conninfo_to_dict(url)
    except psycopg.Error as exc:
        reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise DatabaseError(
            f"invalid {what} URL {redact(url)}: {_redact_reason(reason, url)}",
            "Use postgresql://user:password@host:port/dbname (percent-encode special characters)"
            " or libpq's key=value form.",
        ) from None
    return url


def _redact_reason(reason: str, url: str) -> str:
    # libpq quotes the offending text, which may be the password itself.
    params = _URL_PASSWORD.match(url)
    if params and params["password"]:
        reason = reason.replace(params["password"], "***")
    return redact(reason)
