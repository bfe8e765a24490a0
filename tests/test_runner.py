"""Applying migrations to a real PostgreSQL: the guarantees users rely on."""

from __future__ import annotations

import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from schemadiff.runner import apply as runner
from schemadiff.errors import (
    ConfigError,
    LockTimeout,
    MigrationDirectoryError,
    MigrationFailed,
    MigrationStateError,
)
from schemadiff.runner.lock import advisory_lock_id
from schemadiff.migrations import write_sum
from schemadiff.runner.versiontable import Tables

ROOT = Path(__file__).resolve().parent.parent


# --- helpers -------------------------------------------------------------------


def write(directory: Path, name: str, text: str) -> None:
    (directory / name).write_text(text, encoding="utf-8")


def add(directory: Path, version: int, name: str, up: str, down: str | None = None) -> None:
    write(directory, f"{version:06d}_{name}.up.sql", up)
    if down is not None:
        write(directory, f"{version:06d}_{name}.down.sql", down)


def five_tables(directory: Path) -> None:
    for version in range(1, 6):
        add(directory, version, f"t{version}", f"CREATE TABLE t{version} (id int);", f"DROP TABLE t{version};")


def version_rows(url: str) -> list[tuple[int, bool]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT version, dirty FROM schema_migrations").fetchall()


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        rows = conn.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
        ).fetchall()
    return {row[0] for row in rows}


def history(url: str) -> list[tuple[int, str, str]]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT version, direction, state FROM schemadiff_history ORDER BY id").fetchall()


def user_tables(url: str) -> set[str]:
    return {t for t in tables(url) if t.startswith("t")}


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    directory = tmp_path / "migrations"
    directory.mkdir()
    return directory


# --- up, down, to --------------------------------------------------------------


def test_apply_all_then_nothing_to_do(db: str, migrations: Path) -> None:
    five_tables(migrations)
    write_sum(migrations)
    events: list[runner.Event] = []
    result = runner.apply(db, migrations, on_event=events.append)
    assert [(a.step.version, a.step.direction) for a in result.applied] == [(v, "up") for v in range(1, 6)]
    assert result.final_version == 5 and result.sum_verified
    assert version_rows(db) == [(5, False)]
    assert user_tables(db) == {"t1", "t2", "t3", "t4", "t5"}
    assert [e.step.version for e in events if isinstance(e, runner.MigrationFinished)] == [1, 2, 3, 4, 5]
    assert not any(isinstance(e, runner.SumUnchecked) for e in events)

    again = runner.apply(db, migrations)
    assert again.applied == () and again.final_version == 5


@pytest.mark.parametrize("no_transaction", [False, True], ids=["transactional", "no-transaction"])
def test_a_long_run_applies_every_pending_file_in_one_go(db: str, tmp_path: Path, no_transaction: bool) -> None:
    # Many files in one run: the session reset between files must not break
    # the runner's own statements (psycopg prepares a query run five times).
    directory = tmp_path / "many"
    directory.mkdir()
    marker = "-- schemadiff:no-transaction\n" if no_transaction else ""
    for version in range(1, 16):
        (directory / f"{version:06d}_t{version}.up.sql").write_text(f"{marker}CREATE TABLE t{version} (id int);\n")
        (directory / f"{version:06d}_t{version}.down.sql").write_text(f"{marker}DROP TABLE t{version};\n")
    assert runner.apply(db, directory).final_version == 15
    assert runner.apply(db, directory, to=0, allow_destructive=True).final_version is None


def test_version_table_has_golang_migrate_shape(db: str, migrations: Path) -> None:
    add(migrations, 1, "a", "CREATE TABLE a (id int);")
    runner.apply(db, migrations)
    with psycopg.connect(db) as conn:
        columns = conn.execute(
            """SELECT column_name, data_type, is_nullable FROM information_schema.columns
               WHERE table_name = 'schema_migrations' ORDER BY ordinal_position"""
        ).fetchall()
        primary_key = conn.execute(
            """SELECT a.attname FROM pg_index i JOIN pg_attribute a
                 ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)
               WHERE i.indrelid = 'schema_migrations'::regclass AND i.indisprimary"""
        ).fetchall()
    assert columns == [("version", "bigint", "NO"), ("dirty", "boolean", "NO")]
    assert primary_key == [("version",)]


def test_to_down_and_zero(db: str, migrations: Path) -> None:
    five_tables(migrations)
    runner.apply(db, migrations, to=3, allow_destructive=True)
    assert version_rows(db) == [(3, False)] and user_tables(db) == {"t1", "t2", "t3"}

    result = runner.apply(db, migrations, to=1, allow_destructive=True)
    assert [(a.step.version, a.step.direction, a.step.target) for a in result.applied] == [
        (3, "down", 2), (2, "down", 1),
    ]
    assert version_rows(db) == [(1, False)] and user_tables(db) == {"t1"}

    runner.apply(db, migrations, to=4, allow_destructive=True)
    runner.apply(db, migrations, down=1, allow_destructive=True)
    assert version_rows(db) == [(3, False)]

    runner.apply(db, migrations, to=0, allow_destructive=True)
    assert version_rows(db) == [] and user_tables(db) == set()
    assert history(db)[-1] == (1, "down", "done")


def test_unknown_target_is_refused(db: str, migrations: Path) -> None:
    five_tables(migrations)
    with pytest.raises(MigrationStateError, match="version 9 is not a migration"):
        runner.apply(db, migrations, to=9, allow_destructive=True)
    with pytest.raises(ConfigError):
        runner.apply(db, migrations, to=2, down=1, allow_destructive=True)
    assert "schema_migrations" not in tables(db)


def test_missing_down_file_is_refused_with_nothing_run(db: str, migrations: Path) -> None:
    five_tables(migrations)
    runner.apply(db, migrations)
    (migrations / "000003_t3.down.sql").unlink()
    with pytest.raises(MigrationDirectoryError, match=r"no \.down file for 3_t3.*nothing was run"):
        runner.apply(db, migrations, to=1, allow_destructive=True)
    assert version_rows(db) == [(5, False)]
    assert user_tables(db) == {"t1", "t2", "t3", "t4", "t5"}  # not even 5 and 4 were reverted


def test_gap_in_down_path_is_refused(db: str, migrations: Path) -> None:
    five_tables(migrations)
    runner.apply(db, migrations)
    for direction in ("up", "down"):
        (migrations / f"000002_t2.{direction}.sql").unlink()
    with pytest.raises(MigrationDirectoryError, match=r"version\(s\) 2 were applied but have no files"):
        runner.apply(db, migrations, to=0, allow_destructive=True)
    assert version_rows(db) == [(5, False)]


def test_database_version_not_in_directory_is_refused(db: str, migrations: Path) -> None:
    five_tables(migrations)
    runner.apply(db, migrations)
    for direction in ("up", "down"):
        (migrations / f"000005_t5.{direction}.sql").unlink()
    with pytest.raises(MigrationStateError, match="at version 5, which is not a migration"):
        runner.apply(db, migrations)
    report = runner.status(db, migrations)
    assert [(m.version, m.state) for m in report.problems] == [(5, "missing_file")]


def test_dry_run_touches_nothing(db: str, migrations: Path) -> None:
    five_tables(migrations)
    result = runner.apply(db, migrations, to=2, dry_run=True, allow_destructive=True)
    assert result.dry_run and result.applied == ()
    assert [(s.version, s.direction) for s in result.schedule] == [(1, "up"), (2, "up")]
    assert result.final_version == 2
    assert tables(db) == set()  # not even the version table

    runner.apply(db, migrations, to=4, allow_destructive=True)
    down = runner.apply(db, migrations, to=2, dry_run=True, allow_destructive=True)
    assert [(s.version, s.direction) for s in down.schedule] == [(4, "down"), (3, "down")]
    assert version_rows(db) == [(4, False)]


# --- baseline ------------------------------------------------------------------


def test_baseline_adopts_an_existing_schema(make_db, migrations: Path) -> None:
    url = make_db("CREATE TABLE t1 (id int); CREATE TABLE t2 (id int);")
    five_tables(migrations)
    events: list[runner.Event] = []
    result = runner.apply(url, migrations, baseline=2, to=3, on_event=events.append, allow_destructive=True)
    # 1 and 2 would fail (tables exist): they were recorded, not run.
    assert [a.step.version for a in result.applied] == [3]
    assert result.baselined == 2 and result.start_version is None
    assert version_rows(url) == [(3, False)]
    assert history(url)[:2] == [(2, "baseline", "done"), (3, "up", "done")]
    assert any(isinstance(e, runner.Baselined) and e.version == 2 for e in events)

    with pytest.raises(MigrationStateError, match="already at version 3"):
        runner.apply(url, migrations, baseline=1)


def test_baseline_accepts_an_empty_version_table(make_db, migrations: Path) -> None:
    url = make_db(
        "CREATE TABLE schema_migrations (version bigint not null primary key, dirty boolean not null);"
        "CREATE TABLE t1 (id int);"
    )
    five_tables(migrations)
    runner.apply(url, migrations, baseline=1, to=1, allow_destructive=True)
    assert version_rows(url) == [(1, False)]
    assert user_tables(url) == {"t1"}


def test_baseline_must_name_a_migration(db: str, migrations: Path) -> None:
    five_tables(migrations)
    with pytest.raises(MigrationStateError, match="cannot baseline at 7"):
        runner.apply(db, migrations, baseline=7)


# --- failures ------------------------------------------------------------------


def test_failing_transactional_migration_in_the_middle(db: str, migrations: Path) -> None:
    five_tables(migrations)
    add(migrations, 3, "t3", "CREATE TABLE t3 (id int);\nINSERT INTO t3 VALUES (1);\nINSERT INTO t3 VALUES ('x');\n")
    with pytest.raises(MigrationFailed) as caught:
        runner.apply(db, migrations)
    message = str(caught.value)
    assert "000003_t3.up.sql:3:" in message
    assert "INSERT INTO t3 VALUES ('x')" in message
    assert "Nothing of 000003_t3.up.sql was applied" in message
    assert version_rows(db) == [(2, False)]
    assert user_tables(db) == {"t1", "t2"}  # none of file 3, nothing after it
    assert [row[0] for row in history(db)] == [1, 2]


def test_failing_non_transactional_migration_leaves_dirty_until_force(db: str, migrations: Path) -> None:
    five_tables(migrations)
    add(
        migrations, 3, "t3",
        "CREATE TABLE t3 (id int);\nCREATE INDEX CONCURRENTLY t3_id ON t3 (id);\nSELECT * FROM no_such_table;\n",
    )
    with pytest.raises(MigrationFailed) as caught:
        runner.apply(db, migrations)
    message = str(caught.value)
    assert "000003_t3.up.sql:3:" in message and "no_such_table" in message
    assert "dirty" in message
    assert version_rows(db) == [(3, True)]
    assert "t3" in user_tables(db)  # statements before the failure stay applied

    with pytest.raises(MigrationStateError) as refused:
        runner.apply(db, migrations)
    refusal = str(refused.value)
    assert "dirty at version 3" in refusal
    assert "000003_t3.up.sql failed" in refusal and ":3:" in refusal
    assert "schemadiff force 3" in refusal
    report = runner.status(db, migrations)
    assert report.dirty and "000003_t3.up.sql" in report.dirty_reason

    # The operator finishes the file by hand, then records it.
    runner.force(db, 3, directory=migrations)
    assert version_rows(db) == [(3, False)]
    runner.apply(db, migrations)
    assert version_rows(db) == [(5, False)]


def test_failed_step_down_past_the_first_writes_golang_migrates_nil_version(db: str, migrations: Path) -> None:
    add(migrations, 1, "a", "CREATE TABLE a (id int);", "-- schemadiff:no-transaction\nDROP TABLE nope;\n")
    runner.apply(db, migrations)
    with pytest.raises(MigrationFailed, match=r"000001_a\.down\.sql:2:"):
        runner.apply(db, migrations, to=0, allow_destructive=True)
    assert version_rows(db) == [(-1, True)]  # what golang-migrate writes for a dirty nil version
    with pytest.raises(MigrationStateError, match=r"schemadiff force -1"):
        runner.apply(db, migrations)
    runner.force(db, -1)
    assert version_rows(db) == []


def test_new_enum_value_used_in_the_same_file_runs_outside_a_transaction(db: str, migrations: Path) -> None:
    # In one transaction PostgreSQL refuses: unsafe use of new value "sad".
    add(migrations, 1, "mood", "CREATE TYPE mood AS ENUM ('happy');\nCREATE TABLE person (m mood);")
    add(
        migrations, 2, "sad",
        "ALTER TYPE mood ADD VALUE 'sad';\nINSERT INTO person VALUES ('sad');",
    )
    result = runner.apply(db, migrations)
    assert [a.step.transactional for a in result.applied] == [True, False]
    assert version_rows(db) == [(2, False)]
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT m::text FROM person").fetchall() == [("sad",)]


def test_dirty_made_by_golang_migrate_is_refused(make_db, migrations: Path) -> None:
    url = make_db(
        "CREATE TABLE schema_migrations (version bigint not null primary key, dirty boolean not null);"
        "INSERT INTO schema_migrations VALUES (2, true);"
    )
    five_tables(migrations)
    with pytest.raises(MigrationStateError, match="dirty at version 2: a migration failed outside schemadiff"):
        runner.apply(url, migrations)
    assert version_rows(url) == [(2, True)]


def test_force(db: str, migrations: Path) -> None:
    five_tables(migrations)
    result = runner.force(db, 2)
    assert result.version == 2 and not result.previous.table_exists
    assert version_rows(db) == [(2, False)]
    assert tables(db) >= {"schema_migrations"} and user_tables(db) == set()  # nothing ran
    runner.force(db, -1)
    assert version_rows(db) == []
    with pytest.raises(MigrationStateError, match="version 8 is not a migration"):
        runner.force(db, 8, directory=migrations)


def test_version_write_checks_the_row_it_replaces(db: str, migrations: Path) -> None:
    five_tables(migrations)
    runner.apply(db, migrations, to=2, allow_destructive=True)
    with psycopg.connect(db, autocommit=True) as conn:
        table = Tables(conn, "public")
        state = table.read_state()
        conn.execute("UPDATE schema_migrations SET version = 4")  # behind our back
        with pytest.raises(MigrationStateError, match="changed while schemadiff held the migration lock"):
            table.set_version(state, 3, False)
    assert version_rows(db) == [(4, False)]


# --- integrity -----------------------------------------------------------------


def test_edited_applied_file_is_detected(db: str, migrations: Path) -> None:
    five_tables(migrations)
    write_sum(migrations)
    runner.apply(db, migrations, to=3, allow_destructive=True)
    add(migrations, 2, "t2", "CREATE TABLE t2 (id bigint);")
    with pytest.raises(MigrationDirectoryError, match=r"edited .*000002_t2\.up\.sql"):
        runner.apply(db, migrations)
    with pytest.raises(MigrationDirectoryError, match=r"edited .*000002_t2\.up\.sql"):
        runner.status(db, migrations)
    assert version_rows(db) == [(3, False)]

    # Re-hashing accepts the directory, but history still knows what ran.
    write_sum(migrations)
    report = runner.status(db, migrations)
    assert [(m.version, m.state) for m in report.problems] == [(2, "changed")]
    events: list[runner.Event] = []
    runner.apply(db, migrations, dry_run=True, on_event=events.append)
    assert [e.version for e in events if isinstance(e, runner.ChangedSinceApplied)] == [2]


def test_removed_file_is_detected(db: str, migrations: Path) -> None:
    five_tables(migrations)
    write_sum(migrations)
    runner.apply(db, migrations, to=3, allow_destructive=True)
    (migrations / "000002_t2.up.sql").unlink()
    with pytest.raises(MigrationDirectoryError, match=r"removed .*000002_t2\.up\.sql"):
        runner.apply(db, migrations)


def test_file_inserted_below_current_version_is_detected(db: str, migrations: Path) -> None:
    for version in (1, 2, 4):
        add(migrations, version, f"t{version}", f"CREATE TABLE t{version} (id int);")
    write_sum(migrations)
    runner.apply(db, migrations)
    add(migrations, 3, "t3", "CREATE TABLE t3 (id int);")
    with pytest.raises(MigrationDirectoryError, match=r"out of order .*000003_t3\.up\.sql"):
        runner.apply(db, migrations)
    assert "t3" not in user_tables(db)


def test_directory_without_sum_is_reported_unchecked(db: str, migrations: Path) -> None:
    five_tables(migrations)
    events: list[runner.Event] = []
    result = runner.apply(db, migrations, on_event=events.append)
    assert not result.sum_verified
    assert [type(e) for e in events].count(runner.SumUnchecked) == 1
    assert runner.status(db, migrations).sum_verified is False


def test_status(db: str, migrations: Path) -> None:
    five_tables(migrations)
    write_sum(migrations)
    runner.apply(db, migrations, to=2, allow_destructive=True)
    report = runner.status(db, migrations)
    assert report.version == 2 and not report.dirty and report.latest == 5 and report.sum_verified
    assert [(m.version, m.state) for m in report.migrations] == [
        (1, "applied"), (2, "applied"), (3, "pending"), (4, "pending"), (5, "pending"),
    ]
    assert report.migrations[0].applied_at is not None
    assert "password" not in report.database


# --- golang-migrate interop ------------------------------------------------------


def test_continues_a_database_migrated_by_golang_migrate(make_db, migrations: Path) -> None:
    # Exactly what golang-migrate leaves: its table, one row, no side table.
    url = make_db(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version bigint not null primary key, dirty boolean not null);"
        "CREATE TABLE t1 (id int); CREATE TABLE t2 (id int);"
        "TRUNCATE schema_migrations; INSERT INTO schema_migrations (version, dirty) VALUES (2, false);"
    )
    five_tables(migrations)
    result = runner.apply(url, migrations)
    assert [a.step.version for a in result.applied] == [3, 4, 5]
    assert version_rows(url) == [(5, False)]
    # Going down through versions golang-migrate applied works from the files alone.
    runner.apply(url, migrations, to=1, allow_destructive=True)
    assert version_rows(url) == [(1, False)] and user_tables(url) == {"t1"}


@pytest.mark.parametrize("database_form", ["current_database", "url_path"])
def test_waits_for_golang_migrates_lock_and_names_the_holder(db: str, migrations: Path, database_form: str) -> None:
    add(migrations, 1, "a", "CREATE TABLE a (id int);")
    with psycopg.connect(db, autocommit=True, application_name="golang-migrate-test") as holder:
        database = holder.execute("SELECT current_database()").fetchone()[0]
        name = database if database_form == "current_database" else "/" + database
        holder.execute("SELECT pg_advisory_lock(%s)", [advisory_lock_id(name, "public", "schema_migrations")])
        pid = holder.info.backend_pid
        events: list[runner.Event] = []
        started = time.monotonic()
        with pytest.raises(LockTimeout) as caught:
            runner.apply(db, migrations, lock_timeout=1, on_event=events.append)
        assert 1 <= time.monotonic() - started < 5
        assert f"pid {pid}" in str(caught.value) and "golang-migrate-test" in str(caught.value)
        assert any(isinstance(e, runner.LockWaiting) and e.holder and e.holder.pid == pid for e in events)
    assert "a" not in tables(db)
    runner.apply(db, migrations, lock_timeout=1)  # released with the session
    assert version_rows(db) == [(1, False)]


# --- processes: kill -9 and concurrent starts -------------------------------------


def _migrate_in_subprocess(url: str, directory: Path) -> subprocess.Popen:
    code = "import sys; from schemadiff.api import migrate; migrate(sys.argv[1], sys.argv[2], lock_timeout=60)"
    return subprocess.Popen(
        [sys.executable, "-c", code, url, str(directory)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def _wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_kill_9_during_a_migration_leaves_the_previous_version(db: str, migrations: Path) -> None:
    add(migrations, 1, "first", "CREATE TABLE t1 (id int);")
    add(migrations, 2, "slow", "CREATE TABLE killed (id int);\nSELECT pg_sleep(30);\n")
    write_sum(migrations)
    process = _migrate_in_subprocess(db, migrations)

    def sleeping_backend() -> int | None:
        with psycopg.connect(db, autocommit=True) as conn:
            row = conn.execute(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
                " AND query LIKE 'SELECT pg_sleep%' AND state = 'active'"
            ).fetchone()
        return row[0] if row else None

    try:
        _wait_for(lambda: sleeping_backend() is not None or process.poll() is not None, 30, "the migration to run")
        assert process.poll() is None, process.communicate()
        backend = sleeping_backend()
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()

    # The client is gone and never sent COMMIT. The server notices the closed
    # connection (client_connection_check_interval) and rolls back; we only
    # wait for that, we do not terminate the backend ourselves.
    def backend_gone() -> bool:
        with psycopg.connect(db, autocommit=True) as conn:
            return conn.execute("SELECT count(*) FROM pg_stat_activity WHERE pid = %s", [backend]).fetchone()[0] == 0

    _wait_for(backend_gone, 10, "the killed client's backend to end")
    assert version_rows(db) == [(1, False)]
    assert "killed" not in tables(db)
    assert history(db) == [(1, "up", "done")]
    with psycopg.connect(db) as conn:
        # pg_locks is the whole server's: other test workers' runs hold advisory locks in their databases
        assert conn.execute(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory'"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        ).fetchone()[0] == 0


def test_kill_9_outside_a_transaction_leaves_dirty_and_says_interrupted(db: str, migrations: Path) -> None:
    add(migrations, 1, "first", "CREATE TABLE t1 (id int);")
    add(migrations, 2, "slow", "-- schemadiff:no-transaction\nCREATE TABLE half (id int);\nSELECT pg_sleep(30);\n")
    process = _migrate_in_subprocess(db, migrations)
    try:
        _wait_for(lambda: "half" in tables(db) or process.poll() is not None, 30, "the migration to start")
        assert process.poll() is None, process.communicate()
        os.kill(process.pid, signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert version_rows(db) == [(2, True)]
    with pytest.raises(MigrationStateError, match=r"dirty at version 2: 000002_slow\.up\.sql was interrupted"):
        runner.apply(db, migrations, lock_timeout=15)


def test_four_concurrent_applies_apply_each_migration_once(db: str, migrations: Path) -> None:
    # Not idempotent on purpose: a second run of any file would fail.
    add(migrations, 1, "a", "CREATE TABLE a (id int);")
    add(migrations, 2, "b", "CREATE TABLE b (id int);\nSELECT pg_sleep(0.5);\n")
    add(migrations, 3, "c", "CREATE TABLE c (id int);\nINSERT INTO a VALUES (1);\n")
    add(migrations, 4, "d", "CREATE INDEX CONCURRENTLY a_id ON a (id);")
    write_sum(migrations)
    processes = [_migrate_in_subprocess(db, migrations) for _ in range(4)]
    outputs = [process.communicate(timeout=120) for process in processes]
    assert [p.returncode for p in processes] == [0, 0, 0, 0], outputs
    assert version_rows(db) == [(4, False)]
    assert history(db) == [(v, "up", "done") for v in (1, 2, 3, 4)]
    with psycopg.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM a").fetchone()[0] == 1


def test_makefile_verbs_are_thin_cli_calls() -> None:
    def dry(*args: str) -> list[str]:
        done = subprocess.run(["make", "-n", "-s", *args], cwd=ROOT, capture_output=True, text=True, check=True)
        return shlex.split(done.stdout.strip().splitlines()[-1])  # the guard line comes first

    # Values come after `--` (or glued to their option): never read as options (tests/test_hostile_inputs.py).
    assert dry("migrate-up") == ["schemadiff", "apply", "--", "cortex"]
    assert dry("migrate-down", "SERVICE=postal") == ["schemadiff", "apply", "--down", "1", "--", "postal"]
    assert dry("migrate-goto", "VERSION=3") == ["schemadiff", "apply", "--to=3", "--", "cortex"]
    assert dry("migrate-force", "VERSION=3") == ["schemadiff", "force", "--", "3", "cortex"]
    assert dry("migrate-version", "SERVICE=postal") == ["schemadiff", "status", "--", "postal"]
    assert dry("migrate-create", "NAME=add_slug") == ["schemadiff", "generate", "--", "add_slug", "cortex"]
    missing = subprocess.run(["make", "-s", "migrate-goto"], cwd=ROOT, capture_output=True, text=True)
    assert missing.returncode != 0 and "usage: make migrate-goto VERSION=" in missing.stderr


@pytest.mark.parametrize("target", ["migrate-create", "migrate-force", "migrate-goto", "migrate-up"])
@pytest.mark.parametrize(
    "value", ["x; touch {p}", "x'; touch {p}; echo '", 'x"; touch {p}; "', "`touch {p}`", "$$(touch {p})", "a\\' ;touch {p}"]
)
def test_makefile_passes_values_as_one_word_never_as_commands(tmp_path: Path, target: str, value: str) -> None:
    # A stand-in for schemadiff that prints each argument it gets on its own line.
    fake = tmp_path / "fake-schemadiff"
    fake.write_text('#!/bin/sh\nfor a in "$@"; do printf \'%s\\n\' "$a"; done\n')
    fake.chmod(0o755)
    pwned = tmp_path / "pwned"
    text = value.format(p=pwned)
    done = subprocess.run(
        ["make", "-s", "-f", str(ROOT / "Makefile"), target, f"SCHEMADIFF={fake}",
         f"NAME={text}", f"VERSION={text}", f"SERVICE={text}"],
        cwd=tmp_path, capture_output=True, text=True,
    )
    assert done.returncode == 0, done.stderr
    assert not pwned.exists(), f"{value!r} ran a command"
    # Verbatim: make expands nothing in a value ($(value ...)), not even its own `$$` escape.
    assert text in done.stdout.splitlines()
