"""Applying a migration directory to a database, golang-migrate compatible.

The database's version lives in golang-migrate's ``schema_migrations``, so
either tool can take over from the other. schemadiff is stricter:

* everything is checked before anything runs: the directory's sum, the
  database's version (clean, known to the directory), every file of the schedule
  parses, every step down has its ``.down`` file;
* a file that can run in a transaction runs in ONE transaction together with
  its version update and history row: killed at any moment, the database
  stays at the previous version, clean, with nothing of the file applied;
* a file that cannot (CREATE INDEX CONCURRENTLY...) runs statement by
  statement under golang-migrate's dirty protocol, and a failure records
  which statement failed, for the message that refuses the next run;
* the lock is golang-migrate's advisory lock, with a timeout.

Progress is reported through ``on_event`` callbacks with typed events; this
module never prints.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Union

import psycopg

from .. import dburl, execute, migrateurl
from . import lock as migrationlock
from ..errors import (
    CommandError,
    ConfigError,
    DatabaseError,
    DestructiveChangeRefused,
    Interrupted,
    MigrationDirectoryError,
    MigrationFailed,
    MigrationStateError,
    SchemaDrift,
)
from .lock import LockHolder
from .losses import Snapshot
from ..migrations import (
    EMPTY_MARKER,
    Direction,
    MigrationDirectory,
    MigrationFile,
    MigrationScript,
    load_directory,
    read_script,
    verify_sum,
)
from ..sqlfile import Statement
from .versiontable import HistoryRow, Tables, VersionState

if TYPE_CHECKING:  # only named in annotations
    from ..scope import Scope

DEFAULT_LOCK_TIMEOUT = 60.0
APPLICATION_NAME = "schemadiff migrate"


# --- schedule and results ----------------------------------------------------


@dataclass(frozen=True)
class ScheduledFile:
    """One file of the runner's schedule: the file to run and the version recorded once it has run
    (golang-migrate's ``Migration`` with its ``TargetVersion``). Not a change of the diff engine's plan."""

    script: MigrationScript
    target: int | None  # None: no migration applied any more
    down_checksum: str | None = None  # an up step: its version's .down file, recorded in the history
    # The file's statements that delete or may delete stored data (``file:line: SQL (why)``), read from
    # its parse trees against the database's user code by ``apply`` before anything runs (_read_hazards).
    deletes_data: tuple[str, ...] = ()

    @property
    def version(self) -> int:
        return self.script.file.version

    @property
    def direction(self) -> Direction:
        return self.script.file.direction

    @property
    def name(self) -> str:
        return self.script.file.name

    @property
    def transactional(self) -> bool:
        return self.script.transactional

    @property
    def waits_for_snapshots(self) -> bool:
        """Whether the file builds an index concurrently (see ``schemadiff.runner.lock``)."""
        return not self.transactional and any(_waits_for_snapshots(s) for s in self.script.statements)


@dataclass(frozen=True)
class AppliedFile:
    step: ScheduledFile
    duration_ms: int


@dataclass(frozen=True)
class ApplyResult:
    directory: Path
    start_version: int | None  # before the run (before a baseline)
    final_version: int | None  # after the run; for a dry run, where it would end
    schedule: tuple[ScheduledFile, ...]  # the files to run, in order (not the diff engine's plan)
    applied: tuple[AppliedFile, ...]
    dry_run: bool
    baselined: int | None
    sum_verified: bool  # False: the directory has no schemadiff.sum

    @property
    def plan(self) -> tuple[ScheduledFile, ...]:
        """Deprecated name of :attr:`schedule` (kept so callers of the public API written before the rename
        keep working; "plan" now means only the diff engine's plan)."""
        import warnings

        warnings.warn("ApplyResult.plan is now ApplyResult.schedule", DeprecationWarning, stacklevel=2)
        return self.schedule


# --- events ------------------------------------------------------------------


@dataclass(frozen=True)
class SumUnchecked:
    """The directory has no schemadiff.sum: edits to it cannot be detected."""

    directory: Path


@dataclass(frozen=True)
class LockWaiting:
    holder: LockHolder | None


@dataclass(frozen=True)
class LockAcquired:
    waited_ms: int


@dataclass(frozen=True)
class ChangedSinceApplied:
    """An applied file's checksum differs from the one recorded when it ran."""

    version: int
    name: str


@dataclass(frozen=True)
class DownChangedSinceApplied:
    """A .down file about to run differs from the one that was there when its up file ran."""

    version: int
    name: str


@dataclass(frozen=True)
class Baselined:
    version: int


@dataclass(frozen=True)
class MigrationStarted:
    step: ScheduledFile


@dataclass(frozen=True)
class MigrationFinished:
    step: ScheduledFile
    duration_ms: int


@dataclass(frozen=True)
class NothingToApply:
    version: int | None


@dataclass(frozen=True)
class FilesIgnored:
    """Files that look like migrations but do not match golang-migrate's pattern: neither tool runs them."""

    files: tuple[Path, ...]


@dataclass(frozen=True)
class RunsDifferentlyUnderGolangMigrate:
    """A hand-written file this runner runs one way and golang-migrate another
    (``schemadiff.execute.golang_migrate_difference``): it runs here, but the
    two runners cannot continue each other's work through it."""

    name: str
    message: str
    hint: str | None


def golang_migrate_differences(directory: str | Path) -> list[RunsDifferentlyUnderGolangMigrate]:
    """Every file of ``directory`` golang-migrate would run differently from this runner, in version order.

    Raises :class:`MigrationDirectoryError` for a missing directory and
    :class:`schemadiff.errors.SQLSyntaxError` for a file that does not parse.
    """
    found = []
    for migration in _open_directory(directory).migrations:
        for file in (migration.up, migration.down):
            if file is None:
                continue
            difference = execute.golang_migrate_difference(read_script(file).script)
            if difference is not None:
                found.append(RunsDifferentlyUnderGolangMigrate(file.name, difference.message, difference.hint))
    return found


@dataclass(frozen=True)
class BackupWritten:
    """``pg_dump`` of the target taken before a data-deleting step (see ``schemadiff.runner.backup``)."""

    path: Path


@dataclass(frozen=True)
class LockYielded:
    """Sessions waited for the lock before a file that builds an index
    concurrently: schemadiff let them go first and took the lock back."""

    waiters: tuple[LockHolder, ...]


@dataclass(frozen=True)
class LockWaiterCanceled:
    """A session (golang-migrate, typically) began waiting for the migration
    lock while ``step`` built an index concurrently, and its wait was canceled
    so that the build could finish (see ``schemadiff.runner.lock``)."""

    waiter: migrationlock.CanceledWaiter
    step: ScheduledFile


Event = Union[
    SumUnchecked, LockWaiting, LockAcquired, ChangedSinceApplied, Baselined, MigrationStarted, MigrationFinished,
    NothingToApply, FilesIgnored, RunsDifferentlyUnderGolangMigrate, BackupWritten, DownChangedSinceApplied, LockWaiterCanceled, LockYielded,
]
Confirm = Callable[[list["ScheduledFile"]], bool]
EventHandler = Callable[[Event], None]


def _ignore(_: Event) -> None:
    pass


# --- status ------------------------------------------------------------------

# never_applied: a file below the current version that history shows never
# ran (added after later versions were applied; golang-migrate skips it).
MigrationState = Literal["applied", "pending", "missing_file", "changed", "dirty", "never_applied"]


@dataclass(frozen=True)
class MigrationStatus:
    version: int
    name: str  # the up file's name, or the recorded name when the file is missing
    state: MigrationState
    applied_at: datetime | None
    recorded_checksum: str | None
    file_checksum: str | None


@dataclass(frozen=True)
class StatusReport:
    directory: Path
    database: str  # redacted URL
    version: int | None
    dirty: bool
    dirty_reason: str | None  # which file failed and where, when known
    latest: int | None
    sum_verified: bool
    migrations: tuple[MigrationStatus, ...]
    ignored: tuple[Path, ...] = ()  # migration-looking files golang-migrate's pattern skips

    @property
    def pending(self) -> list[MigrationStatus]:
        return [m for m in self.migrations if m.state == "pending"]

    @property
    def problems(self) -> list[MigrationStatus]:
        return [m for m in self.migrations if m.state in ("missing_file", "changed", "dirty", "never_applied")]


@dataclass(frozen=True)
class ForceResult:
    previous: VersionState
    version: int | None


# --- public operations -------------------------------------------------------


def apply(
    url: str,
    directory: str | Path,
    *,
    to: int | None = None,
    down: int | None = None,
    dry_run: bool = False,
    baseline: int | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    allow_destructive: bool = False,
    confirm: Confirm | None = None,
    allow_out_of_order: bool = False,
    require_sum: bool = False,
    backup_dir: str | Path | None = None,
    allow_drift: bool = False,
    shadow_url: str | None = None,
    on_event: EventHandler | None = None,
    scope: Scope | None = None,
) -> ApplyResult:
    """Bring the database to version ``to`` (default: the latest; 0: none).

    ``down=N`` reverts the last N applied migrations instead. ``baseline=V``
    adopts a database whose schema exists but has no version: V is recorded
    as applied without running 1..V, then the run continues. ``dry_run``
    returns the schedule and touches nothing.

    Guards (each raises a :class:`CommandError` subclass, exit 1), all
    checked before anything runs but drift, checked before the file it
    concerns:

    * a step down whose file deletes data (``ScheduledFile.deletes_data``) needs
      ``allow_destructive`` or ``confirm(steps)`` returning True (the CLI
      asks on a terminal), as golang-migrate's ``down`` asks; a
      transactional down file the reading found harmless is judged again by
      PostgreSQL before it commits (:mod:`schemadiff.runner.losses`) and
      rolled back with :class:`DestructiveChangeRefused` if it lost data;
    * a file below the current version that the history shows never ran
      is refused; ``allow_out_of_order`` runs such files first instead;
    * a database whose history names other files than the directory's
      (another service's directory) is refused;
    * ``require_sum``: a directory without ``schemadiff.sum`` is refused;
    * ``backup_dir``: before the first step that deletes data, ``pg_dump
      -Fc`` of the database is written there; no backup, no step;
    * drift (:class:`SchemaDrift`, unless ``allow_drift``): an up file that
      records the schema it was proven from (``schemadiff.runner.drift``) runs
      only on that schema, and ``baseline=V`` only adopts a schema equal to
      the directory replayed up to V; the differences are named from a
      replay on the shadow server (``shadow_url``, default the embedded one).
      Relations ``scope`` excludes (the service's ``exclude`` list) and
      version tables under custom names are not compared (:func:`_left_out`).

    Ctrl-C or SIGTERM while steps run raises :class:`Interrupted` (exit
    130) saying which steps committed and the state the database was left in.
    """
    emit = on_event or _ignore
    if not (math.isfinite(lock_timeout) and lock_timeout >= 0):  # NaN never times out; a negative never waits
        raise ConfigError(f"lock timeout {lock_timeout} is not a number of seconds; give 0 or more (e.g. 60)")
    migrations, sum_verified = _checked_directory(directory, emit, require_sum=require_sum)
    if not migrations.migrations:
        raise MigrationDirectoryError(
            f"{migrations.path} holds no migration files (NNNNNN_name.up.sql); nothing was run",
            "Check --dir (or the service's `migrations` setting).",
        )
    _check_arguments(migrations, to, down, baseline)
    progress: list[AppliedFile] = []
    try:
        with _session(url) as session:
            session.emit = emit
            live = session.target.conninfo  # what libpq and pg_dump take: the x- options are golang-migrate's
            if not dry_run:
                session.lock(lock_timeout, emit)
            # Everything is decided under the lock, from what the database says now.
            state = session.tables.read_state()
            steps, target = _schedule_run(session, migrations, state, to, down, baseline, allow_out_of_order, emit)
            if steps:  # up to date (a service starting up): no catalog to read
                steps = _read_hazards(session, steps)
            for step in steps:
                difference = execute.golang_migrate_difference(step.script.script)
                if difference is not None:
                    emit(RunsDifferentlyUnderGolangMigrate(step.name, difference.message, difference.hint))
            if dry_run:
                return ApplyResult(
                    migrations.path, state.version, target, tuple(steps), (), True, baseline, sum_verified
                )
            _check_destructive(steps, allow_destructive, confirm)
            if backup_dir is not None and any(step.deletes_data for step in steps):
                from .backup import dump

                emit(BackupWritten(dump(live, Path(backup_dir), session.database, state.version)))
            if baseline is not None and not allow_drift:
                _check_baseline(live, migrations, baseline, shadow_url, _left_out(session, scope))
            session.tables.create()
            current = state
            if baseline is not None:
                current = _record_baseline(session, migrations, state, baseline)
                emit(Baselined(baseline))
            if not steps:
                emit(NothingToApply(current.version))
            remaining = list(steps)
            while remaining:
                step = remaining.pop(0)
                if step.waits_for_snapshots and session.lock_waiters():
                    # Let whoever waits go first rather than cancel it (see _yield_lock).
                    current, remaining = _yield_lock(session, migrations, target, lock_timeout, emit)
                    # Only files judged above (down guard, backup, hazards) may run: another runner that
                    # went first can leave the database where new files are due; they are for a new run.
                    judged = {(s.version, s.direction) for s in steps}
                    unjudged = [s for s in remaining if (s.version, s.direction) not in judged]
                    if unjudged:
                        done = ", ".join(a.step.name for a in progress) or "no migration"
                        raise CommandError(
                            f"another migration runner moved the database to {_shown(current.version)} while this"
                            f" run let it go first; {', '.join(s.name for s in unjudged)} were not part of what"
                            f" this run checked, so it stops here (it applied {done})",
                            "Run the same command again: it checks the files now due from where the database is.",
                        )
                    continue
                if not allow_drift:
                    _check_drift(live, migrations, step, shadow_url, _left_out(session, scope))
                emit(MigrationStarted(step))
                # A down file the reading found harmless is judged again by PostgreSQL, inside its
                # transaction (schemadiff.runner.losses): without consent, what it really deleted rolls back.
                judged_by_server = step.direction == "down" and not allow_destructive and not step.deletes_data
                duration_ms = _run_step(session, current, step, progress, judge=judged_by_server)
                current = VersionState.after_write(step.target, False)
                progress.append(AppliedFile(step, duration_ms))
                emit(MigrationFinished(step, duration_ms))
            return ApplyResult(
                migrations.path, state.version, current.version, tuple(steps), tuple(progress), False, baseline,
                sum_verified,
            )
    except KeyboardInterrupt:
        # The connection is closed by now, so the server has rolled back
        # whatever was in flight: what a fresh session reads is the truth.
        raise _interrupted(url, progress) from None


def _interrupted(url: str, applied: list[AppliedFile]) -> Interrupted:
    done = ", ".join(a.step.name for a in applied) or "no migration"
    try:
        with dburl.connect(url, what="database", autocommit=True, application_name=APPLICATION_NAME) as conn:
            schema = conn.execute("SELECT current_schema()").fetchone()[0]  # type: ignore[index]
            tables = Tables(conn, schema)
            state = tables.read_state()
            history = tables.history_rows()
    except (CommandError, psycopg.Error):
        return Interrupted(
            f"interrupted after applying {done}; the database's state could not be read afterwards",
            "Run `schemadiff status` to see where the database stands before trying again.",
        )
    if state.dirty:
        left = f"the database is DIRTY at {_shown(state.version)}: {_dirty_reason(state, history)}"
        hint = (
            "That file runs outside a transaction, so part of it stayed applied. Finish or undo it by hand,"
            " then `schemadiff force VERSION`."
        )
    else:
        left = f"the database is at {_shown(state.version)}, clean"
        hint = "The interrupted file ran in a transaction and was rolled back; apply again to continue."
    return Interrupted(f"interrupted after applying {done}; {left}", hint)


def _left_out(session: _Session, scope: Scope | None) -> tuple[tuple[str, str], ...]:
    """(schema, relation) pairs the drift and baseline checks leave out of the live schema.

    The version tables under custom names, and what the service's
    ``exclude`` list (``scope``) leaves alone: relations it names, and the
    sequences those tables own (``legacy_orders_id_seq`` goes with
    ``legacy_orders``). The file was proven on a replay that has none of
    them, so they are not drift; plan and generate leave them out the same
    way (``schemadiff.scope``). Types and functions a pattern names are not
    left out here.
    """
    pairs = session.tables.bookkeeping()
    if not scope:
        return pairs
    rows = session.conn.execute(
        """
        SELECT n.nspname, c.relname, owner_ns.nspname, owner.relname
        FROM pg_catalog.pg_class AS c JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
        LEFT JOIN pg_catalog.pg_depend AS d
               ON c.relkind = 'S' AND d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
              AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i')
        LEFT JOIN pg_catalog.pg_class AS owner ON owner.oid = d.refobjid
        LEFT JOIN pg_catalog.pg_namespace AS owner_ns ON owner_ns.oid = owner.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
          AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_%'
        """
    ).fetchall()
    return pairs + tuple(
        (schema, name) for schema, name, owner_schema, owner_name in rows
        if scope.excludes(schema, name) or (owner_name is not None and scope.excludes(owner_schema, owner_name))
    )


def _check_baseline(url: str, migrations: MigrationDirectory, baseline: int, shadow_url: str | None,
                    bookkeeping: tuple[tuple[str, str], ...]) -> None:
    from .drift import differences_from_replay

    lines = differences_from_replay(url, migrations, baseline, shadow_url, bookkeeping)
    if lines:
        raise SchemaDrift(
            f"cannot baseline at {baseline}: the live schema is not the one the directory's files 1..{baseline}"
            f" produce; nothing was recorded or run:\n{_listed(lines)}",
            "Baseline at the version the schema really matches, bring the schema there by hand, or record it"
            " anyway with --allow-drift.",
        )


def _check_drift(url: str, migrations: MigrationDirectory, step: ScheduledFile, shadow_url: str | None,
                 bookkeeping: tuple[tuple[str, str], ...]) -> None:
    """Before an up file that records the schema it was proven from, check the live schema is that one."""
    from .drift import compare_with_replay, proven_from, schema_fingerprint

    if step.direction != "up" or step.target != step.version:  # down files and out-of-order files: no record
        return
    expected = proven_from(step.script.file.read_bytes().decode("utf-8", "replace"))
    if expected is None or schema_fingerprint(url, bookkeeping) == expected:
        return
    try:
        lines, replayed = compare_with_replay(url, migrations, migrations.previous(step.version), shadow_url,
                                              bookkeeping)
    except CommandError as exc:  # no shadow server here (a service migrating on start-up): refuse all the same
        lines, replayed = [f"(the differences could not be named: {exc.message}; run `schemadiff plan --db URL`"
                           " elsewhere)"], None
    if not lines and replayed == expected:
        # The proven schema, printed by PostgreSQL one round trip apart (a database adopted with
        # `schemadiff dump`, see drift.compare_with_replay): not drift.
        return
    shown = _listed(lines) if lines else (
        "  (the live schema also matches the replayed directory: the files before it changed since it was"
        " generated)"
    )
    raise SchemaDrift(
        f"{step.name} was proven on a schema the database no longer has (drift since"
        f" {_shown(migrations.previous(step.version))}); it was not run. The live schema differs from the"
        f" directory replayed up to the version before it:\n{shown}",
        "Bring the database back to the migrations' schema (or capture the hotfix in a migration), or run the"
        " file anyway with --allow-drift.",
    )


def _listed(lines: list[str], limit: int = 20) -> str:
    shown = [f"  - {line}" for line in lines[:limit]]
    if len(lines) > limit:
        shown.append(f"  ... and {len(lines) - limit} more")
    return "\n".join(shown)


def _read_hazards(session: _Session, steps: list[ScheduledFile]) -> list[ScheduledFile]:
    """The steps with what each deletes (``ScheduledFile.deletes_data``), read in run order against the live catalog.

    The database's user code (``schemadiff.usercode``) is read once, under
    the lock, before anything runs; what each file defines is added to it as
    the files are read, so a later file's call of a function an earlier file
    creates counts. The runner's own writes count too: recording a step's
    version writes the version and history tables, and user code on them
    (a trigger, a rule) runs with every step, whatever its file holds.
    """
    from ..engine.hazards import deleting_statements, shown_statement
    from ..engine.usercode import WRITE
    from .usercode import read_user_code

    code = read_user_code(session.conn)
    tables = session.tables
    read: list[ScheduledFile] = []
    for step in steps:
        found = deleting_statements(step.script.statements, code)
        if step.direction == "down" and not step.transactional:
            found += [f"{statement.position}: {shown_statement(statement)} (runs outside a transaction, so"
                      " PostgreSQL cannot judge what it deletes before it commits)"
                      for statement in step.script.statements if not _forces_no_transaction(statement)]
        for table in (tables.table, tables.history_table):
            found += [f"{step.name}: recording the version writes {tables.schema}.{table} ({why})"
                      for why in code.relation(tables.schema, table, WRITE)]
        read.append(replace(step, deletes_data=tuple(found)))
    return read


def _forces_no_transaction(statement: Statement) -> bool:
    """The statements that make a file run outside a transaction and cannot reach user code the reading misses:
    index builds and drops CONCURRENTLY (their expressions are read), REINDEX, ALTER TYPE ... ADD VALUE, VACUUM.
    Anything else in such a file runs unjudged by the second judge (schemadiff.runner.losses), so it counts."""
    node, kind = statement.node, statement.kind
    if kind == "IndexStmt":
        return bool(node.concurrent)
    if kind == "DropStmt":
        return bool(node.concurrent)
    return kind in ("ReindexStmt", "AlterEnumStmt", "VacuumStmt")


def _check_destructive(steps: list[ScheduledFile], allow: bool, confirm: Confirm | None) -> None:
    """Going down through files that delete data needs consent, like golang-migrate's ``down`` prompt."""
    risky = [step for step in steps if step.direction == "down" and step.deletes_data]
    if not risky or allow or (confirm is not None and confirm(risky)):
        return
    listed = "\n".join(f"  - {line}" for step in risky for line in step.deletes_data)
    raise DestructiveChangeRefused(
        f"going down runs statements that delete data; nothing was run:\n{listed}",
        "Re-run with --allow-destructive if that is intended (take a backup first, e.g. --backup DIR).",
    )


def force(
    url: str,
    version: int,
    *,
    directory: str | Path | None = None,
    lock_timeout: float = DEFAULT_LOCK_TIMEOUT,
    on_event: EventHandler | None = None,
) -> ForceResult:
    """Record ``version`` as applied and clean, running nothing (-1 or 0: no version).

    The way out of a dirty database once it has been repaired by hand, and
    of a version row below -1 (which ``apply`` and ``status`` refuse). With
    ``directory``, the version must be one of its migrations, and a history
    naming other files for versions up to the old or the new version
    (another service's directory) is refused as ``apply`` refuses it
    (:class:`MigrationStateError`).
    """
    emit = on_event or _ignore
    if version < -1:
        raise ConfigError(f"cannot force version {version}", "Give a migration's version, or -1 for none.")
    new = version if version > 0 else None
    migrations = _open_directory(directory) if directory is not None else None
    if migrations is not None and new is not None:
        if new not in migrations:
            raise MigrationStateError(
                f"version {new} is not a migration in {migrations.path}",
                f"Known versions: {_list_versions(migrations)}.",
            )
    with _session(url) as session:
        session.lock(lock_timeout, emit)
        tables = session.tables
        # Leniently (several rows, NULLs, a version below -1): force is the way out that read_state's refusals name.
        previous = tables.read_state_to_replace()
        if migrations is not None:
            # Recording N declares 1..N applied: the history must be this directory's up to there.
            bound = max(previous.version or 0, new or 0)
            _check_same_directory(migrations, tables.history_rows(), bound)
        tables.create()
        with session.conn.transaction():
            tables.replace_version(new)
            tables.record(new if new is not None else -1, "", "force", None)
        return ForceResult(previous, new)


def status(url: str, directory: str | Path) -> StatusReport:
    """Where the database is, migration by migration; reads only.

    Raises :class:`MigrationStateError` for another service's directory (as
    ``apply`` does), a dirty-NULL, foreign or below -1 version row.
    """
    migrations = _open_directory(directory)
    sum_verified = verify_sum(migrations)
    with _session(url) as session:
        state = session.tables.read_state()
        history = session.tables.history_rows()
    _check_same_directory(migrations, history, state.version)
    dirty_reason = _dirty_reason(state, history) if state.dirty else None
    rows = _migration_states(migrations, state, history)
    return StatusReport(
        migrations.path, dburl.redact(url), state.version, state.dirty, dirty_reason, migrations.latest,
        sum_verified, tuple(rows), migrations.ignored,
    )


def schedule_out_of_order(migrations: MigrationDirectory, versions: list[int],
                          current: int | None) -> list[ScheduledFile]:
    """Up steps for files below ``current`` that never ran; each leaves the version at ``current``."""
    steps = []
    for version in versions:
        migration = migrations.get(version)
        assert migration is not None and migration.up is not None
        down_checksum = migration.down.checksum() if migration.down else None
        steps.append(ScheduledFile(_checked_script(migration.up), current, down_checksum))
    return steps


def _checked_script(file: MigrationFile) -> MigrationScript:
    script = read_script(file)
    if script.unintended_empty:
        raise MigrationDirectoryError(
            f"migration file {file.path} has no SQL statements (it is empty or only comments); nothing was run",
            "Write its statements; if the step deliberately changes nothing, add a line"
            f" `{EMPTY_MARKER}` to say so (golang-migrate would record it as applied either way).",
        )
    return script


def _up_name(migrations: MigrationDirectory, version: int) -> str:
    migration = migrations.get(version)
    return migration.up.name if migration is not None and migration.up is not None else str(version)


def schedule(migrations: MigrationDirectory, current: int | None, target: int | None) -> list[ScheduledFile]:
    """The steps from ``current`` to ``target``, every file read and parsed.

    Raises before anything runs when a step down has no ``.down`` file
    (golang-migrate would silently treat it as empty) or a file does not parse.
    """
    low, high = current or 0, target or 0
    if high >= low:
        chosen = [m for m in migrations.migrations if low < m.version <= high]
        missing_up = [m.label for m in chosen if m.up is None]
        if missing_up:
            raise MigrationDirectoryError(
                f"no .up file for {', '.join(missing_up)} in {migrations.path}",
                "Write the .up file (or remove the lone .down file).",
            )
        return [
            ScheduledFile(_checked_script(m.up), m.version, m.down.checksum() if m.down else None)
            for m in chosen if m.up is not None
        ]
    chosen = [m for m in reversed(migrations.migrations) if high < m.version <= low]
    missing_down = [m.label for m in chosen if m.down is None]
    if missing_down:
        raise MigrationDirectoryError(
            f"cannot go down to {target or 'no version'}: no .down file for {', '.join(missing_down)}"
            f" in {migrations.path}; nothing was run",
            "Write the missing .down files, or stop at a version above them with --to.",
        )
    return [ScheduledFile(_checked_script(m.down), migrations.previous(m.version))
            for m in chosen if m.down is not None]


def _schedule_run(
    session: _Session,
    migrations: MigrationDirectory,
    state: VersionState,
    to: int | None,
    down: int | None,
    baseline: int | None,
    allow_out_of_order: bool,
    emit: EventHandler,
) -> tuple[list[ScheduledFile], int | None]:
    """Check the database against the directory and return the steps and the target version."""
    history = session.tables.history_rows()
    if state.dirty:
        raise _dirty_error(state, history)
    _check_same_directory(migrations, history, state.version)
    start = state.version
    if baseline is not None:
        if state.version is not None:
            raise MigrationStateError(
                f"cannot baseline: the database is already at version {state.version}",
                "--baseline only adopts a database without a version; run apply without it.",
            )
        start = baseline
    _check_known(migrations, start)
    target = _target(migrations, start, to, down)
    steps = schedule(migrations, start, target)
    _check_no_gap(migrations, history, start, target)
    skipped = never_applied(migrations, history, start)
    if skipped:
        if not allow_out_of_order:
            raise MigrationDirectoryError(
                f"{', '.join(_up_name(migrations, v) for v in skipped)} in {migrations.path} never ran: added below"
                f" version {start}, which the database is already at, so golang-migrate would skip it for good;"
                " nothing was run",
                "Renumber it above the latest version (and `schemadiff hash`), or run it now with"
                " --allow-out-of-order.",
            )
        # Run first, recording the version the database is at: the version stays.
        steps = schedule_out_of_order(migrations, skipped, start) + steps
    for warning in _changed_since_applied(migrations, history, start):
        emit(warning)
    for step in _downs_changed(steps, history):
        emit(step)
    return steps, target


# --- checks ------------------------------------------------------------------


def _open_directory(directory: str | Path) -> MigrationDirectory:
    path = Path(directory)
    if not path.is_dir():
        raise MigrationDirectoryError(
            f"migration directory not found: {path}", "Check --dir (or the service's `migrations` setting)."
        )
    return load_directory(path)


def _checked_directory(
    directory: str | Path, emit: EventHandler, *, require_sum: bool = False
) -> tuple[MigrationDirectory, bool]:
    migrations = _open_directory(directory)
    if migrations.ignored:
        emit(FilesIgnored(migrations.ignored))
    verified = verify_sum(migrations)
    if not verified:
        if require_sum:
            raise MigrationDirectoryError(
                f"{migrations.path} has no schemadiff.sum, and a sum is required (require_sum / --require-sum);"
                " nothing was run",
                "Restore the sum file from version control; if the files are as reviewed, `schemadiff hash`"
                " records them.",
            )
        emit(SumUnchecked(migrations.path))
    return migrations, verified


def _check_arguments(migrations: MigrationDirectory, to: int | None, down: int | None, baseline: int | None) -> None:
    if to is not None and down is not None:
        raise ConfigError("give either a target version or a number of steps down, not both")
    if down is not None and down < 1:
        raise ConfigError(f"cannot go down {down} steps", "Give a number of migrations to revert, 1 or more.")
    if to is not None and to != 0 and to not in migrations:
        raise MigrationStateError(
            f"version {to} is not a migration in {migrations.path}",
            f"Known versions: {_list_versions(migrations)} (0 for none).",
        )
    if baseline is not None:
        if baseline not in migrations:
            raise MigrationStateError(
                f"cannot baseline at {baseline}: it is not a migration in {migrations.path}",
                f"Known versions: {_list_versions(migrations)}.",
            )
        if (to is not None and to < baseline) or down is not None:
            raise ConfigError("a baseline only moves up: the target version must not be below it")


def _check_known(migrations: MigrationDirectory, version: int | None) -> None:
    if version is not None and version not in migrations:
        raise MigrationStateError(
            f"the database is at version {version}, which is not a migration in {migrations.path}",
            "Use the directory the database was migrated with (its file may have been removed or renamed);"
            " nothing was run.",
        )


def _target(migrations: MigrationDirectory, start: int | None, to: int | None, down: int | None) -> int | None:
    if down is None:
        # start is a version of the directory (checked), so latest >= start.
        return migrations.latest if to is None else (to or None)
    applied = [v for v in migrations.versions if v <= (start or 0)]
    if down > len(applied):
        raise MigrationStateError(
            f"cannot go down {down} steps: only {len(applied)} migrations are applied",
            "Use --to 0 to revert every migration.",
        )
    remaining = applied[: len(applied) - down]
    return remaining[-1] if remaining else None


def _applied_per_history(history: list[HistoryRow]) -> set[int]:
    applied: set[int] = set()
    for row in history:
        if row.state != "done":
            continue
        if row.direction == "up":
            applied.add(row.version)
        elif row.direction == "down":
            applied.discard(row.version)
        elif row.direction == "force":  # the operator declared everything above it not applied
            applied = {v for v in applied if v <= row.version}
    return applied


def never_applied(migrations: MigrationDirectory, history: list[HistoryRow], current: int | None) -> list[int]:
    """Versions of the directory at or below ``current`` that the history shows never ran.

    Only what schemadiff recorded can be judged: versions below the first
    one it ran (applied by golang-migrate before, or covered by a baseline
    or a force, which declare everything up to them applied) count as
    applied. Likewise versions above where schemadiff last left the
    database: golang-migrate (``up``, ``force N``) moves the version
    without writing schemadiff's history, so those are taken as applied
    too. An empty history judges nothing.
    """
    floor: int | None = None
    applied: set[int] = set()
    last = 0  # the version schemadiff's last recorded step left the database at
    for row in history:
        if row.state != "done":
            continue
        if row.direction in ("baseline", "force"):
            floor = max(floor or 0, row.version)
            applied = {v for v in applied if v <= row.version}
            last = row.version
        elif row.direction == "up":
            if floor is None:
                floor = row.version - 1  # before the first run schemadiff saw: unknown, taken as applied
            applied.add(row.version)
            last = row.version
        elif row.direction == "down":
            applied.discard(row.version)
            last = max([v for v in applied if v < row.version] + [floor or 0])
    if floor is None:
        return []
    ceiling = min(current or 0, last)
    return [v for v in migrations.versions if floor < v <= ceiling and v not in applied]


def _check_same_directory(migrations: MigrationDirectory, history: list[HistoryRow], current: int | None) -> None:
    """Refuse a directory whose files are not the ones the history recorded running (another service's).

    ``apply``, ``status`` and ``force`` share this check and its message.
    Versions up to ``current`` count, each by its latest up row not undone
    by a later down row (a file reverted, renamed and not yet applied again
    is not a difference). Raises :class:`MigrationStateError`.
    """
    ran: dict[int, str] = {}
    for row in history:
        if row.state != "done" or row.version > (current or 0):
            continue
        if row.direction == "up":
            ran[row.version] = row.name
        elif row.direction == "down":
            ran.pop(row.version, None)
    differing = []
    for version, name in sorted(ran.items()):
        migration = migrations.get(version)
        if migration is not None and migration.up is not None and migration.up.name != name:
            differing.append(f"version {version} ran as {name}, the directory has {migration.up.name}")
    if differing:
        raise MigrationStateError(
            f"{migrations.path} is not the directory this database was migrated with: {'; '.join(differing[:3])}"
            + (f" (and {len(differing) - 3} more)" if len(differing) > 3 else "")
            + "; nothing was run or recorded",
            "Check --dir, the service name and the database URL: this looks like another service's migrations."
            " If the files were renamed on purpose, rename them back.",
        )


def _check_no_gap(
    migrations: MigrationDirectory, history: list[HistoryRow], start: int | None, target: int | None
) -> None:
    """Going down, refuse when history shows an applied version whose files are gone."""
    low, high = target or 0, start or 0
    if low >= high:
        return
    gone = sorted(v for v in _applied_per_history(history) if low < v <= high and v not in migrations)
    if gone:
        raise MigrationDirectoryError(
            f"cannot go down to {target or 'no version'}: version(s) {', '.join(map(str, gone))} were applied"
            f" but have no files in {migrations.path}; nothing was run",
            "Restore the removed migration files first.",
        )


def _changed_since_applied(
    migrations: MigrationDirectory, history: list[HistoryRow], current: int | None
) -> list[ChangedSinceApplied]:
    recorded = _recorded_checksums(history)
    changed = []
    for migration in migrations.migrations:
        if migration.up is None or migration.version > (current or 0) or migration.version not in recorded:
            continue
        if migration.up.checksum() != recorded[migration.version]:
            changed.append(ChangedSinceApplied(migration.version, migration.up.name))
    return changed


def _downs_changed(steps: list[ScheduledFile], history: list[HistoryRow]) -> list[DownChangedSinceApplied]:
    recorded: dict[int, str | None] = {}
    for row in history:
        if row.state == "done" and row.direction == "up":
            recorded[row.version] = row.down_checksum
    return [
        DownChangedSinceApplied(step.version, step.name)
        for step in steps
        if step.direction == "down" and recorded.get(step.version) not in (None, step.script.checksum)
    ]


def _recorded_checksums(history: list[HistoryRow]) -> dict[int, str]:
    recorded: dict[int, str] = {}
    for row in history:
        if row.state == "done" and row.direction == "up" and row.checksum:
            recorded[row.version] = row.checksum
    return recorded


def _list_versions(migrations: MigrationDirectory) -> str:
    versions = migrations.versions
    if not versions:
        return "none (the directory has no migrations)"
    return ", ".join(map(str, versions)) if len(versions) <= 8 else f"{versions[0]}..{versions[-1]}"


# --- dirty databases ---------------------------------------------------------


def _dirty_reason(state: VersionState, history: list[HistoryRow]) -> str:
    # The dirty protocol leaves its history row 'running' or 'failed'; a
    # clean last row means the version table was made dirty by another tool.
    attempts = [r for r in history if r.direction in ("up", "down", "force")]
    last = attempts[-1] if attempts else None
    if last is None or last.state == "done":
        return "a migration failed outside schemadiff (no details recorded)"
    if last.state == "running":
        return f"{last.name} was interrupted (started {last.applied_at.isoformat(timespec='seconds')})"
    return last.error or f"{last.name} failed"


def _dirty_error(state: VersionState, history: list[HistoryRow]) -> MigrationStateError:
    shown = state.version if state.version is not None else "no version (a step down past the first failed)"
    way_out = state.version if state.version is not None else -1
    return MigrationStateError(
        f"the database is dirty at version {shown}: {_dirty_reason(state, history)}",
        "Nothing was run. Repair the database by hand so that it matches one version exactly (finish or undo"
        f" what the failed file did), then record that version with `schemadiff force {way_out}`"
        " (or the version you restored).",
    )


# --- running -----------------------------------------------------------------


class _Session:
    def __init__(self, conn: psycopg.Connection, target: migrateurl.MigrateURL) -> None:
        self.conn = conn
        self.target = target
        self.emit: EventHandler = _ignore
        database, schema = conn.execute("SELECT current_database(), current_schema()").fetchone()  # type: ignore[misc]
        schema = target.schema or schema  # x-migrations-table-quoted names the schema itself
        if schema is None:
            raise MigrationStateError(
                "the database has no current schema (search_path names no existing schema)",
                "Set search_path in the URL (search_path=... or options=-csearch_path=...) or create the schema.",
            )
        self.database: str = database
        self.tables = Tables(conn, schema, target.table)
        # Files run through the one executor, on this connection: the lock stays held across its session resets.
        self.executor = execute.Session(conn, execute.Settings(statement_timeout_ms=target.statement_timeout_ms))
        self.keys = migrationlock.lock_keys(database, schema, target.table, url_path=target.url_path)

    def lock_waiters(self) -> list[LockHolder]:
        """Other sessions waiting (blocked) for the migration lock."""
        return migrationlock.find_waiters(self.conn, self.keys)

    def lock(self, timeout: float, emit: EventHandler) -> None:
        started = time.monotonic()
        migrationlock.acquire(self.conn, self.keys, timeout, lambda holder: emit(LockWaiting(holder)))
        emit(LockAcquired(int((time.monotonic() - started) * 1000)))


@contextlib.contextmanager
def _session(url: str) -> Iterator[_Session]:
    # Autocommit: transactions are opened explicitly where they belong, and
    # the session-level advisory lock lives as long as the connection.
    target = migrateurl.parse(url)
    with dburl.connect(target.conninfo, what="database", autocommit=True, application_name=APPLICATION_NAME) as conn:
        conn.prepare_threshold = None  # the executor's session reset (DEALLOCATE ALL) must not pull statements away
        try:
            yield _Session(conn, target)
        except psycopg.Error as exc:  # the connection or our own bookkeeping failed, not a migration file
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise DatabaseError(
                f"database error while migrating {dburl.redact(url)}: {reason}",
                "Run `schemadiff status` to see where the database stands before trying again.",
            ) from None


def _record_baseline(
    session: _Session, migrations: MigrationDirectory, state: VersionState, version: int
) -> VersionState:
    migration = migrations.get(version)
    assert migration is not None
    with session.conn.transaction():
        session.tables.set_version(state, version, False)
        session.tables.record(version, migration.label, "baseline", None)
    return VersionState.after_write(version, False)


def _yield_lock(
    session: _Session, migrations: MigrationDirectory, target: int | None, lock_timeout: float,
    emit: EventHandler,
) -> tuple[VersionState, list[ScheduledFile]]:
    """Release the lock to the sessions waiting for it, take it back, and schedule again.

    Called before a file that builds an index concurrently while another
    session (golang-migrate, whose wait holds a snapshot the build would wait
    for) waits for the lock. The database is clean at this point, so the
    waiter proceeds as it would have anyway: it may apply some or all of
    the remaining files itself. schemadiff then polls for the lock (holding
    no snapshot), reads the version again and continues from there.
    """
    waiters = session.lock_waiters()
    migrationlock.release(session.conn, session.keys)
    emit(LockYielded(tuple(waiters)))
    # Give the waiter the lock before polling for it again: it is queued, we are not.
    deadline = time.monotonic() + 10
    while session.lock_waiters() and time.monotonic() < deadline:
        time.sleep(0.05)
    session.lock(lock_timeout, emit)
    state = session.tables.read_state()
    history = session.tables.history_rows()
    if state.dirty:
        raise _dirty_error(state, history)
    _check_known(migrations, state.version)
    return state, schedule(migrations, state.version, target)


def _run_step(session: _Session, state: VersionState, step: ScheduledFile, applied: Sequence[AppliedFile] = (), *,
              judge: bool = False) -> int:
    """Run one file through the executor (``schemadiff.execute``) with the version table's writes as its hook.

    The executor resets the session first (every file starts from the state
    the connection started with), runs a transactional file in one
    transaction with its version and history rows, and any other under the
    dirty protocol. ``judge``: before the transaction commits, read what it
    did to the data that existed before it (:mod:`schemadiff.runner.losses`)
    and raise :class:`DestructiveChangeRefused` (rolled back) if it lost
    any; a file that cannot run in a transaction cannot be judged so.
    """
    snapshot = None
    if judge and step.transactional:
        tables = session.tables
        snapshot = Snapshot.take(
            session.conn, leave_out=((tables.schema, tables.table), (tables.schema, tables.history_table))
        )
    hook = _VersionWrites(session.tables, state, step, snapshot, applied, session.keys)
    with _guard_if_waits_for_snapshots(session, step) as guard:
        duration_ms = session.executor.run(step.script.script, what=f"migration {step.name}", hook=hook,
                                           hint=_failure_hint(step, state, applied))
    if guard is not None:
        for waiter in guard.canceled:
            session.emit(LockWaiterCanceled(waiter, step))
    return duration_ms


class _VersionWrites:
    """golang-migrate's version row and our history row around one file (``execute.VersionHook``)."""

    def __init__(self, tables: Tables, state: VersionState, step: ScheduledFile, snapshot: Snapshot | None = None,
                 applied: Sequence[AppliedFile] = (), keys: tuple[int, ...] = ()) -> None:
        self.tables, self.state, self.step = tables, state, step
        self.snapshot, self.applied, self.keys = snapshot, applied, keys
        self.history_id: int | None = None

    def _keep_lock(self, committed: bool) -> None:
        """Take the migration lock again if the file released it (pg_advisory_unlock_all(), DISCARD ALL);
        refuse to go on when another session took it meanwhile: another runner may be running now."""
        if not self.keys or migrationlock.holds(self.tables.conn, self.keys):
            return
        if migrationlock.retake(self.tables.conn, self.keys):
            return  # nobody took it in between: as if it had never been released
        state = (f"{self.step.name} ran outside a transaction, so it stays applied; the database is left dirty"
                 f" at {_shown(self.step.target)}" if committed
                 else f"{self.step.name} was rolled back (nothing of it was applied)")
        raise MigrationStateError(
            f"{self.step.name} released the migration lock (pg_advisory_unlock_all(), pg_advisory_unlock() or"
            f" DISCARD ALL) and another session took it meanwhile, so another migration runner may be running;"
            f" {state}",
            "Remove the statement that releases session locks from the file; once the other runner is done, run"
            " `schemadiff status` and apply again (or `schemadiff force VERSION` after checking a dirty state).",
        )

    def begun(self) -> None:
        if self.snapshot is not None:
            self.snapshot.begin(self.tables.conn)

    def in_transaction(self, duration_ms: int) -> None:
        step = self.step
        if self.snapshot is not None:
            # Deferred constraint triggers would fire at COMMIT, after the judge: fire them now, in the
            # session state the file left, as COMMIT would (PostgreSQL docs, SET CONSTRAINTS: "IMMEDIATE
            # ... checked at once", pending ones included).
            self.tables.conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
        _own_state(self.tables.conn)
        self._keep_lock(committed=False)
        self.tables.set_version(self.state, step.target, False)
        self.tables.record(step.version, step.name, step.direction, step.script.checksum, duration_ms=duration_ms,
                           down_checksum=step.down_checksum)
        if self.snapshot is None:
            return
        # After the version writes: user code on the version tables runs with them and is judged too,
        # deferred triggers they queued included.
        self.tables.conn.execute("SET CONSTRAINTS ALL IMMEDIATE")
        lost = self.snapshot.losses(self.tables.conn, _visible_rewrites(step.script.statements))
        if lost:
            before = (f"This run applied {', '.join(a.step.name for a in self.applied)} before it (committed). "
                      if self.applied else "")
            what = ("could not be judged" if all(line.startswith("track_counts") for line in lost)
                    else "deleted data that reading it did not show")
            raise DestructiveChangeRefused(
                f"going down, {step.name} {what}, so it was rolled back (nothing of it was applied):\n{_listed(lost)}",
                before + f"The database is at {_shown(self.state.version)}, clean. The file, or user code it set"
                " off (a trigger, rule, default, cast or function), deleted what is listed; if that is intended,"
                " re-run with --allow-destructive (take a backup first, e.g. --backup DIR).",
            )

    def before(self) -> None:
        step = self.step
        with self.tables.conn.transaction():
            _own_state(self.tables.conn)
            self.tables.set_version(self.state, step.target, True)
            self.history_id = self.tables.record(step.version, step.name, step.direction, step.script.checksum,
                                                 state="running", down_checksum=step.down_checksum)

    def after(self, duration_ms: int) -> None:
        assert self.history_id is not None
        self._keep_lock(committed=True)  # before writing: the version table may be another runner's now
        with self.tables.conn.transaction():
            _own_state(self.tables.conn)
            self.tables.set_version(VersionState.after_write(self.step.target, True), self.step.target, False)
            self.tables.finish(self.history_id, duration_ms=duration_ms, error=None)

    def failed(self, error: MigrationFailed, duration_ms: int) -> None:
        assert self.history_id is not None
        with self.tables.conn.transaction():
            _own_state(self.tables.conn)
            self.tables.finish(self.history_id, duration_ms=duration_ms, error=error.message)


def _own_state(conn: psycopg.Connection) -> None:
    """The runner's own session state for its bookkeeping, after a file's statements in the same session.

    A file may have set a role without rights on the version table, or a
    search_path that puts its own ``=`` before PostgreSQL's (the version
    writes compare values). Back to the connecting user and the session's
    own search_path (pg_catalog first, where the comparisons' exact
    operators are), for this transaction; user triggers on the version
    table run as they would under golang-migrate. The executor resets the
    session before the next file anyway.
    """
    # One round trip (a simple query of three statements, inside the file's transaction or the runner's own).
    conn.execute("SET SESSION AUTHORIZATION DEFAULT; RESET ROLE; SET LOCAL search_path TO DEFAULT")


# ALTER TABLE commands that rewrite a table and keep its rows' values (ALTER COLUMN TYPE counts anyway).
_REWRITING_COMMANDS = {"AT_AddColumn", "AT_SetTableSpace", "AT_SetAccessMethod", "AT_SetLogged",
                       "AT_AlterColumnType", "AT_AddIdentity", "AT_SetExpression", "AT_DropExpression"}


def _visible_rewrites(statements: Sequence[Statement]) -> set[tuple[str | None, str]]:
    """(schema or None, table) the file's own statements rewrite, as the second judge takes them
    (``schemadiff.runner.losses``): a table rewritten by them keeps its rows, whatever new storage it got."""
    found: set[tuple[str | None, str]] = set()
    for statement in statements:
        node, kind = statement.node, statement.kind
        relations = []
        if kind == "AlterTableStmt" and any(
            getattr(getattr(cmd, "subtype", None), "name", "") in _REWRITING_COMMANDS for cmd in node.cmds or ()
        ):
            relations.append(node.relation)
        elif kind in ("ClusterStmt",) and node.relation is not None:
            relations.append(node.relation)
        elif kind == "VacuumStmt":
            relations += [rel.relation for rel in node.rels or () if rel.relation is not None]
        for relation in relations:
            found.add((relation.schemaname, relation.relname))
    return found


def _failure_hint(step: ScheduledFile, state: VersionState,
                  applied: Sequence[AppliedFile] = ()) -> Callable[[bool, int], str]:
    """What a failed file leaves and what to do, as the executor's hint for ``step``.

    ``applied``: the files this run committed before it, named first, so
    that a failed run never reads as if it had changed nothing.
    """
    def hint(transactional: bool, line: int) -> str:
        # Built only when a file fails: joined for every file, the names made a long run quadratic.
        before = (
            f"This run applied {', '.join(a.step.name for a in applied)} before it (committed). " if applied else ""
        )
        if transactional:
            return before + (
                f"Nothing of {step.name} was applied (it ran in one transaction, rolled back); the database"
                f" is at {_shown(state.version)}, clean. Fix the migration and apply again."
            )
        return before + (
            f"{step.name} runs outside a transaction, so the statements before line {line} stay"
            f" applied and the database is marked dirty at {_shown(step.target)}. Finish or undo the"
            " file's changes by hand, then run `schemadiff force VERSION` with the version it now matches."
        )

    return hint


@contextlib.contextmanager
def _guard_if_waits_for_snapshots(session: _Session, step: ScheduledFile) -> Iterator[migrationlock.WaiterGuard | None]:
    """A :class:`migrationlock.WaiterGuard` around a file that builds an index
    concurrently (the statements that wait for older snapshots), else nothing."""
    if not step.waits_for_snapshots:
        yield None
        return
    with migrationlock.WaiterGuard(session.target.conninfo, session.keys, session.conn.info.backend_pid) as guard:
        yield guard


def _waits_for_snapshots(statement: Statement) -> bool:
    # CREATE INDEX CONCURRENTLY and REINDEX CONCURRENTLY wait for older
    # snapshots (PostgreSQL docs, CREATE INDEX / REINDEX); DROP INDEX
    # CONCURRENTLY and DETACH ... CONCURRENTLY wait only for table lockers.
    kind = statement.kind
    if kind == "IndexStmt":
        return bool(statement.node.concurrent)
    if kind == "ReindexStmt":
        return any(param.defname == "concurrently" for param in statement.node.params or ())
    return False


def _shown(version: int | None) -> str:
    return f"version {version}" if version is not None else "no version"


# --- status rows -------------------------------------------------------------


def _migration_states(
    migrations: MigrationDirectory, state: VersionState, history: list[HistoryRow]
) -> list[MigrationStatus]:
    current = state.version or 0
    recorded = _recorded_checksums(history)
    applied_at: dict[int, datetime] = {}
    names: dict[int, str] = {}
    for row in history:
        if row.state == "done" and row.direction in ("up", "baseline"):
            applied_at[row.version] = row.applied_at
            names[row.version] = row.name
    skipped = set(never_applied(migrations, history, state.version))
    rows = []
    for migration in migrations.migrations:
        checksum = migration.up.checksum() if migration.up else None
        name = migration.up.name if migration.up else migration.label
        kind: MigrationState
        if state.dirty and migration.version == state.version:
            kind = "dirty"
        elif migration.version > current:
            kind = "pending"
        elif migration.version in skipped:
            kind = "never_applied"
        elif migration.version in recorded and checksum != recorded[migration.version]:
            kind = "changed"
        else:
            kind = "applied"
        rows.append(
            MigrationStatus(
                migration.version, name, kind,
                applied_at.get(migration.version) if kind not in ("pending", "never_applied") else None,
                recorded.get(migration.version), checksum,
            )
        )
    # Versions the database or its history holds that the directory lacks.
    referenced = {v for v in _applied_per_history(history) if v <= current}
    if state.version is not None:
        referenced.add(state.version)
    for version in sorted(referenced - set(migrations.versions)):
        rows.append(
            MigrationStatus(
                version, names.get(version, f"{version}_?"), "missing_file", applied_at.get(version),
                recorded.get(version), None,
            )
        )
    rows.sort(key=lambda r: r.version)
    return rows
