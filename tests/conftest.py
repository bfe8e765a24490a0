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

GOSERVICE_DIR = ROOT / "examples" / "goservice"
MIGRATE_MODULE = "github.com/golang-migrate/migrate/v4/cmd/migrate@v4.20.1"  # pinned, as in .ci/run


@dataclass(frozen=True)
class GoMigrate:
    """The real golang-migrate: the ``migrate`` CLI and the example Go service.

    ``migrate(url, dir, *args)`` runs ``migrate -path DIR -database URL ARGS``;
    ``service(url, dir, *flags)`` runs examples/goservice. Both return
    (exit code, stdout + stderr). URLs are converted to the ``postgres://``
    form lib/pq reads (see :func:`go_url`).
    """

    migrate_bin: Path
    service_bin: Path

    def migrate(self, url: str, directory: Path | str, *args: str, timeout: float = 120) -> tuple[int, str]:
        return _run([str(self.migrate_bin), "-path", str(directory), "-database", go_url(url), *args], timeout)

    def service(self, url: str, directory: Path | str, *flags: str, timeout: float = 120) -> tuple[int, str]:
        return _run([str(self.service_bin), "-dir", str(directory), "-db", go_url(url), *flags], timeout)


def _run(argv: list[str], timeout: float) -> tuple[int, str]:
    import subprocess

    done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    return done.returncode, done.stdout + done.stderr


def go_url(url: str, **query: str) -> str:
    """A libpq URL or key=value string as the ``postgres://`` URL lib/pq (golang-migrate) reads.

    The embedded server listens on a Unix socket: lib/pq takes its directory
    as ``host=`` in the query, and SSL must be off (lib/pq defaults to require).
    """
    from urllib.parse import quote, urlencode

    from psycopg import conninfo

    if url.startswith(("postgres://", "postgresql://")):  # already one (with options libpq would refuse)
        return url + ("&" if "?" in url else "?") + urlencode(query) if query else url
    params = conninfo.conninfo_to_dict(url)
    user = quote(str(params.pop("user", "postgres")), safe="")
    password = params.pop("password", None)
    dbname = quote(str(params.pop("dbname", "postgres")), safe="")
    host = str(params.pop("host", "localhost"))
    port = params.pop("port", None)
    auth = user + (":" + quote(str(password), safe="") if password else "")
    if host.startswith("/"):
        netloc, params["host"] = f"{auth}@", host
        if port:
            params["port"] = port
    else:
        netloc = f"{auth}@{host}" + (f":{port}" if port else "")
    params.setdefault("sslmode", "disable")
    params.update(query)
    return f"postgres://{netloc}/{dbname}?" + urlencode({k: str(v) for k, v in params.items()})


def _build_golang_migrate(out: Path) -> GoMigrate:
    import shutil
    import subprocess

    go = shutil.which("go")
    if go is None:
        pytest.skip(
            "SKIPPED LOUDLY: `go` is not installed, so golang-migrate cannot be built and the interoperability"
            " tests did not run. Install Go (or set SCHEMADIFF_MIGRATE_BIN and SCHEMADIFF_GOSERVICE_BIN)."
        )
    env = dict(os.environ, GOBIN=str(out), GOFLAGS="-modcacherw")
    subprocess.run([go, "install", "-tags", "postgres", MIGRATE_MODULE], check=True, env=env, capture_output=True)
    subprocess.run(
        [go, "build", "-o", str(out / "goservice"), "."], check=True, env=env, cwd=GOSERVICE_DIR, capture_output=True
    )
    return GoMigrate(out / "migrate", out / "goservice")


@pytest.fixture(scope="session")
def golang_migrate(tmp_path_factory: pytest.TempPathFactory) -> GoMigrate:
    """The real golang-migrate binaries: from SCHEMADIFF_MIGRATE_BIN / SCHEMADIFF_GOSERVICE_BIN
    (what .ci/run builds), else built once per session with ``go`` into a temporary directory."""
    migrate_bin, service_bin = os.environ.get("SCHEMADIFF_MIGRATE_BIN"), os.environ.get("SCHEMADIFF_GOSERVICE_BIN")
    if migrate_bin and service_bin:
        return GoMigrate(Path(migrate_bin), Path(service_bin))
    return _build_golang_migrate(tmp_path_factory.mktemp("golang-migrate"))
