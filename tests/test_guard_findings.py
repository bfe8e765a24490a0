"""Issue 15, the small findings: version tables golang-migrate could not have made, `new`'s missing
directory, unbounded SQL file reads, URL options out of range, lock timeouts that are not durations.

Against the real embedded PostgreSQL and the real CLI (in-process).
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import pytest

from schemadiff.migrateurl import MAX_STATEMENT_TIMEOUT_MS
from schemadiff.migrations import SUM_FILE
from schemadiff.sqlfile import MAX_SQL_FILE_BYTES
from conftest import go_url
from test_guards import THREE, _empty_cwd, is_bug_report, make_dir, rows, tables  # noqa: F401

# --- version tables golang-migrate could not have created or could not write --------------

FOREIGN_VERSION_TABLES = {
    "extra-not-null-column": (
        "CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL,"
        " applied_by text NOT NULL); INSERT INTO schema_migrations VALUES (1, false, 'rails');",
        "applied_by"),
    "partitioned": (
        "CREATE TABLE schema_migrations (version bigint NOT NULL, dirty boolean NOT NULL)"
        " PARTITION BY RANGE (version);"
        " CREATE TABLE schema_migrations_low PARTITION OF schema_migrations FOR VALUES FROM (0) TO (1000);"
        " INSERT INTO schema_migrations VALUES (1, false);",
        "partitioned table"),
    "view": (
        "CREATE TABLE real_versions (version bigint NOT NULL, dirty boolean NOT NULL);"
        " INSERT INTO real_versions VALUES (1, false);"
        " CREATE VIEW schema_migrations AS SELECT version, dirty FROM real_versions;",
        "view"),
}


@pytest.mark.parametrize("command", [["apply"], ["status"], ["force", "2"]], ids=lambda c: c[0])
@pytest.mark.parametrize("case", sorted(FOREIGN_VERSION_TABLES))
def test_a_version_table_golang_migrate_could_not_write_is_refused(cli, make_db, tmp_path, case, command):
    setup, named = FOREIGN_VERSION_TABLES[case]
    db = make_db(setup)
    directory = make_dir(tmp_path, THREE)
    before_tables = tables(db)
    before = rows(db, "SELECT version, dirty FROM schema_migrations")
    result = cli(*command, "--dir", directory, "--db", db)
    assert result.exit_code == 1, result.out
    assert not is_bug_report(result.err), result.err
    assert "schema_migrations" in result.err and named in result.err and "golang-migrate" in result.err
    assert len([line for line in result.err.splitlines() if line.startswith("error:")]) == 1
    # Nothing written: no table of ours, none of the migrations, the row as it was.
    assert tables(db) == before_tables
    assert rows(db, "SELECT version, dirty FROM schema_migrations") == before


@pytest.mark.parametrize("extra", ["note text", "note text NOT NULL DEFAULT ''",
                                   "id bigint GENERATED ALWAYS AS IDENTITY"])
def test_extra_columns_golang_migrate_can_still_write_are_accepted(cli, make_db, tmp_path, extra):
    db = make_db(f"CREATE TABLE schema_migrations (version bigint PRIMARY KEY, dirty boolean NOT NULL, {extra});")
    directory = make_dir(tmp_path, THREE)
    result = cli("apply", "--dir", directory, "--db", db)
    assert result.exit_code == 0, result.err
    assert rows(db, "SELECT version, dirty FROM schema_migrations") == [(3, False)]


# --- `new` and a missing directory -----------------------------------------------------------


def test_new_refuses_a_missing_directory_and_starts_one_with_the_flag_it_suggests(cli, tmp_path):
    typo = tmp_path / "migratoins"
    refused = cli("new", "backfill", "--dir", typo)
    assert refused.exit_code == 1 and "not found" in refused.err and "--create-dir" in refused.err, refused.err
    assert not typo.exists()
    started = cli("new", "backfill", "--dir", typo, "--create-dir")
    assert started.exit_code == 0, started.err
    assert sorted(p.name for p in typo.iterdir()) == ["000001_backfill.down.sql", "000001_backfill.up.sql", SUM_FILE]
    # An existing directory needs no flag.
    assert cli("new", "more", "--dir", typo).exit_code == 0
    assert (typo / "000002_more.up.sql").exists()


# --- SQL files read with a bound -------------------------------------------------------------


def _plan_reading(cli, desired: Path, shadow_url: str):
    """Run plan on ``desired`` in a thread: a read without end must fail the test, not hang it."""
    outcome: list = []
    thread = threading.Thread(target=lambda: outcome.append(cli("plan", "--desired", desired, "--shadow", shadow_url)),
                              daemon=True)
    started = time.monotonic()
    thread.start()
    thread.join(60)
    assert outcome, "plan did not return within 60 s: it is still reading"
    return outcome[0], time.monotonic() - started


def test_plan_refuses_a_device_as_desired_file(cli, shadow_url):
    result, _ = _plan_reading(cli, Path("/dev/zero"), shadow_url)
    assert result.exit_code == 1 and not is_bug_report(result.err), result.err
    assert "/dev/zero" in result.err and "not a regular file" in result.err


def test_plan_refuses_a_fifo_as_desired_file_without_waiting_for_a_writer(cli, shadow_url, tmp_path):
    fifo = tmp_path / "desired.sql"
    os.mkfifo(fifo)
    result, _ = _plan_reading(cli, fifo, shadow_url)
    assert result.exit_code == 1 and "not a regular file" in result.err, result.err


def test_plan_refuses_a_desired_file_above_the_size_limit(cli, shadow_url, tmp_path):
    huge = tmp_path / "desired.sql"
    with huge.open("wb") as handle:  # sparse: the size without the disk
        handle.truncate(MAX_SQL_FILE_BYTES + 1)
    result, _ = _plan_reading(cli, huge, shadow_url)
    assert result.exit_code == 1 and not is_bug_report(result.err), result.err
    assert str(MAX_SQL_FILE_BYTES) in result.err and "bytes" in result.err


def test_a_desired_file_at_the_limit_is_still_read(tmp_path):
    from schemadiff.sqlfile import read_text

    exact = tmp_path / "desired.sql"
    text = "-- padding\n" * 10
    exact.write_text(text)
    assert read_text(exact) == text


# --- URL options checked before connecting ----------------------------------------------------

# Nothing listens here: an option error must come first, a connection error would mean it came late.
UNREACHABLE = "postgres://u:secret@127.0.0.1:1/db"


@pytest.mark.parametrize(("option", "value"), [
    ("x-statement-timeout", "9223372036854775808"),  # above bigint
    ("x-statement-timeout", str(MAX_STATEMENT_TIMEOUT_MS + 1)),  # above PostgreSQL's statement_timeout
    ("x-multi-statement-max-size", "99999999999999999999"),
    ("x-multi-statement-max-size", "big"),
])
@pytest.mark.parametrize("command", ["apply", "status"])
def test_url_options_out_of_range_are_refused_before_connecting(cli, tmp_path, option, value, command):
    directory = make_dir(tmp_path, THREE)
    result = cli(command, "--dir", directory, "--db", f"{UNREACHABLE}?{option}={value}")
    assert result.exit_code == 1 and not is_bug_report(result.err), result.err
    assert option in result.err and "secret" not in result.err
    assert "connect" not in result.err.lower(), result.err


def test_the_largest_statement_timeout_is_accepted_and_applied(cli, db, tmp_path):
    directory = make_dir(tmp_path, {"000001_a.up.sql": "CREATE TABLE a AS SELECT current_setting('statement_timeout') AS s;"})
    result = cli("apply", "--dir", directory, "--db", go_url(db, **{"x-statement-timeout": str(MAX_STATEMENT_TIMEOUT_MS)}))
    assert result.exit_code == 0, result.err
    assert rows(db, "SELECT s FROM a") == [(f"{MAX_STATEMENT_TIMEOUT_MS}ms",)]


# --- --lock-timeout must be a duration ---------------------------------------------------------


@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "-1", "NaN"])
def test_lock_timeout_that_is_not_a_duration_is_a_usage_error(cli, db, tmp_path, value):
    directory = make_dir(tmp_path, THREE)
    result = cli("apply", "--dir", directory, "--db", db, f"--lock-timeout={value}")
    # The exit code of every other usage error (README "Exit codes": 1), e.g. an empty --dir.
    usage = cli("apply", "--dir", "", "--db", db)
    assert result.exit_code == usage.exit_code == 1, (result.out, result.err)
    assert "--lock-timeout" in result.err and "seconds" in result.err and not is_bug_report(result.err)
    assert "schema_migrations" not in tables(db)


def test_lock_timeout_zero_and_fractions_still_work(cli, db, tmp_path):
    directory = make_dir(tmp_path, THREE)
    assert cli("apply", "--dir", directory, "--db", db, "--lock-timeout", "0", "--to", "1").exit_code == 0
    assert cli("apply", "--dir", directory, "--db", db, "--lock-timeout", "0.5").exit_code == 0
    assert rows(db, "SELECT version FROM schema_migrations") == [(3,)]


def test_the_library_refuses_a_lock_timeout_that_is_not_a_duration(db, tmp_path):
    from schemadiff.runner import apply as runner
    from schemadiff.errors import ConfigError

    directory = make_dir(tmp_path, THREE)
    with pytest.raises(ConfigError, match="lock timeout"):
        runner.apply(db, directory, lock_timeout=float("nan"))
    assert "schema_migrations" not in tables(db)


def test_apply_refuses_a_migration_file_above_the_size_limit_before_running_anything(cli, db, tmp_path):
    directory = make_dir(tmp_path, {"000001_a.up.sql": "CREATE TABLE a (id int);"})
    with (directory / "000002_huge.up.sql").open("wb") as handle:
        handle.truncate(MAX_SQL_FILE_BYTES + 1)
    result = cli("apply", "--dir", directory, "--db", db)
    assert result.exit_code == 1 and not is_bug_report(result.err), result.err
    assert "000002_huge.up.sql" in result.err and str(MAX_SQL_FILE_BYTES) in result.err
    assert "a" not in tables(db) and "schema_migrations" not in tables(db)
