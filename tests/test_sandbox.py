"""The shadow server runs SQL it must not trust; its server; its secrets.

Hostile desired files go through the real CLI on the real embedded server:
each is refused, and what it tried did not happen. The embedded server is
started, from a copy of its installation, in processes of its own, the copy
deleted, and planned against again. URLs of many shapes go through every
command path that prints one.
"""

from __future__ import annotations

import itertools
import re
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import psycopg
import pytest

from schemadiff.shadow import server as shadow_module

VECTOR = "CREATE EXTENSION IF NOT EXISTS vector;\nCREATE TABLE items (id int PRIMARY KEY, embedding vector(3));\n"


def _plan(cli, tmp_path, text):
    desired = tmp_path / "desired.sql"
    desired.write_text(text)
    return cli("plan", "--desired", desired, "--format", "sql")


def _admin(shadow, sql, params=None):
    with psycopg.connect(shadow.admin_url, autocommit=True) as conn:
        cursor = conn.execute(sql, params)
        return cursor.fetchall() if cursor.description else []


@pytest.fixture(autouse=True)
def _embedded(monkeypatch):
    monkeypatch.delenv("SCHEMADIFF_SHADOW_URL", raising=False)
    monkeypatch.setenv("SCHEMADIFF_NO_CACHE", "1")


def test_legitimate_sql_with_pgvector_still_loads(cli, tmp_path):
    result = _plan(cli, tmp_path, VECTOR + "CREATE FUNCTION f() RETURNS int LANGUAGE sql AS 'SELECT 1';\n")
    assert result.exit_code == 2, result.err
    # IF NOT EXISTS: generate's extensions run where a DBA pre-created them (the workflow branch)
    assert "CREATE EXTENSION IF NOT EXISTS vector" in result.out and "embedding public.vector(3)" in result.out


def test_copy_to_program_runs_nothing(cli, tmp_path):
    marker = tmp_path / "pwned"
    result = _plan(cli, tmp_path, f"CREATE TABLE t (id int);\nCOPY (SELECT 1) TO PROGRAM 'touch {marker}';\n")
    assert result.exit_code == 1
    assert "refused on the shadow server" in result.err and "Traceback" not in result.err
    assert not marker.exists()


@pytest.mark.parametrize(
    "payload",
    [
        "COMMENT ON TABLE t IS $$x$$; DO $$BEGIN EXECUTE format('COMMENT ON TABLE t IS %L', pg_read_file('/etc/passwd')); END$$",
        "CREATE TABLE t2 AS SELECT pg_read_file('/etc/passwd') AS leak",
        "CREATE TABLE t3 AS SELECT pg_ls_dir('.') AS leak",
        "CREATE TABLE t4 AS SELECT lo_import('/etc/passwd') AS leak",
        "COPY t FROM '/etc/passwd'",
    ],
)
def test_server_files_cannot_be_read_into_the_plan(cli, tmp_path, payload):
    result = _plan(cli, tmp_path, f"CREATE TABLE t (id int);\n{payload};\n")
    assert result.exit_code == 1, result.out
    assert "root:" not in result.out + result.err
    assert "refused on the shadow server" in result.err


def test_drop_database_cannot_touch_other_databases(cli, tmp_path, make_db, shadow):
    victim = psycopg.conninfo.conninfo_to_dict(make_db())["dbname"]
    _admin(shadow, f'CREATE DATABASE "{victim}_unrelated"')
    try:
        for name in (victim, f"{victim}_unrelated", "postgres"):
            result = _plan(cli, tmp_path, f'CREATE TABLE t (id int);\nDROP DATABASE "{name}";\n')
            assert result.exit_code == 1, name
        names = {row[0] for row in _admin(shadow, "SELECT datname FROM pg_database")}
        assert {victim, f"{victim}_unrelated", "postgres"} <= names
    finally:
        _admin(shadow, f'DROP DATABASE IF EXISTS "{victim}_unrelated"')


@pytest.mark.parametrize(
    "payload, check",
    [
        ("ALTER SYSTEM SET work_mem = '77MB'", "SELECT count(*) FROM pg_file_settings WHERE name = 'work_mem'"),
        ("CREATE ROLE sd_evil SUPERUSER LOGIN", "SELECT count(*) FROM pg_roles WHERE rolname = 'sd_evil'"),
        ("CREATE ROLE sd_evil", "SELECT count(*) FROM pg_roles WHERE rolname = 'sd_evil'"),
        ("ALTER ROLE CURRENT_USER SUPERUSER", "SELECT count(*) FROM pg_roles WHERE rolname = 'schemadiff_loader' AND rolsuper"),
        ("RESET ROLE; SET ROLE postgres; CREATE ROLE sd_evil", "SELECT count(*) FROM pg_roles WHERE rolname = 'sd_evil'"),
        ("SET SESSION AUTHORIZATION postgres; CREATE ROLE sd_evil", "SELECT count(*) FROM pg_roles WHERE rolname = 'sd_evil'"),
        ("GRANT pg_execute_server_program TO CURRENT_USER", "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member WHERE r.rolname = 'schemadiff_loader'"),
        ("CREATE FUNCTION et() RETURNS event_trigger LANGUAGE plpgsql AS $$BEGIN END$$;"
         " CREATE EVENT TRIGGER sd_evil ON ddl_command_start EXECUTE FUNCTION et()",
         "SELECT count(*) FROM pg_event_trigger"),
        ("CREATE EXTENSION dblink", "SELECT count(*) FROM pg_extension WHERE extname = 'dblink'"),
        ("CREATE EXTENSION postgres_fdw", "SELECT count(*) FROM pg_extension WHERE extname = 'postgres_fdw'"),
        ("CREATE EXTENSION vector CASCADE; CREATE EXTENSION plpython3u", "SELECT count(*) FROM pg_language WHERE lanname = 'plpython3u'"),
        ("CREATE LANGUAGE plperlu", "SELECT count(*) FROM pg_language WHERE lanname = 'plperlu'"),
    ],
)
def test_superuser_statements_are_refused_and_leave_nothing(cli, tmp_path, shadow, payload, check):
    before = _admin(shadow, check)
    result = _plan(cli, tmp_path, f"CREATE TABLE t (id int);\n{payload};\n")
    assert result.exit_code == 1, result.out
    assert "Traceback" not in result.err and result.err.startswith("error:")
    assert _admin(shadow, check) == before
    assert _admin(shadow, "SELECT count(*) FROM pg_roles WHERE rolname = 'sd_evil'") == [(0,)]


def test_a_role_setting_left_by_one_run_is_gone_for_the_next(cli, tmp_path, shadow):
    # A role may set its own defaults; a search_path left behind would change how later loads resolve names.
    result = _plan(cli, tmp_path, "CREATE TABLE t (id int);\nALTER ROLE CURRENT_USER SET search_path = nowhere;\n")
    assert _plan(cli, tmp_path, "CREATE TABLE t (id int);\n").exit_code == 2
    rows = _admin(
        shadow,
        "SELECT count(*) FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole WHERE r.rolname = 'schemadiff_loader'",
    )
    assert rows == [(0,)], result.err


def test_a_missing_extension_is_a_server_problem_not_the_sql(cli, tmp_path):
    result = _plan(cli, tmp_path, "CREATE EXTENSION surely_not_installed;\n")
    assert result.exit_code == 1
    assert "shadow server has no extension" in result.err
    assert "Fix the SQL" not in result.err


def test_shadow_url_runs_sql_as_a_role_of_its_own_and_drops_it(cli, tmp_path, shadow_url, shadow):
    marker = tmp_path / "pwned"
    desired = tmp_path / "desired.sql"
    desired.write_text(f"CREATE TABLE t (id int);\nCOPY (SELECT 1) TO PROGRAM 'touch {marker}';\n")
    result = cli("plan", "--desired", desired, "--shadow", shadow_url)
    assert result.exit_code == 1 and not marker.exists()
    desired.write_text(VECTOR)
    assert cli("plan", "--desired", desired, "--shadow", shadow_url).exit_code == 2
    mine = shadow_module.TEMP_PREFIX.replace("_", r"\_") + f"{os.getpid()}\\_%"
    assert _admin(shadow, "SELECT count(*) FROM pg_roles WHERE rolname LIKE %s", [mine]) == [(0,)]


# ---------------------------------------------------------------------------
# The embedded server: its environment, its socket, its installation


def _copy_install(root: Path) -> Path:
    """A copy of the installed embedded package, importable from ``root`` (stands for another venv)."""
    import pgserver

    source = Path(pgserver.__file__).parent
    for part in [source, *source.parent.glob(source.name + ".libs")]:  # the wheel's vendored libraries
        shutil.copytree(part, root / part.name, symlinks=True)
    return root


def _run(args, cache, extra_env=None, pythonpath=None):
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(SCHEMADIFF_CACHE_DIR=str(cache), SCHEMADIFF_NO_CACHE="1", **(extra_env or {}))
    env.pop("SCHEMADIFF_SHADOW_URL", None)
    if pythonpath:
        env["PYTHONPATH"] = str(pythonpath)
    return subprocess.run([sys.executable, "-m", "schemadiff", *args], env=env, capture_output=True, text=True, timeout=300)


@pytest.mark.skipif(sys.version_info >= (3, 12), reason="copies the pgserver package (Python < 3.12)")
@pytest.mark.long_running  # started first: see conftest.py
def test_a_server_whose_installation_is_gone_is_restarted_and_server_commands_work():
    # Not tmp_path: pytest removes old base directories of other runs on this machine, and the
    # server's own user (pgserver, when run as root) must be able to reach the installation's copy.
    tmp_path = Path(tempfile.mkdtemp(prefix="schemadiff-sandbox-"))
    tmp_path.chmod(0o755)
    cache = tmp_path / "cache"
    desired = tmp_path / "desired.sql"
    desired.write_text(VECTOR)
    other = _copy_install(tmp_path / "old-venv")
    secret = "sd-secret-" + os.urandom(6).hex()
    try:
        first = _run(["plan", "--desired", str(desired)], cache, {"AWS_SECRET_ACCESS_KEY": secret, "PGPASSWORD": secret}, other)
        assert first.returncode == 2, first.stderr
        pgdata = cache / "shadow-pg16"
        pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        assert str(other) in shadow_module.server_binary(pgdata).as_posix()
        # A clean environment and a socket only the server's user reaches.
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        assert secret.encode() not in environ and b"PGPASSWORD" not in environ
        socket_dir = Path((pgdata / "postmaster.pid").read_text().splitlines()[4])
        assert socket_dir.stat().st_mode & 0o077 == 0

        shutil.rmtree(other)  # the CI cache refresh: `rm -rf .venv`
        status = _run(["server", "status"], cache)
        assert status.returncode == 0 and "stale" in status.stdout and "gone" in status.stdout

        second = _run(["plan", "--desired", str(desired)], cache)
        assert second.returncode == 2, second.stderr
        assert "Fix the SQL" not in second.stderr
        assert not shadow_module._pid_alive(pid) or not shadow_module._is_postmaster_of(pid, pgdata)
        assert str(other) not in shadow_module.server_binary(pgdata).as_posix()

        status = _run(["server", "status"], cache)
        assert "running" in status.stdout and "stale" not in status.stdout
        new_pid = int((pgdata / "postmaster.pid").read_text().split()[0])
        stop = _run(["server", "stop"], cache)
        assert stop.returncode == 0 and "stopped" in stop.stdout
        assert not shadow_module._is_postmaster_of(new_pid, pgdata)
        assert "not running" in _run(["server", "status"], cache).stdout

        assert _run(["plan", "--desired", str(desired)], cache).returncode == 2  # starts again
        memory = shadow_module._memory_directory(pgdata.resolve())
        clean = _run(["server", "clean"], cache)
        assert clean.returncode == 0, clean.stderr
        assert not pgdata.exists() and not memory.exists()
    finally:
        _run(["server", "clean"], cache)
        shutil.rmtree(tmp_path, ignore_errors=True)


# ---------------------------------------------------------------------------
# Secrets: no URL shape prints its password, on any path

# Each piece between delimiters is distinctive: a parser that cuts the password
# there (libpq reads "Qzv?query9" as a port and an option) must not show a piece.
PASSWORDS = ["Qzv#hash9", "Qzv?query9", "Qzv@at9", "Qzv/slash9", "Qzv%zz9", "Qzv:colon9", "Qzv%40enc9",
             "Qzv'quote9 xyz", "Hunter2?pwq@Zq9", "Qzv/er2#Wk7"]
SHAPES = [
    "postgresql://{user}:{pw}@localhost:1/{db}",
    "POSTGRESQL://{user}:{pw}@localhost:1/{db}",
    "postgres://{user}:{pw}@/{db}?host={host}",
    "postgresql://{user}:{qpw}@/{db}?host={host}",
    "postgresql:///{db}?host={host}&user={user}&password={qpw}",
    "host={host} dbname={db} user={user} password='{kvpw}'",
    "postgresql://{user}:{pw}@{host}/{db}",
]
# Shapes libpq reads as the password the user meant (encoded, or in a parameter): they connect.
WELL_FORMED = SHAPES[3:6]


def _kv(password: str) -> str:
    return password.replace("\\", "\\\\").replace("'", "\\'")


def _forms(password: str) -> set[str]:
    """The password as written in any of the shapes (raw, percent-encoded, key=value-escaped), and its pieces.

    A piece is a run of 3 or more letters and digits between other
    characters: the parts a parser cutting at a delimiter would show.
    """
    pieces = {piece for piece in re.split(r"[^A-Za-z0-9]+", password) if len(piece) >= 3}
    return ({password, quote(password, safe=""), _kv(password)} | pieces) - {""}


@pytest.fixture(scope="module")
def shapes_db(shadow) -> Iterator[str]:
    """One database for the 140 URL-shape cases below, made once per worker: they only read it (``status``,
    ``apply --dry-run``, ``plan --db``), and a database each cost a create and a drop per case."""
    name = shadow.create_database()
    yield shadow.admin_url_for(name)
    shadow.drop_database(name)


@pytest.mark.parametrize("shape, password", list(itertools.product(SHAPES, PASSWORDS)))
@pytest.mark.parametrize("debug", [False, True])
def test_no_url_shape_prints_its_password(cli, shapes_db, shape, password, debug):
    live = psycopg.conninfo.conninfo_to_dict(shapes_db)
    url = shape.format(user="postgres", pw=password, qpw=quote(password, safe=""), kvpw=_kv(password), host=live["host"], db=live["dbname"])
    flags = ["--debug"] if debug else []
    results = [
        cli(*flags, "status", "--dir", Path(__file__).parent.parent / "generated" / "cortex", "--db", url),
        cli(*flags, "apply", "--dir", Path(__file__).parent.parent / "generated" / "cortex", "--db", url, "--dry-run"),
    ]
    if password in PASSWORDS[:2] and not debug:  # plan loads a schema: a sample of shapes is enough
        results.append(cli("plan", "--desired", Path(__file__).parent.parent / "schema" / "cortex.sql", "--db", url, "--shadow", url))
    for result in results:
        text = result.out + result.err
        for form in _forms(password):
            assert form not in text, (url, text)
        assert "Traceback" not in text or debug
    if shape in WELL_FORMED:  # the success paths print the URL too: they ran, and showed it redacted
        assert results[0].exit_code == 0 and results[1].exit_code == 0, results[0].err
        assert "***" in results[1].out


@pytest.mark.parametrize("shape, password", list(itertools.product(SHAPES, PASSWORDS)))
def test_redact_hides_every_password(shape, password):
    from schemadiff.dburl import redact

    url = shape.format(user="u", pw=password, qpw=quote(password, safe=""), kvpw=_kv(password), host="/tmp/x", db="d")
    shown = redact(url)
    for form in _forms(password):
        assert form not in shown, shown
