"""Proving a generated pair before it is written.

On a copy of the current state (a database cloned from the replayed
directory), the up migration must reach exactly the desired state and the
down migration must return exactly to the state before. "Exactly" is judged
twice, by judges that share no code with the diff engine nor with each
other, so an engine bug cannot hide its own mistake:

- ``schemadiff.catalog`` reads pg_catalog itself and names differences in
  the engine's terms (a column's type, a missing index);
- ``schemadiff.dumpjudge`` compares PostgreSQL's own ``pg_dump
  --schema-only`` of both databases, which prints every schema object the
  server has, including those the engine and the catalog judge do not
  model (privileges, rules, storage options...).

Either finding a difference refuses the pair.
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from . import catalog, dumpjudge
from .errors import VerificationFailed
from .execute import run_migration_text
from .shadow import ShadowServer, Status, _no_status

_SHOWN = 20  # differences listed in the message; the rest are counted
_UP = "the up migration does not reach the desired state"
_DOWN = "the down migration does not return to the current state"
_DUMP_ONLY = " (found by pg_dump --schema-only; schemadiff's catalog comparison saw no difference)"


def verify_migrations(
    shadow: ShadowServer,
    *,
    current_db: str,
    desired_url: str,
    ups: Sequence[str],
    downs: Sequence[str],
    status: Status = _no_status,
) -> list[str]:
    """Raise :class:`VerificationFailed` unless the ups reach desired and the downs come back.

    ``ups`` run in order, ``downs`` (one per up, same order) in reverse, as
    golang-migrate steps back one version at a time. Returns notes for the
    user (empty, or that only the catalog judge ran because no ``pg_dump``
    can read the shadow server).
    """
    status("Verifying the migration on a copy of the current state")
    program, notes = dump_program(shadow)
    before = catalog.snapshot(shadow.url_for(current_db))
    desired = catalog.snapshot(desired_url)
    # The copy is made before anything dumps the current state: a database
    # cannot be cloned while another session is connected to it.
    with shadow.temporary_database(template=current_db) as copy_url, ThreadPoolExecutor(max_workers=2) as pool:
        # The two reference dumps run beside the migrations.
        before_dump = _dump_later(pool, program, shadow.url_for(current_db))
        desired_dump = _dump_later(pool, program, desired_url)
        for number, text in enumerate(ups, 1):
            _run(copy_url, text, "up", number, len(ups))
        _judge(desired, desired_dump, copy_url, program, _UP)
        for number, text in reversed(list(enumerate(downs, 1))):
            _run(copy_url, text, "down", number, len(downs))
        _judge(before, before_dump, copy_url, program, _DOWN)
    return notes


def dump_program(shadow: ShadowServer) -> tuple[dumpjudge.PgDump | None, list[str]]:
    """The ``pg_dump`` able to read the shadow server, or None with a note saying only the catalog judge runs."""
    try:
        return dumpjudge.find_pg_dump(dumpjudge.server_major(shadow.admin_url)), []
    except dumpjudge.DumpUnavailable as exc:
        return None, [str(exc)]


def _dump_later(pool: ThreadPoolExecutor, program: dumpjudge.PgDump | None, url: str) -> Future | None:
    return pool.submit(dumpjudge.dump, url, program) if program else None


def _judge(expected_catalog, expected_dump: Future | None, url: str, program, what: str) -> None:
    """Both judges on the copy at ``url``: the catalog first (its lines name things in the engine's terms)."""
    _check(catalog.differences(expected_catalog, catalog.snapshot(url)), what)
    if expected_dump is not None:
        _check(dumpjudge.differences(expected_dump.result(), dumpjudge.dump(url, program)), what + _DUMP_ONLY)


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
