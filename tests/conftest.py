"""Shared fixtures: one real PostgreSQL (with pgvector) for the whole run.

The server is the embedded shadow server unless SCHEMADIFF_TEST_SHADOW_URL
names another one; every test gets fresh databases and drops them after.

Tests never share state with the user's schemadiff or with each other: the
run gets a cache directory of its own (so its own embedded server, stopped
and removed at the end of the run), and each test runs with the caches off
(``SCHEMADIFF_NO_CACHE=1``: no kept models, results or template databases),
so every ``plan`` and ``generate`` in a test really compares and verifies.
Tests of the caches themselves turn them back on (``test_caching.py`` gives
each test an empty cache directory of its own).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parent.parent

# Set before schemadiff is imported anywhere, and inherited by the CLI
# processes tests start (and by pytest-xdist workers, which share the run's
# server). A developer's own cache and embedded server are never touched.
_SESSION_ENV = "SCHEMADIFF_TEST_SESSION_DIR"
# Free bytes the tmpfs must have before the run's server goes there: the
# largest test schema (1,000 tables) and the databases alive at once take
# a few hundred megabytes; twice schemadiff's own margin for its databases.
_SESSION_MEMORY_MIN_FREE = 2 << 30


def _session_parent() -> str | None:
    """/dev/shm when it is a tmpfs with room to spare, else None (the system's temporary directory).

    Most tests name the server by URL (``--shadow``), which makes it a
    foreign server to schemadiff: its databases go in the server's default
    tablespace, under the data directory, not in the memory tablespace the
    embedded server uses. On disk a ``CREATE DATABASE`` took 1.9 s against
    0.14 s in memory (measured on the 2-core machine under load), and
    ``generate`` creates several. With the data directory itself in memory
    the same SQL runs on the same server the same way, only its files are
    in RAM. ``SCHEMADIFF_SHADOW_MEMORY=off`` keeps the run on disk too.
    """
    from schemadiff.shadow import server as _shadow

    if os.environ.get(_shadow.MEMORY_ENV, "").strip().lower() in ("0", "off", "no", "false"):
        return None
    root = Path(_shadow._MEMORY_ROOT)
    try:
        if _shadow._is_tmpfs(root) and shutil.disk_usage(root).free >= _SESSION_MEMORY_MIN_FREE:
            return str(root)
    except OSError:
        pass
    return None


if not os.environ.get(_SESSION_ENV):
    os.environ[_SESSION_ENV] = tempfile.mkdtemp(prefix="schemadiff-tests-", dir=_session_parent())
    _OWNS_SESSION_DIR = True
else:
    _OWNS_SESSION_DIR = False
os.environ["SCHEMADIFF_CACHE_DIR"] = str(Path(os.environ[_SESSION_ENV]) / "cache")
os.environ.pop("SCHEMADIFF_SHADOW_URL", None)  # a developer's shadow server is not the tests' one

from schemadiff.shadow.server import ShadowServer  # noqa: E402  (after the environment above)


def pytest_configure(config: pytest.Config) -> None:
    # Start the run's embedded server once, before pytest-xdist starts its
    # workers, so they find it running instead of racing to create it.
    if _OWNS_SESSION_DIR and not os.environ.get("SCHEMADIFF_TEST_SHADOW_URL"):
        ShadowServer.open(None)


def pytest_unconfigure(config: pytest.Config) -> None:
    if _OWNS_SESSION_DIR and not hasattr(config, "workerinput"):
        remove_embedded_server(Path(os.environ["SCHEMADIFF_CACHE_DIR"]))
        shutil.rmtree(os.environ[_SESSION_ENV], ignore_errors=True)


def remove_embedded_server(cache: Path) -> None:
    """Stop the embedded server kept under the cache directory ``cache`` (if any) and delete its files.

    Fast shutdown (SIGINT to the postmaster, PostgreSQL's documented signal
    for it), waiting up to 30 seconds; then its data directory and its
    in-memory tablespace directory are removed.
    """
    from schemadiff.shadow.server import _memory_location

    pgdata = cache / "shadow-pg16"
    location = _memory_location(pgdata)
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
        os.kill(pid, signal.SIGINT)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            os.kill(pid, 0)  # raises once the postmaster is gone
            time.sleep(0.1)
    shutil.rmtree(pgdata, ignore_errors=True)
    if location is not None:
        shutil.rmtree(location, ignore_errors=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``long_running`` first, the rest in their usual order (a stable sort).

    pytest-xdist (``--dist loadgroup``) hands tests to whichever worker is
    free, in collection order: a 30-second test collected last (the
    1,000-table migration is in the last file) ran alone on one worker
    while the other had finished. Started first, the short tests fill in
    around it. Every worker sorts the same collection the same way, as
    pytest-xdist requires.
    """
    items.sort(key=lambda item: item.get_closest_marker("long_running") is None)


@pytest.fixture(autouse=True)
def _no_shared_cache(monkeypatch: pytest.MonkeyPatch) -> None:
    # One test's result must never be another test's cache hit. (Runs before
    # the autouse fixtures of test modules, which may turn the caches on.)
    monkeypatch.setenv("SCHEMADIFF_NO_CACHE", "1")


_RUN_CACHE_DIR = os.environ["SCHEMADIFF_CACHE_DIR"]  # the run's own, set above


@pytest.fixture(scope="session")
def shadow() -> ShadowServer:
    # The run's own server, even when first asked for inside a module that points SCHEMADIFF_CACHE_DIR at a
    # server of its own (test_shadow.py): bound to that one, every later test of the worker lost its server
    # when the module removed it (seen running test_shadow.py and test_sandbox.py alone).
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SCHEMADIFF_CACHE_DIR", _RUN_CACHE_DIR)
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


# --- the corpus round trip, counted over the whole run ----------------------
# test_conformance_subset.py runs one test per case (so pytest-xdist spreads
# them); what held for the corpus as a whole is checked here, on the
# controller, from the reports the workers send back.

_CORPUS_TEST = "test_conformance_subset.py::test_our_corpus_case_round_trips_through_both_runners["
_corpus_written: dict[str, bool] = {}


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    if report.when == "call" and report.passed and _CORPUS_TEST in report.nodeid:
        _corpus_written[report.nodeid] = bool(dict(report.user_properties).get("wrote_migration"))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    # Only where every case ran (not for a -k selection): at least 30 of them wrote files both runners applied.
    if hasattr(session.config, "workerinput") or len(_corpus_written) < 40:
        return
    written = sum(_corpus_written.values())
    if written < 30:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            reporter.write_line(f"FAILED: only {written} of {len(_corpus_written)} corpus cases wrote a migration"
                                " (at least 30 must; the rest were refused)", red=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def as_from_a_shell() -> None:
    """``preexec_fn`` for a child that is sent SIGINT or SIGHUP: the default dispositions, as a terminal's shell gives.

    pytest-xdist's workers ignore SIGINT (execnet), a run under ``nohup``
    ignores SIGHUP, and an ignored signal is inherited through exec:
    schemadiff then rightly keeps ignoring it (as any program started in
    the background or under nohup does), and a test sending it would wait
    for nothing.
    """
    import signal as _signal

    _signal.signal(_signal.SIGINT, _signal.SIG_DFL)
    _signal.signal(_signal.SIGHUP, _signal.SIG_DFL)
