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
    """Apply the migrations of ``directory`` up to ``to`` (default: the latest)."""
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
