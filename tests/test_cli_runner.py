"""apply, status, force and hash through the CLI, from an empty directory."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest


@pytest.fixture(autouse=True)
def _empty_cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)


def make_dir(root: Path, files: dict[str, str]) -> Path:
    directory = root / "migrations"
    directory.mkdir()
    for name, text in files.items():
        (directory / name).write_text(text)
    return directory


def version_row(url: str) -> list[tuple]:
    with psycopg.connect(url) as conn:
        return conn.execute("SELECT version, dirty FROM schema_migrations").fetchall()


def tables(url: str) -> set[str]:
    with psycopg.connect(url) as conn:
        return {r[0] for r in conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")}


THREE = {
    "000001_a.up.sql": "CREATE TABLE a (id int);",
    "000001_a.down.sql": "DROP TABLE a;",
    "000002_b.up.sql": "CREATE TABLE b (id int);",
    "000002_b.down.sql": "DROP TABLE b;",
    "000003_c.up.sql": "CREATE TABLE c (id int);",
    "000003_c.down.sql": "DROP TABLE c;",
}


def test_apply_up_down_and_to(cli, db, tmp_path):
    directory = make_dir(tmp_path, THREE)
    assert cli("hash", "--dir", directory).exit_code == 0

    dry = cli("apply", "--dir", directory, "--db", db, "--dry-run")
    assert dry.exit_code == 0, dry.err
    assert "000001_a.up.sql" in dry.out
    assert "schema_migrations" not in tables(db)

    up = cli("apply", "--dir", directory, "--db", db)
    assert up.exit_code == 0, up.err
    assert version_row(db) == [(3, False)]
    assert {"a", "b", "c"} <= tables(db)

    to_one = cli("apply", "--dir", directory, "--db", db, "--to", "1", "--allow-destructive")
    assert to_one.exit_code == 0, to_one.err
    assert version_row(db) == [(1, False)]
    assert "b" not in tables(db) and "a" in tables(db)

    status = cli("status", "--dir", directory, "--db", db)
    assert status.exit_code == 0, status.err
    assert "version 1" in status.out and "pending" in status.out

    none = cli("apply", "--dir", directory, "--db", db, "--to", "0", "--allow-destructive")
    assert none.exit_code == 0
    assert version_row(db) == []


def test_baseline_adopts_an_existing_schema(cli, make_db, tmp_path):
    directory = make_dir(tmp_path, THREE)
    db = make_db("CREATE TABLE a (id int);")
    result = cli("apply", "--dir", directory, "--db", db, "--baseline", "1")
    assert result.exit_code == 0, result.err
    assert version_row(db) == [(3, False)]
    again = cli("apply", "--dir", directory, "--db", db, "--baseline", "1")
    assert again.exit_code == 1
    assert "already at version 3" in again.err


def test_failed_non_transactional_file_leaves_dirty_and_force_clears_it(cli, db, tmp_path):
    files = dict(THREE)
    files["000002_b.up.sql"] = (
        "-- schemadiff:no-transaction\nCREATE TABLE b (id int);\nCREATE INDEX CONCURRENTLY b_x ON b (nope);\n"
    )
    directory = make_dir(tmp_path, files)
    failed = cli("apply", "--dir", directory, "--db", db)
    assert failed.exit_code == 1
    assert "000002_b.up.sql" in failed.err and ":3" in failed.err
    assert "Traceback" not in failed.err
    assert version_row(db) == [(2, True)]

    refused = cli("apply", "--dir", directory, "--db", db)
    assert refused.exit_code == 1
    assert "dirty" in refused.err and "schemadiff force" in refused.err

    forced = cli("force", "1", "--dir", directory, "--db", db)
    assert forced.exit_code == 0, forced.err
    assert version_row(db) == [(1, False)]


def test_tampered_directory_is_refused_before_anything_runs(cli, db, tmp_path):
    directory = make_dir(tmp_path, THREE)
    assert cli("hash", "--dir", directory).exit_code == 0
    (directory / "000002_b.up.sql").write_text("CREATE TABLE b (id bigint);")
    result = cli("apply", "--dir", directory, "--db", db)
    assert result.exit_code == 1
    assert "000002_b.up.sql" in result.err and "schemadiff hash" in result.err
    assert "schema_migrations" not in tables(db)


def test_apply_needs_a_database(cli, tmp_path):
    directory = make_dir(tmp_path, THREE)
    result = cli("apply", "--dir", directory)
    assert result.exit_code == 1
    assert "--db" in result.err


def test_unreachable_database_hides_the_password(cli, tmp_path):
    directory = make_dir(tmp_path, THREE)
    result = cli("apply", "--dir", directory, "--db", "postgresql://me:topsecret@127.0.0.1:1/db")
    assert result.exit_code == 1
    assert "topsecret" not in result.err + result.out


_MAIN_WITH_EXIT_HANDLER = """
import atexit, sys
marker, args = sys.argv[1], sys.argv[2:]
atexit.register(lambda: open(marker, "w").write("ran"))
sys.argv = ["schemadiff", *args]
from schemadiff.cli import main
main()
"""


def test_the_process_exit_keeps_output_exit_code_and_exit_handlers(tmp_path, shadow_url):
    # main() ends the process without the interpreter's teardown: what a
    # normal exit guarantees must still happen.
    desired = tmp_path / "desired.sql"
    desired.write_text("CREATE TABLE t (a int PRIMARY KEY, b text);\n")
    marker = tmp_path / "exit-handler-ran"
    done = subprocess.run(
        [sys.executable, "-c", _MAIN_WITH_EXIT_HANDLER, str(marker),
         "plan", "--desired", str(desired), "--shadow", shadow_url, "--format", "json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
    )
    assert done.returncode == 2, done.stderr
    assert [change["sql"] for change in json.loads(done.stdout)["results"][0]["changes"]][0].startswith("CREATE TABLE")
    assert marker.read_text() == "ran"
