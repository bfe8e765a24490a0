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
from .errors import ServerResourceError, ShadowServerError, VerificationFailed
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
    status: Status = _no_status,
    ignore=None,
) -> None:
    """Raise :class:`VerificationFailed` unless the ups reach desired and the downs come back.

    ``ups`` run in order, ``downs`` (one per up, same order) in reverse, as
    golang-migrate steps back one version at a time. ``ignore`` (a
    ``scope.Scope``: ``excludes(schema, name)``, ``excludes_schema(name)``)
    tells which schemas, relations, functions and types (with the parts of
    a relation) are outside the plan's scope (``--exclude``): the judge
    leaves them out of all its snapshots alike.
    """
    status("Verifying the migration on a copy of the current state")

    def snapshot(url: str):
        snap = catalog.snapshot(url)
        return _without(snap, ignore) if ignore else snap

    before = snapshot(shadow.url_for(current_db))
    desired = snapshot(desired_url)
    with shadow.temporary_database(template=current_db) as copy_url:
        for number, text in enumerate(ups, 1):
            _run(copy_url, text, "up", number, len(ups))
        reached = snapshot(copy_url)
        _check(catalog.differences(desired, reached), "the up migration does not reach the desired state")
        for number, text in reversed(list(enumerate(downs, 1))):
            _run(copy_url, text, "down", number, len(downs))
        returned = snapshot(copy_url)
        _check(catalog.differences(before, returned), "the down migration does not return to the current state")


# Categories whose keys start with "schema.relation" (or "schema.name").
_SCOPED = ("relations", "columns", "constraints", "indexes", "sequences", "triggers", "policies", "functions", "types")


def _without(snap, ignore):
    kept = {}
    for category, objects in snap.items():
        if category in _SCOPED:
            objects = {key: value for key, value in objects.items() if not ignore.excludes(*_schema_and_name(key))}
        elif category == "schemas":
            objects = {key: value for key, value in objects.items() if not ignore.excludes_schema(key)}
        kept[category] = objects
    return kept


def _schema_and_name(key: str) -> tuple[str, str]:
    schema, _, rest = key.partition(".")
    return schema, rest.split(".", 1)[0].split("(", 1)[0]


def _run(url: str, text: str, direction: str, number: int, count: int) -> None:
    which = f"generated {direction} migration" + (f" (file {number} of {count})" if count > 1 else "")
    try:
        run_migration_text(url, text, which)
    except ServerResourceError as exc:
        # A limit of the shadow server, not a wrong migration: say which one.
        raise ShadowServerError(
            f"the shadow server ran out of {exc.resource} while verifying the {which}: {exc.message}",
            "The migration itself may be fine: the server's limit is too low for a file this large. On a --shadow"
            " server, raise that setting (max_locks_per_transaction = 512 holds about 6,000 tables in one"
            " transaction; it needs a restart); the embedded server raises its own when no other run uses it."
            " Production needs the same room to apply the file in one transaction.",
        ) from None
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
