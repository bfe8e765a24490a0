"""Proving a generated pair before it is written.

On a copy of the current state (a database cloned from the replayed
directory), the up migration must reach exactly the desired state and the
down migration must return exactly to the state before. "Exactly" is judged
by ``schemadiff.catalog``, which reads pg_catalog itself and shares no code
with the diff engine, so an engine bug cannot hide its own mistake.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import catalog
from .errors import VerificationFailed
from .execute import run_migration_text
from .shadow import ShadowServer, Status, _no_status

_SHOWN = 20  # differences listed in the message; the rest are counted


def verify_migrations(
    shadow: ShadowServer,
    *,
    current_db: str,
    desired_url: str,
    ups: Sequence[str],
    downs: Sequence[str],
    owners: bool = False,
    status: Status = _no_status,
) -> None:
    """Raise :class:`VerificationFailed` unless the ups reach desired and the downs come back.

    ``ups`` run in order, ``downs`` (one per up, same order) in reverse, as
    golang-migrate steps back one version at a time. ``owners``: owners are
    judged too (see ``catalog.snapshot``).
    """
    status("Verifying the migration on a copy of the current state")
    before = catalog.snapshot(shadow.url_for(current_db), owners=owners)
    desired = catalog.snapshot(desired_url, owners=owners)
    with shadow.temporary_database(template=current_db) as copy_url:
        for number, text in enumerate(ups, 1):
            _run(copy_url, text, "up", number, len(ups))
        reached = catalog.snapshot(copy_url, owners=owners)
        _check(catalog.differences(desired, reached), "the up migration does not reach the desired state")
        for number, text in reversed(list(enumerate(downs, 1))):
            _run(copy_url, text, "down", number, len(downs))
        returned = catalog.snapshot(copy_url, owners=owners)
        _check(catalog.differences(before, returned), "the down migration does not return to the current state")


def _run(url: str, text: str, direction: str, number: int, count: int) -> None:
    which = f"generated {direction} migration" + (f" (file {number} of {count})" if count > 1 else "")
    try:
        run_migration_text(url, text, which)
    except Exception as exc:
        message = getattr(exc, "message", str(exc))
        raise VerificationFailed(
            f"the {which} fails on a copy of the current state: {message}",
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
