"""Shared fixtures: one real PostgreSQL (with pgvector) for the whole run.

The server is the embedded shadow server unless SCHEMADIFF_TEST_SHADOW_URL
names another one; every test gets fresh databases and drops them after.
"""

from __future__ import annotations

import io
import os
import sys
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
        url = shadow.url_for(name)
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


# --- golang-migrate itself, for the interoperability tests -----------------

if str(ROOT) not in sys.path:  # benchmarks/ is not an installed package
    sys.path.insert(0, str(ROOT))

from benchmarks.golang_migrate import GoMigrate, build, go_url  # noqa: E402,F401


@pytest.fixture(scope="session")
def golang_migrate(tmp_path_factory: pytest.TempPathFactory) -> GoMigrate:
    """The real golang-migrate binaries: from SCHEMADIFF_MIGRATE_BIN / SCHEMADIFF_GOSERVICE_BIN
    (what .ci/run builds), else built once per session with ``go`` into a temporary directory."""
    found = GoMigrate.from_environment()
    if found is not None:
        return found
    try:
        return build(tmp_path_factory.mktemp("golang-migrate"))
    except FileNotFoundError as exc:
        pytest.skip(
            f"SKIPPED LOUDLY: {exc}, so golang-migrate cannot be built and the interoperability tests did not"
            " run. Install Go (or set SCHEMADIFF_MIGRATE_BIN and SCHEMADIFF_GOSERVICE_BIN); .ci/run fails"
            " without it."
        )
