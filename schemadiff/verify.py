"""Proving a generated pair before it is written.

On a copy of the current state (a database cloned from the replayed
directory), the up migration must reach exactly the desired state and the
down migration must return exactly to the state before. "Exactly" is judged
by ``schemadiff.catalog``, which reads pg_catalog itself and shares no code
with the diff engine, so an engine bug cannot hide its own mistake.
"""

from __future__ import annotations

from . import catalog
from .errors import VerificationFailed
from .execute import run_migration_text
from .shadow import ShadowServer, Status, _no_status

_SHOWN = 20  # differences listed in the message; the rest are counted


def verify_pair(
    shadow: ShadowServer,
    *,
    current_db: str,
    desired_url: str,
    up_sql: str,
    down_sql: str,
    status: Status = _no_status,
) -> None:
    """Raise :class:`VerificationFailed` unless up reaches desired and down comes back."""
    status("Verifying the migration on a copy of the current state")
    before = catalog.snapshot(shadow.url_for(current_db))
    desired = catalog.snapshot(desired_url)
    with shadow.temporary_database(template=current_db) as copy_url:
        _run(copy_url, up_sql, "up")
        reached = catalog.snapshot(copy_url)
        _check(catalog.differences(desired, reached), "the up migration does not reach the desired state")
        _run(copy_url, down_sql, "down")
        returned = catalog.snapshot(copy_url)
        _check(catalog.differences(before, returned), "the down migration does not return to the current state")


def _run(url: str, text: str, direction: str) -> None:
    try:
        run_migration_text(url, text, f"generated {direction} migration")
    except Exception as exc:
        message = getattr(exc, "message", str(exc))
        raise VerificationFailed(
            f"the generated {direction} migration fails on a copy of the current state: {message}",
            _REPORT_HINT,
        ) from None


def _check(differences: list[str], what: str) -> None:
    if not differences:
        return
    shown = differences[:_SHOWN]
    more = len(differences) - len(shown)
    lines = "\n".join(f"  - {line}" for line in shown)
    if more > 0:
        lines += f"\n  ... and {more} more"
    raise VerificationFailed(f"{what}; nothing was written. Still different:\n{lines}", _REPORT_HINT)


_REPORT_HINT = (
    "schemadiff cannot produce a correct migration for this change on its own. Write the migration by hand"
    " (then run `schemadiff hash`), or split the change into smaller steps; please report the case."
)
