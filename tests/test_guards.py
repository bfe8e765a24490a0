"""Issue 15: what a run says is true, the migration directory's files, and the guards a careful user expects.

Every test talks to the real embedded PostgreSQL; the ones about signals run
schemadiff in a real process and send it real signals.
"""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pytest

from conftest import as_from_a_shell

from schemadiff.runner import writer as migration_writer
from schemadiff.migrations import SUM_FILE, verify_sum, write_sum

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)


def make_dir(root: Path, files: dict[str, str], name: str = "migrations") -> Path:
    directory = root / name
    directory.mkdir()
    for file, text in files.items():
        (directory / file).write_text(text)
    return directory


def rows(url: str, query: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute(query).fetchall()


def version_row(url: str) -> list[tuple]:
    return rows(url, "SELECT version, dirty FROM schema_migrations")


def tables(url: str) -> set[str]:
    return {r[0] for r in rows(url, "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


def is_bug_report(text: str) -> bool:
    return "This is a bug" in text or "Traceback" in text


THREE = {
    "000001_a.up.sql": "CREATE TABLE a (id int);",
    "000001_a.down.sql": "DROP TABLE a;",
    "000002_b.up.sql": "CREATE TABLE b (id int);",
    "000002_b.down.sql": "DROP TABLE b;",
    "000003_c.up.sql": "CREATE TABLE c (id int);",
    "000003_c.down.sql": "DROP TABLE c;",
}


def _running(url: str, needle: str) -> bool:
    with psycopg.connect(url) as conn:
        return bool(
            conn.execute(
                # This database only: tests running in parallel sleep in theirs.
                "SELECT 1 FROM pg_stat_activity WHERE query LIKE %s AND pid <> pg_backend_pid()"
                " AND datname = current_database()",
                [f"%{needle}%"],
            ).fetchall()
        )


def _spawn(*args: str, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "schemadiff", *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, env={**os.environ, "SCHEMADIFF_NO_CACHE": "1"}, preexec_fn=as_from_a_shell,
    )


def _wait_for(url: str, needle: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + 30
    while not _running(url, needle):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{needle} never started"
        time.sleep(0.05)


# --- What a run says must be true ------------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_interrupted_apply_says_what_committed_and_leaves_the_previous_version(db, tmp_path, signum):
    files = dict(THREE)
    files["000002_b.up.sql"] = "CREATE TABLE b (id int);\nSELECT pg_sleep(31);\n"
    directory = make_dir(tmp_path, files)
    process = _spawn("apply", "--dir", str(directory), "--db", db, cwd=tmp_path)
    _wait_for(db, "pg_sleep(31)", process)
    process.send_signal(signum)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "nothing was written" not in err
    assert "000001_a.up.sql" in err and "version 1, clean" in err, err
    assert "Traceback" not in err
    assert version_row(db) == [(1, False)]
    assert "a" in tables(db) and "b" not in tables(db)


def test_interrupted_non_transactional_file_is_reported_dirty(db, tmp_path):
    files = dict(THREE)
    files["000002_b.up.sql"] = "-- schemadiff:no-transaction\nCREATE TABLE b (id int);\nSELECT pg_sleep(32);\n"
    directory = make_dir(tmp_path, files)
    process = _spawn("apply", "--dir", str(directory), "--db", db, cwd=tmp_path)
    _wait_for(db, "pg_sleep(32)", process)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    assert "DIRTY at version 2" in err and "000002_b.up.sql" in err, err
    assert "nothing was written" not in err
    assert version_row(db) == [(2, True)]


_WRITER = r"""
import os, signal, sys, time
from pathlib import Path
from schemadiff.runner import writer as migration_writer
from schemadiff.errors import Interrupted

def as_interrupt(signum, frame):
    raise KeyboardInterrupt
signal.signal(signal.SIGTERM, as_interrupt)

real_replace = os.replace
def slow_replace(src, dst):
    real_replace(src, dst)
    print("renamed", Path(dst).name, flush=True)
    time.sleep(1)  # the window a signal has to hit
migration_writer.os.replace = slow_replace
try:
    migration_writer.write_pairs(Path(sys.argv[1]), [(2, "add_b", "CREATE TABLE b ();\n", "DROP TABLE b;\n")])
except Interrupted as exc:
    print("INTERRUPTED", exc.message, flush=True)
    sys.exit(130)
except KeyboardInterrupt:
    print("KEYBOARDINTERRUPT", flush=True)
    sys.exit(131)
print("DONE", flush=True)
"""


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_signal_while_generate_writes_leaves_the_pair_with_its_sum(tmp_path, signum):
    directory = make_dir(tmp_path, {"000001_a.up.sql": "CREATE TABLE a ();\n", "000001_a.down.sql": "DROP TABLE a;\n"})
    write_sum(directory)
    process = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(directory)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert process.stdout is not None
    assert process.stdout.readline().startswith("renamed"), process.communicate()
    process.send_signal(signum)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 130, out + err
    assert "INTERRUPTED" in out and "were written completely" in out
    assert (directory / "000002_add_b.up.sql").exists() and (directory / "000002_add_b.down.sql").exists()
    assert verify_sum(directory) is True  # the sum covers the new pair
    assert not [p for p in directory.iterdir() if p.name.endswith(".tmp")]


def test_failure_while_writing_the_sum_removes_the_pair_and_restores_the_old_sum(tmp_path, monkeypatch):
    directory = make_dir(tmp_path, {"000001_a.up.sql": "CREATE TABLE a ();\n", "000001_a.down.sql": "DROP TABLE a;\n"})
    write_sum(directory)
    before = (directory / SUM_FILE).read_bytes()

    def interrupted_sum(path):
        (Path(path) / SUM_FILE).write_text("half")
        raise KeyboardInterrupt

    monkeypatch.setattr("schemadiff.migrations.write_sum", interrupted_sum)
    with pytest.raises(KeyboardInterrupt):
        migration_writer.write_pairs(directory, [(2, "add_b", "CREATE TABLE b ();\n", "DROP TABLE b;\n")])
    assert sorted(p.name for p in directory.iterdir()) == ["000001_a.down.sql", "000001_a.up.sql", SUM_FILE]
    assert (directory / SUM_FILE).read_bytes() == before


def _startup_seconds() -> float:
    # Until schemadiff/__main__.py's first line runs, a signal has its default action (README, "What is
    # guaranteed"): the interpreter's start-up and the package's import, the longest of three on a busy machine.
    times = []
    for _ in range(3):
        started = time.monotonic()
        subprocess.run([sys.executable, "-c", "import schemadiff"], check=True)
        times.append(time.monotonic() - started)
    return max(times)


def test_sigterm_early_in_start_up_exits_130_like_later(tmp_path):
    startup = _startup_seconds()
    for delay in (0.03, 0.06, 0.1):
        process = _spawn("--help", cwd=tmp_path)
        time.sleep(startup + delay)
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=30)
        if process.returncode == 0:
            continue  # already done: nothing to interrupt
        assert process.returncode == 130, (delay, process.returncode, err)
        assert "Traceback" not in err


def test_empty_dir_option_is_refused_not_read_as_the_current_directory(cli, db, tmp_path):
    for command in (["apply", "--db", db], ["status", "--db", db], ["plan", "--desired", "x.sql"], ["hash"]):
        result = cli(*command, "--dir", "")
        assert result.exit_code == 1, result.err
        assert "--dir" in result.err and "empty" in result.err
    assert "schema_migrations" not in tables(db)


def test_missing_directory_is_an_error_unless_generate_is_asked_to_start_one(cli, shadow_url, tmp_path):
    desired = tmp_path / "desired.sql"
    desired.write_text("CREATE TABLE a (id int);\n")
    typo = tmp_path / "migratoins"
    planned = cli("plan", "--desired", desired, "--dir", typo, "--shadow", shadow_url)
    assert planned.exit_code == 1 and "not found" in planned.err, planned.err
    generated = cli("generate", "init", "--desired", desired, "--dir", typo, "--shadow", shadow_url)
    assert generated.exit_code == 1 and "not found" in generated.err and "--create-dir" in generated.err
    assert not typo.exists()
    started = cli("generate", "init", "--desired", desired, "--dir", typo, "--shadow", shadow_url, "--create-dir")
    assert started.exit_code == 0, started.err
    assert sorted(p.name for p in typo.iterdir()) == ["000001_init.down.sql", "000001_init.up.sql", SUM_FILE]


def test_apply_refuses_a_directory_without_migrations(cli, db, tmp_path):
    empty = make_dir(tmp_path, {"README.md": "notes"})
    result = cli("apply", "--dir", empty, "--db", db)
    assert result.exit_code == 1 and "no migration files" in result.err
    assert "schema_migrations" not in tables(db)


def test_over_long_migration_name_is_one_clear_error(cli, tmp_path):
    desired = tmp_path / "desired.sql"
    desired.write_text("CREATE TABLE a (id int);\n")
    result = cli("generate", "a" * 300, "--desired", desired, "--dir", tmp_path / "m", "--create-dir")
    assert result.exit_code == 1
    assert not is_bug_report(result.err) and "characters" in result.err
    assert not (tmp_path / "m").exists()


@pytest.mark.parametrize(
    "setup",
    [
        # golang-migrate's columns, but text: 'abc' is no version.
        "CREATE TABLE schema_migrations (version text primary key, dirty boolean not null);"
        " INSERT INTO schema_migrations VALUES ('abc', false);",
        # Rails
        "CREATE TABLE schema_migrations (version character varying primary key);"
        " INSERT INTO schema_migrations VALUES ('20240101000000');",
        # Ecto
        "CREATE TABLE schema_migrations (version bigint primary key, inserted_at timestamp(0));"
        " INSERT INTO schema_migrations VALUES (20240101000000, now());",
    ],
    ids=["text-version", "rails", "ecto"],
)
@pytest.mark.parametrize("command", ["apply", "status", "force"])
def test_foreign_or_broken_version_tables_are_clear_errors(cli, make_db, tmp_path, setup, command):
    db = make_db(setup)
    directory = make_dir(tmp_path, THREE)
    before = rows(db, "SELECT * FROM schema_migrations")
    args = ["force", "1"] if command == "force" else [command]
    result = cli(*args, "--dir", directory, "--db", db)
    assert result.exit_code == 1, result.out
    assert not is_bug_report(result.err), result.err
    assert "schema_migrations" in result.err
    assert "schemadiff_history" not in tables(db) and "a" not in tables(db)
    assert rows(db, "SELECT * FROM schema_migrations") == before


# golang-migrate's shape, in states it never writes: refused by apply and
# status with a hint that names a force, and that force repairs them.
_REPAIRABLE = {
    "dirty-null": (
        "CREATE TABLE schema_migrations (version bigint primary key, dirty boolean);"
        " INSERT INTO schema_migrations VALUES (2, NULL);", "2"),
    "version-null": (
        "CREATE TABLE schema_migrations (version bigint, dirty boolean not null);"
        " INSERT INTO schema_migrations VALUES (NULL, false);", None),
    "two-rows": (
        "CREATE TABLE schema_migrations (version bigint, dirty boolean not null);"
        " INSERT INTO schema_migrations VALUES (1, false), (2, true);", None),
}


@pytest.mark.parametrize("case", sorted(_REPAIRABLE))
def test_broken_version_table_hint_names_a_force_that_works(cli, make_db, tmp_path, case):
    setup, named = _REPAIRABLE[case]
    db = make_db(setup + " CREATE TABLE a (id int); CREATE TABLE b (id int);")
    directory = make_dir(tmp_path, THREE)
    before = rows(db, "SELECT * FROM schema_migrations ORDER BY 1")
    for command in ("apply", "status"):
        result = cli(command, "--dir", directory, "--db", db)
        assert result.exit_code == 1, result.out + result.err
        assert not is_bug_report(result.err), result.err
        assert "schemadiff force" in result.err, result.err
        assert rows(db, "SELECT * FROM schema_migrations ORDER BY 1") == before
    # The hint's own command, with the version it names (or the one the database is at).
    hinted = f"schemadiff force {named}" if named else "schemadiff force VERSION"
    assert hinted in " ".join(result.err.split()), result.err
    forced = cli("force", named or "2", "--dir", directory, "--db", db)
    assert forced.exit_code == 0, forced.err
    assert not is_bug_report(forced.err)
    assert version_row(db) == [(2, False)]
    status = cli("status", "--dir", directory, "--db", db)
    assert status.exit_code == 0, status.err
    applied = cli("apply", "--dir", directory, "--db", db)
    assert applied.exit_code == 0, applied.err
    assert version_row(db) == [(3, False)]


def test_malformed_url_is_one_clear_error_without_the_password(cli, tmp_path):
    desired = tmp_path / "desired.sql"
    desired.write_text("CREATE TABLE a (id int);\n")
    for url in ("postgresql://me:s3cr%zzet@host/db", "host=x port", "postgresql://me:s3cr3t@host:notaport/db"):
        result = cli("plan", "--desired", desired, "--db", url)
        assert result.exit_code == 1, result.err
        assert not is_bug_report(result.err), result.err
        assert "s3cr" not in result.err + result.out


def test_url_check_reports_a_malformed_url_without_its_password_and_accepts_golang_migrate_options():
    from schemadiff.dburl import check_url
    from schemadiff.errors import DatabaseError

    for url in ("postgresql://me:s3cr%zzet@host/db", "password=s3cr3t host=x port"):  # a bad port: at connect
        with pytest.raises(DatabaseError) as raised:
            check_url(url)
        assert "invalid database URL" in str(raised.value) and "s3cr" not in str(raised.value)
    url = "postgresql://me:s3cr3t@host/db?x-migrations-table=versions&search_path=app"
    assert check_url(url) == url


def test_empty_db_option_is_refused_not_read_as_libpqs_environment_default(cli, tmp_path):
    # libpq reads "" as PGHOST/PGDATABASE or the local socket: an unset variable must not mean that.
    directory = make_dir(tmp_path, THREE)
    for command in (["apply", "--dir", directory], ["status", "--dir", directory], ["plan", "--desired", "x.sql"]):
        result = cli(*command, "--db", "")
        assert result.exit_code == 1, result.err
        assert "--db" in result.err and "empty" in result.err


def test_version_above_bigint_is_refused_before_anything_is_created(cli, db, tmp_path):
    directory = make_dir(tmp_path, {"99999999999999999999_big.up.sql": "CREATE TABLE big (id int);"})
    result = cli("apply", "--dir", directory, "--db", db)
    assert result.exit_code == 1
    assert not is_bug_report(result.err) and "bigint" in result.err
    assert tables(db) == set()


# --- Files and the directory -------------------------------------------------------


def test_migration_inserted_below_the_current_version_is_reported_and_refused(cli, db, tmp_path):
    files = {k: v for k, v in THREE.items() if not k.startswith("000002")}
    directory = make_dir(tmp_path, files)
    assert cli("hash", "--dir", directory).exit_code == 0
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    (directory / "000002_b.up.sql").write_text(THREE["000002_b.up.sql"])
    (directory / "000002_b.down.sql").write_text(THREE["000002_b.down.sql"])
    assert cli("hash", "--dir", directory).exit_code == 0

    status = cli("status", "--dir", directory, "--db", db)
    line = next(line for line in status.out.splitlines() if "000002_b.up.sql" in line)
    assert "never applied" in line, status.out

    refused = cli("apply", "--dir", directory, "--db", db)
    assert refused.exit_code == 1 and "000002_b.up.sql" in refused.err and "--allow-out-of-order" in refused.err
    assert "b" not in tables(db)

    allowed = cli("apply", "--dir", directory, "--db", db, "--allow-out-of-order")
    assert allowed.exit_code == 0, allowed.err
    assert "b" in tables(db) and version_row(db) == [(3, False)]
    status = cli("status", "--dir", directory, "--db", db)
    assert "never applied" not in status.out
    # ... and it is reverted on the way down like any applied file.
    assert cli("apply", "--dir", directory, "--db", db, "--to", "1", "--allow-destructive").exit_code == 0
    assert tables(db) >= {"a"} and not tables(db) & {"b", "c"}


@pytest.mark.parametrize("name", ["2_add.sql", "000002-add.up.sql", "000002_add.UP.sql", "V2__add.sql"])
def test_near_miss_file_names_are_warned_about(cli, db, tmp_path, name):
    directory = make_dir(tmp_path, {"000001_a.up.sql": "CREATE TABLE a (id int);", name: "CREATE TABLE x (id int);"})
    applied = cli("apply", "--dir", directory, "--db", db)
    assert applied.exit_code == 0, applied.err
    assert name in applied.err and "warning" in applied.err
    status = cli("status", "--dir", directory, "--db", db)
    assert name in status.out
    assert "x" not in tables(db)


@pytest.mark.parametrize("name", ["000002_add.up.sql~", "000002_add.up.sql.orig", "000002_add.up.sql.bak"])
def test_editor_backups_of_migrations_are_refused(cli, db, tmp_path, name):
    directory = make_dir(tmp_path, {"000001_a.up.sql": "CREATE TABLE a (id int);", name: "CREATE TABLE x (id int);"})
    result = cli("apply", "--dir", directory, "--db", db)
    assert result.exit_code == 1
    assert name in result.err
    assert tables(db) == set()


@pytest.mark.parametrize("text", ["", "\n\n", "-- TODO: write this\n", "/* later */\n"])
def test_empty_up_files_are_refused(cli, db, tmp_path, text):
    directory = make_dir(tmp_path, {"000001_a.up.sql": "CREATE TABLE a (id int);", "000002_b.up.sql": text})
    result = cli("apply", "--dir", directory, "--db", db)
    assert result.exit_code == 1
    assert "000002_b.up.sql" in result.err and "no SQL statements" in result.err
    assert tables(db) == set()


def test_empty_down_files_are_refused_and_a_marked_empty_file_runs(cli, db, tmp_path):
    directory = make_dir(tmp_path, {
        "000001_a.up.sql": "CREATE TABLE a (id int);",
        "000001_a.down.sql": "-- nothing to undo\n",
        "000002_b.up.sql": "-- schemadiff:empty\n-- this step only bumps the version\n",
        "000002_b.down.sql": "-- schemadiff:empty\n",
    })
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    assert version_row(db) == [(2, False)]
    assert cli("apply", "--dir", directory, "--db", db, "--to", "1").exit_code == 0
    result = cli("apply", "--dir", directory, "--db", db, "--to", "0")
    assert result.exit_code == 1 and "000001_a.down.sql" in result.err
    assert version_row(db) == [(1, False)]


def test_a_sum_can_be_required_by_flag_and_by_configuration(cli, db, tmp_path):
    directory = make_dir(tmp_path, THREE)
    flagged = cli("apply", "--dir", directory, "--db", db, "--require-sum")
    assert flagged.exit_code == 1 and "schemadiff.sum" in flagged.err
    assert tables(db) == set()

    (tmp_path / "work" / "pyproject.toml").write_text(
        "[tool.schemadiff.services.svc]\n"
        f'desired = "d.sql"\nmigrations = "{directory}"\nrequire_sum = true\n'
    )
    configured = cli("apply", "svc", "--db", db)
    assert configured.exit_code == 1 and "schemadiff.sum" in configured.err
    assert tables(db) == set()
    assert cli("hash", "svc").exit_code == 0
    assert cli("apply", "svc", "--db", db).exit_code == 0
    (directory / SUM_FILE).unlink()
    assert cli("apply", "svc", "--db", db, "--to", "1", "--allow-destructive").exit_code == 1
    assert version_row(db) == [(3, False)]


def test_generated_files_follow_the_umask(tmp_path):
    directory = tmp_path / "m"
    directory.mkdir()
    previous = os.umask(0o022)
    try:
        written = migration_writer.write_pairs(directory, [(1, "a", "CREATE TABLE a ();\n", "DROP TABLE a;\n")])
    finally:
        os.umask(previous)
    for path in [*written, directory / SUM_FILE]:
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path


# --- Guards a careful user expects ---------------------------------------------------


def test_going_down_through_data_deleting_files_needs_consent(cli, db, tmp_path):
    directory = make_dir(tmp_path, {
        "000001_a.up.sql": "CREATE TABLE a (id int);",
        "000001_a.down.sql": "DROP TABLE a;",
        "000002_col.up.sql": "ALTER TABLE a ADD COLUMN note text;",
        "000002_col.down.sql": "ALTER TABLE a DROP COLUMN note;",
        "000003_idx.up.sql": "CREATE INDEX a_id ON a (id);",
        "000003_idx.down.sql": "DROP INDEX a_id;",
    })
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("INSERT INTO a VALUES (1, 'kept')")

    dry = cli("apply", "--dir", directory, "--db", db, "--to", "0", "--dry-run")
    assert dry.exit_code == 0, dry.err
    assert "deletes-data" in dry.out and "DROP TABLE a" in dry.out and "DROP COLUMN note" in dry.out
    assert "DROP INDEX" not in dry.out

    refused = cli("apply", "--dir", directory, "--db", db, "--to", "0")
    assert refused.exit_code == 1
    assert "DROP TABLE a" in refused.err and "--allow-destructive" in refused.err
    assert version_row(db) == [(3, False)] and rows(db, "SELECT note FROM a") == [("kept",)]

    # Dropping an index deletes no data: no consent needed.
    assert cli("apply", "--dir", directory, "--db", db, "--down", "1").exit_code == 0
    allowed = cli("apply", "--dir", directory, "--db", db, "--to", "0", "--allow-destructive")
    assert allowed.exit_code == 0, allowed.err
    assert "a" not in tables(db)


def _read_until(fd: int, marker: bytes, timeout: float) -> bytes:
    """What the terminal ``fd`` shows until ``marker`` appears, or all it showed within ``timeout`` seconds."""
    import select

    output, deadline = b"", time.monotonic() + timeout
    while marker not in output:
        left = deadline - time.monotonic()
        if left <= 0 or not select.select([fd], [], [], left)[0]:
            break
        try:
            chunk = os.read(fd, 1024)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        output += chunk
    return output


def test_down_consent_is_asked_on_a_terminal(db, tmp_path):
    import pty

    directory = make_dir(tmp_path, THREE)
    assert subprocess.run([sys.executable, "-m", "schemadiff", "apply", "--dir", directory, "--db", db]).returncode == 0
    for answer, expected in ((b"n\n", [(3, False)]), (b"y\n", [(2, False)])):
        pid, fd = pty.fork()
        if pid == 0:  # the child: schemadiff on a terminal
            os.execv(sys.executable, [sys.executable, "-m", "schemadiff", "apply", "--dir", str(directory),
                                      "--db", db, "--down", "1"])
        output = _read_until(fd, b"[y/N]", 30)
        assert b"DROP TABLE c" in output and b"Continue? [y/N]" in output, output
        # The question stays on the screen while it waits: nothing (a spinner) redraws its line.
        assert b"\x1b[2K" not in _read_until(fd, b"\x1b[2K", 0.5)
        os.write(fd, answer)
        _read_until(fd, b"never printed", 30)  # to the end: the child exits and closes the terminal
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == (0 if answer == b"y\n" else 1)
        assert version_row(db) == expected


def _pg_tool(name: str, url: str) -> str:
    from schemadiff.runner.backup import find_pg_dump

    return str(Path(find_pg_dump(url)).with_name(name))


def test_backup_is_taken_before_a_data_deleting_step_and_restores(cli, make_db, tmp_path):
    db = make_db()
    directory = make_dir(tmp_path, THREE)
    backups = tmp_path / "backups"
    assert cli("apply", "--dir", directory, "--db", db, "--backup", backups).exit_code == 0
    assert not backups.exists()  # nothing deleted data: no dump needed
    with psycopg.connect(db, autocommit=True) as conn:
        conn.execute("INSERT INTO c VALUES (42)")
    down = cli("apply", "--dir", directory, "--db", db, "--down", "1", "--allow-destructive", "--backup", backups)
    assert down.exit_code == 0, down.err
    dumps = list(backups.iterdir())
    assert len(dumps) == 1 and dumps[0].suffix == ".dump" and str(dumps[0].name) in down.out
    assert "c" not in tables(db)

    restored = make_db()
    subprocess.run([_pg_tool("pg_restore", restored), "--dbname", restored, str(dumps[0])], check=True)
    assert rows(restored, "SELECT id FROM c") == [(42,)]


def test_no_backup_no_destructive_step(cli, db, tmp_path, monkeypatch):
    directory = make_dir(tmp_path, THREE)
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    monkeypatch.setenv("SCHEMADIFF_PG_DUMP", "/bin/false")
    result = cli("apply", "--dir", directory, "--db", db, "--down", "1", "--allow-destructive", "--backup", tmp_path / "b")
    assert result.exit_code == 1 and "pg_dump" in result.err
    assert "c" in tables(db) and version_row(db) == [(3, False)]


def test_backup_setting_in_the_configuration(cli, db, tmp_path):
    directory = make_dir(tmp_path, THREE)
    (tmp_path / "work" / "pyproject.toml").write_text(
        f'[tool.schemadiff.services.svc]\ndesired = "d.sql"\nmigrations = "{directory}"\nbackup = "dumps"\n'
    )
    assert cli("apply", "svc", "--db", db).exit_code == 0
    assert cli("apply", "svc", "--db", db, "--to", "0", "--allow-destructive").exit_code == 0
    assert len(list((tmp_path / "work" / "dumps").glob("*.dump"))) == 1


def test_another_services_directory_is_refused(cli, db, tmp_path):
    cortex = make_dir(tmp_path, {"000001_tenants.up.sql": "CREATE TABLE tenants (id int);"}, "cortex")
    postal = make_dir(tmp_path, {
        "000001_mailboxes.up.sql": "CREATE TABLE mailboxes (id int);",
        "000002_messages.up.sql": "CREATE TABLE messages (id int);",
    }, "postal")
    assert cli("apply", "--dir", cortex, "--db", db).exit_code == 0
    result = cli("apply", "--dir", postal, "--db", db)
    assert result.exit_code == 1
    assert "000001_tenants.up.sql" in result.err and "000001_mailboxes.up.sql" in result.err
    assert tables(db) == {"tenants", "schema_migrations", "schemadiff_history"}


# --- drift: a migration runs on the schema it was proven from --------------------------


def _generate(cli, shadow_url, desired: Path, directory: Path, name: str, text: str, *flags: str) -> None:
    desired.write_text(text)
    result = cli("generate", name, "--desired", desired, "--dir", directory, "--shadow", shadow_url, *flags)
    assert result.exit_code == 0, result.err


def test_generated_up_file_records_the_schema_it_was_proven_from(cli, shadow_url, make_db, tmp_path):
    from schemadiff.runner.drift import proven_from, schema_fingerprint

    desired, directory = tmp_path / "desired.sql", tmp_path / "migrations"
    _generate(cli, shadow_url, desired, directory, "init", "CREATE TABLE a (id int);\n", "--create-dir")
    _generate(cli, shadow_url, desired, directory, "add_b", "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n")
    first = proven_from((directory / "000001_init.up.sql").read_text())
    second = proven_from((directory / "000002_add_b.up.sql").read_text())
    assert first == schema_fingerprint(make_db())  # proven from an empty schema
    assert second == schema_fingerprint(make_db("CREATE TABLE a (id int);"))
    assert proven_from((directory / "000002_add_b.down.sql").read_text()) is None


def test_apply_refuses_a_file_proven_on_another_schema_and_names_the_drift(cli, shadow_url, make_db, tmp_path):
    desired, directory = tmp_path / "desired.sql", tmp_path / "migrations"
    _generate(cli, shadow_url, desired, directory, "init", "CREATE TABLE a (id int, note text);\n", "--create-dir")
    _generate(cli, shadow_url, desired, directory, "index_note",
              "CREATE TABLE a (id int, note text);\nCREATE INDEX a_note ON a (note);\n")
    live = make_db()
    assert cli("apply", "--dir", directory, "--db", live, "--to", "1", "--shadow", shadow_url).exit_code == 0
    with psycopg.connect(live, autocommit=True) as conn:  # a hotfix made by hand in production
        conn.execute("CREATE INDEX a_hotfix ON a (id)")
        conn.execute("ALTER TABLE a ADD COLUMN patched boolean")

    refused = cli("apply", "--dir", directory, "--db", live, "--shadow", shadow_url)
    assert refused.exit_code == 1
    assert "000002_index_note.up.sql" in refused.err and "a_hotfix" in refused.err and "patched" in refused.err
    assert "--allow-drift" in refused.err
    assert version_row(live) == [(1, False)]
    assert not rows(live, "SELECT 1 FROM pg_indexes WHERE indexname = 'a_note'")

    allowed = cli("apply", "--dir", directory, "--db", live, "--shadow", shadow_url, "--allow-drift")
    assert allowed.exit_code == 0, allowed.err
    assert version_row(live) == [(2, False)]


def test_the_services_exclude_list_is_neither_drift_nor_a_baseline_difference(cli, shadow_url, make_db, tmp_path):
    # Another tool's tables (an ORM's) live beside the service's; the replayed
    # directory never has them, and plan and generate leave them alone.
    desired, directory = tmp_path / "desired.sql", tmp_path / "migrations"
    _generate(cli, shadow_url, desired, directory, "init", "CREATE TABLE a (id int);\n", "--create-dir")
    _generate(cli, shadow_url, desired, directory, "b", "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n")
    (tmp_path / "work" / "pyproject.toml").write_text(
        f'[tool.schemadiff.services.svc]\ndesired = "{desired}"\nmigrations = "{directory}"\n'
        'exclude = ["django_*", "legacy_orders"]\n'
    )
    others = ("CREATE TABLE django_session (k varchar(40) PRIMARY KEY);"
              " CREATE TABLE legacy_orders (id bigserial PRIMARY KEY, total numeric);")
    without = make_db("CREATE TABLE a (id int);" + others)
    refused = cli("apply", "--dir", directory, "--db", without, "--baseline", "1", "--shadow", shadow_url)
    assert refused.exit_code == 1 and "django_session" in refused.err  # no exclude list: they are differences

    live = make_db("CREATE TABLE a (id int);" + others)
    applied = cli("apply", "svc", "--db", live, "--baseline", "1", "--shadow", shadow_url)
    assert applied.exit_code == 0, applied.err
    assert version_row(live) == [(2, False)]


def test_owners_and_privileges_are_not_drift(cli, shadow_url, make_db, tmp_path):
    desired, directory = tmp_path / "desired.sql", tmp_path / "migrations"
    _generate(cli, shadow_url, desired, directory, "init", "CREATE TABLE a (id int);\n", "--create-dir")
    _generate(cli, shadow_url, desired, directory, "add_b", "CREATE TABLE a (id int);\nCREATE TABLE b (id int);\n")
    live = make_db()
    assert cli("apply", "--dir", directory, "--db", live, "--to", "1", "--shadow", shadow_url).exit_code == 0
    role = f"sd_guard_reader_{os.getpid()}"
    with psycopg.connect(live, autocommit=True) as conn:
        conn.execute(f"DO $$ BEGIN CREATE ROLE {role}; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
        conn.execute(f"GRANT SELECT ON a TO {role}")
        conn.execute(f"ALTER TABLE a OWNER TO {role}")
    try:
        result = cli("apply", "--dir", directory, "--db", live, "--shadow", shadow_url)
        assert result.exit_code == 0, result.err
    finally:
        with psycopg.connect(live, autocommit=True) as conn:
            conn.execute(f"DROP OWNED BY {role}")
            conn.execute(f"DROP ROLE IF EXISTS {role}")


def test_baseline_checks_the_live_schema_against_the_replayed_directory(cli, shadow_url, make_db, tmp_path):
    directory = make_dir(tmp_path, THREE)
    wrong = make_db("CREATE TABLE a (id bigint); CREATE TABLE b (id int); CREATE TABLE legacy (x int);")
    refused = cli("apply", "--dir", directory, "--db", wrong, "--baseline", "2", "--shadow", shadow_url)
    assert refused.exit_code == 1
    assert "a.id" in refused.err and "legacy" in refused.err and "--allow-drift" in refused.err
    assert "schema_migrations" not in tables(wrong)

    forced = cli("apply", "--dir", directory, "--db", wrong, "--baseline", "2", "--to", "2", "--allow-drift",
                 "--shadow", shadow_url)
    assert forced.exit_code == 0, forced.err
    assert version_row(wrong) == [(2, False)]

    right = make_db("CREATE TABLE a (id int); CREATE TABLE b (id int);")
    adopted = cli("apply", "--dir", directory, "--db", right, "--baseline", "2", "--shadow", shadow_url)
    assert adopted.exit_code == 0, adopted.err
    assert version_row(right) == [(3, False)] and "c" in tables(right)


def test_a_down_file_edited_since_its_up_ran_is_noticed_without_a_sum(cli, db, tmp_path):
    directory = make_dir(tmp_path, THREE)
    assert cli("apply", "--dir", directory, "--db", db).exit_code == 0
    recorded = rows(db, "SELECT version, down_checksum IS NOT NULL FROM schemadiff_history ORDER BY id")
    assert recorded == [(1, True), (2, True), (3, True)]
    (directory / "000003_c.down.sql").write_text("DROP TABLE c; DROP TABLE a;")
    result = cli("apply", "--dir", directory, "--db", db, "--down", "1", "--allow-destructive")
    assert result.exit_code == 0, result.err
    assert "000003_c.down.sql changed since version 3 was applied" in result.err
    untouched = cli("apply", "--dir", directory, "--db", db, "--down", "1", "--allow-destructive")
    assert "changed since" not in untouched.err


def test_an_extension_installed_by_hand_is_not_drift(cli, shadow_url, make_db, tmp_path):
    desired, directory = tmp_path / "desired.sql", tmp_path / "migrations"
    _generate(cli, shadow_url, desired, directory, "init", "CREATE TABLE a (id int);\n", "--create-dir")
    live = make_db("CREATE EXTENSION IF NOT EXISTS vector")  # installed by a DBA, not by a migration
    result = cli("apply", "--dir", directory, "--db", live, "--shadow", shadow_url)
    assert result.exit_code == 0, result.err
