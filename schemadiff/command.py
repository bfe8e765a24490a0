"""The commands, as plain typed functions usable from Python.

``schemadiff.cli`` parses arguments, calls one of these and renders what it
returns; nothing here prints. Long steps report through ``status`` so the
CLI can show what is happening.

The engine, the SQL parser (pglast), the shadow server's loaders, rename
hints, online mode and the runner are imported inside the functions that
use them, on purpose: each command loads what it runs, and a plan the
result cache answers loads neither the engine nor pglast
(tests/test_caching.py holds that; the warm figure of
``benchmarks/scale.py`` depends on it). ``_Inputs`` is the workspace of one
run: the inputs, their cache keys, the shadow server's lifetime and the
databases loaded on it.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from .engine.change import Change
from .errors import CannotExpress, ConfigError, DatabaseError, DestructiveChangeRefused, FailsOnExistingRowsRefused
from .progress import Progress, no_progress
from .scope import Scope, scope_of

if TYPE_CHECKING:  # the runner, hints and derive modules load psycopg or pglast: imported where called
    from .derive import DeriveResult
    from .hints import ProbableRename
    from .runner.apply import ApplyResult, ForceResult, StatusReport
    from .shadow.server import EmbeddedStatus

# What cli.py renders besides command results, re-exported so that the CLI
# imports only this layer (tests/test_layout.py): loaded on first use, since
# importing this module must stay light for `schemadiff --help`.
_RENDERING = {
    **dict.fromkeys(("describe", "SEVERE", "lock_duration"), "engine.hazards"),
    **dict.fromkeys(("redact", "passwords"), "dburl"),
    "ignored_reason": "migrations",
    **dict.fromkeys(
        (
            "BackupWritten", "Baselined", "ChangedSinceApplied", "DownChangedSinceApplied", "FilesIgnored",
            "LockWaiterCanceled", "LockWaiting", "LockYielded", "MigrationFinished", "MigrationStarted",
            "SumUnchecked", "RunsDifferentlyUnderGolangMigrate",
        ),
        "runner.apply",
    ),
}


def __getattr__(name: str) -> object:
    """PEP 562: the names in ``_RENDERING``, imported from their module on first use."""
    module = _RENDERING.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    import importlib

    return getattr(importlib.import_module(f"{__package__}.{module}"), name)


# --------------------------------------------------------------------------
# Inputs: which desired file, which migration directory, which database


@dataclass(frozen=True)
class Target:
    """What one plan or generate works on."""

    service: str | None
    desired: Path
    directory: Path | None  # the migration directory whose replay is the current state
    db_url: str | None  # a live database to compare with instead of the replay
    online: bool = False  # generate's default for --online (the service's setting)
    versions: str | None = None  # the service's version scheme ("sequence", "timestamp"); None: as the files are
    scope: Scope = field(default_factory=lambda: Scope())  # objects left alone (--exclude, --schema, exclude = [...])
    owners: bool = False  # compare and set owners (the service's `owners` setting, or --owners)
    shadow_timeout: float | None = None  # the service's shadow_timeout (seconds); None: the default

    @property
    def label(self) -> str:
        return self.service or str(self.desired)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return False


def resolve_targets(
    service: str | None,
    *,
    desired: Path | None = None,
    directory: Path | None = None,
    db: str | None = None,
    owners: bool | None = None,
    start: Path | None = None,
    exclude: tuple[str, ...] = (),
    schemas: tuple[str, ...] = (),
) -> list[Target]:
    """Turn a service name and/or explicit paths into targets.

    Explicit flags win over the configuration and the environment: ``--dir``
    names the state to compare with, so the service's database variable is
    not consulted then (a plan and a generate with the same flags compare
    with the same thing). Without a service and without ``--desired`` every
    configured service is a target. ``owners`` None: the service's
    ``owners`` setting (off without a service). A live database URL may
    carry golang-migrate's options (:mod:`schemadiff.migrateurl`); they are
    removed for connecting.

    Raises ConfigError for an unknown service or when nothing is configured.
    """
    from .config import load_config
    from .migrateurl import libpq_url

    from .dburl import check_url

    config = load_config(start or Path.cwd())
    if db is not None:
        check_url(db)
    if service is None and desired is not None:
        # A service's own desired file keeps that service's scope: the tables it leaves to other tools
        # (``exclude``) stay left out, as with the service named.
        own = next((svc for svc in config.services.values() if _same_file(svc.desired, desired)), None)
        configured = tuple(own.exclude) if own is not None else ()
        return [Target(None, desired, directory, libpq_url(db) if db else db,
                       scope=scope_of([*configured, *exclude, *(version_table_patterns(db) if db else ())], schemas),
                       owners=bool(own.owners if owners is None and own is not None else owners))]
    if service is None:
        if not config.services:
            raise ConfigError(
                "no desired-state file given and no services configured",
                "Pass --desired FILE (and --dir DIR or --db URL), or configure [tool.schemadiff] in pyproject.toml.",
            )
        if db is not None and len(config.services) > 1:
            raise ConfigError("--db names one database: name the service it belongs to as well")
        names = list(config.services)
    else:
        names = [service]
    targets = []
    for name in names:
        svc = config.service(name)
        live = db
        if live is None and directory is None:
            live = _database_from_environment(svc, config)
        version_tables: list[str] = []
        if live is not None:
            check_url(live, what="database" if live == db else f"{svc.db_env or FALLBACK_DB_ENV} database")
            version_tables = version_table_patterns(live)
            live = libpq_url(live)  # the service's golang-migrate URL: x- options are the runner's, not libpq's
        targets.append(
            Target(name, desired or svc.desired, directory or svc.migrations, live, svc.online, svc.versions,
                   scope_of([*svc.exclude, *exclude, *version_tables], schemas),
                   svc.owners if owners is None else owners, svc.shadow_timeout)
        )
    return targets


def version_table_patterns(url: str) -> list[str]:
    """Scope patterns for the runner's tables when the URL renames them (``x-migrations-table``), else [].

    ``schema_migrations`` and ``schemadiff_history`` are never schema to
    compare; under a custom name the live database would otherwise show
    them as objects to drop. Names are escaped for the glob (``glob.escape``),
    which pg_dump's patterns read the same way.
    """
    import glob

    from .migrateurl import DEFAULT_TABLE, parse

    target = parse(url)
    if target.table == DEFAULT_TABLE:
        return []
    from .runner.versiontable import history_table_for  # psycopg: only for URLs that need it

    names = (target.table, history_table_for(target.table))
    return [glob.escape(f"{target.schema}.{n}" if target.schema else n) for n in names]


# The conventional variable (Heroku, Rails, Django's dj-database-url, Atlas):
# the database of a repository that has only one.
FALLBACK_DB_ENV = "DATABASE_URL"


def _database_from_environment(svc, config) -> str | None:
    """The service's database URL from its ``db_env`` variable, else DATABASE_URL when it is the only service.

    With several services DATABASE_URL would name one of them at random,
    so it is only read for a single-service repository.
    """
    if svc.db_env and os.environ.get(svc.db_env):
        return os.environ[svc.db_env]
    if len(config.services) == 1:
        return os.environ.get(FALLBACK_DB_ENV) or None
    return None


# --------------------------------------------------------------------------
# plan


@dataclass(frozen=True)
class TableSummary:
    table: str
    added: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    changed: list[str] = field(default_factory=list)


@dataclass
class PlanResult:
    target: Target
    source: str  # what the desired state was compared with, for humans
    changes: list[Change]  # the plan: the engine's ordered changes
    probable_renames: list[ProbableRename] = field(default_factory=list)  # drops + adds that look like renames
    # When the engine finds nothing: what pg_dump --schema-only still finds
    # different ("missing: <statement>" / "unexpected: <statement>", see
    # dumpjudge.differences), which schemadiff cannot express as a migration yet.
    unexpressed: list[str] = field(default_factory=list)
    # e.g. that no pg_dump could read a server; roles created on the shadow server
    notes: list[str] = field(default_factory=list)
    # plan --db: planned statements the live database's rows make fail (schemadiff.shadow.rowcheck)
    row_problems: list[str] = field(default_factory=list)
    replayed: int = 0  # migrations replayed to build the current state (0 with a live database)

    @property
    def compared_with(self) -> dict[str, str | int]:
        """What the desired state was compared with, for machines: a live database or a migration directory."""
        if self.target.db_url:
            from .dburl import redact

            return {"kind": "database", "database": redact(self.target.db_url)}
        return {"kind": "migrations", "directory": str(self.target.directory), "migrations": self.replayed}

    @property
    def in_sync(self) -> bool:
        return not self.changes and not self.unexpressed

    def summary(self) -> list[TableSummary]:
        return summarize(self.changes)


def summarize(changes: list[Change]) -> list[TableSummary]:
    """Group changes per table (objects outside tables under their own name).

    A table created by the plan shows as "table" plus its constraints and
    indexes; its columns and comments are part of creating it.
    """
    new_tables = {c.name for c in changes if c.kind == "table" and c.action == "create"}
    tables = {c.table for c in changes if c.table}
    rows: dict[str, TableSummary] = {}
    for change in changes:
        group = change.table or f"{change.kind} {change.name}"
        if change.table in new_tables and (change.action == "comment" or change.kind == "column"):
            continue
        row = rows.setdefault(group, TableSummary(group))
        if change.kind == "table" and change.name == group:
            label = "table"
        elif change.table:
            label = f"{change.kind} {_short(change.name, change.table)}"
        else:
            label = change.kind
        if change.action == "comment":
            label = f"comment on {label}"
        bucket = {"create": row.added, "drop": row.removed}.get(change.action, row.changed)
        if label not in bucket:
            bucket.append(label)
    for row in rows.values():
        # An object dropped and created again (a changed index or constraint)
        # is one change, not an addition and a removal.
        for label in [label for label in row.added if label in row.removed]:
            row.added.remove(label)
            row.removed.remove(label)
            if label not in row.changed:
                row.changed.append(label)
    # By name, tables first, so a reviewer finds a table where the alphabet puts it (statement order
    # follows dependencies and renames, not names); objects outside tables after them.
    return sorted(rows.values(), key=lambda row: (row.table not in tables, row.table))


def _short(name: str, table: str) -> str:
    prefix = table + "."
    if name.startswith(prefix):
        return name[len(prefix):]
    schema = table.split(".", 1)[0] + "."
    return name[len(schema):] if name.startswith(schema) else name


# Connections reading a loaded shadow database: two keep both of a small
# machine's cores busy (the server answering, this process building the
# model); more were slower on two cores.
_INSPECT_CONNECTIONS = 2


def plan(target: Target, *, shadow_url: str | None = None, status: Progress = no_progress) -> PlanResult:
    """Compare the desired state with the replayed directory or a live database.

    The same comparison asked again (same desired file, same directory or
    an unchanged live database) is answered from the result cache. Against
    a live database, ``row_problems`` lists the statements its rows would
    make fail (rows are data: checked on every run, never cached).
    """
    result = _plan(target, shadow_url=shadow_url, status=status)
    if target.db_url and result.changes:
        from .shadow.rowcheck import live_row_problems

        status("Checking the live database's rows")
        result.row_problems = live_row_problems(target.db_url, result.changes)
    return result


def _plan(target: Target, *, shadow_url: str | None, status: Progress) -> PlanResult:
    inputs = _Inputs(target, shadow_url, status)
    with inputs.holding():  # an in-sync plan reads both states, then pg_dumps them: each loaded once
        return _plan_with(inputs, target, status)


def _plan_with(inputs: _Inputs, target: Target, status: Progress) -> PlanResult:
    from .shadow import cache

    results = cache.result_cache()
    if target.db_url:
        from concurrent.futures import ThreadPoolExecutor

        from .dburl import read_only, redact
        from .inspect import catalog_fingerprint, open_snapshot, read_schema

        source = f"live database {redact(target.db_url)}"
        status("Reading the live database")
        # The fingerprint and the schema come from one snapshot, so a model
        # is never filed under a state it was not read from. The live side
        # is read (or unpickled) in a worker while this thread loads the
        # desired file, which mostly waits on the shadow server; Ctrl-C
        # reaches the long load here in the main thread, which cleans up as
        # usual. (The pool is left first: the worker is done with the
        # connection before it closes.)
        with open_snapshot(read_only(target.db_url)) as conn, ThreadPoolExecutor(max_workers=1) as pool:

            def live_key() -> str | None:
                fingerprint = catalog_fingerprint(conn)
                return cache.key("live", fingerprint) if fingerprint else None

            def read_live(key: str | None):
                model = inputs.models.get(key) if key else None
                if model is None:
                    model = read_schema(conn)
                    if key:
                        inputs.models.put(key, model)
                from .engine.diff import index_schema

                importlib.import_module(f"{__package__}.hints")  # for _compare, imported beside the load
                return key, model, index_schema(model)

            if inputs.desired_is_cached():
                # Possibly asked before: the fingerprint decides before anything is read.
                current_key = live_key()
                memo_key = (cache.key("plan", current_key, inputs.desired_key, target.scope.key(), _owners_word(target))
                            if current_key else None)
                memo = results.get(memo_key) if memo_key else None
                if memo is not None:
                    return PlanResult(target, source, *memo)
                live = pool.submit(read_live, current_key)
            else:
                # Never loaded, so (but for an evicted model) never planned:
                # the load starts at once, the fingerprint is taken beside it.
                live = pool.submit(lambda: read_live(live_key()))
            inputs.desired_model()
            current_key, current, current_index = live.result()
        memo_key = (cache.key("plan", current_key, inputs.desired_key, target.scope.key(), _owners_word(target))
                    if current_key else None)
    else:
        source = inputs.current_description
        memo_key = cache.key("plan", inputs.current_key, inputs.desired_key, target.scope.key(), _owners_word(target))
        memo = results.get(memo_key)
        if memo is not None:
            return PlanResult(target, source, *memo, replayed=inputs.replayed_count)
        current = current_index = None
    changes, suggestions = _compare(inputs, current, current_index)
    unexpressed, notes = ([], []) if changes else dump_differences(inputs)
    if memo_key:
        # With the plan, so a warm in-sync plan runs no pg_dump.
        results.put(memo_key, (changes, suggestions, unexpressed, notes))
    # Roles made on the shadow server are this run's news: not cached.
    return PlanResult(target, source, changes, suggestions, unexpressed, notes + _role_notes(inputs),
                      replayed=0 if target.db_url else inputs.replayed_count)


def _owners_word(target: Target) -> str:
    """Part of a result's cache key: with owners managed, the same inputs give other statements."""
    return "owners" if target.owners else "no-owners"


def _role_notes(inputs: _Inputs) -> list[str]:
    if not inputs.created_roles:
        return []
    return [f"created role(s) {', '.join(inputs.created_roles)} on the shadow server only (NOLOGIN), because the"
            " SQL names them; schemadiff never creates roles on a live database: create them there yourself"]


def dump_differences(inputs: _Inputs) -> tuple[list[str], list[str]]:
    """What ``pg_dump --schema-only`` finds different between the desired and the current state.

    Asked when the engine finds nothing to change, so that "in sync" means
    PostgreSQL itself agrees (see ``schemadiff.shadow.dumpjudge``). Returns
    (difference lines, notes); the notes say when no pg_dump can read a
    server, and then the lines are empty. A live database is only read.
    """
    from .shadow import dumpjudge
    from .dburl import read_only

    inputs.status("Comparing both sides' pg_dump --schema-only")
    with contextlib.ExitStack() as stack:
        desired_url = stack.enter_context(inputs.desired_database())
        if inputs.target.db_url:
            current_url = read_only(inputs.target.db_url)
        else:
            current_url = stack.enter_context(inputs.current_database())
        try:
            major = max(dumpjudge.server_major(desired_url), dumpjudge.server_major(current_url))
            program = dumpjudge.find_pg_dump(major)
        except dumpjudge.DumpUnavailable as exc:
            return [], [str(exc)]
        options = inputs.target.scope.pg_dump_options()  # --exclude/--schema: pg_dump leaves them out too
        desired = dumpjudge.dump(desired_url, program, options=options)
        current = dumpjudge.dump(current_url, program, options=options)
        lines = dumpjudge.differences(desired, current)
        sides = {"expected": desired, "actual": current}
        if lines:
            from .shadow.judge_reprint import dumped_again

            inputs.status("Printing pg_dump's scripts again on the shadow server")
            if dumpjudge.same_after_reprint(
                    desired, current, lambda side: dumped_again(sides[side].text, inputs.shadow, program, options)):
                lines = []
    return lines, []


def _compare(inputs: _Inputs, current, current_index=None) -> tuple[list[Change], list[ProbableRename]]:
    """Changes from ``current`` (a live model; None: the replayed directory) to desired, and probable renames."""
    from .engine.diff import diff_schemas
    from .hints import probable_renames

    target = inputs.target
    hints = inputs.rename_hints()
    desired = target.scope.apply(inputs.desired_model())
    if current is None:
        current = inputs.current_model()
    if target.scope:
        current, current_index = target.scope.apply(current), None  # the index was of the whole model
    inputs.status("Comparing")
    changes = diff_schemas(current, desired, current_index=current_index, owners=target.owners)
    if changes:
        reconciled = _same_expressions(inputs, current, desired)
        if reconciled is not current:
            current = reconciled
            changes = diff_schemas(current, desired, owners=target.owners)
    if changes and hints:
        # The hints are a rename map on the current model; databases are loaded only when the
        # model cannot follow a rename exactly (see hints.plan_with_renames).
        from .hints import plan_with_renames

        @contextlib.contextmanager
        def databases():
            from .dburl import read_only

            with contextlib.ExitStack() as stack:
                desired_url = stack.enter_context(inputs.desired_database())
                if target.db_url:
                    current_url = read_only(target.db_url)
                else:
                    current_url = stack.enter_context(inputs.current_database())
                yield current_url, desired_url

        changes = plan_with_renames(changes, hints, current, desired, owners=target.owners,
                                    settle=lambda c, d: _same_expressions(inputs, c, d), databases=databases)
        changes = _in_scope(target.scope, changes)  # the fallback re-diffs whole databases
    return changes, probable_renames(changes, current, desired, write_in=inputs.hints_belong_in)


def _same_expressions(inputs: _Inputs, current, desired):
    """``current`` with desired's text wherever an expression differs only as PostgreSQL prints it.

    See :mod:`schemadiff.engine.reprint`: each side's schema is printed again on
    the shadow server (its create script loaded and read back) only when
    expression texts differ, the desired side only when the current side's
    reprint did not settle every place. A side whose script does not load
    there is compared as it was printed (the differences stay visible).
    """
    from .engine import reprint

    paths = reprint.differing(current, desired)
    if not paths:
        return current
    current_chain, desired_chain = [current], [desired]
    same: set = set()
    for chain in (current_chain, desired_chain):
        try:
            chain.append(inputs.printed_again(chain[0]))
        except DatabaseError:  # the SQL does not load there (the server's own trouble is not caught)
            continue
        same = reprint.same_expressions(paths, current_chain, desired_chain)
        if len(same) == len(paths):
            break
    return reprint.with_desired_texts(current, desired, same)


def _in_scope(scope: Scope, changes: list[Change]) -> list[Change]:
    from .scope import keeps_change

    return [change for change in changes if keeps_change(scope, change)] if scope else changes


class _Inputs:
    """The desired file and the migration directory of one target.

    Each is loaded into the shadow server only when a step needs it;
    inspected models and loaded databases are kept by content (see
    ``schemadiff.shadow.cache``), so unchanged inputs cost no loading next time.
    """

    def __init__(
        self, target: Target, shadow_url: str | None, status: Progress, *, directory_must_exist: bool = True
    ) -> None:
        from .shadow import cache
        from .derive_header import check_current
        from .shadow.server import identity
        from .sqlfile import read_text

        self.target = target
        self.shadow_url = shadow_url
        self.status = status
        # The time limit is checked now, not when the shadow is first needed: a warm cache would otherwise
        # hide a bad SCHEMADIFF_SHADOW_TIMEOUT until some later run misses it.
        from .shadow.server import load_timeout

        load_timeout(target.shadow_timeout)
        self.desired_text = read_text(target.desired, "desired-state file")
        # A derived file older than its archive would answer "In sync" after an edit.
        check_current(target.desired, self.desired_text)
        self.migrations = None
        if target.directory is not None:
            from .migrations import load_directory

            # A directory that does not exist is a typo, not "no migrations yet"; unless a live database is
            # what is compared (plan --db): then the directory is not read for the comparison at all, and
            # adopting a database starts before its first migration exists.
            must_exist = directory_must_exist and target.db_url is None
            self.migrations = load_directory(target.directory, must_exist=must_exist)
        up_files = [(m.up.name, m.up.read_bytes()) for m in self.migrations.migrations
                    if m.up is not None] if self.migrations else []
        server = identity(shadow_url)
        self.desired_key = cache.key("desired", server, self.desired_text)
        self.current_key = cache.key("replay", server, cache.directory_digest(up_files))
        self.models = cache.model_cache()
        self._shadow = None
        self._statements = None
        self._loaded: dict[str, object] = {}  # models already read in this run, by key
        # While ``holding``: source databases built in this run (by key), kept until the block ends.
        self._held: dict[str, str] = {}
        self._holder: contextlib.ExitStack | None = None
        self.created_roles: list[str] = []  # roles this run created on the shadow server
        self._empty = None  # an empty shadow database's model, for printed_again

    @property
    def hints_belong_in(self) -> str:
        """The file a suggested rename hint is to be written in (a derived file's archive)."""
        from .derive_header import hints_belong_in

        return hints_belong_in(self.target.desired, self.desired_text)

    @property
    def replayed_count(self) -> int:
        return len(self.migrations.migrations) if self.migrations else 0

    @property
    def current_description(self) -> str:
        if not self.replayed_count:
            return "an empty database (no migrations yet)"
        directory = self.target.directory
        try:
            directory = directory.resolve().relative_to(Path.cwd().resolve())
        except ValueError:
            pass
        return f"the {self.replayed_count} migration(s) in {directory}"

    @property
    def shadow(self):
        if self._shadow is None:
            from .shadow.server import ShadowServer

            self._shadow = ShadowServer.open(self.shadow_url, self.status, timeout=self.target.shadow_timeout)
        return self._shadow

    def _desired_statements(self):
        # Parsed once per run: checked before a server starts, then loaded.
        if self._statements is None:
            from .sqlfile import parse_statements

            self._statements = parse_statements(self.desired_text, str(self.target.desired))
        return self._statements

    def load_desired(self, url: str) -> None:
        from .shadow.replay import load_statements

        statements = self._desired_statements()
        self.create_shadow_roles(statements)
        self.status(f"Loading {self.target.desired}")
        load_statements(url, statements, "desired-state file")

    def replay(self, url: str) -> None:
        from .migrations import read_script
        from .shadow.replay import replay_directory

        if self.replayed_count:
            self.create_shadow_roles(
                [s for m in self.migrations.migrations if m.up is not None for s in read_script(m.up).statements])
            self.status(f"Replaying {self.replayed_count} migrations from {self.target.directory}")
            replay_directory(url, self.migrations)

    def create_shadow_roles(self, statements) -> None:
        """Create on the shadow server (only there) the roles the SQL names that it lacks."""
        from .shadow.roles import mentioned_roles

        created = self.shadow.create_missing_roles(mentioned_roles(statements))
        if created:
            self.status(f"Created NOLOGIN role(s) on the shadow server: {', '.join(created)}")
            self.created_roles.extend(r for r in created if r not in self.created_roles)

    def printed_again(self, model):
        """``model``'s schema loaded on the shadow from the engine's create script and read back.

        The models are kept by the script's text, as desired files' are.
        Raises DatabaseError when the script does not load there.
        """
        from .engine import reprint
        from .shadow import cache
        from .shadow.server import identity

        if self._empty is None:
            from .inspect import inspect_database

            with self.shadow.temporary_database() as url:
                self._empty = inspect_database(url)
        script = reprint.create_script(model, self._empty)

        def load(url: str) -> None:
            from .shadow.replay import load_statements
            from .sqlfile import parse_statements

            statements = parse_statements(script, "<schema printed again>")
            self.create_shadow_roles(statements)
            self.status("Printing differing expressions again on the shadow server")
            load_statements(url, statements, "schema printed again")

        return self._model(cache.key("reprinted", identity(self.shadow_url), script), load)

    def desired_is_cached(self) -> bool:
        return self.desired_key in self._loaded or self.models.has(self.desired_key)

    def desired_model(self):
        # A syntax error is reported from the file before any server starts.
        return self._model(self.desired_key, self.load_desired, before=self._desired_statements)

    def current_model(self):
        return self._model(self.current_key, self.replay)

    def _model(self, key: str, build, before=None):
        from .inspect import inspect_database

        if key in self._loaded:
            return self._loaded[key]
        model = self.models.get(key)
        if model is None:
            if before is not None:
                before()
            with self._source_url(key, build) as url:
                model = inspect_database(url, connections=_INSPECT_CONNECTIONS)
            self.models.put(key, model)
        self._loaded[key] = model
        return model

    def rename_hints(self):
        """The desired file's ``-- schemadiff:renamed-from`` hints (read by pglast)."""
        from .hints import MARKER, read_rename_hints

        if MARKER not in self.desired_text:  # no hint can exist: skip scanning the whole file
            return []
        return read_rename_hints(self.desired_text, path=str(self.target.desired))

    def desired_database(self):
        """A context yielding the URL of a database in the desired state: read or clone it, never write."""
        return self._source_url(self.desired_key, self.load_desired)

    def current_database(self):
        """A context yielding the URL of a database in the current state: read or clone it, never write."""
        return self._source_url(self.current_key, self.replay)

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Within the block, a source database built once serves every later step of the run, then is dropped.

        Without kept templates (caches off, or a server given with --shadow)
        a source database is dropped when the step that read it ends, and
        the next step that needs the same state (generate inspects both
        states, then clones them to prove the pair) would load it again:
        the same SQL into the same server, the same database. Source
        databases are only read and cloned, never written.
        """
        if self._holder is not None:  # already holding: the outer block drops them
            yield
            return
        with contextlib.ExitStack() as stack:
            self._holder = stack
            try:
                yield
            finally:
                self._holder = None
                self._held.clear()

    @contextlib.contextmanager
    def _source_url(self, key: str, build):
        if key in self._held:
            yield self.shadow.url_for(self._held[key])
        elif self._holder is not None:
            self._held[key] = self._holder.enter_context(self.shadow.source_database(key, build))
            yield self.shadow.url_for(self._held[key])
        else:
            with self.shadow.source_database(key, build) as name:
                yield self.shadow.url_for(name)


# --------------------------------------------------------------------------
# generate


@dataclass
class GenerateResult:
    target: Target
    changes: list[Change]  # up changes; empty when nothing to do
    down_changes: list[Change]
    written: list[Path]
    version: int | None
    notes: list[str] = field(default_factory=list)  # what the user should know: only one judge ran, roles made ...
    # Statements in the written up files, SET LOCAL preambles included: with
    # --online one change becomes several statements over several files.
    up_statements: int = 0


def generate(
    name: str,
    target: Target,
    *,
    shadow_url: str | None = None,
    allow_destructive: bool = False,
    allow_fails_on_existing_rows: bool = False,
    online: bool = False,
    create_directory: bool = False,
    status: Progress = no_progress,
) -> GenerateResult:
    """Write the next verified migration pair(s), or nothing when in sync.

    With ``online``, risky statements are rewritten into their lock-friendly
    forms (see ``schemadiff.online``), which may take several files: each
    file gets the next version and a down file that undoes it alone.
    A missing migration directory is a ``MigrationDirectoryError`` unless
    ``create_directory`` (starting a new one).
    """
    from .shadow import cache
    from .engine.hazards import destructive, fails_on_existing_rows
    from .runner.writer import check_name, next_versions, numbering, write_pairs
    from .migrations import verify_sum

    check_name(name)
    if target.directory is None:
        raise ConfigError("generate needs a migration directory: pass --dir DIR or name a configured service")
    inputs = _Inputs(target, shadow_url, status, directory_must_exist=not create_directory)
    if inputs.replayed_count:
        # Never build on a directory whose files changed since they were generated (checked as the
        # replay reads them: one read per file).
        verify_sum(inputs.migrations)
    # The same job asked again (same directory, same desired file) reuses the
    # pair verified last time: it is what the run would compute and verify.
    results = cache.result_cache()
    label = target.desired.name
    # A pair proven while accepting failures on rows is not proven for a run that does not accept them.
    memo_key = cache.key("generate", inputs.current_key, inputs.desired_key, label, "online" if online else "plain",
                         "accepts-fails-on-existing-rows" if allow_fails_on_existing_rows else "", target.scope.key(),
                         _owners_word(target))
    memo = results.get(memo_key)
    if memo is not None and (allow_destructive or not destructive(memo[0])) and \
            (allow_fails_on_existing_rows or not fails_on_existing_rows(memo[0])):
        changes, down_changes, files, notes = memo
    else:
        changes, down_changes, files, notes = _verified_files(inputs, label, allow_destructive, online,
                                                              allow_fails_on_existing_rows)
        results.put(memo_key, (changes, down_changes, files, notes))
    if not changes:
        return GenerateResult(target, [], [], [], None, notes + _role_notes(inputs))
    scheme = numbering(inputs.migrations, target.versions)
    versions = next_versions(inputs.migrations.versions if inputs.migrations else [], len(files), scheme)
    first = versions[0]
    pairs = [
        (version, f"{name}_{suffix}" if suffix else name, up, down)
        for version, (suffix, up, down) in zip(versions, files)
    ]
    # The pair and its sum line are written together or not at all.
    written = write_pairs(target.directory, pairs, create=create_directory, digits=scheme.digits)
    from .sqlfile import parse_statements

    up_statements = sum(len(parse_statements(up)) for _, up, _ in files)
    return GenerateResult(target, changes, down_changes, written, first, notes + _role_notes(inputs), up_statements)


def _verified_files(inputs: _Inputs, label: str, allow_destructive: bool, online: bool,
                    allow_fails_on_existing_rows: bool = False):
    """Compare, render and verify: (up changes, down changes, [(name suffix, up text, down text)], notes)."""
    with inputs.holding():  # both states are read, then cloned: each loaded once
        return _compare_render_verify(inputs, label, allow_destructive, online, allow_fails_on_existing_rows)


def _compare_render_verify(inputs: _Inputs, label: str, allow_destructive: bool, online: bool,
                           allow_fails_on_existing_rows: bool):
    from .engine.diff import diff_schemas
    from .engine.hazards import destructive, fails_on_existing_rows
    from .runner.writer import content_hash, render, split_new_enum_values
    from .shadow.verify import verify_migrations

    hints = inputs.rename_hints()
    scope = inputs.target.scope
    desired = scope.apply(inputs.desired_model())
    current = scope.apply(inputs.current_model())
    inputs.status("Comparing")
    owners = inputs.target.owners
    changes = diff_schemas(current, desired, owners=owners)
    if changes:  # the replayed files hold printed forms the replay may print otherwise: see _same_expressions
        reconciled = _same_expressions(inputs, current, desired)
        if reconciled is not current:
            current = reconciled
            changes = diff_schemas(current, desired, owners=owners)
    if not changes:
        unexpressed, notes = dump_differences(inputs)
        if unexpressed:
            raise CannotExpress(unexpressed)
        return [], [], [], notes
    down_changes = diff_schemas(desired, current, owners=owners)
    sha = content_hash(inputs.desired_text)
    with inputs.desired_database() as desired_url, inputs.current_database() as current_url:
        from .hints import invert_hints, plan_with_renames

        if hints:
            def settle(current_model, desired_model):
                return _same_expressions(inputs, current_model, desired_model)

            # A rename map on the models; the databases serve only renames the model cannot follow.
            changes = _in_scope(scope, plan_with_renames(
                changes, hints, current, desired, owners=owners, settle=settle,
                databases=lambda: contextlib.nullcontext((current_url, desired_url))))
            down_changes = _in_scope(scope, plan_with_renames(
                down_changes, invert_hints(hints), desired, current, owners=owners, settle=settle,
                databases=lambda: contextlib.nullcontext((desired_url, current_url))))
        refused = destructive(changes)
        if refused and not allow_destructive:
            from .hints import probable_renames

            listed = "\n".join(f"  - {c.action} {c.kind} {c.name}" for c in refused)
            suggestions = "".join(
                f"\n  - {s}" for s in probable_renames(changes, current, desired, write_in=inputs.hints_belong_in)
            )
            raise DestructiveChangeRefused(
                f"the migration would delete data; nothing was written:\n{listed}",
                "Re-run with --allow-destructive if that is intended."
                + (f" Probable renames:{suggestions}" if suggestions else ""),
            )
        failing = fails_on_existing_rows(changes)
        if failing and not allow_fails_on_existing_rows:
            listed = "\n".join(f"  - {c.sql}" for c in failing)
            raise FailsOnExistingRowsRefused(
                "the migration adds a NOT NULL column without a default, which fails on a table that holds"
                f" any row; nothing was written:\n{listed}",
                "Give the column a DEFAULT in the desired file (or add it nullable, backfill it, then make it"
                " NOT NULL in a later migration), or re-run with --allow-fails-on-existing-rows if the table"
                " is known to be empty wherever the migration runs.",
            )
        # The schema the first file is proven from, for apply's drift check
        # (later online files start from what the earlier ones produce).
        from .runner.drift import schema_fingerprint

        proven = schema_fingerprint(current_url)
        files = []  # (name suffix, up text, down text)
        if online:
            from .online import OnlineSettings, make_online, pair_with_downs, split_files, with_partitions

            settings = with_partitions(OnlineSettings(), current_url)
            down_hints = invert_hints(hints) if hints else ()
            planned = split_files(make_online(changes, settings))
            for up, down in pair_with_downs(planned, current_url, settings, down_hints, owners=owners):
                files.append((
                    up.suffix,
                    render(up.changes, direction="up", desired_label=label, desired_sha256=sha,
                           preamble=up.preamble, transactional=up.transactional,
                           proven_from=proven if not files else None),
                    render(down.changes, direction="down", desired_label=label, desired_sha256=sha,
                           preamble=down.preamble, transactional=down.transactional),
                ))
        elif len(split_new_enum_values(changes)) > 1:
            # A new enum value and what uses it: one file each (see split_new_enum_values).
            from .online import PlannedFile, pair_with_downs

            planned = [
                PlannedFile(group, all(c.transactional for c in group), "" if index == 0 else "continue")
                for index, group in enumerate(split_new_enum_values(changes))
            ]
            down_hints = invert_hints(hints) if hints else ()
            for up, down in pair_with_downs(planned, current_url, down_hints=down_hints, owners=owners, online=False):
                files.append((
                    up.suffix,
                    render(up.changes, direction="up", desired_label=label, desired_sha256=sha,
                           proven_from=proven if not files else None),
                    render(down.changes, direction="down", desired_label=label, desired_sha256=sha),
                ))
        else:
            files.append((
                "",
                render(changes, direction="up", desired_label=label, desired_sha256=sha, proven_from=proven),
                render(down_changes, direction="down", desired_label=label, desired_sha256=sha),
            ))
        notes = verify_migrations(
            inputs.shadow,
            current_db=_dbname(current_url),
            desired_url=desired_url,
            ups=[up for _, up, _ in files],
            downs=[down for _, _, down in files],
            owners=owners,
            status=inputs.status,
            # Tables that exist now and that the migration touches hold rows in
            # the proof, but for those whose failing on rows the user accepted.
            seed_tables={c.table for c in changes if c.table in current.tables}
            - {c.table for c in failing},
            accept_fails_on_rows=allow_fails_on_existing_rows,
            ignore=scope if scope else None,
        )
    return changes, down_changes, files, notes


def _dbname(url: str) -> str:
    from .dburl import database_name

    return database_name(url)


# --------------------------------------------------------------------------
# dump: an existing database's schema as a desired-state file


@dataclass
class DumpResult:
    source: str  # the database, password redacted
    text: str  # the desired-state SQL
    statements: int


def dump(db_url: str, *, scope: Scope | None = None, shadow_url: str | None = None,
         status: Progress = no_progress) -> DumpResult:
    """The schema of the database at ``db_url`` as a desired-state file (read-only; nothing is written there).

    The engine's own create script: the diff from an empty database (a fresh
    one on the shadow server, so ``public`` and ``plpgsql`` are not created
    twice) to the live one, in dependency order. Deterministic (no times, no
    OIDs), loadable into an empty database, and ``plan --db`` against the
    same database answers In sync on it. Objects of extensions are created
    by their ``CREATE EXTENSION``; the version tables are left out, as
    everywhere. Raises DatabaseError when the database cannot be read.
    """
    from .dburl import read_only, redact
    from .engine.diff import diff_schemas
    from .inspect import inspect_database
    from .shadow.server import ShadowServer

    from .dburl import check_url
    from .migrateurl import libpq_url

    # Checked as every other command checks a URL (a setting given twice, golang-migrate's x- options).
    check_url(db_url)
    scope = scope or Scope()
    status("Reading the live database")
    live = scope.apply(inspect_database(read_only(libpq_url(db_url))))
    shadow = ShadowServer.open(shadow_url, status)
    with shadow.temporary_database() as empty_url:
        empty = scope.apply(inspect_database(empty_url))
    changes = diff_schemas(empty, live)
    header = [
        f"-- Desired state dumped by schemadiff from {_dump_label(db_url)}.",
        "-- Edit it as the schema you want; `schemadiff plan --db URL` against that database is in sync with it.",
    ]
    if scope:
        header.append(f"-- Left out: {scope.describe()}.")
    body = "\n\n".join(change.sql.rstrip() for change in changes)
    return DumpResult(redact(db_url), "\n".join(header) + "\n\n" + (body + "\n" if body else ""), len(changes))


def write_text_file(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` whole or not at all (a temporary file renamed into place)."""
    import tempfile

    from .errors import InputFileError

    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as handle:
                handle.write(text)
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.unlink(temporary)
    except OSError as exc:
        raise InputFileError(f"cannot write {path}: {exc.strerror or exc}", "Check the path and its permissions.") from None


def _dump_label(url: str) -> str:
    # The database's name only: the host and user differ between machines,
    # and a file that differs by where it was dumped is not deterministic.
    from .dburl import database_name

    return f"database {database_name(url)}"


# --------------------------------------------------------------------------
# new: a blank pair for a hand-written data migration


@dataclass
class NewResult:
    directory: Path
    version: int
    written: list[Path]


def new_migration(name: str, target: RunnerTarget, *, create_directory: bool = False) -> NewResult:
    """Write an empty numbered pair (golang-migrate's ``migrate create``) and record it in ``schemadiff.sum``.

    Numbered like ``generate`` numbers (the directory's convention or the
    service's ``versions`` setting). Raises ConfigError for a bad name and
    MigrationDirectoryError when the directory's files changed since its
    sum was written (never build on an edited directory), or when it does
    not exist and ``create_directory`` (``--create-dir``, as for
    ``generate``) was not asked: a typo must not start a new history.
    """
    from .runner.writer import blank_pair, check_name, next_versions, numbering, write_pairs
    from .migrations import load_directory, verify_sum

    check_name(name)
    directory = load_directory(target.directory)
    if directory.migrations:
        verify_sum(directory)
    scheme = numbering(directory, target.versions)
    version = next_versions(directory.versions, 1, scheme)[0]
    up, down = blank_pair(name)
    # The pair and its sum line are written together or not at all.
    written = write_pairs(target.directory, [(version, name, up, down)], create=create_directory,
                          digits=scheme.digits)
    return NewResult(target.directory, version, written)


# --------------------------------------------------------------------------
# derive


def derive(*, check: bool = False, start: Path | None = None) -> list[DeriveResult]:
    """Derive each service's desired file from the archive; write unless ``check``.

    Returns the ``derive.DeriveResult`` list; ``changed`` tells which files
    were stale (and, without ``check``, have now been written).
    """
    from . import derive as derive_module
    from .config import load_config

    results = derive_module.derive_files(load_config(start or Path.cwd()))
    if not check:
        derive_module.write(results)
    return results


# --------------------------------------------------------------------------
# apply, status, force, hash: the runner


@dataclass(frozen=True)
class RunnerTarget:
    """One database and the migration directory it follows."""

    label: str
    directory: Path
    db_url: str
    require_sum: bool = False  # the service's require_sum setting
    backup: Path | None = None  # the service's backup setting
    versions: str | None = None  # the service's version scheme, for `new`
    scope: Scope = field(default_factory=lambda: Scope())  # the service's exclude list: not drift


def resolve_runner_target(
    service: str | None,
    *,
    directory: Path | None = None,
    db: str | None = None,
    need_db: bool = True,
    start: Path | None = None,
) -> RunnerTarget:
    from .config import load_config

    config = load_config(start or Path.cwd())
    svc = None
    if service is not None:
        svc = config.service(service)
    elif directory is None and len(config.services) == 1:
        svc = next(iter(config.services.values()))
    elif directory is None:
        known = ", ".join(config.services) or "none configured"
        raise ConfigError(
            "name the service (or pass --dir DIR and --db URL)" if need_db else "name the service (or pass --dir DIR)",
            f"Services: {known}.",
        )
    directory = directory or svc.migrations
    url = db
    if url is None and svc is not None:
        url = _database_from_environment(svc, config)
    elif url is None and not config.services:
        url = os.environ.get(FALLBACK_DB_ENV) or None  # a repository without configuration: one database
    if url is None and need_db:
        names = [n for n in (svc.db_env if svc is not None else None,) if n]
        if svc is None or len(config.services) == 1:
            names.append(FALLBACK_DB_ENV)
        where = f" or set {' or '.join(names)}" if names else ""
        raise ConfigError(f"no database to migrate: pass --db URL{where}")
    if url is not None:
        from .dburl import check_url

        check_url(url)
    return RunnerTarget(
        service or str(directory), directory, url or "",
        require_sum=bool(svc and svc.require_sum), backup=svc.backup if svc is not None else None,
        versions=svc.versions if svc is not None else None,
        scope=scope_of(svc.exclude) if svc is not None else Scope(),
    )


def apply(target: RunnerTarget, *, to: int | None = None, down: int | None = None, baseline: int | None = None,
          dry_run: bool = False, lock_timeout: float | None = None, allow_destructive: bool = False,
          confirm=None, allow_out_of_order: bool = False, require_sum: bool = False,
          backup: Path | None = None, allow_drift: bool = False, shadow_url: str | None = None,
          on_event=None) -> ApplyResult:
    """Run pending migrations (see ``schemadiff.runner.apply.apply``).

    ``require_sum`` and ``backup`` add to the service's settings of the same
    names (a flag can only make the run stricter).
    """
    from .runner import apply as runner

    return runner.apply(
        target.db_url, target.directory, to=to, down=down, baseline=baseline, dry_run=dry_run,
        lock_timeout=runner.DEFAULT_LOCK_TIMEOUT if lock_timeout is None else lock_timeout,
        allow_destructive=allow_destructive, confirm=confirm, allow_out_of_order=allow_out_of_order,
        require_sum=require_sum or target.require_sum, backup_dir=backup or target.backup,
        allow_drift=allow_drift, shadow_url=shadow_url, on_event=on_event, scope=target.scope,
    )


def status(target: RunnerTarget) -> StatusReport:
    """The database's version, dirty flag and each migration's state (see ``schemadiff.runner.apply.status``)."""
    from .runner import apply as runner

    return runner.status(target.db_url, target.directory)


def force(target: RunnerTarget, version: int) -> ForceResult:
    """Record ``version`` as applied and clean, running nothing (see ``schemadiff.runner.apply.force``)."""
    from .runner import apply as runner

    return runner.force(target.db_url, version, directory=target.directory)


def rehash(directory: Path) -> Path:
    """Rewrite the directory's sum file after a deliberate edit."""
    from .migrations import write_sum

    return write_sum(directory)


def golang_migrate_differences(directory: Path) -> list:
    """The directory's files golang-migrate would run differently from ``apply``
    (list of ``runner.apply.RunsDifferentlyUnderGolangMigrate``); see that module."""
    from .runner.apply import golang_migrate_differences as differences

    return differences(directory)


# --------------------------------------------------------------------------
# server: the embedded shadow server's lifecycle


def server_status() -> EmbeddedStatus:
    """The embedded server's state; starts nothing."""
    from .shadow.server import embedded_status

    return embedded_status()


def server_createdb(name: str, status: Progress = no_progress):
    """A scratch database on the embedded server, for trying ``apply`` (``shadow.ScratchDatabase``)."""
    from .shadow.server import create_scratch_database

    return create_scratch_database(name, status)


def server_stop() -> bool:
    """Stop the embedded server (fast shutdown); whether one was running."""
    from .shadow.server import stop_embedded

    return stop_embedded()


def server_clean() -> list[Path]:
    """Stop the embedded server and delete its data and in-memory tablespace; the paths removed."""
    from .shadow.server import clean_embedded

    return clean_embedded()
