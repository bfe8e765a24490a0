"""Database URLs: connecting, switching database, and never leaking passwords."""

from __future__ import annotations

import contextlib
import os
import re
from typing import Any

import psycopg
from psycopg import conninfo as pg_conninfo

from .errors import DatabaseError

# A URL's user information runs from "scheme://" to the LAST "@" of the
# string: libpq stops at the first "@" or "/", but a password holding an
# unencoded "@", "/", "#" or "?" is still a password, and redacting too much
# only hides a host name. Any scheme, any case: libpq rejects
# "POSTGRESQL://" as key=value text, and its message quotes the string.
_URL_USERINFO = re.compile(r"^(?P<head>\s*[a-z][a-z0-9+.-]*://[^:@]*:)(?P<password>.*)@", re.I | re.S)
_QUERY_PASSWORD = re.compile(r"(?P<head>[?&](?:ssl)?password=)(?P<password>[^&]*)", re.I)
_KV_PASSWORD = re.compile(r"(?P<head>\b(?:ssl)?password\s*=\s*)(?P<password>'(?:[^'\\]|\\.)*'?|\S+)", re.I)


def passwords(url: str) -> set[str]:
    """Every string that may be a password in ``url``, as written and percent-decoded.

    Read by the same generous rules as :func:`redact`, plus libpq's own
    reading when the string parses, so that text quoting any part of the
    URL (a libpq error message, an exception) can be scrubbed of it.
    """
    found: set[str] = set()
    for pattern in _patterns(url):
        for match in pattern.finditer(url):
            value = match["password"]
            if value.startswith("'"):
                value = value.strip("'")
            found.add(value)
    with contextlib.suppress(Exception):
        parsed = pg_conninfo.conninfo_to_dict(url).get("password")
        if parsed:
            found.add(str(parsed))
    from urllib.parse import unquote

    found |= {unquote(value) for value in found}
    # A shorter reading inside a longer one (libpq reads "p" of "u:p@ss@h")
    # is covered by the longer: scrubbing it alone would garble the text.
    whole = {value for value in found if value and not any(value != other and value in other for other in found)}
    # A password holding an unencoded delimiter is cut there by libpq and
    # golang-migrate ("Hunter2?pw" becomes port=Hunter2 and an option "pw"),
    # and their messages quote the pieces: every piece of 3 characters or
    # more is a secret too (shorter ones cannot be scrubbed without
    # garbling every word that holds them).
    pieces = {piece for value in whole for piece in _DELIMITERS.split(value) if len(piece) >= 3 and piece != value}
    return whole | pieces


_DELIMITERS = re.compile(r"[@/?#&=:%'\s]+")


def _patterns(url: str) -> tuple[re.Pattern, ...]:
    if _URL_USERINFO.match(url) or "://" in url:
        return (_URL_USERINFO, _QUERY_PASSWORD)
    return (_KV_PASSWORD,)


def scrub(text: str, *urls: str | None) -> str:
    """``text`` with every password of ``urls`` (see :func:`passwords`) replaced by ``***``."""
    for secret in sorted({p for url in urls if url for p in passwords(url)}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


def redact(url: str) -> str:
    """The URL (or key=value conninfo) with any password replaced by ``***``, for messages and logs."""
    redacted = url
    for pattern in _patterns(url):
        redacted = pattern.sub(lambda m: f"{m['head']}***@" if pattern is _URL_USERINFO else f"{m['head']}***", redacted)
    return scrub(redacted, url)


def _parse(url: str, *, what: str = "database", given: str | None = None) -> dict[str, Any]:
    """libpq's reading of ``url``; a malformed one is a DatabaseError that does not quote it.

    ``given``: the URL as the user wrote it, when ``url`` was derived from it
    (golang-migrate's options removed): the message names and scrubs that one.
    """
    for written in {given or url, url}:
        cut = _cut_password(written)
        if cut:
            raise DatabaseError(
                f"invalid {what} URL {redact(written)}: its user name or password holds an unencoded {cut!r},"
                " where libpq and golang-migrate would cut it, so it would reach another host or database",
                "Percent-encode : / ? # @ % in the user name and password (%3A %2F %3F %23 %40 %25), or use"
                " libpq's key=value form.",
            )
    try:
        return pg_conninfo.conninfo_to_dict(url)
    except psycopg.Error as exc:
        shown = given or url
        raise DatabaseError(
            f"invalid {what} URL {redact(shown)}: {scrub(_first_line(exc), url, shown)}",
            "Write it as postgresql://user:password@host:port/dbname, with any of : / ? # @ % in the user"
            " name or password percent-encoded (%3A %2F %3F %23 %40 %25), or in libpq's key=value form.",
        ) from None


_AUTHORITY = re.compile(r"^\s*[a-z][a-z0-9+.-]*://(?P<authority>[^/?#]*)(?P<rest>.*)$", re.I | re.S)


def _cut_password(url: str) -> str | None:
    """The delimiter an unencoded user name or password holds in ``url``, or None.

    libpq and Go's ``net/url`` end the user information at the first "@"
    and the authority at the first "/", "?" or "#" (RFC 3986, 3.2). So
    ``user:Hunter2?pw@host`` is read as host "user", port "Hunter2" and a
    query, and ``user:p@ss@host`` as password "p" on host "ss@host": the
    URL names another server than the one meant, and messages quoting the
    pieces would show the password. Such a URL is refused. An "@" in a
    query value (``host:5432/db?user=a@b``, ``u:pw@h/db?options=a@b``) is
    not this.
    """
    match = _AUTHORITY.match(url)
    if not match:
        return None
    authority, rest = match["authority"], match["rest"]
    if authority.count("@") > 1:
        return "@"
    before_query = rest.split("?", 1)[0] if not rest.startswith("?") else ""
    if "@" in authority:
        # user:p@ss/w0rd@host: a second "@" before any query ends the real user information.
        return "@" if "@" in before_query else None
    if ":" not in authority or "@" not in rest or authority.split(":", 1)[1].isdigit():
        return None  # no user information, or host:port and an "@" in a query value
    return rest[0]


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def with_database(url: str, dbname: str) -> str:
    """The same server and credentials, another database (libpq key=value form)."""
    params = _parse(url)
    params["dbname"] = dbname
    return pg_conninfo.make_conninfo(**params)


def database_name(url: str) -> str:
    """The database a URL names (libpq's default is the user name)."""
    params = _parse(url)
    return str(params.get("dbname") or params.get("user") or "postgres")


def connect(url: str, *, what: str = "database", autocommit: bool = False, **kwargs: Any) -> psycopg.Connection:
    """Connect, turning libpq's failure into one clear :class:`DatabaseError`."""
    _parse(url)  # a malformed URL says so, without quoting it
    try:
        return psycopg.connect(url, autocommit=autocommit, connect_timeout=10, **kwargs)
    except psycopg.Error as exc:
        # libpq's messages may quote the connection string: scrubbed.
        hint = "Check that the server is running and the URL (host, port, user, password, database) is right."
        if _embedded_server_socket(url):
            hint = ("This URL is the embedded server's (`schemadiff server createdb` printed it) and the server is"
                    " not running: `schemadiff server createdb NAME` or any `schemadiff plan` starts it again"
                    " (the databases made with createdb are kept until `schemadiff server clean`).")
        raise DatabaseError(
            f"cannot connect to the {what} at {redact(url)}: {scrub(_first_line(exc), url)}",
            hint,
        ) from None


def _embedded_server_socket(url: str) -> bool:
    """Whether ``url``'s host is the socket directory of schemadiff's embedded server: its data
    directory, named ``shadow-pgNN`` (``schemadiff.shadow.server``), holding a PG_VERSION file."""
    try:
        host = str(_parse(url).get("host") or "")
    except Exception:  # noqa: BLE001 - only a hint depends on it
        return False
    return host.startswith("/") and os.path.basename(host.rstrip("/")).startswith("shadow-pg") and os.path.isfile(
        os.path.join(host, "PG_VERSION"))


def read_only(url: str) -> str:
    """The URL with every transaction read-only, for inspecting live databases.

    ``plan --db`` must not be able to change anything, whatever a bug
    elsewhere might try: the server itself refuses writes.
    """
    params = _parse(url)
    options = str(params.get("options") or "")
    params["options"] = (options + " -c default_transaction_read_only=on").strip()
    return pg_conninfo.make_conninfo(**params)


def check_url(url: str, *, what: str = "database") -> str:
    """Return ``url`` if libpq can parse it, else raise one clear :class:`DatabaseError` (password hidden).

    Called where a URL enters (``--db``, an environment variable), so a typo
    is reported as such before anything runs, not as a failure deep inside.
    golang-migrate's ``x-`` options are removed first (they are the
    runner's, not libpq's; an unsupported one is a ConfigError naming it).
    """
    from .migrateurl import libpq_url

    try:
        libpq = libpq_url(url)
    except ValueError:  # urlsplit's own refusal (a bracketed host); libpq's message says more
        libpq = url
    _parse(libpq, what=what, given=url)
    return url
