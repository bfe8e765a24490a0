"""Shared fixtures: one real PostgreSQL (with pgvector) for the whole run.

The server is the embedded shadow server unless SCHEMADIFF_TEST_SHADOW_URL
names another one; every test gets fresh databases and drops them after.
"""

from __future__ import annotations

import io
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from schemadiff.shadow import ShadowServer

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def shadow() -> ShadowServer:
    return ShadowServer.open(os.environ.get("SCHEMADIFF_TEST_SHADOW_URL"))


@pytest.fixture(scope="session")
def shadow_url(shadow: ShadowServer) -> str:
    """URL of the shadow server's admin database, for ``--shadow``."""
    return shadow.admin_url


@pytest.fixture
def make_db(shadow: ShadowServer) -> Iterator[Callable[..., str]]:
    """Factory: ``make_db(sql=None)`` creates a fresh database and returns its URL."""
    created: list[str] = []

    def factory(sql: str | None = None) -> str:
        name = shadow.create_database()
        created.append(name)
        # The administrator's URL: these stand for live databases (apply,
        # plan --db), not for the shadow's loader, which may not create
        # extensions itself.
        url = shadow.admin_url_for(name)
        if sql:
            with psycopg.connect(url, autocommit=True) as conn:
                conn.execute(sql)
        return url

    yield factory
    for name in created:
        shadow.drop_database(name)


@pytest.fixture
def db(make_db: Callable[..., str]) -> str:
    """URL of one fresh, empty database."""
    return make_db()


@dataclass
class CliResult:
    exit_code: int
    out: str
    err: str


@pytest.fixture
def cli() -> Callable[..., CliResult]:
    """Run the CLI in-process with captured streams: ``cli("plan", "--desired", f)``."""
    from schemadiff.cli import run

    def invoke(*args: str) -> CliResult:
        out, err = io.StringIO(), io.StringIO()
        code = run([str(a) for a in args], out=out, err=err)
        return CliResult(code, out.getvalue(), err.getvalue())

    return invoke
