"""A connection setting given twice in one URL is refused (issue #14).

libpq (psycopg: plan, apply) lets ``?host=`` override the URL's host;
lib/pq (golang-migrate, the Go service) reads the URL's own. One URL would
reach two servers, so schemadiff refuses it before connecting, saying which
setting is doubled and never echoing a password.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from psycopg import conninfo

from benchmarks.golang_migrate import GoMigrate


def _socket_url(db: str) -> tuple[str, str, str]:
    """(socket directory, database, user) of a test database on the embedded server."""
    params = conninfo.conninfo_to_dict(db)
    return str(params["host"]), str(params["dbname"]), str(params.get("user") or "postgres")


def _desired(tmp_path: Path) -> Path:
    path = tmp_path / "desired.sql"
    path.write_text("CREATE TABLE t (id int PRIMARY KEY);\n")
    return path


def test_golang_migrate_reads_the_urls_host_where_libpq_reads_the_query(db, golang_migrate: GoMigrate, tmp_path):
    # Why the URL is refused: the real golang-migrate goes to the URL's host,
    # not to the socket psycopg would use.
    socket, name, user = _socket_url(db)
    (tmp_path / "m").mkdir()
    code, output = golang_migrate.migrate(f"postgres://{user}@elsewhere.invalid/{name}?host={socket}&sslmode=disable",
                                          tmp_path / "m", "version")
    assert code != 0 and "elsewhere.invalid" in output, output
    code, output = golang_migrate.migrate(f"postgres://{user}@/{name}?host={socket}&sslmode=disable",
                                          tmp_path / "m", "version")
    assert "no migration" in output, output  # given once, it reaches the server


@pytest.mark.parametrize(
    ("url", "setting"),
    [
        ("postgres://{user}@elsewhere.invalid/{name}?host={socket}", "host both in the URL and as ?host="),
        ("postgres://{user}@/{name}?host={socket}&dbname=postgres", "dbname both in the URL and as ?dbname="),
        ("postgres://{user}@/{name}?host={socket}&user=someone", "user both in the URL and as ?user="),
        ("postgres://{user}@:5432/{name}?host={socket}&port=5433", "port both in the URL and as ?port="),
        ("postgres://{user}@/{name}?host={socket}&host=/nowhere", "?host= more than once"),
        ("postgres://{user}@/{name}?host={socket}&sslmode=disable&sslmode=require", "?sslmode= more than once"),
    ],
    ids=["host", "dbname", "user", "port", "repeated-host", "repeated-sslmode"],
)
@pytest.mark.parametrize("command", ["plan", "apply", "dump", "status"])
def test_every_command_refuses_a_setting_given_twice(cli, db, tmp_path, url, setting, command):
    socket, name, user = _socket_url(db)
    url = url.format(user=user, name=name, socket=socket)
    args = {
        "plan": ["plan", "--desired", _desired(tmp_path), "--db", url],
        "apply": ["apply", "--dir", tmp_path, "--db", url],
        "dump": ["dump", "--db", url, "--output", tmp_path / "out.sql"],
        "status": ["status", "--dir", tmp_path, "--db", url],
    }[command]
    done = cli(*args)
    assert done.exit_code == 1, done.out + done.err
    assert setting in done.err and "golang-migrate" in done.err
    assert "Traceback" not in done.err
    assert not (tmp_path / "out.sql").exists()


def test_the_refusal_never_shows_a_password(cli, tmp_path):
    done = cli("plan", "--desired", _desired(tmp_path), "--db", "postgres://u:Hunter2pw@h/db?password=Other9pw")
    assert done.exit_code == 1
    assert "password both in the URL and as ?password=" in done.err
    assert "Hunter2pw" not in done.out + done.err and "Other9pw" not in done.out + done.err


def test_a_socket_url_giving_each_setting_once_still_works(cli, db, tmp_path):
    socket, name, user = _socket_url(db)
    done = cli("plan", "--desired", _desired(tmp_path), "--db", f"postgres://{user}@/{name}?host={socket}")
    assert done.exit_code == 2, done.out + done.err  # connected: the table is pending
