"""The real golang-migrate, for the interoperability tests and the conformance run.

``GoMigrate`` runs the pinned ``migrate`` CLI (built with ``-tags postgres``)
and examples/goservice (the services' repo/migrate.go shape); ``build``
builds both with ``go``; ``go_url`` turns a libpq URL into the
``postgres://`` URL lib/pq, golang-migrate's driver, reads.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

ROOT = Path(__file__).resolve().parent.parent
GOSERVICE_DIR = ROOT / "examples" / "goservice"
MIGRATE_MODULE = "github.com/golang-migrate/migrate/v4/cmd/migrate@v4.20.1"  # pinned, as in .ci/run


@dataclass(frozen=True)
class GoMigrate:
    """``migrate(url, dir, *args)`` runs ``migrate -path DIR -database URL ARGS``;
    ``service(url, dir, *flags)`` runs examples/goservice. Both return
    (exit code, stdout + stderr); URLs go through :func:`go_url`."""

    migrate_bin: Path
    service_bin: Path

    @classmethod
    def from_environment(cls) -> GoMigrate | None:
        """The binaries named by SCHEMADIFF_MIGRATE_BIN and SCHEMADIFF_GOSERVICE_BIN (both), else None."""
        migrate_bin, service_bin = os.environ.get("SCHEMADIFF_MIGRATE_BIN"), os.environ.get("SCHEMADIFF_GOSERVICE_BIN")
        if migrate_bin and service_bin:
            return cls(Path(migrate_bin), Path(service_bin))
        return None

    def migrate(self, url: str, directory: Path | str, *args: str, timeout: float = 300) -> tuple[int, str]:
        return _run([str(self.migrate_bin), "-path", str(directory), "-database", go_url(url), *args], timeout)

    def service(self, url: str, directory: Path | str, *flags: str, timeout: float = 300) -> tuple[int, str]:
        return _run([str(self.service_bin), "-dir", str(directory), "-db", go_url(url), *flags], timeout)


def _run(argv: list[str], timeout: float) -> tuple[int, str]:
    try:
        done = subprocess.run(argv, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1, f"timed out after {timeout:g}s: {' '.join(argv[:1] + argv[-1:])}"
    return done.returncode, done.stdout + done.stderr


def go_url(url: str, **query: str) -> str:
    """A libpq URL or key=value string as the ``postgres://`` URL lib/pq reads; ``query`` adds parameters.

    A URL already in that form is kept (with ``query`` appended). The
    embedded server listens on a Unix socket: lib/pq takes its directory as
    ``host=`` in the query, and SSL must be off (lib/pq defaults to require).
    """
    from psycopg import conninfo

    if url.startswith(("postgres://", "postgresql://")):
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


def build(out: Path) -> GoMigrate:
    """Build the pinned migrate CLI and examples/goservice into ``out`` (go's module cache is reused).

    Raises FileNotFoundError when ``go`` is not installed, CalledProcessError when a build fails.
    """
    go = shutil.which("go")
    if go is None:
        raise FileNotFoundError("`go` is not installed")
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, GOBIN=str(out.resolve()), GOFLAGS="-modcacherw")
    subprocess.run([go, "install", "-tags", "postgres", MIGRATE_MODULE], check=True, env=env, capture_output=True)
    subprocess.run([go, "build", "-o", str((out / "goservice").resolve()), "."], check=True, env=env,
                   cwd=GOSERVICE_DIR, capture_output=True)
    return GoMigrate(out / "migrate", out / "goservice")
