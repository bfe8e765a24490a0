"""The peer pipeline that `schemadiff plan --db LIVE` is measured against.

What a team would script with migra: create a scratch database, load the
desired-state file into it with psql, and diff the live database against
it with raw migra 3.0.1663481299, then drop the scratch database. Every
step is a separate process, as it would be in a shell script.

migra is deprecated and does not import on a fresh modern Python, so it
lives in its own virtual environment under the benchmark's cache
directory, installed by :func:`ensure_migra` from
``benchmarks/requirements-peer.txt`` with pip (setuptools < 81 keeps the
``pkg_resources`` its inspector imports).

Standalone use (prints the SQL migra emits and the timings):

    python benchmarks/peer_migra.py --shadow ADMIN_URL --live URL --desired FILE
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, urlencode

from psycopg import conninfo as pg_conninfo

if __package__ in (None, ""):  # run as a script
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.measure import run_measured  # noqa: E402

REQUIREMENTS = Path(__file__).with_name("requirements-peer.txt")
MIGRA_VERSION = "3.0.1663481299"


def find_psql() -> str:
    found = shutil.which("psql") or ("/usr/bin/psql" if Path("/usr/bin/psql").exists() else None)
    if not found:
        raise SystemExit("psql not found: install the PostgreSQL client (e.g. apt-get install postgresql-client)")
    return found


def ensure_migra(cache_dir: Path) -> Path:
    """The migra executable in its own venv under ``cache_dir``, installed on first use."""
    venv = cache_dir / "migra-venv"
    migra = venv / "bin" / "migra"
    stamp = venv / "installed-requirements.txt"
    wanted = REQUIREMENTS.read_text()
    if migra.exists() and stamp.exists() and stamp.read_text() == wanted:
        return migra
    print(f"installing the peer (migra {MIGRA_VERSION}) into {venv} ...", file=sys.stderr, flush=True)
    if venv.exists():
        shutil.rmtree(venv)
    cache_dir.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", "-r", str(REQUIREMENTS)],
        check=True,
    )
    # Fail here, not in the middle of the benchmark, if it does not import.
    subprocess.run([str(migra), "--help"], check=True, stdout=subprocess.DEVNULL)
    stamp.write_text(wanted)
    return migra


def sqlalchemy_url(conninfo: str) -> str:
    """A libpq URL or key=value string as the SQLAlchemy URL migra takes (psycopg2 driver)."""
    params = pg_conninfo.conninfo_to_dict(conninfo)
    user = quote(str(params.pop("user", "") or ""), safe="")
    password = params.pop("password", None)
    dbname = quote(str(params.pop("dbname", "") or ""), safe="")
    auth = f"{user}:{quote(str(password), safe='')}@" if password else (f"{user}@" if user else "")
    query = urlencode({k: str(v) for k, v in params.items() if v is not None and k != "options"})
    return f"postgresql+psycopg2://{auth}/{dbname}" + (f"?{query}" if query else "")


def with_database(conninfo: str, dbname: str) -> str:
    params = pg_conninfo.conninfo_to_dict(conninfo)
    params["dbname"] = dbname
    return pg_conninfo.make_conninfo(**params)


@dataclass
class PeerResult:
    load_seconds: float  # CREATE DATABASE + psql loading the desired file
    diff_seconds: float  # migra
    drop_seconds: float  # filled in by drop_scratch when the drop was deferred
    max_rss_mb: float  # peak of the migra process (the only step that holds the schema in Python)
    sql: str  # what migra printed
    scratch: str = ""  # the scratch database, while its drop is deferred

    @property
    def total_seconds(self) -> float:
        return self.load_seconds + self.diff_seconds + self.drop_seconds


def run_pipeline(admin_url: str, live_url: str, desired: Path, *, migra: Path, psql: str,
                 defer_drop: bool = False, tablespace: str | None = None) -> PeerResult:
    """create db, load ``desired``, ``migra --unsafe LIVE SCRATCH``, drop db.

    With ``defer_drop`` the scratch database is left for :func:`drop_scratch`
    to drop and time later (see scale.py for why). With ``tablespace`` the
    scratch database is created there (a reference run, not the peer).
    """
    scratch = f"bench_migra_{os.getpid()}_{secrets.token_hex(4)}"
    scratch_url = with_database(admin_url, scratch)
    # No -1: one transaction over thousands of tables runs out of max_locks_per_transaction.
    psql_base = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1"]
    start = time.perf_counter()
    placed = f' TABLESPACE "{tablespace}"' if tablespace else ""
    run_measured([*psql_base, "-d", admin_url, "-c", f'CREATE DATABASE "{scratch}" TEMPLATE template0{placed}'])
    result = None
    try:
        run_measured([*psql_base, "-d", scratch_url, "-f", str(desired)])
        load = time.perf_counter() - start
        # exit 0: no differences, 2: differences (migra's convention); anything else is a failure.
        diff = run_measured(
            [str(migra), "--unsafe", sqlalchemy_url(live_url), sqlalchemy_url(scratch_url)], ok_codes=(0, 2)
        )
        result = PeerResult(load, diff.seconds, 0.0, diff.max_rss_mb, diff.stdout, scratch)
    finally:
        if result is None or not defer_drop:
            drop = drop_database(admin_url, scratch, psql)
            if result is not None:
                result.drop_seconds, result.scratch = drop, ""
    return result


def drop_database(admin_url: str, name: str, psql: str) -> float:
    """Drop a scratch database the way the pipeline does; the seconds it took."""
    started = time.perf_counter()
    run_measured([psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", admin_url, "-c",
                  f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'])
    return time.perf_counter() - started


def drop_scratch(admin_url: str, results: list[PeerResult], psql: str) -> None:
    """Drop the scratch databases of pipelines run with ``defer_drop``, timing each into its result."""
    for result in results:
        if result.scratch:
            result.drop_seconds = drop_database(admin_url, result.scratch, psql)
            result.scratch = ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shadow", required=True, help="admin URL of a server where a scratch database may be created")
    parser.add_argument("--live", required=True, help="the live database URL")
    parser.add_argument("--desired", required=True, type=Path)
    parser.add_argument("--cache-dir", type=Path, default=Path.home() / ".cache" / "schemadiff-bench")
    args = parser.parse_args()
    result = run_pipeline(args.shadow, args.live, args.desired, migra=ensure_migra(args.cache_dir), psql=find_psql())
    sys.stdout.write(result.sql)
    print(
        f"-- load {result.load_seconds:.2f}s, migra {result.diff_seconds:.2f}s, drop {result.drop_seconds:.2f}s,"
        f" migra peak {result.max_rss_mb:.0f} MB",
        file=sys.stderr,
    )


if __name__ == "__main__":
    main()
