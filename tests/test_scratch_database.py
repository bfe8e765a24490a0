"""``schemadiff server createdb NAME``: a newcomer's database to try apply on (issue #14).

README's path: ``export CORTEX_DATABASE_URL=$(schemadiff server createdb
cortex_dev)``, then apply, status, plan, and golang-migrate on the same URL.
Through the real CLI, on the test run's own embedded server.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import psycopg
import pytest

from benchmarks.golang_migrate import GoMigrate


@pytest.fixture
def scratch_name(shadow):
    name = f"try_{uuid.uuid4().hex[:8]}"
    yield name
    with psycopg.connect(shadow.admin_url, autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


def _pair(directory: Path) -> Path:
    directory.mkdir()
    (directory / "000001_init.up.sql").write_text("CREATE TABLE notes (id bigint PRIMARY KEY, body text);\n")
    (directory / "000001_init.down.sql").write_text("DROP TABLE notes;\n")
    return directory


def test_createdb_prints_a_url_apply_and_golang_migrate_both_use(cli, scratch_name, tmp_path,
                                                                  golang_migrate: GoMigrate):
    made = cli("server", "createdb", scratch_name)
    assert made.exit_code == 0, made.err
    url = made.out.strip()
    assert made.out == url + "\n"  # the URL alone on stdout, for $(...)
    assert url.startswith("postgres://") and "sslmode=disable" in url
    assert "created database" in made.err
    again = cli("server", "createdb", scratch_name)
    assert again.exit_code == 0 and again.out.strip() == url and "already exists" in again.err

    directory = _pair(tmp_path / "m")
    applied = cli("apply", "--dir", directory, "--db", url)
    assert applied.exit_code == 0, applied.err
    assert "1 migration(s) applied" in applied.out
    status = cli("status", "--dir", directory, "--db", url)
    assert status.exit_code == 0 and "version 1 (clean)" in status.out, status.out
    code, output = golang_migrate.migrate(url, directory, "version")
    assert code == 0 and output.strip() == "1", output  # lib/pq reaches the same database
    desired = tmp_path / "desired.sql"
    desired.write_text("CREATE TABLE notes (id bigint PRIMARY KEY, body text);\n")
    assert cli("plan", "--desired", desired, "--db", url).exit_code == 0
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == (scratch_name,)


@pytest.mark.parametrize("name", ["schemadiff_tmp_1_x", "schemadiff_tpl_x", "postgres", "template1", "x" * 64])
def test_createdb_refuses_names_it_must_not_take(cli, name):
    done = cli("server", "createdb", name)
    assert done.exit_code == 1
    assert "cannot use" in done.err and "Traceback" not in done.err and done.out == ""


def test_server_status_points_to_createdb(cli):
    done = cli("server", "status")
    assert done.exit_code == 0 and "schemadiff server createdb NAME" in done.out


def test_a_createdb_url_after_server_stop_says_how_to_start_it_again(cli, tmp_path):
    # The embedded server's socket directory is its data directory (shadow-pgNN holding PG_VERSION): a URL
    # createdb printed, used once the server is stopped, finds no socket there.
    data = tmp_path / "shadow-pg16"
    data.mkdir()
    (data / "PG_VERSION").write_text("16\n")
    url = f"postgres://postgres@/try_stopped?host={data}&sslmode=disable"
    done = cli("status", "--db", url, "--dir", str(_pair(tmp_path / "migrations")))
    assert done.exit_code != 0 and "schemadiff server createdb NAME" in done.err, done.err
    assert "Traceback" not in done.err
    other = tmp_path / "sockets"
    other.mkdir()
    done = cli("status", "--db", f"postgres://postgres@/x?host={other}&sslmode=disable", "--dir", str(tmp_path / "migrations"))
    assert done.exit_code != 0 and "Check that the server is running" in done.err, done.err
