"""One call for services that migrate their database on start-up.

    from schemadiff.api import migrate
    migrate(os.environ["CORTEX_DATABASE_URL"], "generated/cortex")

Same guarantees as ``schemadiff apply``: the directory's sum is verified,
concurrent starts serialize on golang-migrate's advisory lock (so several
replicas starting at once apply each migration exactly once), each
transactional file commits together with its version, and a dirty database
stops the start-up with a message saying how to repair it. Progress goes to
the ``schemadiff.migrate`` logger.
"""

from __future__ import annotations

import logging
from pathlib import Path

from .runner import apply as runner
from .runner.apply import ApplyResult, Event

__all__ = ["ApplyResult", "migrate"]

logger = logging.getLogger("schemadiff.migrate")


def migrate(
    url: str, directory: str | Path, *, to: int | None = None, lock_timeout: float = runner.DEFAULT_LOCK_TIMEOUT
) -> ApplyResult:
    """Apply the migrations of ``directory`` up to ``to`` (default: the latest); return what ran.

    ``url``: a libpq or golang-migrate database URL (``postgres://...``,
    ``x-migrations-table`` honoured). ``directory``: the migration
    directory (``NNNNNN_name.up.sql`` / ``.down.sql`` pairs and, if
    present, ``schemadiff.sum``). ``to``: the version to end at, a number
    as in the file names (not a count; 0: no migration), as ``apply
    --to``; below the current version the down files run, and one that
    deletes data is refused (``DestructiveChangeRefused``: nobody is there
    to confirm). ``lock_timeout``: seconds (a float) to wait for
    golang-migrate's advisory lock held by another migrator.

    Returns :class:`ApplyResult` (``final_version``; ``schedule``, the
    files it set out to run, in order; ``applied``, those that ran, with
    their ``duration_ms`` in milliseconds). Raises a subclass of
    :class:`schemadiff.errors.CommandError` (its ``message`` says what is
    wrong, ``hint`` what to do, ``exit_code`` the CLI's code) and runs
    nothing further: ``MigrationDirectoryError`` (missing or edited files,
    a sum that does not match), ``MigrationStateError`` (a dirty database,
    history from another directory), ``LockTimeout`` (the lock stayed
    taken for ``lock_timeout`` seconds), ``SchemaDrift`` (the schema is not
    the one a file was proven from), ``MigrationFailed`` (a statement
    failed: a transactional file rolls back whole and the database stays
    clean; a non-transactional one leaves it dirty), ``DatabaseError`` (cannot
    connect; the message never shows the password), ``Interrupted``
    (SIGTERM/SIGINT while running: which files committed).
    """
    return runner.apply(url, directory, to=to, lock_timeout=lock_timeout, on_event=_log)


def _log(event: Event) -> None:
    if isinstance(event, runner.SumUnchecked):
        logger.warning("%s has no schemadiff.sum: edits to its migrations cannot be detected", event.directory)
    elif isinstance(event, runner.LockWaiting):
        who = event.holder.describe() if event.holder else "another session"
        logger.info("waiting for the migration lock held by %s", who)
    elif isinstance(event, runner.LockYielded):
        logger.info("let %d waiting session(s) take the migration lock before an index build",
                    len(event.waiters))
    elif isinstance(event, runner.LockWaiterCanceled):
        logger.warning("canceled pid %d's wait for the migration lock while %s built an index concurrently"
                       " (it would have deadlocked with the build); it ran nothing", event.waiter.pid,
                       event.step.name)
    elif isinstance(event, runner.ChangedSinceApplied):
        logger.warning("%s changed after it was applied (version %d)", event.name, event.version)
    elif isinstance(event, runner.MigrationStarted):
        logger.info("applying %s", event.step.name)
    elif isinstance(event, runner.MigrationFinished):
        logger.info("applied %s in %d ms", event.step.name, event.duration_ms)
    elif isinstance(event, runner.NothingToApply):
        logger.info("database is up to date (version %s)", event.version)
