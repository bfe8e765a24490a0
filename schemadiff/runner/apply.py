"""Applying a migration directory to a database, golang-migrate compatible.

The database's version lives in golang-migrate's ``schema_migrations``, so
either tool can take over from the other. schemadiff is stricter:

* everything is checked before anything runs: the directory's sum, the
  database's version (clean, known to the directory), every file of the plan
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
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal, Union

import psycopg

from .. import dburl, migrateurl
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
    SourcePosition,
)
from .lock import LockHolder
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
from ..sqlfile import Statement, position_of
from .versiontable import HistoryRow, Tables, VersionState

if TYPE_CHECKING:  # only named in annotations
    from ..scope import Scope

DEFAULT_LOCK_TIMEOUT = 60.0
APPLICATION_NAME = "schemadiff migrate"


# --- plan and results --------------------------------------------------------


@dataclass(frozen=True)
class Step:
    """One file to run and the version recorded once it has run."""

    script: MigrationScript
    target: int | None  # None: no migration applied any more
    down_checksum: str | None = None  # an up step: its version's .down file, recorded in the history

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
    def deletes_data(self) -> list[str]:
        """The file's statements that delete stored data (``file:line: SQL``), read from its parse trees."""
        from ..engine.hazards import deleting_statements

        return deleting_statements(self.script.statements)

    @property
    def waits_for_snapshots(self) -> bool:
        """Whether the file builds an index concurrently (see ``schemadiff.runner.lock``)."""
        return not self.transactional and any(_waits_for_snapshots(s) for s in self.script.statements)


@dataclass(frozen=True)
class AppliedStep:
    step: Step
    duration_ms: int


@dataclass(frozen=True)
class ApplyResult:
    directory: Path
    start_version: int | None  # before the run (before a baseline)
    final_version: int | None  # after the run; for a dry run, where it would end
    plan: tuple[Step, ...]
    applied: tuple[AppliedStep, ...]
    dry_run: bool
    baselined: int | None
    sum_verified: bool  # False: the directory has no schemadiff.sum


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
    step: Step


@dataclass(frozen=True)
class MigrationFinished:
    step: Step
    duration_ms: int


@dataclass(frozen=True)
class NothingToApply:
    version: int | None


@dataclass(frozen=True)
class FilesIgnored:
    """Files that look like migrations but do not match golang-migrate's pattern: neither tool runs them."""

    files: tuple[Path, ...]


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
    step: Step


Event = Union[
    SumUnchecked, LockWaiting, LockAcquired, ChangedSinceApplied, Baselined, MigrationStarted, MigrationFinished,
    NothingToApply, FilesIgnored, BackupWritten, DownChangedSinceApplied, LockWaiterCanceled, LockYielded,
]
Confirm = Callable[[list["Step"]], bool]
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
    returns the plan and touches nothing.

    Guards (each raises a :class:`CommandError` subclass, exit 1), all
    checked before anything runs but drift, checked before the file it
    concerns:

    * a step down whose file deletes data (``Step.deletes_data``) needs
      ``allow_destructive`` or ``confirm(steps)`` returning True (the CLI
      asks on a terminal), as golang-migrate's ``down`` asks;
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
    migrations, sum_verified = _checked_directory(directory, emit, require_sum=require_sum)
    if not migrations.migrations:
        raise MigrationDirectoryError(
            f"{migrations.path} holds no migration files (NNNNNN_name.up.sql); nothing was run",
            "Check --dir (or the service's `migrations` setting).",
        )
    _check_arguments(migrations, to, down, baseline)
    progress: list[AppliedStep] = []
    try:
        with _session(url) as session:
            session.emit = emit
            live = session.target.conninfo  # what libpq and pg_dump take: the x- options are golang-migrate's
            if not dry_run:
                session.lock(lock_timeout, emit)
            # Everything is decided under the lock, from what the database says now.
            state = session.tables.read_state()
            steps, target = _plan_run(session, migrations, state, to, down, baseline, allow_out_of_order, emit)
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
                    continue
                if not allow_drift:
                    _check_drift(live, migrations, step, shadow_url, _left_out(session, scope))
                emit(MigrationStarted(step))
                duration_ms = _run_step(session, current, step)
                current = VersionState.after_write(step.target, False)
                progress.append(AppliedStep(step, duration_ms))
                emit(MigrationFinished(step, duration_ms))
            return ApplyResult(
                migrations.path, state.version, current.version, tuple(steps), tuple(progress), False, baseline,
                sum_verified,
            )
    except KeyboardInterrupt:
        # The connection is closed by now, so the server has rolled back
        # whatever was in flight: what a fresh session reads is the truth.
        raise _interrupted(url, progress) from None


def _interrupted(url: str, applied: list[AppliedStep]) -> Interrupted:
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


def _check_drift(url: str, migrations: MigrationDirectory, step: Step, shadow_url: str | None,
                 bookkeeping: tuple[tuple[str, str], ...]) -> None:
    """Before an up file that records the schema it was proven from, check the live schema is that one."""
    from .drift import differences_from_replay, proven_from, schema_fingerprint

    if step.direction != "up" or step.target != step.version:  # down files and out-of-order files: no record
        return
    expected = proven_from(step.script.file.read_bytes().decode("utf-8", "replace"))
    if expected is None or schema_fingerprint(url, bookkeeping) == expected:
        return
    try:
        lines = differences_from_replay(url, migrations, migrations.previous(step.version), shadow_url,
                                        bookkeeping)
    except CommandError as exc:  # no shadow server here (a service migrating on start-up): refuse all the same
        lines = [f"(the differences could not be named: {exc.message}; run `schemadiff plan --db URL` elsewhere)"]
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


def _check_destructive(steps: list[Step], allow: bool, confirm: Confirm | None) -> None:
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
    sum_verified = verify_sum(migrations.path)
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


def plan_out_of_order(migrations: MigrationDirectory, versions: list[int], current: int | None) -> list[Step]:
    """Up steps for files below ``current`` that never ran; each leaves the version at ``current``."""
    steps = []
    for version in versions:
        migration = migrations.get(version)
        assert migration is not None and migration.up is not None
        steps.append(Step(_checked_script(migration.up), current, migration.down.checksum() if migration.down else None))
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


def plan(migrations: MigrationDirectory, current: int | None, target: int | None) -> list[Step]:
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
            Step(_checked_script(m.up), m.version, m.down.checksum() if m.down else None)
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
    return [Step(_checked_script(m.down), migrations.previous(m.version)) for m in chosen if m.down is not None]


def _plan_run(
    session: _Session,
    migrations: MigrationDirectory,
    state: VersionState,
    to: int | None,
    down: int | None,
    baseline: int | None,
    allow_out_of_order: bool,
    emit: EventHandler,
) -> tuple[list[Step], int | None]:
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
    steps = plan(migrations, start, target)
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
        steps = plan_out_of_order(migrations, skipped, start) + steps
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
    verified = verify_sum(migrations.path)
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


def _downs_changed(steps: list[Step], history: list[HistoryRow]) -> list[DownChangedSinceApplied]:
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
        self.keys = migrationlock.lock_keys(database, schema, target.table, url_path=target.url_path)

    def configure(self) -> None:
        """Session settings of our own, set at connect and again after each reset."""
        # Let the server notice a vanished client during a long statement and
        # roll back at once, instead of finishing the statement first.
        with contextlib.suppress(psycopg.Error):
            self.conn.execute("SET client_connection_check_interval = '1s'")
        if self.target.statement_timeout_ms:
            # golang-migrate's x-statement-timeout: abort a statement running longer.
            self.conn.execute(f"SET statement_timeout = {int(self.target.statement_timeout_ms)}")

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
        conn.prepare_threshold = None  # DEALLOCATE ALL between files must not pull statements from under psycopg
        try:
            session = _Session(conn, target)
            session.configure()
            yield session
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


# What a fresh connection would not have, undone between files: settings
# (SET search_path, SET ROLE ... made by a file), session authorization,
# temporary tables, prepared statements, cursors, LISTEN, cached plans and
# sequence state. It is DISCARD ALL without pg_advisory_unlock_all(): the
# migration lock must stay held (PostgreSQL docs, "DISCARD"). The runner's
# connection never prepares statements itself (prepare_threshold None in
# _session): psycopg would otherwise prepare the version-table queries after
# five runs and, not knowing DEALLOCATE ALL removed them, fail the next file
# with 'prepared statement "_pg3_1" does not exist'.
_RESET_SESSION = (
    "CLOSE ALL",
    "SET SESSION AUTHORIZATION DEFAULT",
    "RESET ALL",
    "DEALLOCATE ALL",
    "UNLISTEN *",
    "DISCARD PLANS",
    "DISCARD TEMP",
    "DISCARD SEQUENCES",
)


def _reset_session(session: _Session) -> None:
    """Give the next file the session state the connection started with.

    Every file must mean the same whether it runs first in a run or after
    others: a resumed run, the shadow replay and generate's verification
    (one connection per file) must build what an uninterrupted run builds.
    golang-migrate keeps one connection for a whole run, so there a file's
    ``SET search_path`` leaks into the next files; ``generate`` never writes
    such a statement (see README, "apply: the runner").
    """
    for statement in _RESET_SESSION:
        session.conn.execute(statement)
    session.configure()


def _yield_lock(
    session: _Session, migrations: MigrationDirectory, target: int | None, lock_timeout: float,
    emit: EventHandler,
) -> tuple[VersionState, list[Step]]:
    """Release the lock to the sessions waiting for it, take it back, and plan again.

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
    return state, plan(migrations, state.version, target)


def _run_step(session: _Session, state: VersionState, step: Step) -> int:
    _reset_session(session)
    if step.transactional:
        return _run_in_transaction(session, state, step)
    return _run_dirty_protocol(session, state, step)


def _run_in_transaction(session: _Session, state: VersionState, step: Step) -> int:
    started = time.monotonic()
    tables = session.tables
    with session.conn.transaction():
        for statement in step.script.statements:
            _execute(session.conn, step, statement, transactional=True, state=state)
        duration_ms = _elapsed_ms(started)
        tables.set_version(state, step.target, False)
        tables.record(
            step.version, step.name, step.direction, step.script.checksum, duration_ms=duration_ms,
            down_checksum=step.down_checksum,
        )
    return duration_ms


def _run_dirty_protocol(session: _Session, state: VersionState, step: Step) -> int:
    tables, conn = session.tables, session.conn
    with conn.transaction():
        tables.set_version(state, step.target, True)
        history_id = tables.record(
            step.version, step.name, step.direction, step.script.checksum, state="running",
            down_checksum=step.down_checksum,
        )
    dirty = VersionState.after_write(step.target, True)
    started = time.monotonic()
    try:
        with _guard_if_waits_for_snapshots(session, step) as guard:
            for statement in step.script.statements:
                _execute(conn, step, statement, transactional=False, state=dirty)
        if guard is not None:
            for waiter in guard.canceled:
                session.emit(LockWaiterCanceled(waiter, step))
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            raise MigrationFailed(
                f"{step.name} left a transaction open (BEGIN without COMMIT)",
                f"It was rolled back; the database is dirty at {_shown(step.target)}: repair it, then"
                f" `schemadiff force`.",
            )
    except MigrationFailed as failure:
        with contextlib.suppress(psycopg.Error):
            if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
                conn.execute("ROLLBACK")
            with conn.transaction():
                tables.finish(history_id, duration_ms=_elapsed_ms(started), error=failure.message)
        raise
    duration_ms = _elapsed_ms(started)
    with conn.transaction():
        tables.set_version(dirty, step.target, False)
        tables.finish(history_id, duration_ms=duration_ms, error=None)
    return duration_ms


@contextlib.contextmanager
def _guard_if_waits_for_snapshots(session: _Session, step: Step) -> Iterator[migrationlock.WaiterGuard | None]:
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


def _execute(
    conn: psycopg.Connection, step: Step, statement: Statement, *, transactional: bool, state: VersionState
) -> None:
    try:
        conn.execute(statement.text)
    except psycopg.Error as exc:
        from ..execute import error_reason

        where = _error_position(statement, exc)
        reason = error_reason(exc)  # with the server's hint: "out of shared memory" names max_locks_per_transaction
        message = f"{where}: migration {step.name} failed: {reason}\n    {_first_lines(statement.text)}"
        if transactional:
            hint = (
                f"Nothing of {step.name} was applied (it ran in one transaction, rolled back); the database"
                f" stays at {_shown(state.version)}, clean. Fix the migration and apply again."
            )
        else:
            hint = (
                f"{step.name} runs outside a transaction, so the statements before line {where.line} stay"
                f" applied and the database is marked dirty at {_shown(state.version)}. Finish or undo the"
                " file's changes by hand, then run `schemadiff force VERSION` with the version it now matches."
            )
        raise MigrationFailed(message, hint) from None


def _error_position(statement: Statement, exc: psycopg.Error) -> SourcePosition:
    """The failing spot in the file: the statement's start, moved by the server's error position."""
    start = statement.position
    offset = getattr(getattr(exc, "diag", None), "statement_position", None)
    if not offset or not str(offset).isdigit():
        return start
    inner = position_of(statement.text, int(offset) - 1, start.path)
    column = start.column + inner.column - 1 if inner.line == 1 else inner.column
    return SourcePosition(start.path, start.line + inner.line - 1, column)


def _first_lines(text: str, limit: int = 4) -> str:
    lines = text.strip().splitlines()
    return "\n    ".join(lines[:limit] + (["..."] if len(lines) > limit else []))


def _shown(version: int | None) -> str:
    return f"version {version}" if version is not None else "no version"


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


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
