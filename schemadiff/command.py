"""The commands, as plain typed functions usable from Python.

``schemadiff.cli`` parses arguments, calls one of these and renders what it
returns; nothing here prints. Long steps report through ``status`` so the
CLI can show what is happening.
"""

from __future__ import annotations

import contextlib
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .errors import CannotExpress, ConfigError, DestructiveChangeRefused, FailsOnExistingRowsRefused

Status = Callable[[str], None]


def _no_status(_: str) -> None:
    pass


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

    @property
    def label(self) -> str:
        return self.service or str(self.desired)


def resolve_targets(
    service: str | None,
    *,
    desired: Path | None = None,
    directory: Path | None = None,
    db: str | None = None,
    start: Path | None = None,
) -> list[Target]:
    """Turn a service name and/or explicit paths into targets.

    Explicit flags win over the configuration; without a service and without
    ``--desired`` every configured service is a target. A live database URL
    may carry golang-migrate's options (:mod:`schemadiff.migrateurl`); they
    are removed for connecting.
    """
    from .config import load_config
    from .migrateurl import libpq_url

    config = load_config(start or Path.cwd())
    if service is None and desired is not None:
        return [Target(None, desired, directory, libpq_url(db) if db else db)]
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
        live = db or (os.environ.get(svc.db_env) if svc.db_env else None) or None
        if live:  # the service's golang-migrate URL: x- options are the runner's, not libpq's
            live = libpq_url(live)
        targets.append(Target(name, desired or svc.desired, directory or svc.migrations, live, svc.online))
    return targets


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
    changes: list  # list[diff.Change]
    probable_renames: list[str] = field(default_factory=list)  # drops + adds that look like renames
    # When the engine finds nothing: what pg_dump --schema-only still finds
    # different ("missing: <statement>" / "unexpected: <statement>", see
    # dumpjudge.differences), which schemadiff cannot express as a migration yet.
    unexpressed: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # e.g. that no pg_dump could read a server
    # plan --db: planned statements the live database's rows make fail (schemadiff.rowcheck)
    row_problems: list[str] = field(default_factory=list)

    @property
    def in_sync(self) -> bool:
        return not self.changes and not self.unexpressed

    def summary(self) -> list[TableSummary]:
        return summarize(self.changes)


def summarize(changes: list) -> list[TableSummary]:
    """Group changes per table (objects outside tables under their own name).

    A table created by the plan shows as "table" plus its constraints and
    indexes; its columns and comments are part of creating it.
    """
    new_tables = {c.name for c in changes if c.kind == "table" and c.action == "create"}
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
    return list(rows.values())


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


def plan(target: Target, *, shadow_url: str | None = None, status: Status = _no_status) -> PlanResult:
    """Compare the desired state with the replayed directory or a live database.

    The same comparison asked again (same desired file, same directory or
    an unchanged live database) is answered from the result cache. Against
    a live database, ``row_problems`` lists the statements its rows would
    make fail (rows are data: checked on every run, never cached).
    """
    result = _plan(target, shadow_url=shadow_url, status=status)
    if target.db_url and result.changes:
        from .rowcheck import live_row_problems

        status("Checking the live database's rows")
        result.row_problems = live_row_problems(target.db_url, result.changes)
    return result


def _plan(target: Target, *, shadow_url: str | None, status: Status) -> PlanResult:
    from . import cache

    inputs = _Inputs(target, shadow_url, status)
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
                from .diff import index_schema

                importlib.import_module(f"{__package__}.hints")  # for _compare, imported beside the load
                return key, model, index_schema(model)

            if inputs.desired_is_cached():
                # Possibly asked before: the fingerprint decides before anything is read.
                current_key = live_key()
                memo_key = cache.key("plan", current_key, inputs.desired_key) if current_key else None
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
        memo_key = cache.key("plan", current_key, inputs.desired_key) if current_key else None
    else:
        source = inputs.current_description
        memo_key = cache.key("plan", inputs.current_key, inputs.desired_key)
        memo = results.get(memo_key)
        if memo is not None:
            return PlanResult(target, source, *memo)
        current = current_index = None
    changes, suggestions = _compare(inputs, current, current_index)
    unexpressed, notes = ([], []) if changes else dump_differences(inputs)
    if memo_key:
        # With the plan, so a warm in-sync plan runs no pg_dump.
        results.put(memo_key, (changes, suggestions, unexpressed, notes))
    return PlanResult(target, source, changes, suggestions, unexpressed, notes)


def dump_differences(inputs: _Inputs) -> tuple[list[str], list[str]]:
    """What ``pg_dump --schema-only`` finds different between the desired and the current state.

    Asked when the engine finds nothing to change, so that "in sync" means
    PostgreSQL itself agrees (see ``schemadiff.dumpjudge``). Returns
    (difference lines, notes); the notes say when no pg_dump can read a
    server, and then the lines are empty. A live database is only read.
    """
    from . import dumpjudge
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
        desired, current = dumpjudge.dump(desired_url, program), dumpjudge.dump(current_url, program)
    return dumpjudge.differences(desired, current), []


def _compare(inputs: _Inputs, current, current_index=None) -> tuple[list, list[str]]:
    """Changes from ``current`` (a live model; None: the replayed directory) to desired, and probable renames."""
    from .diff import diff_schemas
    from .hints import probable_renames

    target = inputs.target
    hints = inputs.rename_hints()
    desired = inputs.desired_model()
    if current is None:
        current = inputs.current_model()
    inputs.status("Comparing")
    changes = diff_schemas(current, desired, current_index=current_index)
    if changes and hints:
        # Renames are tried on databases: only plans with hints pay for loading them.
        from .dburl import read_only
        from .hints import apply_rename_hints

        with contextlib.ExitStack() as stack:
            desired_url = stack.enter_context(inputs.desired_database())
            if target.db_url:
                current_url = read_only(target.db_url)
            else:
                current_url = stack.enter_context(inputs.current_database())
            changes = apply_rename_hints(changes, hints, current_url, desired_url)
    return changes, probable_renames(changes, current, desired)


class _Inputs:
    """The desired file and the migration directory of one target.

    Each is loaded into the shadow server only when a step needs it;
    inspected models and loaded databases are kept by content (see
    ``schemadiff.cache``), so unchanged inputs cost no loading next time.
    """

    def __init__(self, target: Target, shadow_url: str | None, status: Status) -> None:
        from . import cache
        from .shadow import identity
        from .sqlfile import read_text

        self.target = target
        self.shadow_url = shadow_url
        self.status = status
        self.desired_text = read_text(target.desired, "desired-state file")
        self.migrations = None
        if target.directory is not None:
            from .migrations import load_directory

            self.migrations = load_directory(target.directory)
        up_files = [m.up.path for m in self.migrations.migrations if m.up is not None] if self.migrations else []
        server = identity(shadow_url)
        self.desired_key = cache.key("desired", server, self.desired_text)
        self.current_key = cache.key("replay", server, cache.directory_digest(up_files))
        self.models = cache.model_cache()
        self._shadow = None
        self._statements = None
        self._loaded: dict[str, object] = {}  # models already read in this run, by key

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
            from .shadow import ShadowServer

            self._shadow = ShadowServer.open(self.shadow_url, self.status)
        return self._shadow

    def _desired_statements(self):
        # Parsed once per run: checked before a server starts, then loaded.
        if self._statements is None:
            from .sqlfile import parse_statements

            self._statements = parse_statements(self.desired_text, str(self.target.desired))
        return self._statements

    def load_desired(self, url: str) -> None:
        from .replay import load_statements

        statements = self._desired_statements()
        self.status(f"Loading {self.target.desired}")
        load_statements(url, statements, "desired-state file")

    def replay(self, url: str) -> None:
        from .replay import replay_directory

        if self.replayed_count:
            self.status(f"Replaying {self.replayed_count} migrations from {self.target.directory}")
            replay_directory(url, self.migrations)

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
            with self.shadow.source_database(key, build) as name:
                model = inspect_database(self.shadow.url_for(name), connections=_INSPECT_CONNECTIONS)
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
    def _source_url(self, key: str, build):
        with self.shadow.source_database(key, build) as name:
            yield self.shadow.url_for(name)


# --------------------------------------------------------------------------
# generate


@dataclass
class GenerateResult:
    target: Target
    changes: list  # up changes; empty when nothing to do
    down_changes: list
    written: list[Path]
    version: int | None
    notes: list[str] = field(default_factory=list)  # what the user should know: only one judge ran, ...


def generate(
    name: str,
    target: Target,
    *,
    shadow_url: str | None = None,
    allow_destructive: bool = False,
    allow_fails_on_existing_rows: bool = False,
    online: bool = False,
    status: Status = _no_status,
) -> GenerateResult:
    """Write the next verified migration pair(s), or nothing when in sync.

    With ``online``, risky statements are rewritten into their lock-friendly
    forms (see ``schemadiff.online``), which may take several files: each
    file gets the next version and a down file that undoes it alone.
    """
    from . import cache
    from .hazards import destructive, fails_on_existing_rows
    from .migration_writer import check_name, next_version, write_pairs
    from .migrations import verify_sum, write_sum

    check_name(name)
    if target.directory is None:
        raise ConfigError("generate needs a migration directory: pass --dir DIR or name a configured service")
    inputs = _Inputs(target, shadow_url, status)
    if inputs.replayed_count:
        # Never build on a directory whose files changed since they were generated.
        verify_sum(target.directory)
    # The same job asked again (same directory, same desired file) reuses the
    # pair verified last time: it is what the run would compute and verify.
    results = cache.result_cache()
    label = target.desired.name
    # A pair proven while accepting failures on rows is not proven for a run that does not accept them.
    memo_key = cache.key("generate", inputs.current_key, inputs.desired_key, label, "online" if online else "plain",
                         "accepts-fails-on-existing-rows" if allow_fails_on_existing_rows else "")
    memo = results.get(memo_key)
    if memo is not None and (allow_destructive or not destructive(memo[0])) and \
            (allow_fails_on_existing_rows or not fails_on_existing_rows(memo[0])):
        changes, down_changes, files, notes = memo
    else:
        changes, down_changes, files, notes = _verified_files(inputs, label, allow_destructive, online,
                                                              allow_fails_on_existing_rows)
        results.put(memo_key, (changes, down_changes, files, notes))
    if not changes:
        return GenerateResult(target, [], [], [], None, notes)
    first = next_version(inputs.migrations.versions if inputs.migrations else [])
    pairs = [
        (first + offset, f"{name}_{suffix}" if suffix else name, up, down)
        for offset, (suffix, up, down) in enumerate(files)
    ]
    written = write_pairs(target.directory, pairs)
    try:
        write_sum(target.directory)
    except Exception:
        # Files without their sum would make the next apply refuse the directory.
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return GenerateResult(target, changes, down_changes, written, first, notes)


def _verified_files(inputs: _Inputs, label: str, allow_destructive: bool, online: bool,
                    allow_fails_on_existing_rows: bool = False):
    """Compare, render and verify: (up changes, down changes, [(name suffix, up text, down text)], notes)."""
    from .diff import diff_schemas
    from .hazards import destructive, fails_on_existing_rows
    from .migration_writer import content_hash, render, split_new_enum_values
    from .verify import verify_migrations

    hints = inputs.rename_hints()
    desired = inputs.desired_model()
    current = inputs.current_model()
    inputs.status("Comparing")
    changes = diff_schemas(current, desired)
    if not changes:
        unexpressed, notes = dump_differences(inputs)
        if unexpressed:
            raise CannotExpress(unexpressed)
        return [], [], [], notes
    down_changes = diff_schemas(desired, current)
    sha = content_hash(inputs.desired_text)
    with inputs.desired_database() as desired_url, inputs.current_database() as current_url:
        from .hints import apply_rename_hints, invert_hints

        if hints:
            changes = apply_rename_hints(changes, hints, current_url, desired_url)
            down_changes = apply_rename_hints(down_changes, invert_hints(hints), desired_url, current_url)
        refused = destructive(changes)
        if refused and not allow_destructive:
            from .hints import probable_renames

            listed = "\n".join(f"  - {c.action} {c.kind} {c.name}" for c in refused)
            suggestions = "".join(f"\n  - {s}" for s in probable_renames(changes, current, desired))
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
        files = []  # (name suffix, up text, down text)
        if online:
            from .online import OnlineSettings, make_online, pair_with_downs, split_steps, with_partitions

            settings = with_partitions(OnlineSettings(), current_url)
            down_hints = invert_hints(hints) if hints else ()
            steps = split_steps(make_online(changes, settings))
            for up, down in pair_with_downs(steps, current_url, settings, down_hints):
                files.append((
                    up.suffix,
                    render(up.changes, direction="up", desired_label=label, desired_sha256=sha,
                           preamble=up.preamble, transactional=up.transactional),
                    render(down.changes, direction="down", desired_label=label, desired_sha256=sha,
                           preamble=down.preamble, transactional=down.transactional),
                ))
        elif len(split_new_enum_values(changes)) > 1:
            # A new enum value and what uses it: one file each (see split_new_enum_values).
            from .online import MigrationStep, pair_with_downs

            steps = [
                MigrationStep(group, all(c.transactional for c in group), "" if index == 0 else "continue")
                for index, group in enumerate(split_new_enum_values(changes))
            ]
            down_hints = invert_hints(hints) if hints else ()
            for up, down in pair_with_downs(steps, current_url, down_hints=down_hints, online=False):
                files.append((
                    up.suffix,
                    render(up.changes, direction="up", desired_label=label, desired_sha256=sha),
                    render(down.changes, direction="down", desired_label=label, desired_sha256=sha),
                ))
        else:
            files.append((
                "",
                render(changes, direction="up", desired_label=label, desired_sha256=sha),
                render(down_changes, direction="down", desired_label=label, desired_sha256=sha),
            ))
        notes = verify_migrations(
            inputs.shadow,
            current_db=_dbname(current_url),
            desired_url=desired_url,
            ups=[up for _, up, _ in files],
            downs=[down for _, _, down in files],
            status=inputs.status,
            # Tables that exist now and that the migration touches hold rows in
            # the proof, but for those whose failing on rows the user accepted.
            seed_tables={c.table for c in changes if c.table in current.tables}
            - {c.table for c in failing},
            accept_fails_on_rows=allow_fails_on_existing_rows,
        )
    return changes, down_changes, files, notes


def _dbname(url: str) -> str:
    from .dburl import database_name

    return database_name(url)


# --------------------------------------------------------------------------
# derive


def derive(*, check: bool = False, start: Path | None = None) -> list:
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
            "name the service (or pass --dir DIR and --db URL)", f"Services: {known}."
        )
    directory = directory or svc.migrations
    url = db
    if url is None and svc is not None and svc.db_env:
        url = os.environ.get(svc.db_env) or None
    if url is None and need_db:
        where = f" or set {svc.db_env}" if svc is not None and svc.db_env else ""
        raise ConfigError(f"no database to migrate: pass --db URL{where}")
    return RunnerTarget(service or str(directory), directory, url or "")


def apply(target: RunnerTarget, *, to: int | None = None, down: int | None = None, baseline: int | None = None,
          dry_run: bool = False, lock_timeout: float | None = None, on_event=None):
    """Run pending migrations (see ``schemadiff.runner.apply``)."""
    from . import runner

    return runner.apply(
        target.db_url, target.directory, to=to, down=down, baseline=baseline, dry_run=dry_run,
        lock_timeout=runner.DEFAULT_LOCK_TIMEOUT if lock_timeout is None else lock_timeout, on_event=on_event,
    )


def status(target: RunnerTarget):
    from . import runner

    return runner.status(target.db_url, target.directory)


def force(target: RunnerTarget, version: int):
    from . import runner

    return runner.force(target.db_url, version, directory=target.directory)


def rehash(directory: Path) -> Path:
    """Rewrite the directory's sum file after a deliberate edit."""
    from .migrations import write_sum

    return write_sum(directory)


# --------------------------------------------------------------------------
# server: the embedded shadow server's lifecycle


def server_status():
    """The embedded server's state (``shadow.EmbeddedStatus``); starts nothing."""
    from .shadow import embedded_status

    return embedded_status()


def server_stop() -> bool:
    """Stop the embedded server (fast shutdown); whether one was running."""
    from .shadow import stop_embedded

    return stop_embedded()


def server_clean() -> list[Path]:
    """Stop the embedded server and delete its data and in-memory tablespace; the paths removed."""
    from .shadow import clean_embedded

    return clean_embedded()
