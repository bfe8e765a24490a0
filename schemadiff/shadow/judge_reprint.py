"""Printing a schema again, for the judges (catalog and pg_dump): PostgreSQL's printer is not idempotent.

PostgreSQL prints an expression it parsed from its own printed form
differently at times: Django's ``status varchar(10) CHECK (status IN
('a','b'))`` prints as ``((status)::text = ANY ((ARRAY['a'::character
varying, 'b'::character varying])::text[]))``, and that text, loaded again
(a ``schemadiff dump``, a generated migration), as ``((status)::text = ANY
(ARRAY[('a'::character varying)::text, ('b'::character varying)::text]))``.
Two databases holding the same schema then differ in text where one was
built from the other's printed form.

The judges settle it the same way the engine does (``schemadiff.engine.reprint``),
but with their own tools and sharing no code with it: a database is
"printed again" by restoring its ``pg_dump --schema-only`` script into a
scratch database on the shadow server (restoring a dump gives the same
schema: pg_dump's purpose) and reading that back. An object is the same on
both sides when one side's {definition, printed again} equals the other's,
exactly. No pattern or parser of ours decides; two different definitions
are never called the same.
"""

from __future__ import annotations

from collections.abc import Sequence

from . import catalog, dumpjudge
from .catalog import Snapshot
from ..errors import DatabaseError


def dumped_again(text: str, shadow, program: dumpjudge.PgDump, options: Sequence[str] = ()) -> dumpjudge.Dump | None:
    """The pg_dump script ``text`` restored into a scratch shadow database and dumped again; None if it does not load.

    ``shadow``: a ``ShadowServer``; the script runs as its administrator
    (a dump's ``CREATE EXTENSION`` needs it, as with psql).
    """
    name = shadow.create_database()
    try:
        scratch = shadow.admin_url_for(name)
        dumpjudge.restore(text, scratch)
        return dumpjudge.parse(dumpjudge.dump_text(scratch, program, options=options))
    except DatabaseError:
        return None
    finally:
        shadow.drop_database(name)


def snapshot_again(url: str, shadow, snapshot=catalog.snapshot) -> Snapshot | None:
    """The schema at ``url``, dumped, restored into a scratch shadow database and snapshotted there.

    ``snapshot(url)``: how the caller snapshots (its options and scope).
    None when no pg_dump can read either server or the dump does not load.
    """
    try:
        program = dumpjudge.find_pg_dump(max(dumpjudge.server_major(url), dumpjudge.server_major(shadow.admin_url)))
        text = dumpjudge.dump_text(url, program)
    except (dumpjudge.DumpUnavailable, DatabaseError):
        return None
    name = shadow.create_database()
    try:
        scratch = shadow.admin_url_for(name)
        dumpjudge.restore(text, scratch)
        return snapshot(scratch)
    except DatabaseError:
        return None
    finally:
        shadow.drop_database(name)


def settled(expected: Snapshot, actual: Snapshot, expected_chain: Sequence[Snapshot | None],
            actual_chain: Sequence[Snapshot | None]) -> Snapshot:
    """A copy of ``actual`` holding expected's definition for each object both chains print alike.

    The chains are each side's snapshots: itself, then printed again (None
    entries are skipped). Objects only on one side stay as they are.
    """
    result = {category: dict(objects) for category, objects in actual.items()}
    for category, wanted in expected.items():
        got = result.get(category, {})
        for key, definition in wanted.items():
            if key not in got or got[key] == definition:
                continue
            ours = [snap.get(category, {}).get(key) for snap in expected_chain if snap is not None]
            theirs = [snap.get(category, {}).get(key) for snap in actual_chain if snap is not None]
            if any(a is not None and a == b for a in ours for b in theirs):
                got[key] = definition
    return result
