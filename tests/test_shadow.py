"""The embedded shadow server: its throwaway settings and the pruning of kept templates."""

from __future__ import annotations

import subprocess
import sys
import time

import psycopg
from psycopg import sql

from schemadiff import shadow as shadow_module


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
from schemadiff.shadow import ShadowServer
server = ShadowServer(sys.argv[1], embedded=True)
name = server.create_database()
server.keep(name, "test_prune_newest")
print(f"{time.monotonic():.3f}")
"""


def test_keeping_one_template_too_many_prunes_the_oldest_after_the_command(shadow_url):
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
