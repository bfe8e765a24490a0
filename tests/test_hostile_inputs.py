"""Issue 15, part 2: the runner, the migration files, backups and the Makefile under hostile or odd input.

Each test talks to the real embedded PostgreSQL and the real CLI (in-process,
or a real process where signals or make are involved).
"""

from __future__ import annotations

import os
import shutil
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from conftest import as_from_a_shell

ROOT = Path(__file__).resolve().parent.parent


# The same empty working directory (autouse), directories and row reads as the guard tests.
from test_guards import THREE, _empty_cwd, is_bug_report, make_dir, rows, tables, version_row  # noqa: E402,F401


def execute(url: str, sql: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(sql)




# --- another service's directory: apply, status and force alike -----------------------


def _two_services(tmp_path: Path) -> tuple[Path, Path]:
    cortex = make_dir(tmp_path, {
        "000001_tenants.up.sql": "CREATE TABLE tenants (id int);",
        "000001_tenants.down.sql": "DROP TABLE tenants;",
        "000002_users.up.sql": "CREATE TABLE users (id int);",
        "000002_users.down.sql": "DROP TABLE users;",
    }, "cortex")
    postal = make_dir(tmp_path, {
        "000001_mailboxes.up.sql": "CREATE TABLE mailboxes (id int);",
        "000002_messages.up.sql": "CREATE TABLE messages (id int);",
    }, "postal")
    return cortex, postal


@pytest.mark.parametrize("command", [["apply"], ["status"], ["status", "--format", "json"], ["force", "2"],
                                     ["force", "-1"], ["force", "1"]])
def test_another_services_directory_is_refused_by_every_runner_command(cli, db, tmp_path, command):
    cortex, postal = _two_services(tmp_path)
    assert cli("apply", "--dir", cortex, "--db", db, "--to", "1").exit_code == 0
    history = rows(db, "SELECT * FROM schemadiff_history")
    result = cli(*command, "--dir", postal, "--db", db)
    assert result.exit_code == 1, result.out
    assert not is_bug_report(result.err), result.err
    assert "000001_tenants.up.sql" in result.err and "000001_mailboxes.up.sql" in result.err
    assert "another service" in result.err
    # Nothing recorded, nothing run.
    assert version_row(db) == [(1, False)]
    assert rows(db, "SELECT * FROM schemadiff_history") == history
    assert tables(db) == {"tenants", "schema_migrations", "schemadiff_history"}


def test_the_same_directory_is_still_accepted_after_a_revert_and_rename(cli, db, tmp_path):
    cortex, _ = _two_services(tmp_path)
    assert cli("apply", "--dir", cortex, "--db", db).exit_code == 0
    assert cli("apply", "--dir", cortex, "--db", db, "--down", "1", "--allow-destructive").exit_code == 0
    # Reverted, then renamed before being applied again: the same directory.
    (cortex / "000002_users.up.sql").rename(cortex / "000002_accounts.up.sql")
    (cortex / "000002_users.down.sql").rename(cortex / "000002_accounts.down.sql")
    assert cli("status", "--dir", cortex, "--db", db).exit_code == 0
    forced = cli("force", "2", "--dir", cortex, "--db", db)
    assert forced.exit_code == 0, forced.err
    assert cli("force", "1", "--dir", cortex, "--db", db).exit_code == 0
    assert cli("apply", "--dir", cortex, "--db", db).exit_code == 0


# --- a version below -1 in schema_migrations -----------------------------------------


@pytest.mark.parametrize("stored", [(-5, False), (-2, True), (-9223372036854775808, False)])
@pytest.mark.parametrize("command", [["apply"], ["status"], ["apply", "--dry-run"], ["apply", "--baseline", "1"]])
def test_a_negative_version_is_reported_not_read_as_no_version(cli, make_db, tmp_path, stored, command):
    db = make_db(
        "CREATE TABLE schema_migrations (version bigint not null primary key, dirty boolean not null);"
        f" INSERT INTO schema_migrations VALUES ({stored[0]}, {stored[1]});"
    )
    directory = make_dir(tmp_path, THREE)
    result = cli(*command, "--dir", directory, "--db", db)
    assert result.exit_code == 1, result.out
    assert not is_bug_report(result.err), result.err
    assert f"version {stored[0]}" in result.err and "schemadiff force" in result.err
    assert version_row(db) == [stored]
    assert tables(db) == {"schema_migrations"}


def test_force_is_the_way_out_of_a_negative_version(cli, make_db, tmp_path):
    db = make_db(
        "CREATE TABLE schema_migrations (version bigint not null primary key, dirty boolean not null);"
        " INSERT INTO schema_migrations VALUES (-5, false); CREATE TABLE a (id int);"
    )
    directory = make_dir(tmp_path, THREE)
    forced = cli("force", "1", "--dir", directory, "--db", db)
    assert forced.exit_code == 0, forced.err
    assert "was -5" in forced.out
    assert version_row(db) == [(1, False)]
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    assert version_row(db) == [(3, False)] and {"a", "b", "c"} <= tables(db)


def test_golang_migrate_cannot_read_a_negative_version_either(golang_migrate, make_db, tmp_path):
    # What the refusal above matches: golang-migrate v4.20.1 panics on such a row (suint of a negative).
    db = make_db(
        "CREATE TABLE schema_migrations (version bigint not null primary key, dirty boolean not null);"
        " INSERT INTO schema_migrations VALUES (-5, false);"
    )
    directory = make_dir(tmp_path, THREE)
    code, output = golang_migrate.migrate(db, directory, "up")
    assert code != 0 and "suint" in output
    assert "a" not in tables(db)


# --- backups --------------------------------------------------------------------------


@pytest.fixture
def named_db(shadow):
    """Factory: a database with the given (hostile) name; dropped afterwards."""
    created: list[str] = []

    def factory(name: str) -> str:
        with psycopg.connect(shadow.admin_url, autocommit=True) as conn:
            conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
        created.append(name)
        return shadow.admin_url_for(name)

    yield factory
    with psycopg.connect(shadow.admin_url, autocommit=True) as conn:
        for name in created:
            conn.execute(psycopg.sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(psycopg.sql.Identifier(name)))


def _pg_tool(name: str, url: str) -> str:
    from schemadiff.runner.backup import find_pg_dump

    return str(Path(find_pg_dump(url)).with_name(name))


@pytest.mark.parametrize("dbname", [
    "../../escaped", "/tmp/escaped-abs", "..", ".hidden", "-rf --file=x", "a/b\\c:d*e?",
    "x" * 63, "é" * 31,  # 62 bytes of UTF-8
])
def test_backup_file_stays_in_its_directory_whatever_the_database_name(cli, named_db, tmp_path, dbname):
    db = named_db(dbname)
    directory = make_dir(tmp_path, THREE)
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    execute(db, "INSERT INTO c VALUES (42)")
    backups = tmp_path / "deep" / "backups"
    previous = os.umask(0o022)
    try:
        result = cli("apply", "--dir", directory, "--db", db, "--down", "1", "--allow-destructive", "--backup", backups)
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.err
    dumps = list(backups.iterdir())
    assert len(dumps) == 1, dumps
    dump = dumps[0]
    assert dump.parent == backups and dump.name.endswith(".dump") and not dump.name.startswith((".", "-"))
    assert "/" not in dump.name and len(dump.name.encode()) < 120
    assert dump.name in result.out
    # Nothing anywhere else in the test's tree: no escape through the name.
    everything = {p for p in tmp_path.rglob("*") if p.is_file()}
    assert {p for p in everything if p.suffix == ".dump"} == {dump}
    assert not Path("/tmp/escaped-abs").exists()
    assert stat.S_IMODE(dump.stat().st_mode) == 0o600
    assert stat.S_IMODE(backups.stat().st_mode) == 0o700
    restored = named_db(dbname + "_r" if len(dbname) < 60 else "restored")
    subprocess.run([_pg_tool("pg_restore", restored), "--dbname", restored, str(dump)], check=True)
    assert rows(restored, "SELECT id FROM c") == [(42,)]


def test_backup_names_of_different_databases_never_collide():
    from schemadiff.runner.backup import file_name

    names = ["a/b", "a_b", "a\\b", "a" * 63, "a" * 62 + "b", "..", "__", "a\0b", "x" * 4000]
    made = [file_name(n, 3, "20260101T000000Z") for n in names]
    assert len(set(made)) == len(made)
    for made_name in made:
        assert "/" not in made_name and "\0" not in made_name and len(made_name) < 100
        assert Path(made_name).name == made_name and made_name not in (".", "..")
    assert file_name("orders", 3, "S") == "orders-v3-S.dump"  # a plain name is kept as it is


def test_backup_does_not_overwrite_an_existing_dump(cli, db, tmp_path, monkeypatch):
    from schemadiff.runner import backup

    directory = make_dir(tmp_path, THREE)
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    monkeypatch.setattr(backup.time, "strftime", lambda *_: "20260101T000000Z")
    backups = tmp_path / "b"
    assert cli("apply", "--dir", directory, "--db", db, "--down", "1", "--allow-destructive", "--backup", backups).exit_code == 0
    first = sorted(backups.iterdir())
    content = first[0].read_bytes()
    # Up again and down again: the same database, version and second, so the same name.
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    execute(db, "INSERT INTO c VALUES (7)")
    assert cli("apply", "--dir", directory, "--db", db, "--down", "1", "--allow-destructive", "--backup", backups).exit_code == 0
    after = sorted(backups.iterdir())
    assert len(after) == 2 and first[0].read_bytes() == content


def _fake_pg_dump(tmp_path: Path, body: str) -> Path:
    """A pg_dump that runs ``body`` with its output going where pg_dump's would (``--file=`` or stdout)."""
    script = tmp_path / "fake_pg_dump"
    script.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do case "$a" in --file=*) exec >"${a#--file=}";; esac; done\n' + body
    )
    script.chmod(0o755)
    return script


def test_a_failed_dump_leaves_no_file_and_runs_nothing(cli, db, tmp_path, monkeypatch):
    directory = make_dir(tmp_path, THREE)
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    # Half a dump, then a failure (a full disk, a lost connection).
    fake = _fake_pg_dump(tmp_path, "printf 'PGDMP half a dump'\necho 'pg_dump: error: connection lost' >&2\nexit 1\n")
    monkeypatch.setenv("SCHEMADIFF_PG_DUMP", str(fake))
    backups = tmp_path / "b"
    result = cli("apply", "--dir", directory, "--db", db, "--down", "1", "--allow-destructive", "--backup", backups)
    assert result.exit_code == 1 and "connection lost" in result.err
    assert list(backups.iterdir()) == []
    assert "c" in tables(db) and version_row(db) == [(3, False)]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_an_interrupted_dump_leaves_no_file_and_runs_nothing(db, tmp_path, signum):
    directory = make_dir(tmp_path, THREE)
    assert subprocess.run([sys.executable, "-m", "schemadiff", "apply", "--dir", directory, "--db", db]).returncode == 0
    started = tmp_path / "started"
    fake = _fake_pg_dump(tmp_path, f"printf 'PGDMP partial'\ntouch {started}\nsleep 30\n")
    backups = tmp_path / "b"
    process = subprocess.Popen(
        [sys.executable, "-m", "schemadiff", "apply", "--dir", str(directory), "--db", db, "--down", "1",
         "--allow-destructive", "--backup", str(backups)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        env={**os.environ, "SCHEMADIFF_PG_DUMP": str(fake), "SCHEMADIFF_NO_CACHE": "1"}, preexec_fn=as_from_a_shell,
    )
    deadline = time.monotonic() + 30
    while not started.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline
        time.sleep(0.05)
    process.send_signal(signum)
    _, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert list(backups.iterdir()) == []
    assert "c" in tables(db) and version_row(db) == [(3, False)]


# --- migration file names: golang-migrate and schemadiff agree on what is a migration ------------

NEAR_MISSES = [
    "000002_x.up",  # no extension
    " 000002_x.up.sql",  # a leading space
    "000002_x.UP.SQL",
    "000002_x.Up.sql",
    "+000002_x.up.sql",  # a sign
    "\u0662_x.up.sql",  # ARABIC-INDIC DIGIT TWO
    "\uff12_x.up.sql",  # FULLWIDTH DIGIT TWO
    "000002_x.up.sql\n",  # a line break after the name
    "000002_x.sql.up",
    "000002 x.up.sql",
    "2_x.sql",
    "V2__x.sql",
]
# Names golang-migrate runs (its pattern matches, the extension is anything) that schemadiff refuses.
RUN_BY_GOLANG_MIGRATE = [
    "000002_x.up.sql ",  # a trailing space: extension "sql "
    "000002_x.up.sql.orig",
    "000002_x.up.sql.bak",
    "000002_x.up.sql.swp",
    "000002_x.up.sql~",
    "000002_x.up.SQL",
    "000002_x.up.txt",
    "000002_x.up.",
]


@pytest.mark.parametrize("name", NEAR_MISSES, ids=repr)
def test_near_miss_names_are_warned_about_with_the_reason(cli, db, tmp_path, name):
    directory = make_dir(tmp_path, {"000001_a.up.sql": "CREATE TABLE a (id int);", name: "CREATE TABLE x (id int);"})
    applied = cli("apply", "--dir", directory, "--db", db)
    assert applied.exit_code == 0, applied.err
    assert "warning" in applied.err
    shown = repr(name) if (name != name.strip() or not name.isprintable()) else name
    assert shown in applied.err, applied.err
    assert "neither tool will run it" in applied.err and "(" in applied.err.split(shown, 1)[1]
    assert "x" not in tables(db) and version_row(db) == [(1, False)]
    status = cli("status", "--dir", directory, "--db", db)
    assert status.exit_code == 0 and shown in status.out


@pytest.mark.parametrize("name", [".000002_x.up.sql.swp", "#000002_x.up.sql#", "README.md", "notes_2.txt"])
def test_hidden_and_unrelated_files_are_not_warned_about(cli, db, tmp_path, name):
    directory = make_dir(tmp_path, {"000001_a.up.sql": "CREATE TABLE a (id int);", name: "CREATE TABLE x (id int);"})
    applied = cli("apply", "--dir", directory, "--db", db)
    assert applied.exit_code == 0, applied.err
    assert "looks like a migration" not in applied.err and name not in applied.err, applied.err
    assert "x" not in tables(db)


@pytest.mark.parametrize("name", RUN_BY_GOLANG_MIGRATE, ids=repr)
def test_names_golang_migrate_would_run_are_refused(cli, db, tmp_path, name):
    directory = make_dir(tmp_path, {"000001_a.up.sql": "CREATE TABLE a (id int);", name: "CREATE TABLE x (id int);"})
    for command in (["apply"], ["status"]):
        result = cli(*command, "--dir", directory, "--db", db)
        assert result.exit_code == 1, result.out
        assert not is_bug_report(result.err) and "golang-migrate would run it" in result.err
    assert tables(db) == set()


def test_a_migration_name_that_is_not_a_regular_file_is_refused(cli, db, tmp_path):
    directory = make_dir(tmp_path, {"000001_a.up.sql": "CREATE TABLE a (id int);"})
    (directory / "000002_x.up.sql").symlink_to(tmp_path / "nowhere.sql")
    result = cli("apply", "--dir", directory, "--db", db)
    assert result.exit_code == 1 and "not a regular file" in result.err
    assert tables(db) == set()
    # A real directory with such a name is skipped by both tools.
    (directory / "000002_x.up.sql").unlink()
    (directory / "000002_x.up.sql").mkdir()
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    assert version_row(db) == [(1, False)]


@pytest.mark.parametrize("name", NEAR_MISSES + RUN_BY_GOLANG_MIGRATE + [
    "000002_x.up.sql",
    "18446744073709551616_x.up.sql",  # above uint64: golang-migrate's ParseUint fails, it skips the file
    "9223372036854775808_x.up.sql",  # above bigint: golang-migrate runs it, its version column cannot hold it
], ids=repr)
def test_schemadiff_and_golang_migrate_agree_on_which_files_are_migrations(golang_migrate, cli, make_db, tmp_path,
                                                                          name):
    files = {"000001_a.up.sql": "CREATE TABLE a (id int);", name: "CREATE TABLE x (id int);"}
    directory = make_dir(tmp_path, files)
    theirs, ours = make_db(), make_db()
    code, output = golang_migrate.migrate(theirs, directory, "up")
    # A file golang-migrate takes for a migration: it ran it, or failed on it (a version above
    # bigint makes it panic after running it).
    they_run_it = "x" in tables(theirs) or code != 0
    result = cli("apply", "--dir", directory, "--db", ours)
    we_run_it = "x" in tables(ours)
    if they_run_it:  # we run it too, or refuse the directory before anything runs
        assert we_run_it or (result.exit_code == 1 and tables(ours) == set()), result.err
    else:  # we never run what golang-migrate skips, and say so (or refuse the directory)
        assert not we_run_it, result.err
        assert (result.exit_code == 0 and "looks like a migration" in result.err) or (
            result.exit_code == 1 and tables(ours) == set()
        ), result.err


# --- the down guard reads the whole parse tree -------------------------------------------

_BASE = (
    "CREATE TABLE t (id int PRIMARY KEY, v text);\n"
    "INSERT INTO t VALUES (1, 'one'), (2, 'two');\n"
    "CREATE PROCEDURE purge() LANGUAGE sql AS 'DELETE FROM t';\n"
    "CREATE FUNCTION purge_rows() RETURNS bigint LANGUAGE sql AS 'WITH d AS (DELETE FROM t RETURNING 1)"
    " SELECT count(*) FROM d';\n"
)

DELETING_DOWNS = {
    "cte": ("WITH d AS (DELETE FROM t RETURNING id) SELECT count(*) FROM d;", "DELETE"),
    "cte-in-insert": ("CREATE TABLE gone (id int);\n"
                      "WITH d AS (DELETE FROM t RETURNING id) INSERT INTO gone SELECT id FROM d;", "DELETE"),
    "merge-delete": ("MERGE INTO t USING (SELECT 1 AS id) AS s ON t.id = s.id WHEN MATCHED THEN DELETE;", "MERGE"),
    "merge-update": ("MERGE INTO t USING (SELECT 1 AS id) AS s ON t.id = s.id"
                     " WHEN MATCHED THEN UPDATE SET v = NULL;", "MERGE"),
    "do-execute": ("DO $$ BEGIN EXECUTE 'TRUNCATE t'; END $$;", "DO block"),
    "call": ("CALL purge();", "CALL purge"),
    "function": ("SELECT purge_rows();", "purge_rows()"),
    "function-in-insert": ("CREATE TABLE counts (n bigint);\nINSERT INTO counts SELECT purge_rows();", "purge_rows()"),
    "update-blanks": ("UPDATE t SET v = NULL;", "UPDATE"),
    "upsert": ("INSERT INTO t VALUES (1, 'x') ON CONFLICT (id) DO UPDATE SET v = NULL;", "ON CONFLICT DO UPDATE"),
    "multi-alter-drop-column": ("ALTER TABLE t ADD COLUMN w int, DROP COLUMN v;", "drops a column"),
    "multi-alter-type": ("ALTER TABLE t ADD COLUMN w int, ALTER COLUMN v TYPE varchar(1) USING left(v, 1);",
                         "changes a column's type"),
    "explain-analyze": ("EXPLAIN ANALYZE DELETE FROM t;", "DELETE"),
    "prepare-execute": ("PREPARE p AS DELETE FROM t;\nEXECUTE p;", "EXECUTE p"),
    "large-object": ("SELECT lo_unlink(oid) FROM pg_largeobject_metadata;", "lo_unlink()"),
}


def _guarded_dir(tmp_path: Path, down: str) -> Path:
    return make_dir(tmp_path, {
        "000001_base.up.sql": _BASE,
        "000002_step.up.sql": "CREATE INDEX step ON t (id);",
        "000002_step.down.sql": "DROP INDEX step;\n" + down + "\n",
    })


@pytest.mark.parametrize("case", sorted(DELETING_DOWNS))
def test_down_guard_sees_data_deleting_statements_anywhere_in_the_tree(cli, db, tmp_path, case):
    down, why = DELETING_DOWNS[case]
    directory = _guarded_dir(tmp_path, down)
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    before = rows(db, "SELECT id, v FROM t ORDER BY id")

    dry = cli("apply", "--dir", directory, "--db", db, "--down", "1", "--dry-run")
    assert dry.exit_code == 0 and "deletes-data" in dry.out and why in dry.out, dry.out

    refused = cli("apply", "--dir", directory, "--db", db, "--down", "1")
    assert refused.exit_code == 1, refused.out
    assert "000002_step.down.sql" in refused.err and why in refused.err and "--allow-destructive" in refused.err
    assert not is_bug_report(refused.err)
    assert version_row(db) == [(2, False)]
    assert rows(db, "SELECT id, v FROM t ORDER BY id") == before

    allowed = cli("apply", "--dir", directory, "--db", db, "--down", "1", "--allow-destructive")
    assert allowed.exit_code == 0, allowed.err
    assert version_row(db) == [(1, False)]


HARMLESS_DOWNS = {
    "insert": "INSERT INTO t VALUES (3, 'three');",
    "setval-as-generated": "CREATE SEQUENCE s;\nSELECT setval('s', max(id)) FROM t HAVING max(id) >= 1;",
    "view-calling-a-function": "CREATE VIEW counted AS SELECT purge_rows() AS n;",
    "function-with-a-delete-body": "CREATE FUNCTION later() RETURNS void LANGUAGE sql BEGIN ATOMIC DELETE FROM t; END;",
    "expression-index": "CREATE INDEX t_lower ON t (lower(v));",
    "select-builtins": "SELECT count(*), max(id), now(), lower('X') FROM t;",
    "drop-view": "CREATE VIEW w AS SELECT 1 AS one;\nDROP VIEW w;",
}


@pytest.mark.parametrize("case", sorted(HARMLESS_DOWNS))
def test_down_guard_lets_statements_that_keep_data_through(cli, db, tmp_path, case):
    directory = _guarded_dir(tmp_path, HARMLESS_DOWNS[case])
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    before = rows(db, "SELECT id, v FROM t WHERE id < 3 ORDER BY id")
    result = cli("apply", "--dir", directory, "--db", db, "--down", "1")
    assert result.exit_code == 0, result.err
    assert version_row(db) == [(1, False)]
    assert rows(db, "SELECT id, v FROM t WHERE id < 3 ORDER BY id") == before


def test_an_up_data_migration_that_overwrites_values_is_backed_up_first(cli, db, tmp_path):
    directory = make_dir(tmp_path, {
        "000001_base.up.sql": _BASE,
        "000002_blank.up.sql": "WITH gone AS (UPDATE t SET v = NULL RETURNING id) SELECT count(*) FROM gone;",
    })
    backups = tmp_path / "dumps"
    assert cli("apply", "--dir", directory, "--db", db, "--to", "1", "--backup", backups).exit_code == 0
    assert not backups.exists()
    result = cli("apply", "--dir", directory, "--db", db, "--backup", backups)
    assert result.exit_code == 0, result.err
    assert len(list(backups.glob("*.dump"))) == 1 and "backup written" in result.out


# --- the Makefile, run by real make ---------------------------------------------------------

MAKE = shutil.which("make")


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "migrations").mkdir(parents=True)
    for file, text in {
        "000001_a.up.sql": "CREATE TABLE a (id int);",
        "000002_v2.up.sql": "CREATE VIEW v2 AS SELECT 2 AS two;",
        "000002_v2.down.sql": "DROP VIEW v2;",
        "000003_v3.up.sql": "CREATE VIEW v3 AS SELECT 3 AS three;",
        "000003_v3.down.sql": "DROP VIEW v3;",
    }.items():
        (repo / "migrations" / file).write_text(text)
    (repo / "pyproject.toml").write_text(
        "[tool.schemadiff.services.svc]\n"
        'desired = "svc.sql"\nmigrations = "migrations"\ndb_env = "SVC_DATABASE_URL"\n'
        "[tool.schemadiff.services.other]\n"
        'desired = "other.sql"\nmigrations = "other"\ndb_env = "OTHER_DATABASE_URL"\n'
    )
    return repo


def _make(repo: Path, db: str, *args: str) -> subprocess.CompletedProcess:
    assert MAKE, "GNU make is needed for the Makefile tests"
    return subprocess.run(
        [MAKE, "--no-print-directory", "-f", str(ROOT / "Makefile"), f"SCHEMADIFF={sys.executable} -m schemadiff",
         *args],
        cwd=repo, capture_output=True, text=True, timeout=120,
        env={**os.environ, "SVC_DATABASE_URL": db, "SCHEMADIFF_NO_CACHE": "1"},
    )


@pytest.mark.long_running  # started first: see conftest.py
def test_makefile_verbs_run_the_cli(db, tmp_path):
    repo = _repo(tmp_path)
    assert _make(repo, db, "migrate-up", "SERVICE=svc").returncode == 0
    assert version_row(db) == [(3, False)]
    status = _make(repo, db, "migrate-version", "SERVICE=svc")
    assert status.returncode == 0 and "version 3" in status.stdout, status.stderr
    assert _make(repo, db, "migrate-goto", "VERSION=1", "SERVICE=svc").returncode == 0
    assert version_row(db) == [(1, False)]
    assert _make(repo, db, "migrate-goto", "VERSION=3", "SERVICE=svc").returncode == 0
    assert version_row(db) == [(3, False)]
    assert _make(repo, db, "migrate-down", "SERVICE=svc").returncode == 0
    assert version_row(db) == [(2, False)]
    assert _make(repo, db, "migrate-force", "VERSION=1", "SERVICE=svc").returncode == 0
    assert version_row(db) == [(1, False)]
    assert _make(repo, db, "migrate-force", "VERSION=-1", "SERVICE=svc").returncode == 0
    assert version_row(db) == []
    new = _make(repo, db, "migrate-new", "NAME=backfill", "SERVICE=svc")
    assert new.returncode == 0, new.stderr
    assert (repo / "migrations" / "000004_backfill.up.sql").exists()


@pytest.mark.parametrize("target, extra", [("migrate-down", []), ("migrate-goto", ["VERSION=1"])])
def test_makefile_down_verbs_take_consent_to_delete_data_only_as_yes(db, tmp_path, target, extra):
    repo = _repo(tmp_path)
    (repo / "migrations" / "000001_a.down.sql").write_text("DROP TABLE a;")
    (repo / "migrations" / "000002_t.up.sql").write_text("CREATE TABLE t (id int);")
    (repo / "migrations" / "000002_t.down.sql").write_text("DROP TABLE t;")
    for name in ("000002_v2.up.sql", "000002_v2.down.sql", "000003_v3.up.sql", "000003_v3.down.sql"):
        (repo / "migrations" / name).unlink()
    assert _make(repo, db, "migrate-up", "SERVICE=svc").returncode == 0
    for consent in ([], ["ALLOW_DESTRUCTIVE=1"], ["ALLOW_DESTRUCTIVE=$(shell echo yes)"]):
        refused = _make(repo, db, target, *extra, "SERVICE=svc", *consent)
        assert refused.returncode != 0 and "--allow-destructive" in refused.stderr, refused.stderr
        assert version_row(db) == [(2, False)]
    allowed = _make(repo, db, target, *extra, "SERVICE=svc", "ALLOW_DESTRUCTIVE=yes")
    assert allowed.returncode == 0, allowed.stderr
    assert version_row(db) == [(1, False)]


MAKE_PAYLOADS = [
    "$(shell touch {marker})",
    "$(file >{marker},x)",
    "$$(touch {marker})",
    "`touch {marker}`",
    "x'; touch {marker}; echo '",
    "--db=postgresql://postgres@127.0.0.1:1/evil",
    "--dir={marker}",
    "-h",
]


@pytest.mark.parametrize(("target", "field"), [
    ("migrate-up", "SERVICE"), ("migrate-down", "SERVICE"), ("migrate-version", "SERVICE"),
    ("migrate-goto", "SERVICE"), ("migrate-goto", "VERSION"), ("migrate-force", "SERVICE"),
    ("migrate-force", "VERSION"), ("migrate-new", "SERVICE"), ("migrate-new", "NAME"), ("migrate-create", "NAME"),
])
@pytest.mark.long_running  # started first: see conftest.py
def test_makefile_values_are_never_code_nor_options(db, tmp_path, target, field):
    repo = _repo(tmp_path)
    assert _make(repo, db, "migrate-up", "SERVICE=svc").returncode == 0
    for payload in MAKE_PAYLOADS:
        marker = tmp_path / "pwned"
        value = payload.format(marker=marker)
        values = {"SERVICE": "svc", "NAME": "n", "VERSION": "2", field: value}
        result = _make(repo, db, target, *(f"{k}={v}" for k, v in values.items()))
        assert not marker.exists(), (payload, result.stdout, result.stderr)
        # The odd value reached schemadiff as the argument it was given for (never as an
        # option: no help text, no other database or directory), and was refused.
        assert result.returncode != 0, (payload, result.stdout)
        assert "Usage:" not in result.stdout + result.stderr and "Traceback" not in result.stderr, result.stderr
        assert "connect" not in result.stderr, result.stderr  # never reached for another database
        assert version_row(db) == [(3, False)], payload
        assert sorted(p.name for p in (repo / "migrations").iterdir()) == sorted(
            ["000001_a.up.sql", "000002_v2.up.sql", "000002_v2.down.sql", "000003_v3.up.sql", "000003_v3.down.sql"]
        ), payload


def test_makefile_refuses_a_value_with_a_line_break(db, tmp_path):
    repo = _repo(tmp_path)
    marker = tmp_path / "pwned"
    result = _make(repo, db, "migrate-new", f"NAME=a\ntouch {marker}", "SERVICE=svc")
    assert result.returncode != 0 and "line break" in result.stderr
    assert not marker.exists()
