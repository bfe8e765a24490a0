"""The one executor (schemadiff.execute): a file passes verification exactly when `apply` runs it.

Each case is a file (or two) whose outcome depends on how it is run: in one
transaction or not, on a session reset between files or not. The same files
go through `apply` (the runner, with its version table) on one database and
through generate's verification (``verify_migrations``, on a copy of an
identical database) on the shadow, both as the shadow's unprivileged
loader; the outcomes must agree, and a failure must be the same failure
(the same SQLSTATE, the same file line). Where golang-migrate would run a
file differently, verification refuses it, and golang-migrate itself is
run to show the difference is real.
"""

from __future__ import annotations

import re
from pathlib import Path

import psycopg
import pytest

from conftest import GoMigrate
from schemadiff import dburl
from schemadiff.errors import CommandError, MigrationFailed, VerificationFailed
from schemadiff.execute import golang_migrate_difference, script_from_text
from schemadiff.runner import apply as runner
from schemadiff.shadow.server import ShadowServer
from schemadiff.shadow.verify import verify_migrations

BASE = (
    "CREATE TABLE t (id int);"
    " CREATE TABLE p (id int) PARTITION BY RANGE (id);"
    " CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10);"
    " CREATE TYPE mood AS ENUM ('happy'); CREATE TABLE person (m mood);"
)

# (id, [(up, down), ...]): files run in order, as versions 1, 2...
SAME = [
    ("plain", [("CREATE TABLE a (id int);", "DROP TABLE a;")]),
    # PostgreSQL refuses DETACH ... CONCURRENTLY in a transaction block: it must run outside one, everywhere.
    ("detach-concurrently", [("ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY;",
                              "ALTER TABLE p1 DROP CONSTRAINT IF EXISTS p1_id_check;\n"
                              "ALTER TABLE p ATTACH PARTITION p1 FOR VALUES FROM (0) TO (10);")]),
    ("reindex-schema", [("REINDEX SCHEMA public;", "-- schemadiff:empty\n")]),
    ("discard-all", [("DISCARD ALL;", "-- schemadiff:empty\n")]),
    # SET LOCAL holds only inside a transaction: the CREATE fails in one, succeeds outside one.
    ("set-local", [("SET LOCAL search_path = nowhere;\nCREATE TABLE a (id int);", "DROP TABLE a;")]),
    ("fails-in-the-middle", [("CREATE TABLE a (id int);\nINSERT INTO t VALUES ('x');", "DROP TABLE a;")]),
    # A file outside a transaction must not leave one open (it would be rolled back when the connection closes).
    ("open-transaction", [("-- schemadiff:no-transaction\nBEGIN;", "-- schemadiff:empty\n")]),
    # What one file leaves in the session (a sequence's currval) is gone in the next: the session is reset.
    ("session-reset", [("CREATE SEQUENCE s;\nSELECT nextval('s');", "DROP SEQUENCE s;"),
                       ("CREATE TABLE b AS SELECT currval('s') AS v;", "DROP TABLE b;")]),
]

# Files apply runs but golang-migrate runs otherwise: verification refuses them.
DIFFERENT = [
    ("savepoint", "CREATE TABLE a (id int);\nSAVEPOINT s;\nCREATE TABLE b (id int);", "DROP TABLE a, b;"),
    ("lone-lock", "LOCK TABLE t IN SHARE MODE;", "-- schemadiff:empty\n"),
    ("enum-value-used", "ALTER TYPE mood ADD VALUE 'meh';\nINSERT INTO person VALUES ('meh');",
     "DELETE FROM person;"),
    ("session-set", "SELECT set_config('search_path', 'nowhere', false);", "-- schemadiff:empty\n"),
]


def _loaded(shadow: ShadowServer, make_db) -> tuple[str, str]:
    """A database holding BASE, created by the loader (which then owns it all): (name, loader URL)."""
    name = dburl.database_name(make_db())
    url = shadow.url_for(name)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(BASE)
    return name, url


def _directory(path: Path, files: list[tuple[str, str]]) -> Path:
    path.mkdir()
    for version, (up, down) in enumerate(files, 1):
        (path / f"{version:06d}_f{version}.up.sql").write_text(up, encoding="utf-8")
        (path / f"{version:06d}_f{version}.down.sql").write_text(down, encoding="utf-8")
    return path


def _apply(url: str, directory: Path) -> CommandError | None:
    try:
        runner.apply(url, directory)
    except CommandError as exc:
        return exc
    return None


def _verify(shadow: ShadowServer, current: str, desired_url: str, files: list[tuple[str, str]]) -> CommandError | None:
    try:
        verify_migrations(shadow, current_db=current, desired_url=desired_url,
                          ups=[up for up, _ in files], downs=[down for _, down in files])
    except CommandError as exc:
        return exc
    return None


def _sqlstate(error: CommandError) -> str | None:
    found = re.search(r"SQLSTATE (\w{5})", error.message)
    return found[1] if found else None


@pytest.mark.parametrize(("files",), [pytest.param(files, id=name) for name, files in SAME])
def test_verification_fails_exactly_when_apply_fails(shadow: ShadowServer, make_db, tmp_path: Path,
                                                     files: list[tuple[str, str]]) -> None:
    assert all(golang_migrate_difference(script_from_text(up, "f")) is None for up, _ in files)
    _, applied_url = _loaded(shadow, make_db)
    current, _ = _loaded(shadow, make_db)
    applied = _apply(applied_url, _directory(tmp_path / "m", files))
    verified = _verify(shadow, current, applied_url, files)
    assert (applied is None) == (verified is None), (applied, verified)
    if applied is None:
        return
    assert isinstance(applied, MigrationFailed), applied
    assert isinstance(verified, VerificationFailed), verified
    # The same failure: the same SQLSTATE (when the server gave one) at the same line of the same file.
    assert _sqlstate(applied) == _sqlstate(verified)
    failing = re.search(r"\.up\.sql:(\d+):\d+: migration (\d+)_f", applied.message)
    if failing is not None:
        line, version = int(failing[1]), int(failing[2])
        which = "generated up migration" + (f" (file {version} of {len(files)})" if len(files) > 1 else "")
        assert f"{which}:{line}:" in verified.message, verified.message


def test_the_cases_fail_and_pass_as_postgresql_says(shadow: ShadowServer, make_db, tmp_path: Path) -> None:
    # The judge above must be able to fail: the cases are not all alike.
    outcomes = {}
    for name, files in SAME:
        _, url = _loaded(shadow, make_db)
        outcomes[name] = _apply(url, _directory(tmp_path / name, files)) is None
    assert outcomes == {"plain": True, "detach-concurrently": True, "reindex-schema": True, "discard-all": True,
                        "set-local": False,
                        "fails-in-the-middle": False, "open-transaction": False, "session-reset": False}


@pytest.mark.parametrize(("up", "down"), [pytest.param(up, down, id=name) for name, up, down in DIFFERENT])
def test_verification_refuses_what_golang_migrate_runs_otherwise(shadow: ShadowServer, make_db, tmp_path: Path,
                                                                  golang_migrate: GoMigrate, up: str,
                                                                  down: str) -> None:
    _, applied_url = _loaded(shadow, make_db)
    current, _ = _loaded(shadow, make_db)
    files = [(up, down), ("CREATE TABLE after (id int);", "DROP TABLE after;")]
    directory = _directory(tmp_path / "m", files)
    assert _apply(applied_url, directory) is None  # schemadiff's runner copes
    verified = _verify(shadow, current, applied_url, files)
    assert isinstance(verified, VerificationFailed) and "golang-migrate" in verified.message, verified
    # golang-migrate itself: it fails, or builds something else (the leaked search_path sends `after` elsewhere).
    _, theirs = _loaded(shadow, make_db)
    code, output = golang_migrate.migrate(theirs, directory, "up")
    with psycopg.connect(theirs) as conn:
        placed = conn.execute("SELECT to_regclass('public.after') IS NOT NULL").fetchone()[0]
    assert code != 0 or not placed, output


def test_each_file_starts_from_the_urls_settings_whatever_the_file_before_set(make_db, tmp_path: Path) -> None:
    from conftest import go_url

    db = make_db()
    url = go_url(db, **{"x-statement-timeout": "5000", "lock_timeout": "1234"})
    files = [
        ("-- schemadiff:no-transaction\nSET statement_timeout = 0;\nSET lock_timeout = 0;", "-- schemadiff:empty\n"),
        ("CREATE TABLE seen AS SELECT current_setting('statement_timeout') AS statement_timeout,"
         " current_setting('lock_timeout') AS lock_timeout;", "DROP TABLE seen;"),
    ]
    runner.apply(url, _directory(tmp_path / "m", files))
    with psycopg.connect(db) as conn:
        # x-statement-timeout is the runner's own setting; lock_timeout a run-time parameter of the URL.
        assert conn.execute("SELECT statement_timeout, lock_timeout FROM seen").fetchone() == ("5s", "1234ms")
