"""The migration directory: names, integrity sum, how each file must run, the lock key."""

from __future__ import annotations

from pathlib import Path

import pytest

from schemadiff.errors import MigrationDirectoryError, SQLSyntaxError
from schemadiff.runner.lock import advisory_lock_id, lock_keys
from schemadiff.migrations import SUM_FILE, MigrationScript, load_directory, read_script, verify_sum, write_sum


def write(directory: Path, name: str, text: str) -> Path:
    path = directory / name
    path.write_text(text, encoding="utf-8")
    return path


def script_of(tmp_path: Path, text: str) -> MigrationScript:
    write(tmp_path, "1_x.up.sql", text)
    return read_script(load_directory(tmp_path).get(1).up)


# --- names ---------------------------------------------------------------------


def test_versions_compare_as_integers_and_other_files_are_ignored(tmp_path: Path) -> None:
    write(tmp_path, "10_ten.up.sql", "SELECT 10;")
    write(tmp_path, "2_two.up.sql", "SELECT 2;")
    write(tmp_path, "2_two.down.sql", "SELECT -2;")
    write(tmp_path, "README.md", "notes")
    write(tmp_path, "3_three.sql", "not a migration: no direction")
    directory = load_directory(tmp_path)
    assert directory.versions == [2, 10]
    assert directory.get(2).down.name == "2_two.down.sql"
    assert directory.get(10).down is None
    assert directory.previous(10) == 2 and directory.previous(2) is None
    assert directory.latest == 10


def test_duplicate_version_and_direction_is_an_error(tmp_path: Path) -> None:
    write(tmp_path, "1_a.up.sql", "SELECT 1;")
    write(tmp_path, "0001_b.up.sql", "SELECT 1;")
    with pytest.raises(MigrationDirectoryError, match="duplicate up migration for version 1"):
        load_directory(tmp_path)


def test_version_zero_is_refused(tmp_path: Path) -> None:
    write(tmp_path, "0_init.up.sql", "SELECT 1;")
    with pytest.raises(MigrationDirectoryError, match="version 0 is reserved"):
        load_directory(tmp_path)


# --- integrity sum -------------------------------------------------------------


@pytest.fixture
def summed(tmp_path: Path) -> Path:
    write(tmp_path, "000001_a.up.sql", "CREATE TABLE a (id int);")
    write(tmp_path, "000001_a.down.sql", "DROP TABLE a;")
    write(tmp_path, "000003_c.up.sql", "CREATE TABLE c (id int);")
    write(tmp_path, "000003_c.down.sql", "DROP TABLE c;")
    write_sum(tmp_path)
    return tmp_path


def test_sum_file_has_atlas_layout_and_verifies(summed: Path) -> None:
    lines = (summed / SUM_FILE).read_text().splitlines()
    assert lines[0].startswith("h1:")
    assert [line.split(" ")[0] for line in lines[1:]] == [
        "000001_a.down.sql", "000001_a.up.sql", "000003_c.down.sql", "000003_c.up.sql",
    ]
    assert all(line.split(" ")[1].startswith("h1:") for line in lines[1:])
    assert verify_sum(summed) is True


def test_no_sum_file_means_unchecked(tmp_path: Path) -> None:
    write(tmp_path, "1_a.up.sql", "SELECT 1;")
    assert verify_sum(tmp_path) is False


def test_sum_lines_are_cumulative(summed: Path) -> None:
    before = (summed / SUM_FILE).read_text().splitlines()
    write(summed, "000001_a.up.sql", "CREATE TABLE a (id bigint);")
    write_sum(summed)
    after = (summed / SUM_FILE).read_text().splitlines()
    assert before[1] == after[1]  # the down file sorts before the edited one
    assert all(b != a for b, a in zip(before[2:], after[2:]))  # every later line changes
    assert before[0] != after[0]


def test_edited_file_is_named(summed: Path) -> None:
    write(summed, "000003_c.up.sql", "CREATE TABLE c (id int, extra text);")
    with pytest.raises(MigrationDirectoryError, match=r"edited .*000003_c\.up\.sql"):
        verify_sum(summed)


def test_removed_file_is_named(summed: Path) -> None:
    (summed / "000001_a.down.sql").unlink()
    with pytest.raises(MigrationDirectoryError, match=r"removed .*000001_a\.down\.sql"):
        verify_sum(summed)


def test_new_file_above_latest_is_not_recorded(summed: Path) -> None:
    write(summed, "000004_d.up.sql", "SELECT 4;")
    with pytest.raises(MigrationDirectoryError, match=r"not recorded in schemadiff\.sum: 000004_d\.up\.sql"):
        verify_sum(summed)


def test_file_inserted_below_latest_is_out_of_order(summed: Path) -> None:
    write(summed, "000002_b.up.sql", "SELECT 2;")
    with pytest.raises(MigrationDirectoryError, match=r"out of order .*000002_b\.up\.sql.* below .* 3"):
        verify_sum(summed)


def test_hand_edited_sum_file_is_detected(summed: Path) -> None:
    sum_path = summed / SUM_FILE
    lines = sum_path.read_text().splitlines()
    name, _ = lines[2].split(" ")
    lines[2] = f"{name} h1:{'A' * 43}="
    sum_path.write_text("\n".join(lines) + "\n")
    with pytest.raises(MigrationDirectoryError, match="edited by hand"):
        verify_sum(summed)


def test_a_file_edited_after_the_check_runs_as_checked(summed: Path) -> None:
    """The sum check, the checksums and the parse of one load see one read of each file: a file edited on
    disk between the check and the run (a checkout, an editor saving) cannot run in a form that was not
    checked, nor be recorded under the checked file's checksum."""
    from schemadiff.runner.apply import schedule

    directory = load_directory(summed)
    assert verify_sum(directory) is True
    checksum = directory.get(3).up.checksum()
    write(summed, "000003_c.up.sql", "DROP TABLE a;")
    write(summed, "000003_c.down.sql", "DROP TABLE a CASCADE;")
    steps = schedule(directory, 1, 3)
    assert [s.script.script.statements[0].text.strip() for s in steps] == ["CREATE TABLE c (id int)"]
    assert steps[0].script.checksum == checksum and steps[0].down_checksum == directory.get(3).down.checksum()
    assert verify_sum(directory) is True  # the checked load still verifies as it was read
    with pytest.raises(MigrationDirectoryError, match=r"edited .*000003_c"):
        verify_sum(summed)  # a new load reads the edit


def test_rehash_accepts_the_change(summed: Path) -> None:
    write(summed, "000003_c.up.sql", "CREATE TABLE c (id bigint);")
    write_sum(summed)
    assert verify_sum(summed) is True


# --- which files run in a transaction --------------------------------------------


@pytest.mark.parametrize(
    "sql, reason",
    [
        ("CREATE TABLE t (a int);\nCREATE INDEX CONCURRENTLY t_a ON t (a);", "CREATE INDEX CONCURRENTLY at line 2"),
        ("DROP INDEX CONCURRENTLY t_a;", "DROP INDEX CONCURRENTLY"),
        ("REINDEX INDEX CONCURRENTLY t_a;", "REINDEX ... CONCURRENTLY"),
        ("REINDEX (CONCURRENTLY) TABLE t;", "REINDEX ... CONCURRENTLY"),
        ("VACUUM t;", "VACUUM"),
        ("CREATE DATABASE other;", "CREATE DATABASE"),
        (
            "ALTER TYPE mood ADD VALUE 'meh';\nUPDATE person SET m = 'meh' WHERE m IS NULL;",
            "ADD VALUE 'meh' used later",
        ),
        ("-- schemadiff:no-transaction\nCREATE TABLE t (a int);", "marked"),
    ],
)
def test_files_that_cannot_run_in_a_transaction(tmp_path: Path, sql: str, reason: str) -> None:
    script = script_of(tmp_path, sql)
    assert not script.transactional
    assert reason in script.reason


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE INDEX t_a ON t (a);",
        "ANALYZE t;",
        "REINDEX TABLE t;",
        "ALTER TYPE mood ADD VALUE 'meh';\nUPDATE person SET m = 'ok';",
        "ALTER TYPE mood RENAME VALUE 'a' TO 'b';\nSELECT 'b'::mood;",
        # The marker inside a string literal is data, not a marker.
        "INSERT INTO notes VALUES ('\n-- schemadiff:no-transaction\n');",
        "",
    ],
)
def test_files_that_run_in_a_transaction(tmp_path: Path, sql: str) -> None:
    script = script_of(tmp_path, sql)
    assert script.transactional, script.reason


def test_begin_commit_around_the_whole_file_is_unwrapped(tmp_path: Path) -> None:
    script = script_of(tmp_path, "BEGIN;\nCREATE TABLE t (a int);\nCREATE TABLE u (a int);\nCOMMIT;\n")
    assert script.transactional
    assert [s.kind for s in script.statements] == ["CreateStmt", "CreateStmt"]
    assert script.statements[0].position.line == 2


def test_commit_in_the_middle_is_refused(tmp_path: Path) -> None:
    with pytest.raises(MigrationDirectoryError, match=r"1_x\.up\.sql.*:2:1: .*controls transactions"):
        script_of(tmp_path, "CREATE TABLE t (a int);\nCOMMIT;\nCREATE TABLE u (a int);")


def test_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(SQLSyntaxError, match=r"1_x\.up\.sql:2:"):
        script_of(tmp_path, "CREATE TABLE t (a int);\nCREATE TABLEX u (a int);")


def test_checksum_is_sha256_of_the_file(tmp_path: Path) -> None:
    import hashlib

    script = script_of(tmp_path, "SELECT 1;\n")
    assert script.checksum == hashlib.sha256(b"SELECT 1;\n").hexdigest()


# --- golang-migrate's advisory lock key ------------------------------------------


@pytest.mark.parametrize(
    "database, additional, expected",
    [
        # golang-migrate database/util_test.go, TestGenerateAdvisoryLockId
        ("database_name", (), 1764327054),
        ("database_name", ("schema_name_1",), 2453313553),
        ("database_name", ("schema_name_2",), 235207038),
        ("database_name", ("schema_name_1", "schema_name_2"), 3743845847),
    ],
)
def test_lock_id_matches_golang_migrate(database: str, additional: tuple[str, ...], expected: int) -> None:
    assert advisory_lock_id(database, *additional) == expected


def test_lock_keys_cover_both_ways_golang_migrate_names_the_database() -> None:
    keys = lock_keys("app", "public", "schema_migrations")
    assert keys == (
        advisory_lock_id("app", "public", "schema_migrations"),
        advisory_lock_id("/app", "public", "schema_migrations"),
    )
    assert all(0 <= key < 2**32 for key in keys)


def test_no_transaction_file_keeps_its_own_begin_commit(tmp_path: Path) -> None:
    script = script_of(
        tmp_path, "-- schemadiff:no-transaction\nBEGIN;\nCREATE TABLE t (a int);\nCOMMIT;\nVACUUM t;\n"
    )
    assert not script.transactional
    assert [s.kind for s in script.statements] == ["TransactionStmt", "CreateStmt", "TransactionStmt", "VacuumStmt"]
