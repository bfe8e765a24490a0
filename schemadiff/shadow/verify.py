"""Proving a generated pair before it is written.

On a copy of the current state (a database cloned from the replayed
directory), the up migration must reach exactly the desired state and the
down migration must return exactly to the state before. "Exactly" is judged
twice, by judges that share no code with the diff engine nor with each
other, so an engine bug cannot hide its own mistake:

- ``schemadiff.shadow.catalog`` reads pg_catalog itself and names differences in
  the engine's terms (a column's type, a missing index);
- ``schemadiff.shadow.dumpjudge`` compares PostgreSQL's own ``pg_dump
  --schema-only`` of both databases, which prints every schema object the
  server has, including those the engine and the catalog judge do not
  model (privileges, rules, storage options...).

Either finding a difference refuses the pair.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from . import catalog, dumpjudge, replay
from ..errors import MigrationFailed, ServerResourceError, ShadowServerError, VerificationFailed
from ..execute import Session, run_migration_text
from ..progress import Progress, no_progress
from .server import ShadowServer

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
    owners: bool = False,
    status: Progress = no_progress,
    seed_tables: Collection[str] = (),
    accept_fails_on_rows: bool = False,
    ignore=None,
) -> list[str]:
    """Raise :class:`VerificationFailed` unless the ups reach desired and the downs come back.

    ``ups`` run in order, ``downs`` (one per up, same order) in reverse, as
    golang-migrate steps back one version at a time. ``seed_tables``
    (``schema.name`` keys of existing tables the migration touches) get a
    few generated rows first (see :func:`_prove_with_rows`); with
    ``accept_fails_on_rows`` a statement that fails on them is not refused.
    ``owners``: owners are judged too (see ``catalog.snapshot``).
    ``ignore`` (a ``scope.Scope``: ``excludes(schema, name)``,
    ``excludes_schema(name)``, ``pg_dump_options()``) tells which objects
    are outside the plan's scope (``--exclude``): both judges leave them out
    of all their snapshots alike. Returns notes for the user (empty, or that
    only the catalog judge ran because no ``pg_dump`` can read the shadow
    server).
    """
    status("Verifying the migration on a copy of the current state")
    program, notes = dump_program(shadow)
    options = ignore.pg_dump_options() if ignore else []

    def snapshot(url: str):
        snap = catalog.snapshot(url, owners=owners)
        return _without(snap, ignore) if ignore else snap

    before = snapshot(shadow.url_for(current_db))
    desired = snapshot(desired_url)
    judges = _Judges(program, snapshot, options)
    if seed_tables and _prove_with_rows(shadow, current_db, desired_url, before, desired, judges, ups, downs,
                                        seed_tables, accept_fails_on_rows, status):
        return notes
    # The copy is made before anything dumps the current state: a database
    # cannot be cloned while another session is connected to it.
    with shadow.temporary_database(template=current_db) as copy_url, ThreadPoolExecutor(max_workers=2) as pool:
        # The two reference dumps run beside the migrations.
        before_dump = judges.dump_later(pool, shadow.url_for(current_db))
        desired_dump = judges.dump_later(pool, desired_url)
        # One session for the whole proof, reset before each file: as apply runs a directory.
        with replay.session(copy_url) as session:
            for number, text in enumerate(ups, 1):
                _run(session, text, "up", number, len(ups))
            judges.judge(desired, desired_dump, copy_url, _UP)
            for number, text in reversed(list(enumerate(downs, 1))):
                _run(session, text, "down", number, len(downs))
        judges.judge(before, before_dump, copy_url, _DOWN)
    return notes


def dump_program(shadow: ShadowServer) -> tuple[dumpjudge.PgDump | None, list[str]]:
    """The ``pg_dump`` able to read the shadow server, or None with a note saying only the catalog judge runs."""
    try:
        return dumpjudge.find_pg_dump(dumpjudge.server_major(shadow.admin_url)), []
    except dumpjudge.DumpUnavailable as exc:
        return None, [str(exc)]


class _Judges:
    """Both judges, as one proof uses them: the ``pg_dump`` to run (None: catalog only), how to snapshot, dump options."""

    def __init__(self, program: dumpjudge.PgDump | None, snapshot: Callable, options: Sequence[str]) -> None:
        self.program, self.snapshot, self.options = program, snapshot, list(options)

    def dump_later(self, pool: ThreadPoolExecutor, url: str) -> Future | None:
        return pool.submit(dumpjudge.dump, url, self.program, options=self.options) if self.program else None

    def judge(self, expected_catalog, expected_dump: Future | None, url: str, what: str) -> None:
        """Both judges on the copy at ``url``: the catalog first (its lines name things in the engine's terms)."""
        _check(catalog.differences(expected_catalog, self.snapshot(url)), what)
        if expected_dump is not None:
            found = dumpjudge.dump(url, self.program, options=self.options)
            _check(dumpjudge.differences(expected_dump.result(), found), what + _DUMP_ONLY)


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


# -- the proof with rows -------------------------------------------------------------------------------------


class _ValuesDependent(Exception):
    """A statement failed on the generated rows' values, which production's rows need not share."""


def _prove_with_rows(shadow: ShadowServer, current_db: str, desired_url: str, before: catalog.Snapshot,
                     desired: catalog.Snapshot, judges: _Judges, ups: Sequence[str],
                     downs: Sequence[str], tables: Collection[str], accept: bool, status: Progress) -> bool:
    """The proof on a copy whose touched tables hold rows (:mod:`schemadiff.shadow.seed`): True when it is done.

    Seed, up, probe (one more insert per seeded table with a sequence-backed
    column: its key must not collide), judge, down, probe, judge. An up
    statement failing on a constraint over columns the migration adds fails
    on any populated table: refused unless ``accept``
    (:func:`_fails_on_any_rows`). Any other failure depends on the generated
    values (a CHECK, a cast, a foreign key they do not meet): False, and the
    caller proves on an empty copy as before. Both judges run as in the empty
    proof; they compare schema only (pg_dump ``--schema-only`` leaves out
    sequence positions, ``SEQUENCE SET`` being data), so seeding shows in
    neither.
    """
    from .. import dburl
    from . import seed

    # As in the empty proof: clone first, then dump the references beside the migrations.
    with shadow.temporary_database(template=current_db) as copy_url, ThreadPoolExecutor(max_workers=2) as pool:
        before_dump = judges.dump_later(pool, shadow.url_for(current_db))
        desired_dump = judges.dump_later(pool, desired_url)
        with dburl.connect(copy_url, what="shadow copy", autocommit=True) as conn:
            seeded = seed.seed(conn, tables)
        for note in seeded.notes:
            status(f"Rows for the proof: {note}")
        if not seeded.seeded:
            return False
        status(f"Proving with rows in {len(seeded.seeded)} table(s)")
        # A table whose next insert collides already (rows a migration inserted
        # with explicit keys) says nothing about this migration: not probed.
        with dburl.connect(copy_url, what="shadow copy", autocommit=True) as conn:
            colliding = {failure.table for failure in seed.probe(conn, seeded.seeded)}
        probed = [table for table in seeded.seeded if table not in colliding]
        certain = None if accept else _fails_on_any_rows(shadow.url_for(current_db), desired_url)
        try:
            with replay.session(copy_url) as session:  # as in the empty proof: one session, reset per file
                for number, text in enumerate(ups, 1):
                    _run_on_rows(session, text, "up", number, len(ups), certain)
                _probe(copy_url, probed, "up")
                judges.judge(desired, desired_dump, copy_url, _UP)
                for number, text in reversed(list(enumerate(downs, 1))):
                    _run_on_rows(session, text, "down", number, len(downs), None)
                _probe(copy_url, probed, "down")
        except _ValuesDependent as exc:
            status(f"Proving on an empty copy: with generated rows, {exc}")
            return False
        judges.judge(before, before_dump, copy_url, _DOWN)
    return True


def _run_on_rows(session: Session, text: str, direction: str, number: int, count: int,
                 certain: Callable[[MigrationFailed], bool] | None) -> None:
    which = f"generated {direction} migration" + (f" (file {number} of {count})" if count > 1 else "")
    try:
        run_migration_text(session, text, which)
    except MigrationFailed as exc:
        if certain is not None and certain(exc):
            raise VerificationFailed(
                f"the {which} fails on a copy whose tables hold rows, as it would on any populated table;"
                f" nothing was written: {exc.message}",
                "Give the new column a default its constraints accept (or add it nullable, backfill, then"
                " constrain it in a later migration), or re-run with --allow-fails-on-existing-rows if the"
                " table is known to be empty wherever the migration runs.",
            ) from None
        raise _ValuesDependent(f"the {which} fails ({exc.message.splitlines()[0]})") from None


def _fails_on_any_rows(current_url: str, desired_url: str) -> Callable[[MigrationFailed], bool]:
    """Whether a failure on the seeded copy is one any populated table would meet.

    True when the constraint (or NOT NULL) that failed involves only columns
    the migration adds: existing rows get those columns' defaults (else
    NULL), whatever the rows hold, so the generated values decide nothing.
    Anything else (a constraint over existing columns, a cast, an
    expression index) depends on the values.
    """
    from .. import dburl

    def certain(exc: MigrationFailed) -> bool:
        diag = exc.diag
        schema, table = getattr(diag, "schema_name", None), getattr(diag, "table_name", None)
        if not exc.sqlstate or not exc.sqlstate.startswith("23") or not schema or not table:
            return False  # integrity violations only (PostgreSQL error class 23)
        relation = f"{_quote(schema)}.{_quote(table)}"
        column = getattr(diag, "column_name", None)
        constraint = getattr(diag, "constraint_name", None)
        if column:
            involved = {column}
        elif constraint:
            with dburl.connect(desired_url, what="shadow copy", autocommit=True) as conn:
                rows = conn.execute(_CONSTRAINT_COLUMNS, [relation, constraint, relation, constraint]).fetchall()
            if not rows or any(name is None for (name,) in rows):
                return False  # unknown, or an expression: cannot tell
            involved = {name for (name,) in rows}
        else:
            return False
        with dburl.connect(current_url, what="shadow copy", autocommit=True) as conn:
            existing = {name for (name,) in conn.execute(
                "SELECT attname FROM pg_catalog.pg_attribute WHERE attrelid = to_regclass(%s)"
                " AND attnum > 0 AND NOT attisdropped", [relation]).fetchall()}
        return bool(existing) and not (involved & existing)

    return certain


# The columns of a table's constraint or index by name (NULL for an expression).
_CONSTRAINT_COLUMNS = """
    SELECT a.attname FROM pg_catalog.pg_constraint con
    CROSS JOIN LATERAL unnest(con.conkey) AS k(n)
    LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n
    WHERE con.conrelid = to_regclass(%s) AND con.conname = %s
    UNION ALL
    SELECT a.attname FROM pg_catalog.pg_index i
    JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
    CROSS JOIN LATERAL unnest(i.indkey) AS k(n)
    LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n
    WHERE i.indrelid = to_regclass(%s) AND ic.relname = %s
      AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint c WHERE c.conindid = i.indexrelid)
"""


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _probe(url: str, tables: Sequence[str], direction: str) -> None:
    from .. import dburl
    from . import seed

    with dburl.connect(url, what="shadow copy", autocommit=True) as conn:
        failures = seed.probe(conn, tables)
    if failures:
        lines = "\n".join(f"  - {f.table}: {f.reason}" for f in failures)
        raise VerificationFailed(
            f"after the {direction} migration, the next insert into a table holding rows collides with them;"
            f" nothing was written. A sequence (identity or nextval default) does not continue after the values"
            f" the column holds:\n{lines}",
            _REPORT_HINT,
        )


def _run(session: Session, text: str, direction: str, number: int, count: int) -> None:
    which = f"generated {direction} migration" + (f" (file {number} of {count})" if count > 1 else "")
    try:
        run_migration_text(session, text, which)
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
