"""How schemadiff scales: plan, generate, apply and start-up against their peers.

Usage:
    python benchmarks/scale.py [--sizes 100,1000,3000] [--reps 3] [--quick]
                               [--only plan,warm,generate,apply,startup]
                               [--budget SECONDS] [--cache-dir DIR] [--json FILE]
                               [--profile DIR] [--keep-cache] [--pass-shadow-url]

Synthetic schemas shaped like ours (benchmarks/scale_schema.py) at each size,
and a changed copy in which every 20th table gains a column, loses one, has
a type widened or gains a partial index. Everything runs on one embedded
PostgreSQL 16 with pgvector, started in the benchmark's own cache directory
(``SCHEMADIFF_CACHE_DIR``, default ``~/.cache/schemadiff-bench``) so other
work on the machine's default shadow server does not interfere. schemadiff
always runs as a subprocess (``python -m schemadiff``), so its start-up is in
every figure. Measured (median of ``--reps``):

1. cold plan: ``plan --db LIVE --desired CHANGED.sql --format json`` (LIVE
   holds the original schema) against the migra pipeline for the same job
   (create a database, psql-load the desired file, raw migra, drop; see
   peer_migra.py). Cold as a fresh CI runner gets it: no cache at all
   (``SCHEMADIFF_NO_CACHE=1``: the live model is read, the desired file
   loaded, nothing kept), and schemadiff's databases on the same storage as
   the peer's scratch database (``SCHEMADIFF_SHADOW_MEMORY=off``: the
   server's default tablespace). That figure is judged. Shown besides, not
   judged: the same plan with what earlier runs leave (the live model from
   the fingerprint cache) and the databases in memory, as on a developer's
   machine. Each repetition's changed copy names its new column and
   index differently, so no cache keyed on the file makes a cold run warm.
   The JSON plan must hold one statement per change and nothing else.
   The pipeline's scratch databases are dropped after all measurements
   (each drop is timed and shown, not counted): right after a large
   DROP DATABASE, creating files is several times slower for a while on
   some file systems (seen here on ext4: about 1.8 s loading 1,000 tables
   became 4-6 s), so whatever ran next would pay for the peer's drop, and
   in the sequence "ours, peer, ours, ..." that was always schemadiff.
2. warm plan: the same with the original schema as desired (in sync), after
   one unmeasured run; the peer is the migra pipeline for the same job.
3. generate: a directory of 200 migrations over the 1,000-table schema
   (1: the schema, 2..200: one added column each; golang-migrate names,
   ``schemadiff hash``), desired = one more column. First run, then the two
   written files deleted and the directory re-hashed, second run.
4. apply: 500 one-statement migrations into a fresh database, against the
   same SQL in one ``psql -f`` session; the difference per migration.
5. start-up: ``schemadiff --help`` against ``python -c pass`` (median of 10).

Peak memory is the peak resident set of the measured process (``wait4``'s
``ru_maxrss``; see measure.py); the PostgreSQL server is not included.

The run starts and ends with schemadiff's caches on the benchmark's server
emptied (kept template databases dropped, inspected models removed), as on a
fresh machine. Every figure's first run comes before any repetition;
repetitions that would overrun ``--budget`` are skipped and the report names
them. Progress goes to stderr; the final Markdown table to stdout.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):  # run as a script: make `benchmarks` importable
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import scale_schema  # noqa: E402
from benchmarks.measure import Run, median, run_measured  # noqa: E402
from benchmarks.peer_migra import PeerResult, drop_scratch, ensure_migra, find_psql, run_pipeline  # noqa: E402

DEFAULT_CACHE = Path.home() / ".cache" / "schemadiff-bench"

# The targets of the performance issue.
COLD_SPEEDUP = 2.0  # cold plan vs the migra pipeline
# Cold as a fresh CI runner: no cache of any kind, databases on the same storage as the peer's.
COLD_ENV = {"SCHEMADIFF_NO_CACHE": "1", "SCHEMADIFF_SHADOW_MEMORY": "off"}
WARM_SPEEDUP = 10.0  # warm plan vs the migra pipeline (same in-sync job)
GENERATE_SPEEDUP = 10.0  # second generate vs first
APPLY_OVERHEAD_MS = 5.0  # per migration, vs psql
HELP_SECONDS = 0.3
SCALING_LIMIT = 3.5  # cold plan time, 3x the tables
TARGET_TABLES = 1000  # where the cold and warm speed-ups are judged
MEMORY_LIMIT_MB = 500.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


@dataclass
class Budget:
    """The wall-clock budget: repetitions past the first are run only while they fit.

    Every figure gets at least one run; the report says where a median is
    over fewer runs than asked for.
    """

    deadline: float  # time.perf_counter() value; inf for no limit
    skipped: list[str] = field(default_factory=list)

    def allows(self, estimate: float, what: str) -> bool:
        if time.perf_counter() + estimate <= self.deadline:
            return True
        self.skipped.append(what)
        log(f"budget: skipping {what} (about {estimate:.0f}s, {self.deadline - time.perf_counter():.0f}s left)")
        return False


# ---------------------------------------------------------------------------
# The environment every measured process runs in


@dataclass
class Bench:
    cache_dir: Path
    work: Path
    admin_url: str
    migra: Path
    psql: str
    pass_shadow_url: bool
    env: dict[str, str] = field(default_factory=dict)
    profile_dir: Path | None = None  # --profile: every schemadiff run under pyinstrument
    runs: int = 0
    deferred: list[PeerResult] = field(default_factory=list)  # migra pipelines whose scratch database is not dropped yet
    memory_tablespace: str | None = None  # where schemadiff keeps its databases in memory, if it does

    def schemadiff(self, *args: str, ok_codes=(0,), with_shadow: bool = True, env: dict[str, str] | None = None) -> Run:
        argv = [sys.executable, "-m", "schemadiff", *args]
        self.runs += 1
        if self.profile_dir is not None and args and args[0] in ("plan", "generate", "apply"):
            report = self.profile_dir / f"{self.runs:03d}_{args[0]}.txt"
            argv[1:3] = ["-m", "pyinstrument", "-o", str(report), "-m", "schemadiff"]
        if with_shadow and self.pass_shadow_url:
            argv += ["--shadow", self.admin_url]
        # An empty working directory: no pyproject.toml, every path given by flag.
        return run_measured(argv, env={**self.env, **(env or {})}, cwd=str(self.work / "cwd"), ok_codes=ok_codes)

    def psql_file(self, url: str, path: Path) -> Run:
        return run_measured([self.psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", str(path)])

    def write(self, name: str, text: str) -> Path:
        path = self.work / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path


def open_bench(cache_dir: Path, pass_shadow_url: bool) -> tuple[Bench, object]:
    os.environ["SCHEMADIFF_CACHE_DIR"] = str(cache_dir)  # this process's ShadowServer.open() too
    from schemadiff.shadow.server import ShadowServer

    cache_dir.mkdir(parents=True, exist_ok=True)
    log(f"starting the benchmark's embedded server in {cache_dir}")
    shadow = ShadowServer.open()
    migra = ensure_migra(cache_dir)
    work = Path(tempfile.mkdtemp(prefix="schemadiff-bench-"))
    (work / "cwd").mkdir()
    env = dict(os.environ)
    env.pop("SCHEMADIFF_SHADOW_URL", None)
    bench = Bench(cache_dir, work, shadow.admin_url, migra, find_psql(), pass_shadow_url, env,
                  memory_tablespace=getattr(shadow, "tablespace", None))  # older engines have none
    return bench, shadow


def reset_schemadiff_caches(bench: Bench) -> None:
    """What a fresh machine has: no kept template databases, no inspected models or results.

    Run before measuring and again after the report. Only on the benchmark's
    own server and cache directory.
    """
    import psycopg
    from psycopg import sql

    from schemadiff.shadow import server as shadow_module

    started = time.perf_counter()
    prefix = getattr(shadow_module, "TEMPLATE_PREFIX", "schemadiff_tpl_")
    with psycopg.connect(bench.admin_url, autocommit=True) as conn:
        names = [row[0] for row in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s OR datname LIKE %s",
            [prefix.replace("_", r"\_") + "%", "bench\\_migra\\_%"],
        )]
        for name in names:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
    from schemadiff.shadow import cache

    for name in ("model_cache", "result_cache"):  # an older engine may lack either
        make = getattr(cache, name, None)
        if make is not None:
            shutil.rmtree(make().directory, ignore_errors=True)
    log(f"schemadiff's caches emptied ({len(names)} kept databases dropped) in {time.perf_counter() - started:.1f}s")


def server_facts(admin_url: str) -> dict[str, str]:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0]
        vector = conn.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'").fetchone()
    return {"server": f"PostgreSQL {version}", "pgvector": vector[0] if vector else "none"}


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# ---------------------------------------------------------------------------
# 1 and 2: plan, cold and warm


@dataclass
class PlanSizeResult:
    size: int
    changes: int
    cold: list[float] = field(default_factory=list)  # judged: no caches, databases on disk like the peer's
    cached: list[float] = field(default_factory=list)  # not judged: what earlier runs leave, databases in memory
    cold_rss: list[float] = field(default_factory=list)
    cold_cpu: list[float] = field(default_factory=list)
    peer_cold: list[PeerResult] = field(default_factory=list)
    warm: list[float] = field(default_factory=list)
    warm_rss: list[float] = field(default_factory=list)
    warm_cpu: list[float] = field(default_factory=list)
    peer_warm: list[PeerResult] = field(default_factory=list)
    # The peer again with its scratch database where schemadiff keeps its own
    # (in memory): for reference, not judged; at the judged size only.
    peer_cold_in_memory: list[PeerResult] = field(default_factory=list)
    statement_checks: list[str] = field(default_factory=list)  # problems found; empty: exact
    warm_in_sync: bool | None = None
    migra_statements: int | None = None


def count_migra_statements(sql: str) -> int:
    from schemadiff.sqlfile import parse_statements

    return len(parse_statements(sql)) if sql.strip() else 0


def check_plan(document: dict, changes: list[scale_schema.Change]) -> list[str]:
    """Problems with the plan: it must hold exactly one statement per change."""
    if "results" in document:  # the versioned envelope: {"schemadiff": 1, "results": [plan]}
        document = document["results"][0]
    statements = document.get("changes", [])
    problems = []
    if len(statements) != len(changes):
        problems.append(f"{len(statements)} statements for {len(changes)} changes")
    expected = {c.table for c in changes}
    per_table: dict[str, int] = {}
    for statement in statements:
        table = (statement.get("table") or statement.get("name") or "").rsplit(".", 1)[-1].strip('"')
        per_table[table] = per_table.get(table, 0) + 1
        if table not in expected:
            problems.append(f"unexpected: {statement.get('sql', '').strip()[:120]}")
    for table in sorted(expected):
        if per_table.get(table, 0) != 1:
            problems.append(f"{table}: {per_table.get(table, 0)} statements (expected 1)")
    return problems[:10]


class LiveDatabase:
    """The "live" database for one size: the original schema, loaded once with psql."""

    def __init__(self, bench: Bench, size: int) -> None:
        from schemadiff.shadow.server import ShadowServer

        self.shadow = ShadowServer.open(bench.admin_url)
        self.original = bench.write(f"plan{size}/original.sql", scale_schema.original_schema(size))
        self.name = self.shadow.create_database()
        self.url = self.shadow.admin_url_for(self.name)
        started = time.perf_counter()
        bench.psql_file(self.url, self.original)
        log(f"{size:,} tables: live database loaded in {time.perf_counter() - started:.1f}s")

    def close(self) -> None:
        self.shadow.drop_database(self.name)


class ColdPlan:
    """1: plan against a live database, a changed copy as desired; and the migra pipeline."""

    def __init__(self, bench: Bench, live: LiveDatabase, result: PlanSizeResult, peer_reps: int) -> None:
        self.bench, self.live, self.result, self.peer_reps = bench, live, result, peer_reps
        self.label = f"cold plan at {result.size:,} tables"

    def run(self, rep: int) -> None:
        bench, result, size = self.bench, self.result, self.result.size
        text, changes = scale_schema.changed_schema(size, variant=f"r{rep}")
        desired = bench.write(f"plan{size}/changed_r{rep}.sql", text)
        plan = ("plan", "--db", self.live.url, "--desired", str(desired), "--format", "json")
        run = bench.schemadiff(*plan, ok_codes=(2,), env=COLD_ENV)
        result.cold.append(run.seconds)
        result.cold_rss.append(run.max_rss_mb)
        result.cold_cpu.append(run.cpu_seconds)
        problems = check_plan(json.loads(run.stdout), changes)
        result.statement_checks = result.statement_checks or problems
        log(f"{size:,} tables: cold plan {run.seconds:.2f}s (CPU {run.cpu_seconds:.2f}s), {run.max_rss_mb:.0f} MB"
            + (f" -- plan not minimal: {problems[:3]}" if problems else ", one statement per change"))
        # The same job with what earlier runs leave: a fresh desired file (so
        # it is loaded), the live model from the fingerprint cache, in memory.
        text, _ = scale_schema.changed_schema(size, variant=f"c{rep}")
        cached_desired = bench.write(f"plan{size}/changed_c{rep}.sql", text)
        cached = bench.schemadiff("plan", "--db", self.live.url, "--desired", str(cached_desired), "--format", "json",
                                  ok_codes=(2,))
        result.cached.append(cached.seconds)
        log(f"{size:,} tables: plan with earlier runs' caches, in memory {cached.seconds:.2f}s")
        if rep <= self.peer_reps:
            peer = run_pipeline(bench.admin_url, self.live.url, desired, migra=bench.migra, psql=bench.psql,
                                defer_drop=True)
            bench.deferred.append(peer)
            result.peer_cold.append(peer)
            result.migra_statements = count_migra_statements(peer.sql)
            log(f"{size:,} tables: migra pipeline {peer.total_seconds:.2f}s + drop (load {peer.load_seconds:.2f}s,"
                f" diff {peer.diff_seconds:.2f}s), migra {peer.max_rss_mb:.0f} MB")
            if bench.memory_tablespace and size == TARGET_TABLES:
                reference = run_pipeline(bench.admin_url, self.live.url, desired, migra=bench.migra, psql=bench.psql,
                                         defer_drop=True, tablespace=bench.memory_tablespace)
                bench.deferred.append(reference)
                result.peer_cold_in_memory.append(reference)
                log(f"{size:,} tables: migra pipeline, scratch database in memory {reference.total_seconds:.2f}s + drop"
                    f" (load {reference.load_seconds:.2f}s, diff {reference.diff_seconds:.2f}s)")


class WarmPlan:
    """2: plan with the original schema as desired (in sync), after one unmeasured run."""

    def __init__(self, bench: Bench, live: LiveDatabase, result: PlanSizeResult, peer_reps: int) -> None:
        self.bench, self.live, self.result, self.peer_reps = bench, live, result, peer_reps
        self.label = f"warm plan at {result.size:,} tables"

    def _plan(self) -> Run:
        return self.bench.schemadiff(
            "plan", "--db", self.live.url, "--desired", str(self.live.original), "--format", "json", ok_codes=(0, 2)
        )

    def warm_up(self) -> None:
        first = self._plan()
        log(f"{self.result.size:,} tables: in-sync plan, first run {first.seconds:.2f}s (not counted)")

    def run(self, rep: int) -> None:
        result, size = self.result, self.result.size
        run = self._plan()
        result.warm.append(run.seconds)
        result.warm_rss.append(run.max_rss_mb)
        result.warm_cpu.append(run.cpu_seconds)
        document = json.loads(run.stdout) if run.exit_code == 0 else {}
        plans = document.get("results", [document])  # the versioned envelope: {"schemadiff": 1, "results": [plan]}
        in_sync = run.exit_code == 0 and bool(plans) and plans[0].get("in_sync") is True
        result.warm_in_sync = in_sync if result.warm_in_sync is None else (result.warm_in_sync and in_sync)
        log(f"{size:,} tables: warm plan {run.seconds:.2f}s (CPU {run.cpu_seconds:.2f}s), {run.max_rss_mb:.0f} MB,"
            f" in sync: {in_sync}")
        if rep <= self.peer_reps:
            peer = run_pipeline(self.bench.admin_url, self.live.url, self.live.original, migra=self.bench.migra,
                                psql=self.bench.psql, defer_drop=True)
            self.bench.deferred.append(peer)
            result.peer_warm.append(peer)
            log(f"{size:,} tables: migra pipeline (in sync) {peer.total_seconds:.2f}s + drop")


# ---------------------------------------------------------------------------
# 3: generate


@dataclass
class GenerateResult:
    tables: int
    migrations: int
    first: list[float] = field(default_factory=list)
    second: list[float] = field(default_factory=list)
    rss: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def write_directory(directory: Path, migrations: list[scale_schema.MigrationFiles]) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for migration in migrations:
        up, down = migration.file_names()
        (directory / up).write_text(migration.up)
        (directory / down).write_text(migration.down)


class Generate:
    """3: generate over a long migration directory, first run and the same job again."""

    def __init__(self, bench: Bench, tables: int, count: int) -> None:
        self.bench = bench
        self.result = GenerateResult(tables, count)
        self.label = "generate"

    def run(self, rep: int) -> None:
        from schemadiff.sqlfile import parse_statements

        bench, result = self.bench, self.result
        tables, count = result.tables, result.migrations
        # Names differ per repetition, so no cache keyed on the files can make a first run a second one.
        migrations, desired_text = scale_schema.migration_history(tables, count, variant=f"r{rep}")
        directory = bench.work / f"generate_r{rep}"
        write_directory(directory, migrations)
        desired = bench.write(f"generate_r{rep}.desired.sql", desired_text)
        bench.schemadiff("hash", "--dir", str(directory), with_shadow=False)
        before = set(directory.iterdir())
        times = []
        for attempt in ("first", "second"):
            run = bench.schemadiff("generate", "next", "--desired", str(desired), "--dir", str(directory))
            written = sorted(p for p in set(directory.iterdir()) - before if p.name.endswith(".sql"))
            ups = [p for p in written if p.name.endswith(".up.sql")]
            statements = len(parse_statements(ups[0].read_text())) if ups else 0
            if len(written) != 2 or statements != 1:
                result.problems.append(f"{attempt} run wrote {[p.name for p in written]}, {statements} up statement(s)")
            times.append(run.seconds)
            result.rss.append(run.max_rss_mb)
            result.cpu.append(run.cpu_seconds)
            log(f"generate over {count} migrations x {tables:,} tables: {attempt} run {run.seconds:.2f}s"
                f" (CPU {run.cpu_seconds:.2f}s), {run.max_rss_mb:.0f} MB, wrote {len(written)} files,"
                f" {statements} up statement(s)")
            # The same job again: remove what was written and record the directory as it was.
            for path in written:
                path.unlink()
            bench.schemadiff("hash", "--dir", str(directory), with_shadow=False)
        result.first.append(times[0])
        result.second.append(times[1])
        shutil.rmtree(directory)


# ---------------------------------------------------------------------------
# 4: apply


@dataclass
class ApplyResult:
    migrations: int
    apply: list[float] = field(default_factory=list)
    psql: list[float] = field(default_factory=list)
    apply_cpu: list[float] = field(default_factory=list)

    def overhead_ms(self) -> float:
        # Paired per repetition (apply and psql ran back to back), then the median.
        return median([(a - p) * 1000 / self.migrations for a, p in zip(self.apply, self.psql)])


class Apply:
    """4: apply many one-statement migrations, against psql running the same SQL."""

    def __init__(self, bench: Bench, count: int) -> None:
        from schemadiff.shadow.server import ShadowServer

        self.bench = bench
        self.shadow = ShadowServer.open(bench.admin_url)
        self.result = ApplyResult(count)
        self.label = "apply"
        migrations = scale_schema.small_migrations(count)
        self.directory = bench.work / "apply"
        write_directory(self.directory, migrations)
        bench.schemadiff("hash", "--dir", str(self.directory), with_shadow=False)
        self.all_sql = bench.write("apply_all.sql", "".join(m.up for m in migrations))

    def run(self, rep: int) -> None:
        bench, result = self.bench, self.result
        for kind in ("apply", "psql"):
            name = self.shadow.create_database()
            try:
                url = self.shadow.admin_url_for(name)
                if kind == "apply":
                    run = bench.schemadiff("apply", "--dir", str(self.directory), "--db", url, with_shadow=False)
                    result.apply.append(run.seconds)
                    result.apply_cpu.append(run.cpu_seconds)
                else:
                    result.psql.append(bench.psql_file(url, self.all_sql).seconds)
            finally:
                self.shadow.drop_database(name)
        log(f"apply {result.migrations} migrations: {result.apply[-1]:.2f}s (CPU {result.apply_cpu[-1]:.2f}s);"
            f" psql -f: {result.psql[-1]:.2f}s")


# ---------------------------------------------------------------------------
# 5: start-up


@dataclass
class StartupResult:
    help: list[float]
    python: list[float]


def bench_startup(bench: Bench, reps: int) -> StartupResult:
    help_times, python_times = [], []
    for rep in range(reps + 1):  # the first pair warms the page cache and writes .pyc files
        h = bench.schemadiff("--help", with_shadow=False)
        p = run_measured([sys.executable, "-c", "pass"], env=bench.env)
        if rep:
            help_times.append(h.seconds)
            python_times.append(p.seconds)
    log(f"start-up: --help {median(help_times):.3f}s, python -c pass {median(python_times):.3f}s")
    return StartupResult(help_times, python_times)


# ---------------------------------------------------------------------------
# The report


def paired_speedup(peers: list[float], ours: list[float]) -> float:
    """Median over repetitions of peer time / our time, each pair measured back to back.

    On a shared machine the load drifts between repetitions; a ratio within a
    pair is steadier than a ratio of medians.
    """
    pairs = [peer / mine for peer, mine in zip(peers, ours) if mine > 0]
    return median(pairs) if pairs else float("nan")


def peer_seconds(result: PeerResult) -> float:
    """The migra pipeline's time as compared: creating and loading, diffing.

    Its drop is deferred past all measurements (see the module docstring) and
    timed then, in a different state of the server, so it is shown but not
    counted: the comparison leaves out a step of the peer's, never of ours.
    """
    return result.load_seconds + result.diff_seconds


def times(x: float) -> str:
    return f"{x:.1f}x"


def verdict(ok: bool) -> str:
    return "PASS" if ok else "FAIL"


def render_report(facts: dict, plans: list[PlanSizeResult], generate: GenerateResult | None,
                  apply: ApplyResult | None, startup: StartupResult | None) -> str:
    lines = [
        f"Measured {facts['date']} with `python benchmarks/scale.py {facts['args']}`: {facts['server']}"
        f" (embedded, pgvector {facts['pgvector']}), {facts['cpu']} ({facts['cores']} cores),"
        f" Python {facts['python']}; median of {facts['reps']} run(s)"
        + (f" (fewer where the {facts['budget']} s budget ran out: {', '.join(facts['skipped'])} skipped)"
           if facts["skipped"] else "")
        + f"; {facts['seconds']} s in all; load average"
        f" {facts['load_before']} before, {facts['load_after']} after. Times are wall-clock and include process"
        " start-up; CPU is the schemadiff process's own CPU seconds (the rest is mostly waiting on PostgreSQL);"
        " memory is the measured process's peak resident set, the server excluded. Speed-ups and the apply"
        " overhead are medians of per-repetition figures (each pair measured back to back).",
        "",
    ]
    targets: list[tuple[str, str, bool]] = []
    # The issue sets the speed-up targets at 1,000 tables; other sizes are shown, not judged.
    sizes = [p.size for p in plans]
    judged_size = TARGET_TABLES if TARGET_TABLES in sizes else (max(sizes) if sizes else None)
    if plans:
        lines += [
            "| tables | plan, changes (cold: no caches, on disk) | migra pipeline (load + diff; drop not counted) | speed-up | plan, in sync (warm) |"
            " migra pipeline, in sync | speed-up | plan peak memory | migra peak memory | plan statements |",
            "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        for p in plans:
            cold = median(p.cold)
            peer = median([peer_seconds(r) for r in p.peer_cold]) if p.peer_cold else float("nan")
            load = median([r.load_seconds for r in p.peer_cold]) if p.peer_cold else float("nan")
            diff = median([r.diff_seconds for r in p.peer_cold]) if p.peer_cold else float("nan")
            drop = median([r.drop_seconds for r in p.peer_cold]) if p.peer_cold else float("nan")
            warm = median(p.warm) if p.warm else None
            peer_warm = median([peer_seconds(r) for r in p.peer_warm]) if p.peer_warm else None
            cold_speedup = paired_speedup([peer_seconds(r) for r in p.peer_cold], p.cold)
            warm_speedup = paired_speedup([peer_seconds(r) for r in p.peer_warm], p.warm)
            rss = max(p.cold_rss + p.warm_rss)
            migra_rss = max(r.max_rss_mb for r in p.peer_cold + p.peer_warm) if p.peer_cold else float("nan")
            exact = "exact" if not p.statement_checks else "; ".join(p.statement_checks[:2])
            statements = f"{p.changes} for {p.changes} changes ({exact}); migra: {p.migra_statements}"
            if p.statement_checks:
                statements = f"NOT minimal: {exact}; migra: {p.migra_statements}"
            if p.warm_in_sync is False:
                statements += "; in-sync plan NOT empty"
            lines.append(
                f"| {p.size:,} | {cold:.2f} s (CPU {median(p.cold_cpu):.1f}) | {peer:.2f} s ({load:.1f} + {diff:.1f}; drop {drop:.1f}) | {times(cold_speedup)} |"
                f" {f'{warm:.2f} s (CPU {median(p.warm_cpu):.1f})' if warm is not None else '-'} |"
                f" {f'{peer_warm:.2f} s' if peer_warm is not None else '-'} |"
                f" {times(warm_speedup) if warm and peer_warm else '-'} |"
                f" {rss:.0f} MB | {migra_rss:.0f} MB | {statements} |"
            )
            if p.size == judged_size:
                targets.append((f"cold plan >= {COLD_SPEEDUP:g}x faster than the migra pipeline, {p.size:,} tables",
                                times(cold_speedup), cold_speedup >= COLD_SPEEDUP))
                if warm and peer_warm:
                    targets.append((f"warm plan >= {WARM_SPEEDUP:g}x faster than the migra pipeline,"
                                    f" {p.size:,} tables", times(warm_speedup), warm_speedup >= WARM_SPEEDUP))
            targets.append((f"plan holds one statement per change, {p.size:,} tables",
                            exact, not p.statement_checks and p.warm_in_sync is not False))
        lines.append("")
        for p in plans:
            if p.cached:
                lines += [
                    f"Not judged: at {p.size:,} tables the same plan with what earlier runs leave (the live model"
                    f" cached by its catalog fingerprint) and schemadiff's databases in memory takes"
                    f" {median(p.cached):.2f} s, {times(paired_speedup([peer_seconds(r) for r in p.peer_cold], p.cached[:len(p.peer_cold)]))}"
                    " faster than the migra pipeline on disk.",
                    "",
                ]
            if p.peer_cold_in_memory:
                reference = [peer_seconds(r) for r in p.peer_cold_in_memory]
                lines += [
                    f"For reference, not judged: at {p.size:,} tables the migra pipeline with its scratch database in"
                    f" the in-memory tablespace schemadiff uses for its own takes {median(reference):.2f} s (load"
                    f" {median([r.load_seconds for r in p.peer_cold_in_memory]):.1f} + diff"
                    f" {median([r.diff_seconds for r in p.peer_cold_in_memory]):.1f}); the plan with caches, in"
                    f" memory, is {times(paired_speedup(reference, p.cached[:len(reference)]))} faster than that.",
                    "",
                ]
        if len(plans) >= 2:
            big, small = plans[-1], plans[-2]
            growth = median(big.cold) / median(small.cold)
            targets.append((f"cold plan time from {small.size:,} to {big.size:,} tables grows <= {SCALING_LIMIT:g}x",
                            f"{growth:.2f}x", growth <= SCALING_LIMIT))
        biggest = plans[-1]
        peak = max(biggest.cold_rss + biggest.warm_rss)
        targets.append((f"plan peak memory at {biggest.size:,} tables < {MEMORY_LIMIT_MB:.0f} MB", f"{peak:.0f} MB",
                        peak < MEMORY_LIMIT_MB))
    if generate:
        first, second = median(generate.first), median(generate.second)
        generate_speedup = paired_speedup(generate.first, generate.second)
        lines.append(
            f"generate over {generate.migrations} migrations of a {generate.tables:,}-table schema: first run"
            f" {first:.2f} s, second run {second:.2f} s ({times(generate_speedup)} faster), peak {max(generate.rss):.0f} MB"
            + (f"; PROBLEMS: {'; '.join(generate.problems[:3])}" if generate.problems else "; each run wrote one verified one-statement pair.")
        )
        targets.append((f"second generate >= {GENERATE_SPEEDUP:g}x faster than the first", times(generate_speedup),
                        generate_speedup >= GENERATE_SPEEDUP and not generate.problems))
    if apply:
        overhead = apply.overhead_ms()
        lines.append(
            f"apply of {apply.migrations} one-statement migrations: {median(apply.apply):.2f} s; the same SQL in one"
            f" `psql -f` session: {median(apply.psql):.2f} s; overhead {overhead:.1f} ms per migration."
        )
        targets.append((f"apply overhead <= {APPLY_OVERHEAD_MS:g} ms per migration", f"{overhead:.1f} ms",
                        overhead <= APPLY_OVERHEAD_MS))
    if startup:
        help_s, python_s = median(startup.help), median(startup.python)
        lines.append(
            f"`schemadiff --help`: {help_s:.3f} s (median of {len(startup.help)}); `python -c pass`: {python_s:.3f} s"
            f" ({help_s / python_s:.1f}x)."
        )
        targets.append((f"`schemadiff --help` < {HELP_SECONDS:g} s", f"{help_s:.3f} s", help_s < HELP_SECONDS))
    if generate or apply or startup:
        lines.append("")
    lines += ["| target | measured | result |", "| --- | ---: | --- |"]
    lines += [f"| {name} | {value} | {verdict(ok)} |" for name, value, ok in targets]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------------------


class _SizeSections:
    """Cold and warm plan at one size, sharing its live database (loaded on first use)."""

    def __init__(self, bench: Bench, result: PlanSizeResult, args: argparse.Namespace, lives: list) -> None:
        self.bench, self.result, self.args, self.lives = bench, result, args, lives
        self.label = f"plan at {result.size:,} tables"
        self.cold: ColdPlan | None = None
        self.warm: WarmPlan | None = None
        self.repeat_seconds: float | None = None  # a repetition, without the one-time set-up

    def run(self, rep: int) -> None:
        if rep == 1:
            live = LiveDatabase(self.bench, self.result.size)
            self.lives.append(live)
            if "plan" in self.args.only:
                self.cold = ColdPlan(self.bench, live, self.result, self.args.peer_reps)
            if "warm" in self.args.only:
                self.warm = WarmPlan(self.bench, live, self.result, self.args.peer_reps)
                self.warm.warm_up()
        started = time.perf_counter()
        if self.cold:
            self.cold.run(rep)
        if self.warm:
            self.warm.run(rep)
        if self.repeat_seconds is None:
            self.repeat_seconds = time.perf_counter() - started


SECTIONS = ("plan", "warm", "generate", "apply", "startup")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", help="table counts, comma-separated (default 100,1000,3000; --quick: 20,60)")
    parser.add_argument("--reps", type=int, help="repetitions per figure, median reported (default 3; --quick: 1)")
    parser.add_argument("--peer-reps", type=int, help="repetitions of the migra pipeline (default: --reps)")
    parser.add_argument("--quick", action="store_true", help="a smoke run: small sizes, one repetition")
    parser.add_argument("--only", help=f"comma-separated subset of {','.join(SECTIONS)}")
    parser.add_argument("--generate-tables", type=int, help="tables in the generate benchmark (default 1000)")
    parser.add_argument("--generate-migrations", type=int, help="migrations in the generate benchmark (default 200)")
    parser.add_argument("--apply-migrations", type=int, help="migrations in the apply benchmark (default 500)")
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE,
                        help=f"the benchmark's embedded server and migra venv (default {DEFAULT_CACHE})")
    parser.add_argument("--keep-cache", action="store_true",
                        help="keep schemadiff's template databases and inspected models from earlier runs")
    parser.add_argument("--pass-shadow-url", action="store_true",
                        help="pass --shadow URL to schemadiff instead of letting it find the embedded server itself")
    parser.add_argument("--budget", type=float, default=660,
                        help="seconds; repetitions past the first are skipped when they would not fit (0: no limit;"
                        " default 660, which leaves time for dropping the kept databases after the report)")
    parser.add_argument("--json", type=Path, help="also write the raw measurements here")
    parser.add_argument("--profile", type=Path, metavar="DIR",
                        help="run plan/generate/apply under pyinstrument (must be installed) and keep each report in"
                        " DIR; times then include the profiler's overhead")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (printed)")
    args = parser.parse_args(argv)
    quick = args.quick
    args.sizes = [int(s) for s in (args.sizes or ("20,60" if quick else "100,1000,3000")).split(",")]
    args.reps = args.reps or (1 if quick else 3)
    args.peer_reps = args.peer_reps or args.reps
    args.generate_tables = args.generate_tables or (60 if quick else 1000)
    args.generate_migrations = args.generate_migrations or (20 if quick else 200)
    args.apply_migrations = args.apply_migrations or (50 if quick else 500)
    args.only = set((args.only or ",".join(SECTIONS)).split(","))
    unknown = args.only - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {', '.join(sorted(unknown))}; choose from {', '.join(SECTIONS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    started = time.perf_counter()
    load_before = "%.1f" % os.getloadavg()[0]
    budget = Budget(started + args.budget if args.budget > 0 else float("inf"))
    bench, _shadow = open_bench(args.cache_dir.expanduser(), args.pass_shadow_url)
    if not args.keep_cache:
        reset_schemadiff_caches(bench)
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
        bench.profile_dir = args.profile
    plans: list[PlanSizeResult] = []
    generate = apply = startup = None
    lives: list[LiveDatabase] = []
    try:
        if "startup" in args.only:
            startup = bench_startup(bench, 3 if args.quick else 10)
        # Every figure's first run comes first, so a budget cut only ever removes
        # repetitions, never a figure; then repetition 2 of everything, then 3...
        sections: list = []
        if "apply" in args.only:
            apply_section = Apply(bench, args.apply_migrations)
            apply = apply_section.result
            sections.append(apply_section)
        if "generate" in args.only:
            generate_section = Generate(bench, args.generate_tables, args.generate_migrations)
            generate = generate_section.result
            sections.append(generate_section)
        for size in sorted(args.sizes) if args.only & {"plan", "warm"} else ():
            result = PlanSizeResult(size, len(scale_schema.changed_schema(size)[1]))
            plans.append(result)
            sections.append(_SizeSections(bench, result, args, lives))
        first_run_seconds: dict[int, float] = {}
        for rep in range(1, args.reps + 1):
            for index, section in enumerate(sections):
                if rep > 1:
                    estimate = getattr(section, "repeat_seconds", None) or first_run_seconds[index]
                    if not budget.allows(estimate, f"{section.label} run {rep}"):
                        continue
                section_started = time.perf_counter()
                section.run(rep)
                first_run_seconds.setdefault(index, time.perf_counter() - section_started)
    finally:
        drop_scratch(bench.admin_url, bench.deferred, bench.psql)
        for live in lives:
            live.close()
        if args.keep:
            log(f"work directory kept: {bench.work}")
        else:
            shutil.rmtree(bench.work, ignore_errors=True)
    facts = {
        "date": datetime.date.today().isoformat(),
        "args": " ".join(sys.argv[1:] if argv is None else argv) or "(defaults)",
        **server_facts(bench.admin_url),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "reps": args.reps,
        "load_before": load_before,
        "load_after": "%.1f" % os.getloadavg()[0],
        "skipped": budget.skipped,
        "budget": f"{args.budget:g}",
        "seconds": round(time.perf_counter() - started),
    }
    report = render_report(facts, plans, generate, apply, startup)
    log(f"done in {time.perf_counter() - started:.0f}s")
    print(report, flush=True)
    if args.json:
        args.json.write_text(json.dumps(_raw(facts, plans, generate, apply, startup), indent=2, default=_plain) + "\n")
    if not args.keep_cache:
        # Dropping a kept 3,000-table template takes seconds: leave the server
        # as clean as it was found, so the next run does not start by paying for this one.
        reset_schemadiff_caches(bench)
        log(f"all done in {time.perf_counter() - started:.0f}s")
    return 0


def _plain(value: object) -> object:
    if hasattr(value, "__dataclass_fields__"):
        from dataclasses import asdict

        data = asdict(value)
        data.pop("sql", None)
        return data
    return str(value)


def _raw(facts, plans, generate, apply, startup) -> dict:
    from dataclasses import asdict

    def strip(obj):
        if obj is None:
            return None
        data = asdict(obj)
        for key in ("peer_cold", "peer_warm", "peer_cold_in_memory"):
            for entry in data.get(key, []):
                entry.pop("sql", None)
        return data

    return {"facts": facts, "plans": [strip(p) for p in plans], "generate": strip(generate),
            "apply": strip(apply), "startup": strip(startup)}


if __name__ == "__main__":
    sys.exit(main())
