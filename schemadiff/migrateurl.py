"""golang-migrate's database URLs, read the way its postgres driver reads them.

The services keep one URL per database (``CORTEX_DATABASE_URL``...) and hand
it both to golang-migrate and to schemadiff, so schemadiff takes what
golang-migrate v4's postgres driver takes (its README, "postgres"; source
``database/postgres/postgres.go``, ``Open``):

* ``postgres://`` or ``postgresql://``;
* ``x-`` options, which golang-migrate strips before connecting
  (``migrate.FilterCustomQuery``): ``x-migrations-table`` (the version
  table's name, in the session's current schema; with
  ``x-migrations-table-quoted=true`` written ``"schema"."table"``),
  ``x-statement-timeout`` (milliseconds, at most PostgreSQL's largest
  statement_timeout, 2147483647), ``x-multi-statement`` and
  ``x-multi-statement-max-size`` (how golang-migrate feeds a file to the
  server; see :class:`MigrateURL`). Any other ``x-`` option is refused,
  naming it: a setting silently ignored is a surprise in production;
* every other query parameter goes to lib/pq, which knows libpq's
  connection keywords (``sslmode``, ``connect_timeout``...) and sends any
  other name as a run-time parameter in the startup packet, e.g.
  ``search_path=app``. libpq refuses unknown URL parameters, so those
  become ``options=-c name=value``, which is the same startup packet.

A URL in libpq's ``key=value`` form cannot carry ``x-`` options and is
passed through unchanged.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from .errors import ConfigError

DEFAULT_TABLE = "schema_migrations"  # golang-migrate's DefaultMigrationsTable

_SCHEMES = ("postgres", "postgresql")
_OPTIONS = {"x-migrations-table", "x-migrations-table-quoted", "x-statement-timeout", "x-multi-statement",
            "x-multi-statement-max-size"}
# lib/pq's own switches: they change how the Go client encodes parameters and
# mean nothing to the server (lib/pq's conn.go): accepted, not forwarded.
_LIBPQ_GO_ONLY = {"binary_parameters", "disable_prepared_binary_result"}
_QUOTED = re.compile(r'"(.*?)"')  # golang-migrate's own pattern for x-migrations-table-quoted


@dataclass(frozen=True)
class MigrateURL:
    """A database URL split into what libpq connects with and golang-migrate's options.

    ``conninfo``: the URL libpq accepts (``x-`` options removed, run-time
    parameters moved into ``options``). ``table`` / ``schema``: the version
    table (``schema`` None: the session's ``current_schema()``, as
    golang-migrate). ``statement_timeout_ms``: golang-migrate aborts a
    statement running longer (``x-statement-timeout``; None: no limit).
    ``multi_statement``: golang-migrate splits files on ``;`` and runs the
    pieces one by one (``x-multi-statement``); schemadiff always splits with
    PostgreSQL's grammar and keeps a file in one transaction when it can,
    so the option changes nothing here but is understood. ``url_path``: the
    URL's path ("/mydb"), which golang-migrate's command line and
    ``migrate.New`` hash into the advisory lock key.
    """

    conninfo: str
    table: str = DEFAULT_TABLE
    schema: str | None = None
    statement_timeout_ms: int | None = None
    multi_statement: bool = False
    url_path: str | None = None


def parse(url: str) -> MigrateURL:
    """Read ``url`` as golang-migrate does; raise :class:`ConfigError` for an option it cannot honour."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else None
    if scheme is None:
        return MigrateURL(url)  # libpq key=value form
    if scheme not in _SCHEMES:
        raise ConfigError(
            f"unsupported database URL scheme {scheme}://",
            "Use postgres:// or postgresql:// (golang-migrate's postgres driver), or libpq's key=value form.",
        )
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    given = {key: value for key, value in query if key in _OPTIONS}
    unknown = sorted({key for key, _ in query if key.startswith("x-") and key not in _OPTIONS})
    if unknown:
        raise ConfigError(
            f"the database URL has the option {', '.join(unknown)}, which schemadiff does not support",
            "schemadiff understands golang-migrate's x-migrations-table, x-migrations-table-quoted,"
            " x-statement-timeout, x-multi-statement and x-multi-statement-max-size; remove the others"
            " from the URL given to schemadiff.",
        )
    conninfo = _conninfo(url)
    schema, table = _table(given)
    _integer(given, "x-multi-statement-max-size", "bytes", _GO_INT_MAX)  # understood, unused: checked all the same
    return MigrateURL(
        conninfo,
        table=table,
        schema=schema,
        statement_timeout_ms=_integer(given, "x-statement-timeout", "milliseconds", MAX_STATEMENT_TIMEOUT_MS),
        multi_statement=_boolean(given, "x-multi-statement"),
        url_path=unquote(parts.path) or None,  # Go's url.URL.Path is unescaped
    )


def _conninfo(url: str) -> str:
    """``url`` without golang-migrate's options, its run-time parameters moved into ``options``.

    Rewritten as written, not through urlsplit/urlencode: urlunsplit drops
    the "//" of an empty authority ("postgresql:///db?host=/socket" became
    "postgresql:/db?...", which libpq refuses), and parse_qsl reads "+" as a
    space where libpq does not, which changed passwords. A URL with nothing
    to remove or move is returned unchanged.
    """
    head, mark, raw_query = url.partition("?")
    if not mark:
        return url
    keywords = _libpq_keywords()
    kept: list[str] = []
    runtime: list[str] = []
    options: list[str] = []
    changed = False
    for pair in raw_query.split("&"):
        raw_key, _, raw_value = pair.partition("=")
        key = unquote(raw_key)
        if key.startswith("x-") or key in _LIBPQ_GO_ONLY:
            changed = True
        elif key == "options":
            options.append(unquote(raw_value))
            kept.append(pair)
        elif key in keywords or not pair:
            kept.append(pair)
        else:  # a run-time parameter, as lib/pq sends it
            runtime.append(f"-c {key}={_escape_option(unquote(raw_value))}")
            changed = True
    if not changed:
        return url
    if runtime:
        kept = [pair for pair in kept if unquote(pair.partition("=")[0]) != "options"]
        kept.append("options=" + quote(" ".join([*options, *runtime]), safe=""))
    kept = [pair for pair in kept if pair]
    return head + ("?" + "&".join(kept) if kept else "")


def libpq_url(url: str) -> str:
    """``url`` as libpq accepts it (see :func:`parse`), for connecting without the runner."""
    return parse(url).conninfo


def _table(given: dict[str, str]) -> tuple[str | None, str]:
    table = given.get("x-migrations-table") or DEFAULT_TABLE
    if not _boolean(given, "x-migrations-table-quoted"):
        return None, table  # the whole value is the name, dots included (golang-migrate quotes it)
    if not (len(table) >= 2 and table[0] == '"' and table[-1] == '"'):
        raise ConfigError(
            f"x-migrations-table must be quoted when x-migrations-table-quoted is enabled, current value is: {table}",
            'Write it as "schema"."table" (or "table"), as golang-migrate requires.',
        )
    names = _QUOTED.findall(table)
    if len(names) > 2:
        raise ConfigError(f'x-migrations-table {table} contains too many dot characters',
                          'Write it as "schema"."table".')
    return (names[0] if len(names) == 2 else None), names[-1]


def _boolean(given: dict[str, str], key: str) -> bool:
    # Go's strconv.ParseBool, which golang-migrate uses.
    value = given.get(key)
    if value is None or value == "":
        return False
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    raise ConfigError(f"unable to parse option {key}: {value!r} is not a boolean", "Use true or false.")


# PostgreSQL's largest statement_timeout, in milliseconds (an int GUC: INT_MAX,
# about 24.8 days); the runner sets the option as the session's statement_timeout.
MAX_STATEMENT_TIMEOUT_MS = 2**31 - 1
# Go's int on the 64-bit platforms golang-migrate ships for (strconv.Atoi).
_GO_INT_MAX = 2**63 - 1


def _integer(given: dict[str, str], key: str, unit: str, maximum: int) -> int | None:
    """A whole-number option, read before connecting; None when absent or not positive (golang-migrate: off)."""
    value = given.get(key)
    if value is None or value == "":
        return None
    try:
        number = int(value)
    except ValueError:
        raise ConfigError(f"unable to parse option {key}: {value!r} is not a whole number of {unit}") from None
    if number > maximum:
        raise ConfigError(
            f"option {key} is {number} {unit}, above the largest accepted, {maximum}; nothing was run",
            f"Give {key} at most {maximum} (0 for no limit) in the database URL.",
        )
    return number if number > 0 else None  # golang-migrate: 0 means no limit


def _escape_option(value: str) -> str:
    # libpq's options: spaces separate arguments, a backslash escapes (libpq docs, "options").
    return value.replace("\\", "\\\\").replace(" ", "\\ ")


@lru_cache(maxsize=1)
def _libpq_keywords() -> frozenset[str]:
    from psycopg import pq

    return frozenset(option.keyword.decode() for option in pq.Conninfo.get_defaults())
