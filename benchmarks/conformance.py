"""Round-trip conformance: does the real CLI turn `current` into `desired` and back?

Usage:
    python benchmarks/conformance.py PATH... [--shadow URL] [-k SUBSTRING] [--jobs N]
                                             [--json FILE] [--failures N]

PATHs are YAML case files or directories of them (sqldef's form: keys
``current``/``desired``). For each case (protocol of
/work/shared/corpus/README.md):

1. load ``current`` into a fresh database A and ``desired`` into B; either
   failing makes the case *invalid*;
2. in a temporary migration directory whose first migration is ``current``,
   run ``schemadiff generate case --desired desired.sql --dir DIR --shadow URL
   --allow-destructive`` from an empty working directory; a non-zero exit
   with an explanation is a *refusal* (honest), one with a crash an *error*;
3. ``schemadiff apply --dir DIR --db A --baseline 1`` (A already holds
   ``current``): **up ok** when A's catalog now equals B's;
4. ``schemadiff apply --dir DIR --db A --to 1``: **round trip ok** when A's
   catalog equals its state from step 1.

With ``--applier golang-migrate`` steps 3 and 4 are run by golang-migrate
itself (the pinned ``migrate`` CLI, see ``benchmarks/golang_migrate.py``):
``migrate force 1``, ``migrate up``, then ``migrate goto 1``. A file
golang-migrate cannot apply is then WRONG: the contract is that either
runner applies what ``generate`` writes.
With ``--applier both`` each case's one generated pair is applied by both
runners, each on its own database loaded with ``current``.

A written migration that does not reach the state (or fails to apply), and
"nothing to do" while A and B differ, are *WRONG*: a silent wrong result,
the worst outcome. Equality is judged twice, as generate verifies: by
``schemadiff.shadow.catalog``, which does not share code with the diff engine, and
by ``schemadiff.shadow.dumpjudge``, PostgreSQL's own ``pg_dump --schema-only``
(which shares code with neither); a case where only the dump judge found a
difference (in generate's refusal or in the harness's own check) is counted
as *dump only*. Separately, a migration is
*non-minimal* when it touches an object that is identical before and after.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass, field
from pathlib import Path

import psycopg

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.corpus import Case, CorpusError, SkippedCase, load_cases  # noqa: E402
from benchmarks.golang_migrate import GoMigrate, build  # noqa: E402
from benchmarks.minimality import unnecessary_statements  # noqa: E402
from schemadiff.shadow import catalog, dumpjudge
from schemadiff import dburl  # noqa: E402
from schemadiff.errors import CommandError  # noqa: E402
from schemadiff.shadow.roles import mentioned_roles  # noqa: E402
from schemadiff.shadow.server import ShadowServer  # noqa: E402
from schemadiff.sqlfile import parse_statements  # noqa: E402

COMMAND_TIMEOUT = 300  # seconds per CLI invocation; a hang is an error, not a pass
DETAIL_LINES = 8

# Outcomes, from best to worst.
OK, INVALID, REFUSED, ERROR, WRONG = "ok", "invalid", "refused", "error", "WRONG"


@dataclass
class CaseResult:
    file: str
    name: str
    outcome: str  # ok | invalid | refused | error | WRONG
    reason: str = ""  # why, in a few words: "up differs", "generate refused", ...
    up_ok: bool = False
    round_trip_ok: bool = False
    wrote_migration: bool = False
    unnecessary: list[str] = field(default_factory=list)  # non-minimal statements
    dump_only: bool = False  # a difference only pg_dump's judge found (in generate or here)
    details: list[str] = field(default_factory=list)  # what still differs, or the CLI's message
    up_sql: str = ""
    down_sql: str = ""
    seconds: float = 0.0
    applier: str = "schemadiff"  # who ran steps 3 and 4
    # Whether the catalog judge saw ``current`` and ``desired`` differ, read from the two snapshots the
    # round trip takes anyway (None: not read, a state did not load). A case where they do not is no
    # test of the engine; tests/test_conformance_subset.py requires it of our corpus.
    states_differ: bool | None = None

    @property
    def id(self) -> str:
        return f"{self.file}::{self.name}"

    @property
    def valid(self) -> bool:
        return self.outcome != INVALID

    @property
    def minimal(self) -> bool:
        return not self.unnecessary


def cli_command() -> list[str]:
    """How to start the real CLI: the console script beside this interpreter, else via -c."""
    script = Path(sys.executable).parent / "schemadiff"
    if script.exists():
        return [str(script)]
    return [sys.executable, "-c", "from schemadiff.cli import main; main()"]


@dataclass
class _Run:
    code: int
    out: str
    err: str

    @property
    def message(self) -> str:
        return (self.err.strip() or self.out.strip() or f"exit code {self.code}")

    @property
    def crashed(self) -> bool:
        text = self.err + self.out
        return self.code not in (0, 1, 2) or "Traceback (most recent call last)" in text or "This is a bug" in text


def _cli_environment(environ: dict[str, str]) -> dict[str, str]:
    """The environment every CLI run of the harness gets, from ``environ``."""
    env = dict(environ)
    env.pop("SCHEMADIFF_SHADOW_URL", None)  # the harness passes --shadow explicitly
    env.setdefault("NO_COLOR", "1")
    # Every case is generated and proven afresh: a conformance figure is never answered from a cache.
    env["SCHEMADIFF_NO_CACHE"] = "1"
    return env


def _run_cli(args: list[str], cwd: Path, in_process: bool = False) -> _Run:
    """Run ``schemadiff ARGS`` in ``cwd``: a process of its own, or (``in_process``) :func:`schemadiff.cli.run` here.

    In-process is for callers that are single-threaded (the test suite,
    where a process start-up costs 0.5 to 3 s of a loaded 2-core machine
    and most cases run the CLI four times): it changes this process's
    working directory and environment while the command runs. The command
    line, the working directory, the environment, the exit code and both
    streams are the same; what it does not have is the subprocess's
    timeout. ``run_conformance`` (threads, ``--jobs``) always starts
    processes.
    """
    if in_process:
        return _run_cli_in_process(args, cwd)
    env = _cli_environment(os.environ)
    try:
        done = subprocess.run(
            [*cli_command(), *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=COMMAND_TIMEOUT
        )
    except subprocess.TimeoutExpired:
        return _Run(-1, "", f"timed out after {COMMAND_TIMEOUT}s: schemadiff {' '.join(args[:2])}")
    return _Run(done.returncode, done.stdout, done.stderr)


def _run_cli_in_process(args: list[str], cwd: Path) -> _Run:
    from schemadiff.cli import run

    wanted = _cli_environment(os.environ)
    # The few variables _cli_environment changes, and their values now, to put back.
    changed = {key: os.environ.get(key) for key in set(os.environ) | set(wanted) if os.environ.get(key) != wanted.get(key)}
    saved_cwd = os.getcwd()
    out, err = io.StringIO(), io.StringIO()
    try:
        for key in changed:
            if key in wanted:
                os.environ[key] = wanted[key]
            else:
                del os.environ[key]
        os.chdir(cwd)  # the configuration (pyproject.toml) is found from here, as for a process started there
        code = run(list(args), out=out, err=err)
    finally:
        os.chdir(saved_cwd)
        for key, value in changed.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    return _Run(code, out.getvalue(), err.getvalue())


def load_sql(url: str, sql: str) -> None:
    """Run a schema's statements one by one (so non-transactional ones work too)."""
    statements = parse_statements(sql, "<case>")
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement.text)


def _first_line(text: str) -> str:
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def _migration_files(directory: Path) -> tuple[list[Path], list[Path]]:
    ups = sorted(p for p in directory.glob("*.up.sql") if not p.name.startswith("000001_"))
    downs = sorted(p for p in directory.glob("*.down.sql") if not p.name.startswith("000001_"))
    return ups, downs


def _version_in(url: str) -> int | None:
    """The version golang-migrate's table records in A, or None when unreadable."""
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            row = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()
            return int(row[0]) if row and row[0] is not None else None
    except psycopg.Error:
        return None


def _version_of(path: Path) -> int:
    return int(path.name.split("_", 1)[0])


# Where generate says its refusal came from the dump judge alone (schemadiff/shadow/verify.py,
# errors.CannotExpress).
_DUMP_ONLY_MARKERS = ("found by pg_dump --schema-only", "pg_dump --schema-only of the desired and the current state differ")


def _judge(expected: tuple, url: str, program: dumpjudge.PgDump | None) -> tuple[list[str], list[str]]:
    """(catalog differences, pg_dump differences) of the database at ``url`` from ``expected``."""
    expected_catalog, expected_dump = expected
    catalog_lines = catalog.differences(expected_catalog, catalog.snapshot(url))
    dump_lines = dumpjudge.differences(expected_dump, dumpjudge.dump(url, program)) if program else []
    return catalog_lines, dump_lines


def _both(catalog_lines: list[str], dump_lines: list[str]) -> list[str]:
    return catalog_lines + [f"pg_dump: {line}" for line in dump_lines]


@dataclass(frozen=True)
class _SchemadiffApplier:
    """Steps 3 and 4 with ``schemadiff apply`` (``in_process``: see :func:`_run_cli`)."""

    in_process: bool = False
    name: str = "schemadiff"

    def up(self, directory: Path, url: str, latest: int, work: Path) -> _Run:
        up = _run_cli(["apply", "--dir", str(directory), "--db", url, "--baseline", "1"], work, self.in_process)
        if up.code == 0 and _version_in(url) != latest:
            # apply --baseline may only record the baseline: continue to the latest.
            up = _run_cli(["apply", "--dir", str(directory), "--db", url], work, self.in_process)
        return up

    def down(self, directory: Path, url: str, work: Path) -> _Run:
        # The protocol goes down through drops on purpose: consent given, as a user would.
        return _run_cli(["apply", "--dir", str(directory), "--db", url, "--to", "1", "--allow-destructive"], work,
                        self.in_process)


@dataclass
class GolangMigrateApplier:
    """Steps 3 and 4 with golang-migrate's own ``migrate`` CLI."""

    migrate: GoMigrate
    name: str = "golang-migrate"

    def up(self, directory: Path, url: str, latest: int, work: Path) -> _Run:
        code, output = self.migrate.migrate(url, directory, "force", "1")
        if code == 0:
            code, output = self.migrate.migrate(url, directory, "up")
        return _Run(code, "", output)

    def down(self, directory: Path, url: str, work: Path) -> _Run:
        code, output = self.migrate.migrate(url, directory, "goto", "1")
        return _Run(code, "", output)


SCHEMADIFF_APPLIER = _SchemadiffApplier()


def run_case(
    case: Case, shadow: ShadowServer, program: dumpjudge.PgDump | None = None, applier=None,
    online: bool = False, appliers: tuple = (), in_process: bool = False,
) -> list[CaseResult]:
    """The round-trip protocol for one case, one result per applier; databases are dropped afterwards.

    ``program``: the pg_dump that judges beside the catalog (None: catalog
    only). ``appliers`` run steps 3 and 4, each on its own database loaded
    with ``current``, from the one pair ``generate`` wrote: ``schemadiff
    apply`` (the default, :data:`SCHEMADIFF_APPLIER`) and/or a
    :class:`GolangMigrateApplier` (``applier``: one of them, the older
    spelling). ``online``: generate with ``--online``. ``in_process``: every
    schemadiff command (generate, and apply for :data:`SCHEMADIFF_APPLIER`)
    runs in this process, see :func:`_run_cli`; only for a single-threaded
    caller.
    """
    appliers = appliers or ((applier,) if applier is not None else (SCHEMADIFF_APPLIER,))
    if in_process:
        appliers = tuple(dataclasses.replace(a, in_process=True) if isinstance(a, _SchemadiffApplier) else a
                         for a in appliers)
    started = time.monotonic()
    results = [CaseResult(case.file, case.name, OK, applier=a.name) for a in appliers]
    created: list[str] = []
    try:
        with tempfile.TemporaryDirectory(prefix="schemadiff_conformance_") as tmp:
            _round_trip(case, shadow, Path(tmp), created, results, program, appliers, online, in_process)
    finally:
        for name in created:
            with contextlib.suppress(Exception):
                shadow.drop_database(name)
        for result in results:
            result.seconds = round(time.monotonic() - started, 2)
    return results


def _load(shadow: ShadowServer, url: str, sql: str, what: str) -> None:
    # Roles the SQL grants to must exist, as generate makes them on its shadow server.
    shadow.create_missing_roles(mentioned_roles(parse_statements(sql or "", what)))
    load_sql(url, sql)


def _generate_shadow_args(shadow: ShadowServer) -> list[str]:
    """How generate reaches the harness's server: the embedded one as a user's run does, another by --shadow.

    Named by URL, the embedded server would be treated as a foreign one:
    its databases on disk instead of in memory (three to ten times slower
    to create, measured) and a login role made and dropped per run. What
    generate writes and proves is the same either way (the caches are off,
    see :func:`_run_cli`).
    """
    return [] if shadow.embedded else ["--shadow", shadow.admin_url]


def _round_trip(
    case: Case, shadow: ShadowServer, tmp: Path, created: list[str], results: list[CaseResult],
    program: dumpjudge.PgDump | None, appliers: tuple, online: bool, in_process: bool = False,
) -> None:
    # One database holding `current` per applier (the judge's own databases stand for production), and B.
    names = [shadow.create_database() for _ in range(len(appliers) + 1)]
    created += names
    b_url, *a_urls = [shadow.admin_url_for(name) for name in names]
    for url, sql, what in ((a_urls[0], case.current, "current"), (b_url, case.desired, "desired")):
        try:
            _load(shadow, url, sql, what)
        except (psycopg.Error, CommandError) as exc:
            for result in results:
                result.outcome, result.reason = INVALID, f"{what} does not load"
                result.details = [_first_line(str(exc))]
            return
    for url in a_urls[1:]:
        _load(shadow, url, case.current, "current")
    a_url = a_urls[0]
    before = catalog.snapshot(a_url)
    desired = catalog.snapshot(b_url)
    for result in results:
        result.states_differ = bool(catalog.differences(desired, before))
    desired_state = (desired, dumpjudge.dump(b_url, program) if program else None)

    directory, work = tmp / "migrations", tmp / "work"
    directory.mkdir()
    work.mkdir()
    (directory / "000001_current.up.sql").write_text(case.current or "-- empty schema\n", encoding="utf-8")
    (directory / "000001_current.down.sql").write_text("-- not used by the harness\n", encoding="utf-8")
    desired_file = tmp / "desired.sql"
    desired_file.write_text(case.desired, encoding="utf-8")

    generate = _run_cli(
        ["generate", "case", "--desired", str(desired_file), "--dir", str(directory),
         *_generate_shadow_args(shadow), "--allow-destructive", "--allow-fails-on-existing-rows",
         *(["--online"] if online else [])],
        work,
        in_process,
    )
    if generate.code != 0:
        for result in results:
            result.outcome = ERROR if generate.crashed else REFUSED
            result.reason = "generate crashed" if generate.crashed else "generate refused"
            result.details = generate.message.splitlines()[:DETAIL_LINES]
            result.dump_only = any(marker in generate.message for marker in _DUMP_ONLY_MARKERS)
        return
    ups, downs = _migration_files(directory)
    if not ups:
        catalog_lines, dump_lines = _judge(desired_state, a_url, program)
        for result in results:
            if catalog_lines or dump_lines:
                result.dump_only = not catalog_lines
                result.outcome, result.reason = WRONG, "nothing generated but states differ"
                result.details = _both(catalog_lines, dump_lines)
            else:
                result.up_ok = result.round_trip_ok = True
        return
    up_sql = "\n".join(p.read_text(encoding="utf-8") for p in ups)
    try:
        unnecessary = unnecessary_statements(parse_statements(up_sql, ups[0].name), before, desired)
    except CommandError as exc:  # an up file the judge cannot read counts against minimality, not for it
        unnecessary = [f"the up migration does not parse for the minimality judge: {_first_line(exc.message)}"]
    for result, applier, url in zip(results, appliers, a_urls):
        result.wrote_migration = True
        result.up_sql = up_sql
        result.down_sql = "\n".join(p.read_text(encoding="utf-8") for p in downs)
        result.unnecessary = list(unnecessary)
        # Each applier's database is judged against its own state before (same SQL, own database);
        # the first one's catalog was just read, and nothing ran on it since.
        before_state = (before if url == a_url else catalog.snapshot(url),
                        dumpjudge.dump(url, program) if program else None)
        _apply_and_judge(result, applier, directory, url, _version_of(ups[-1]), work, before_state, desired_state,
                         program)


def _apply_and_judge(
    result: CaseResult, applier, directory: Path, a_url: str, latest: int, work: Path, before_state: tuple,
    desired_state: tuple, program: dumpjudge.PgDump | None,
) -> None:
    """Steps 3 and 4 by ``applier`` on ``a_url``, judged by both judges; the outcome goes into ``result``."""
    up = applier.up(directory, a_url, latest, work)
    if up.code != 0:
        result.outcome = ERROR if up.crashed else WRONG
        result.reason = "up apply crashed" if up.crashed else "up apply failed"
        result.details = up.message.splitlines()[:DETAIL_LINES]
        return
    up_catalog, up_dump = _judge(desired_state, a_url, program)
    up_lines = _both(up_catalog, up_dump)
    result.up_ok = not up_lines

    down = applier.down(directory, a_url, work)
    if down.code != 0:
        result.outcome = ERROR if down.crashed else WRONG
        result.reason = "down apply crashed" if down.crashed else "down apply failed"
        result.details = [*(["up differs:"] + up_lines if up_lines else []), *down.message.splitlines()[:DETAIL_LINES]]
        return
    down_catalog, down_dump = _judge(before_state, a_url, program)
    down_lines = _both(down_catalog, down_dump)
    result.round_trip_ok = not down_lines
    result.dump_only = (bool(up_dump) and not up_catalog) or (bool(down_dump) and not down_catalog)
    if up_lines:
        result.outcome, result.reason, result.details = WRONG, "up differs", up_lines
    elif down_lines:
        result.outcome, result.reason, result.details = WRONG, "down differs", down_lines


def server_major(shadow: ShadowServer) -> int:
    with dburl.connect(shadow.admin_url, what="shadow server", autocommit=True) as conn:
        return int(conn.execute("SHOW server_version_num").fetchone()[0]) // 10000


@dataclass
class Report:
    results: list[CaseResult]
    skipped: list[SkippedCase]


def _round_robin(cases: list[Case]) -> list[Case]:
    """Cases interleaved file by file, so that early (or partial) results cover every file."""
    by_file: dict[str, list[Case]] = defaultdict(list)
    for case in cases:
        by_file[case.file].append(case)
    queues = list(by_file.values())
    ordered: list[Case] = []
    while queues:
        ordered += [queue.pop(0) for queue in queues]
        queues = [queue for queue in queues if queue]
    return ordered


def run_conformance(
    paths: Iterable[str | Path],
    *,
    shadow_url: str | None = None,
    name_filter: str | list[str] | None = None,
    jobs: int = 2,
    progress: Callable[[CaseResult, int, int], None] | None = None,
    applier=SCHEMADIFF_APPLIER,
    online: bool = False,
    appliers: tuple = (),
) -> Report:
    """Run every applicable case under ``paths`` through the protocol (``applier``/``appliers``: see :func:`run_case`)."""
    shadow = ShadowServer.open(shadow_url)
    major = server_major(shadow)
    try:
        program = dumpjudge.find_pg_dump(major)
    except dumpjudge.DumpUnavailable as exc:
        print(f"warning: {exc}", file=sys.stderr)
        program = None
    cases, skipped = load_cases(paths, major, name_filter)
    appliers = appliers or (applier,)
    results: list[CaseResult] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(run_case, case, shadow, program, None, online, appliers)
                   for case in _round_robin(cases)]
        try:
            for done, future in enumerate(as_completed(futures), start=1):
                for result in future.result():
                    results.append(result)
                    if progress:
                        progress(result, done, len(cases))
        except KeyboardInterrupt:
            # Let the running cases finish (they drop their databases); start no more.
            pool.shutdown(wait=True, cancel_futures=True)
            raise
    order = {case.id: index for index, case in enumerate(cases)}
    results.sort(key=lambda r: (order[r.id], r.applier))
    return Report(results, skipped)


# ------------------------------------------------------------------ reporting

def _pct(part: int, whole: int) -> str:
    return f"{part}/{whole} ({100.0 * part / whole:.1f}%)" if whole else f"{part}/0"


def _counts(results: list[CaseResult]) -> dict[str, int]:
    valid = [r for r in results if r.valid]
    return {
        "cases": len(results),
        "valid": len(valid),
        "up_ok": sum(r.up_ok for r in valid),
        "round_trip_ok": sum(r.round_trip_ok for r in valid),
        "refused": sum(r.outcome == REFUSED for r in valid),
        "error": sum(r.outcome == ERROR for r in valid),
        "wrong": sum(r.outcome == WRONG for r in valid),
        "non_minimal": sum(bool(r.unnecessary) for r in valid),
        "dump_only": sum(r.dump_only for r in valid),
    }


def summary_lines(report: Report) -> list[str]:
    """The summary table and totals; one section per applier when several applied the same pairs."""
    names = sorted({r.applier for r in report.results})
    if len(names) <= 1:
        return _summary_of(report)
    lines = []
    for name in names:
        lines += [f"== applied and rolled back by {name} ==", ""]
        lines += _summary_of(Report([r for r in report.results if r.applier == name], report.skipped))
        lines.append("")
    return lines


def _summary_of(report: Report) -> list[str]:
    by_file: dict[str, list[CaseResult]] = defaultdict(list)
    for r in report.results:
        by_file[r.file].append(r)
    header = (f"{'file':<34} {'cases':>5} {'valid':>5} {'up ok':>6} {'trip ok':>7} {'refused':>7} {'error':>5}"
              f" {'WRONG':>5} {'nonmin':>6} {'dump only':>9}")
    lines = [header, "-" * len(header)]

    def row(label: str, c: dict[str, int]) -> str:
        return (f"{label:<34} {c['cases']:>5} {c['valid']:>5} {c['up_ok']:>6} {c['round_trip_ok']:>7}"
                f" {c['refused']:>7} {c['error']:>5} {c['wrong']:>5} {c['non_minimal']:>6} {c['dump_only']:>9}")

    for name in sorted(by_file):
        lines.append(row(name, _counts(by_file[name])))
    total = _counts(report.results)
    lines += ["-" * len(header), row("TOTAL", total), ""]
    valid = total["valid"]
    lines += [
        f"valid:          {total['valid']} of {total['cases']} applicable cases ({len(report.skipped)} skipped)",
        f"up ok:          {_pct(total['up_ok'], valid)}",
        f"round trip ok:  {_pct(total['round_trip_ok'], valid)}",
        f"refused:        {_pct(total['refused'], valid)}",
        f"error (crash):  {_pct(total['error'], valid)}",
        f"WRONG (silent): {_pct(total['wrong'], valid)}",
        f"non-minimal:    {_pct(total['non_minimal'], sum(r.wrote_migration for r in report.results))} of written migrations",
        f"dump only:      {_pct(total['dump_only'], valid)} (a difference only pg_dump --schema-only found,"
        " in generate's refusal or in the round trip)",
    ]
    return lines


def _difference_kind(line: str) -> str:
    """The kind of a catalog difference line: "missing index", "column type", ..."""
    line = line.strip().removeprefix("- ").removeprefix("pg_dump: ")
    if line.startswith(("missing: ", "unexpected: ")):  # a pg_dump judge line: the statement's first words
        word, statement = line.split(": ", 1)
        return f"pg_dump {word} {' '.join(statement.split()[:2])}"
    if line.startswith(("missing ", "unexpected ")):
        word, rest = line.split(" ", 1)
        for noun in ("comment on", "materialized view", "partitioned table", "foreign table", "event trigger"):
            if rest.startswith(noun):
                return f"{word} {noun}"
        first = rest.split(" ", 1)[0]
        if first in ("enum", "domain", "composite", "range", "base"):  # "<kind> type ..."
            first += " type"
        return f"{word} {first}"
    if " differs: " in line:
        head, tail = line.split(" differs: ", 1)
        noun = head.rsplit(" ", 1)[0]
        return f"{noun} {tail.split(':', 1)[0]}"
    return ""


def cluster_of(result: CaseResult) -> str:
    """A failure's category: the reason plus the kind of object that differs first.

    Refusals and crashes that quote catalog differences (generate's own
    verification) are clustered by those too.
    """
    if not result.details:
        return result.reason
    if result.outcome in (REFUSED, ERROR):
        message = result.details[0].removeprefix("error: ")
        quoted = next((d for d in result.details[1:] if d.strip().startswith("- ")), None)
        if quoted and _difference_kind(quoted):
            return f"{result.reason}: {message.split(';')[0][:60]}: {_difference_kind(quoted)}"
        return f"{result.reason}: {message[:70]}"
    kind = _difference_kind(result.details[0])
    return f"{result.reason}: {kind}" if kind else f"{result.reason}: {result.details[0][:60]}"


def failure_lines(report: Report, limit: int) -> list[str]:
    order = {WRONG: 0, ERROR: 1, REFUSED: 2}
    failing = sorted((r for r in report.results if r.outcome in order), key=lambda r: (order[r.outcome], r.id))
    lines = []
    clusters = Counter(cluster_of(r) for r in failing)
    if clusters:
        lines.append("Failure clusters:")
        lines += [f"  {count:>4}  {name}" for name, count in clusters.most_common()]
        lines.append("")
    nonmin = [r for r in report.results if r.unnecessary]
    several = len({r.applier for r in report.results}) > 1
    for r in failing[:limit]:
        lines.append(f"{r.outcome:<7} {r.id} ({r.reason}{f'; applied by {r.applier}' if several else ''})")
        lines += [f"          {d}" for d in r.details[:DETAIL_LINES]]
        if len(r.details) > DETAIL_LINES:
            lines.append(f"          ... {len(r.details) - DETAIL_LINES} more")
    if len(failing) > limit:
        lines.append(f"... {len(failing) - limit} more failures (see --json)")
    if nonmin:
        lines += ["", "Non-minimal migrations:"]
        for r in nonmin[:limit]:
            lines.append(f"  {r.id}: {r.unnecessary[0]}" + (f" (+{len(r.unnecessary) - 1})" if len(r.unnecessary) > 1 else ""))
    return lines


def load_report(path: Path) -> Report:
    """A report from a previous run's ``--json`` file (to re-read it with current reporting)."""
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".jsonl":  # the partial results of a run cut short
        document = {"results": [json.loads(line) for line in text.splitlines() if line.strip()]}
    else:
        document = json.loads(text)
    fields = set(CaseResult.__dataclass_fields__)
    results = [CaseResult(**{k: v for k, v in r.items() if k in fields}) for r in document["results"]]
    return Report(results, [SkippedCase(**s) for s in document.get("skipped", [])])


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", help="YAML case files or directories of them")
    parser.add_argument("--from-json", type=Path, help="report on a previous run's --json file (or its .partial.jsonl) instead of running")
    parser.add_argument("--shadow", help="PostgreSQL (with pgvector) to create databases on; default: embedded")
    parser.add_argument("-k", dest="name_filter", action="append",
                        help="only cases whose file::name contains this (repeatable: any of them)")
    parser.add_argument("--jobs", type=int, default=2, help="parallel cases (default 2)")
    parser.add_argument("--json", type=Path, help="write every case's result here")
    parser.add_argument("--failures", type=int, default=30, help="how many failures to detail (default 30)")
    parser.add_argument("-q", "--quiet", action="store_true", help="no per-case progress lines")
    parser.add_argument("--applier", choices=["schemadiff", "golang-migrate", "both"], default="schemadiff",
                        help="who applies and rolls back the generated files (default schemadiff); golang-migrate"
                             " uses $SCHEMADIFF_MIGRATE_BIN or builds the pinned migrate CLI with go; both: each"
                             " on its own database, from the same generated pair, reported side by side")
    parser.add_argument("--online", action="store_true", help="generate with --online")
    options = parser.parse_args(argv)
    appliers: tuple = (SCHEMADIFF_APPLIER,)
    if options.applier in ("golang-migrate", "both"):
        found = GoMigrate.from_environment()
        if found is None:
            found = build(Path(tempfile.mkdtemp(prefix="schemadiff_golang_migrate_")))
        go = GolangMigrateApplier(found)
        appliers = (SCHEMADIFF_APPLIER, go) if options.applier == "both" else (go,)

    partial = options.json.with_name(options.json.name + ".partial.jsonl") if options.json else None
    if partial:
        partial.write_text("", encoding="utf-8")

    def progress(result: CaseResult, done: int, total: int) -> None:
        # Each result is saved as it comes, so a long run cut short still has its data.
        if partial:
            with partial.open("a", encoding="utf-8") as stream:
                stream.write(json.dumps(asdict(result)) + "\n")
        if not options.quiet:
            by = f" ({result.applier})" if len(appliers) > 1 else ""
            print(f"[{done}/{total}] {result.outcome:<7} {result.id}{by} {result.seconds:.1f}s", file=sys.stderr,
                  flush=True)

    # A cancelled run (SIGTERM) unwinds like Ctrl-C: running cases drop their databases.
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        if options.from_json:
            report = load_report(options.from_json)
        elif options.paths:
            report = run_conformance(
                options.paths, shadow_url=options.shadow, name_filter=options.name_filter, jobs=options.jobs,
                progress=progress, appliers=appliers, online=options.online,
            )
        else:
            parser.error("give case files or directories (or --from-json FILE)")
    except (CorpusError, CommandError, OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        saved = f"; results so far are in {partial}" if partial else ""
        print(f"interrupted{saved}", file=sys.stderr)
        return 130
    print("\n".join(summary_lines(report)))
    print()
    print("\n".join(failure_lines(report, options.failures)))
    if options.json:
        document = {
            "summary": _counts(report.results),
            "results": [asdict(r) | {"cluster": cluster_of(r)} for r in report.results],
            "skipped": [asdict(s) for s in report.skipped],
        }
        options.json.write_text(json.dumps(document, indent=2), encoding="utf-8")
    return 0 if not any(r.outcome in (WRONG, ERROR) for r in report.results) else 1


if __name__ == "__main__":
    sys.exit(main())
