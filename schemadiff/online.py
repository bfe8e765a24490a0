"""Rewriting a plan so that it can run against a database in use.

The diff engine plans the shortest path to the desired state. Several of its
statements are correct but hold locks that stop the application while they
run: building or dropping an index blocks writes, adding a foreign key or
a CHECK scans the table while blocking writes, ``SET NOT NULL`` scans under
an ACCESS EXCLUSIVE lock. :func:`make_online` rewrites those into the
sequences PostgreSQL offers for live systems, split into migration files:

* ``CREATE INDEX`` / ``DROP INDEX`` -> ``... CONCURRENTLY``, each alone in
  a non-transactional file (CONCURRENTLY refuses to run in a transaction
  block, and golang-migrate sends a whole file as one implicit transaction,
  so such a file must hold exactly one statement);
* replacing an index (dropped and created under the same name) -> the new
  one is built concurrently under a temporary name, the old one dropped
  concurrently, the new one renamed: the table is never without an index;
* ``ADD CONSTRAINT ... UNIQUE/PRIMARY KEY`` -> a unique index built
  concurrently, then ``ADD CONSTRAINT ... USING INDEX`` (catalog only);
* foreign keys and CHECKs -> added ``NOT VALID`` (no scan), then
  ``VALIDATE CONSTRAINT`` in a later transaction (scans, but holds only a
  SHARE UPDATE EXCLUSIVE lock that lets reads and writes through);
* ``SET NOT NULL`` -> a temporary ``CHECK (col IS NOT NULL) NOT VALID``,
  validated in a later transaction, then ``SET NOT NULL`` (PostgreSQL 12+
  sees the validated check and skips its own scan) and the check dropped;
* every transactional file starts with ``SET LOCAL lock_timeout`` and
  ``SET LOCAL statement_timeout`` so that a statement waiting for a lock
  gives up quickly instead of queueing every query of the application
  behind it.

Objects created by the same plan are left alone: a new table is empty and
unused, so building its indexes or checking its constraints costs nothing.
Indexes of partitioned tables are left alone too, with a comment saying why:
PostgreSQL cannot build or drop them concurrently.

Online mode only transforms the engine's typed plan: what a statement is,
and what its online form is built from, comes from the change as the engine
typed it (its statement kind and its model object, ``Change.subject``); the
new statements are rendered by :mod:`schemadiff.engine.ddl` and their
hazards decided by :func:`schemadiff.engine.hazards.rewritten`. No statement
is parsed back.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .engine import ddl, hazards
from .engine.locks import Lock, LockMode, lock_of
from .engine.model import Column, Constraint, Index, Table

if TYPE_CHECKING:  # diff imports heavy modules; only the types are needed here
    from .engine.change import Change
    from .hints import RenameHint

_NAMEDATALEN = 63  # PostgreSQL truncates identifiers to 63 bytes


@dataclass(frozen=True)
class OnlineSettings:
    """Timeouts written at the top of every transactional file.

    ``lock_timeout`` (default 5s): how long a statement may wait for its
    lock. While an ALTER TABLE waits for its ACCESS EXCLUSIVE lock, every
    later query on the table queues behind it; failing after a few seconds
    (the file's transaction rolls back whole, the migration can simply be
    retried) is far better than an outage while a long transaction ends.

    ``statement_timeout`` (default 1min): how long a statement of a
    transactional file may run. After the rewrite, statements holding
    strong locks are catalog-only and take milliseconds; one that runs for
    a minute is a table rewrite holding an ACCESS EXCLUSIVE lock, i.e. an
    outage, better stopped. Files that only validate constraints get
    ``validate_statement_timeout`` (default 0, no limit): validation scans
    the whole table but lets reads and writes through, so it must be allowed
    to finish however long it takes.

    Non-transactional (CONCURRENTLY) files hold one statement and no SET:
    a second statement would put CONCURRENTLY in an implicit transaction
    under golang-migrate. Their locks do not block reads or writes.

    ``partitioned_tables`` / ``partitioned_indexes``: qualified names
    (``schema.name``, unquoted, as the model keys them) in the current
    database that are partitioned, whose
    indexes cannot be built or dropped concurrently; see
    :func:`read_partitioned`. Tables the plan creates are recognised from
    their CREATE TABLE.
    """

    lock_timeout: str = "5s"
    statement_timeout: str = "1min"
    validate_statement_timeout: str = "0"
    partitioned_tables: frozenset[str] = frozenset()
    partitioned_indexes: frozenset[str] = frozenset()


@dataclass(frozen=True)
class PlannedFile:
    """The content of one migration file.

    ``suffix`` is appended to the migration's name for this file ("" for
    the plan's main file). ``preamble`` holds the SET LOCAL statements that
    must come first in a transactional file. ``sql()`` is the body: the
    preamble, then every change's statement.
    """

    changes: list[Change]
    transactional: bool
    suffix: str
    preamble: tuple[str, ...] = ()

    def sql(self) -> str:
        parts = [statement for statement in self.preamble]
        parts.extend(_terminated(change.sql) for change in self.changes)
        return "\n\n".join(parts) + "\n"


def read_partitioned(url: str) -> OnlineSettings:
    """Settings naming the partitioned tables and indexes of a database."""
    from . import dburl

    with dburl.connect(url, what="current database") as conn:
        rows = conn.execute(
            "SELECT c.relkind::text, n.nspname || '.' || c.relname"
            " FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace"
            " WHERE c.relkind IN ('p', 'I')"
        ).fetchall()
    return OnlineSettings(
        partitioned_tables=frozenset(name for kind, name in rows if kind == "p"),
        partitioned_indexes=frozenset(name for kind, name in rows if kind == "I"),
    )


def with_partitions(settings: OnlineSettings, url: str) -> OnlineSettings:
    """``settings`` completed with the partitioned objects of ``url``."""
    found = read_partitioned(url)
    return dataclasses.replace(
        settings,
        partitioned_tables=settings.partitioned_tables | found.partitioned_tables,
        partitioned_indexes=settings.partitioned_indexes | found.partitioned_indexes,
    )


# --------------------------------------------------------------------------
# Planning


# Phases of the transactional work of one group (what runs between two
# non-transactional files): 0 = the changes themselves, 1 = validations,
# which must run in a later transaction than the NOT VALID that precedes
# them, 2 = what needs those validations (SET NOT NULL, attaching indexes).
_MAIN, _VALIDATE, _AFTER = 0, 1, 2
_SUFFIX = {_MAIN: "continue", _VALIDATE: "validate", _AFTER: "finish"}


@dataclass
class _Op:
    change: Change
    phase: int = _MAIN
    concurrent: bool = False
    suffix: str = ""


@dataclass
class _Planner:
    settings: OnlineSettings
    changes: Sequence[Change]
    files: list[PlannedFile] = field(default_factory=list)
    pending: dict[int, list[Change]] = field(default_factory=lambda: {_MAIN: [], _VALIDATE: [], _AFTER: []})
    new_tables: dict[str, int] = field(default_factory=dict)  # table -> index of the file creating it
    dropped_tables: set[str] = field(default_factory=set)
    partitioned: set[str] = field(default_factory=set)
    names: set[str] = field(default_factory=set)  # every object name the plan mentions
    # Columns whose SET NOT NULL waits for the end of the current group.
    deferred_not_null: set[tuple[str, str]] = field(default_factory=set)

    def flush(self) -> None:
        for phase in (_MAIN, _VALIDATE, _AFTER):
            batch = self.pending[phase]
            if not batch:
                continue
            # A rewrite or rebuild lasts as long as the table is large: under a
            # 1min statement_timeout it would be cancelled on every big table.
            # It gets the validation files' limit; lock_timeout still applies.
            long_running = any(_runs_long(change) for change in batch)
            timeout = (
                self.settings.validate_statement_timeout
                if phase == _VALIDATE or long_running
                else self.settings.statement_timeout
            )
            preamble = _timeouts(self.settings.lock_timeout, timeout)
            suffix = "" if not self.files and phase == _MAIN else _SUFFIX[phase]
            self.files.append(PlannedFile(list(batch), True, suffix, preamble))
            self.pending[phase] = []
        self.deferred_not_null.clear()

    def add(self, op: _Op) -> None:
        if op.concurrent:
            self.flush()
            self.files.append(PlannedFile([op.change], False, op.suffix))
            return
        self.pending[op.phase].append(op.change)

    @property
    def next_file(self) -> int:
        """The index the file now being filled will get (for new tables)."""
        return len(self.files)


def make_online(changes: list[Change], settings: OnlineSettings | None = None) -> list[PlannedFile]:
    """Split and rewrite ``changes`` into migration files safe for a live database.

    What each change is, and what its online form is built from, is read from
    the change itself as the engine typed it (``Change.statement``,
    ``Change.subject``, ``Change.table``); a change without the model object
    its rewrite needs is kept as it is.
    """
    settings = settings or OnlineSettings()
    planner = _Planner(settings, changes)
    planner.partitioned = set(settings.partitioned_tables)
    for change in changes:
        if change.statement == "CREATE TABLE" and isinstance(change.subject, Table) and change.subject.partitioned:
            planner.partitioned.add(change.name)
        if change.statement == "DROP TABLE":
            planner.dropped_tables.add(change.name)
        planner.names.update(_mentioned_names(change))
    replaced = _replaced_indexes(changes)

    for position, change in enumerate(changes):
        if planner.deferred_not_null & _columns_touched(change):
            # A later change on the column (ADD IDENTITY needs NOT NULL, a
            # primary key would scan for it): finish the NOT NULL first.
            planner.flush()
        if change.statement == "CREATE TABLE":
            planner.new_tables[change.name] = planner.next_file
        for op in _rewrite(change, planner, replaced, position):
            planner.add(op)
    planner.flush()
    return planner.files


# --------------------------------------------------------------------------
# Rewrites


def _rewrite(change: Change, planner: _Planner, replaced: dict[int, int], position: int) -> list[_Op]:
    if change.statement == "CREATE INDEX":
        return _rewrite_create_index(change, planner, replaced, position)
    if change.statement == "DROP INDEX":
        if position in replaced.values():
            return []  # dropped by the replacement at the create's position
        return _rewrite_drop_index(change, planner)
    if change.statement in _TABLE_STATEMENTS and change.table is not None:
        return _rewrite_alter_table(change, planner)
    return [_Op(change)]


# The ALTER TABLE statements online mode rewrites or annotates (keys of engine.locks.STATEMENT_LOCKS).
_TABLE_STATEMENTS = frozenset({
    "ALTER TABLE ADD CONSTRAINT", "ALTER TABLE ADD CONSTRAINT FOREIGN KEY", "ALTER TABLE ALTER COLUMN SET NOT NULL",
    "ALTER TABLE ALTER COLUMN TYPE", "ALTER TABLE ADD COLUMN",
})


def _rewrite_create_index(change: Change, planner: _Planner, replaced: dict[int, int], position: int) -> list[_Op]:
    index = change.subject
    table = change.table
    if not isinstance(index, Index):
        return [_Op(change)]  # nothing to build its concurrent form from
    if table in planner.new_tables:
        if planner.new_tables[table] == planner.next_file:
            return [_Op(change)]
        # Created by an earlier file of this plan: still empty and unused.
        return [_Op(_with_note(change, _squawk_ignore(["require-concurrent-index-creation"], _NEW_TABLE_REASON)))]
    if table in planner.partitioned:
        note = (
            "PostgreSQL cannot build an index of a partitioned table CONCURRENTLY: this build blocks writes"
            " to the table until it ends. To avoid that, build the index on each partition concurrently,"
            " then create it ON ONLY the parent and ATTACH each partition's index (by hand)."
        )
        return [_Op(_with_note(change, _squawk_ignore(["require-concurrent-index-creation"], note)))]
    if position in replaced:
        return _replace_index(change, index, planner)
    # Built afresh from the index: only a plain table's index is built concurrently (not partitioned_owner).
    build = ddl.op.create_index(index, False, concurrently=True)
    return [_Op(_concurrent_change(change, build, "CREATE INDEX CONCURRENTLY"), concurrent=True, suffix="create_index")]


def _replace_index(change: Change, index: Index, planner: _Planner) -> list[_Op]:
    """Build the new index beside the old one, then swap them."""
    temporary = _unique_name(index.name, "_new", planner.names)
    planner.names.add(temporary)
    build = _concurrent_change(change, ddl.op.create_index(index, False, concurrently=True, name=temporary),
                               "CREATE INDEX CONCURRENTLY")
    # The old index has the new one's name and schema (an index lives in its table's schema).
    drop = _concurrent_change(change, ddl.op.drop_index(index, concurrently=True, if_exists=True),
                              "DROP INDEX CONCURRENTLY", action="drop")
    swap_note = _squawk_ignore(
        ["renaming-object"],
        "the index was built under a temporary name by the previous migrations; this gives it its final name"
        " (queries do not name indexes).",
    )
    rename = _restated(change, "ALTER INDEX RENAME", hazards.HELPER,
                       operation=ddl.op.rename_index(index.schema, temporary, index.name), note=swap_note,
                       action="rename", transactional=True)
    return [
        _Op(build, concurrent=True, suffix="create_index"),
        _Op(drop, concurrent=True, suffix="drop_index"),
        _Op(rename),
    ]


def _rewrite_drop_index(change: Change, planner: _Planner) -> list[_Op]:
    index = change.subject
    if not isinstance(index, Index):
        return [_Op(change)]
    table = change.table
    if table is not None and (table in planner.dropped_tables or table in planner.new_tables):
        return [_Op(change)]
    if f"{index.schema}.{index.name}" in planner.settings.partitioned_indexes or (
        table is not None and table in planner.partitioned
    ):
        note = (
            "PostgreSQL cannot drop an index of a partitioned table CONCURRENTLY: the drop waits for, and then"
            " blocks, every query on the table for an instant."
        )
        return [_Op(_with_note(change, _squawk_ignore(["require-concurrent-index-deletion"], note)))]
    # IF EXISTS: a rerun after the drop committed but before the version was recorded.
    drop = _operation(change, "drop_index", index).with_options(concurrently=True, if_exists=True)
    return [_Op(_concurrent_change(change, drop, "DROP INDEX CONCURRENTLY"), concurrent=True, suffix="drop_index")]


def _rewrite_alter_table(change: Change, planner: _Planner) -> list[_Op]:
    table = change.table
    if table in planner.new_tables:
        if planner.new_tables[table] == planner.next_file:
            return [_Op(change)]
        rules = _new_table_rules(change)
        if not rules:
            return [_Op(change)]
        return [_Op(_with_note(change, _squawk_ignore(rules, _NEW_TABLE_REASON)))]
    if table in planner.partitioned:
        return [_Op(change)]
    if not _needs_rewrite(change):
        return [_Op(_annotated_alter(change))]
    if change.statement == "ALTER TABLE ALTER COLUMN SET NOT NULL":
        return _set_not_null(change, _column_of(change), planner)
    constraint = change.subject
    assert isinstance(constraint, Constraint)  # _needs_rewrite
    if constraint.type in "fc":
        not_valid = _operation(change, "add_constraint", constraint).with_options(not_valid=True)
        added = dataclasses.replace(
            change,
            text=None,
            op=not_valid,
            hazards=hazards.rewritten(change.hazards, hazards.NOT_VALID, change.lock),
        )
        return [_Op(added), _Op(_validate(change, constraint.table, constraint.name), phase=_VALIDATE)]
    return _unique_by_index(change, constraint)


_NEW_TABLE_REASON = (
    "the table is created by an earlier file of this migration: it is empty and nothing uses it yet,"
    " so this neither scans rows nor blocks anyone for longer than an instant."
)


def _new_table_rules(change: Change) -> list[str]:
    """The squawk rules an ALTER of an existing table would rightly raise, sorted."""
    if change.statement.startswith("ALTER TABLE ADD CONSTRAINT"):
        constraint = change.subject
        if not isinstance(constraint, Constraint):
            return []
        rules = ["constraint-missing-not-valid"]
        if constraint.type == "f":
            rules.append("adding-foreign-key-constraint")
        elif constraint.type == "p":
            rules.append("adding-serial-primary-key-field")
        elif constraint.type == "u":
            rules.append("disallowed-unique-constraint")
        return sorted(rules)
    return {
        "ALTER TABLE ALTER COLUMN SET NOT NULL": ["adding-not-nullable-field"],
        "ALTER TABLE ALTER COLUMN TYPE": ["changing-column-type"],
        "ALTER TABLE ADD COLUMN": ["adding-field-with-default", "adding-required-field"],
    }.get(change.statement, [])


def _needs_rewrite(change: Change) -> bool:
    """Whether the statement has a lock-friendly form: SET NOT NULL, and an added foreign key, CHECK,
    UNIQUE or PRIMARY KEY that would scan or build under its lock (read from the engine's constraint)."""
    if change.statement == "ALTER TABLE ALTER COLUMN SET NOT NULL":
        return _column_of(change) is not None
    constraint = change.subject
    if change.statement.startswith("ALTER TABLE ADD CONSTRAINT") and isinstance(constraint, Constraint):
        if constraint.type in "fc":
            # Already NOT VALID (or NOT ENFORCED, which PostgreSQL never validates): nothing to split.
            return not constraint.definition.endswith(("NOT VALID", "NOT ENFORCED"))
        # Its index is built from its key columns (none known: a model read without them).
        return constraint.type in "pu" and bool(constraint.columns)
    return False


def _set_not_null(change: Change, column: str, planner: _Planner) -> list[_Op]:
    table = change.table
    planner.deferred_not_null.add((table, column))
    check = _unique_name(f"{_relation_name(table)}_{column}", "_not_null", planner.names)
    planner.names.add(check)
    drop_note = _squawk_ignore(
        ["ban-drop-constraint"],
        f"{check} is the temporary check this migration added; the NOT NULL now guarantees the same.",
    )
    set_not_null_note = _squawk_ignore(
        ["adding-not-nullable-field"],
        f"no scan: PostgreSQL 12+ proves the column has no NULL from the validated check {check}.",
    )
    set_not_null = ddl.op.set_not_null(table, column)
    proven = dataclasses.replace(
        change,
        text=None,
        op=set_not_null,
        note=set_not_null_note + change.note,
        hazards=hazards.rewritten(change.hazards, hazards.PROVEN_NOT_NULL, change.lock),
    )
    return [
        _Op(_restated(change, "ALTER TABLE ADD CONSTRAINT", hazards.HELPER,
                      operation=ddl.op.add_not_null_check(table, column, check), action="create", kind="constraint")),
        _Op(_validate(change, table, check), phase=_VALIDATE),
        _Op(proven, phase=_AFTER),
        _Op(
            _restated(change, "ALTER TABLE DROP CONSTRAINT", hazards.HELPER,
                      operation=ddl.op.drop_constraint_named(table, check), note=drop_note, action="drop",
                      kind="constraint"),
            phase=_AFTER,
        ),
    ]


def _unique_by_index(change: Change, constraint: Constraint) -> list[_Op]:
    build = dataclasses.replace(
        _concurrent_change(change, ddl.op.unique_index_of(constraint, concurrently=True), "CREATE INDEX CONCURRENTLY"),
        kind="index", action="create",
    )
    attach = _restated(change, "ALTER TABLE ADD CONSTRAINT USING INDEX", hazards.USING_INDEX,
                       operation=ddl.op.add_constraint_using_index(constraint), note=change.note)
    return [_Op(build, concurrent=True, suffix="create_index"), _Op(attach, phase=_AFTER)]


def _validate(change: Change, table: str, name: str) -> Change:
    # Validating a foreign key reads the referenced table under ROW SHARE (PostgreSQL, ALTER TABLE).
    referenced = tuple(Lock(lock.relation, LockMode.ROW_SHARE) for lock in change.also_locks)
    return _restated(change, "ALTER TABLE VALIDATE CONSTRAINT", hazards.HELPER,
                     operation=ddl.op.validate_constraint(table, name), action="alter", kind="constraint",
                     also_locks=referenced if _is_foreign_key(change) else ())


def _annotated_alter(change: Change) -> Change:
    """Tell squawk about type changes PostgreSQL makes without a rewrite.

    squawk flags every ``ALTER COLUMN ... TYPE`` as a rewrite under an
    ACCESS EXCLUSIVE lock. When the engine found the change binary-coercible
    (no rewrites-table hazard: e.g. widening a varchar), PostgreSQL only
    updates the catalog; the lock is brief and guarded by lock_timeout.
    """
    if change.statement != "ALTER TABLE ALTER COLUMN TYPE" or hazards.REWRITES_TABLE in change.hazards:
        return change
    return _with_note(
        change,
        _squawk_ignore(
            ["changing-column-type", "prefer-text-field"],
            "catalog-only type change: PostgreSQL neither rewrites nor scans the table for it; the brief lock"
            " is bounded by lock_timeout.",
        ),
    )


# --------------------------------------------------------------------------
# Helpers


def _replaced_indexes(changes: Sequence[Change]) -> dict[int, int]:
    """create position -> drop position, for indexes dropped and re-created under one name.

    Only when nothing else touches the table between the drop and the create:
    if a column the old index uses is dropped or retyped in between, keeping
    the old index alive would make that change fail or rebuild it for nothing.
    """
    drops = {change.name: position for position, change in enumerate(changes) if change.statement == "DROP INDEX"}
    pairs: dict[int, int] = {}
    for position, change in enumerate(changes):
        if change.statement != "CREATE INDEX":
            continue
        drop = drops.get(change.name)
        if drop is None or drop > position:
            continue
        if any(_breaks_old_index(other, change.table) for other in changes[drop + 1 : position]):
            continue
        pairs[position] = drop
    return pairs


def _breaks_old_index(change: Change, table: str | None) -> bool:
    """Whether a statement would fail on, or rebuild, an old index kept alive longer."""
    if change.statement == "DROP TABLE":
        return change.name == table
    return change.table == table and change.statement in ("ALTER TABLE DROP COLUMN", "ALTER TABLE ALTER COLUMN TYPE")


def _column_of(change: Change) -> str | None:
    """The column a column statement is about: its model column, else the last part of its key."""
    if isinstance(change.subject, Column):
        return change.subject.name
    if change.kind == "column" and change.table and change.name.startswith(change.table + "."):
        return change.name[len(change.table) + 1 :]
    return None


def _columns_touched(change: Change) -> set[tuple[str, str]]:
    """(table, column) pairs an ALTER TABLE is about: the column it alters or drops, an added
    PRIMARY KEY's, UNIQUE's or FOREIGN KEY's key columns."""
    table = change.table
    if table is None or not change.statement.startswith("ALTER TABLE ") or change.statement == "ALTER TABLE ADD COLUMN":
        return set()
    constraint = change.subject
    if isinstance(constraint, Constraint) and change.statement.startswith("ALTER TABLE ADD CONSTRAINT"):
        return {(table, column) for column in constraint.columns} if constraint.type in "puf" else set()
    column = _column_of(change)
    return {(table, column)} if column is not None else set()


def _relation_name(table: str) -> str:
    """The name part of a ``schema.name`` key (names may themselves contain dots, schemas here do not)."""
    return table.partition(".")[2]


def _terminated(sql: str) -> str:
    text = sql.rstrip()
    return text if text.endswith(";") else text + ";"


def _with_note(change: Change, note: str) -> Change:
    """``change`` with reviewer-facing comment lines written before it (its statement unchanged).

    The lines join ``Change.note``, which ``Change.sql`` starts with, so whatever renders the operation
    (a later rewrite too) keeps the squawk directives in front of it."""
    return dataclasses.replace(change, note=note + change.note)


def _is_foreign_key(change: Change) -> bool:
    return change.statement == "ALTER TABLE ADD CONSTRAINT FOREIGN KEY"


def _operation(change: Change, function: str, *args: Any) -> ddl.Op:
    """The operation ``change`` was rendered from, to transform; built from ``args`` for a change made
    without one (by hand) or from another renderer."""
    if change.op is not None and change.op.function == function:
        return change.op
    return ddl.Op(function, args)


def _restated(change: Change, statement: str, form: str, *, operation: ddl.Op | None = None, note: str = "",
              **fields: Any) -> Change:
    """``change`` rewritten as another kind of statement (a key of ``engine.locks.STATEMENT_LOCKS``) in
    online ``form`` (see ``engine.hazards.rewritten``, which decides its hazards): its lock read from
    the engine's table, on the relation the change already names. ``operation``: the new statement,
    rendered after the comment lines ``note``."""
    if operation is not None:
        fields.update(text=None, op=operation, note=note)
    lock = lock_of(statement)
    fields.setdefault("relation", (change.relation or change.table) if lock is not None else None)
    fields["hazards"] = hazards.rewritten(change.hazards, form, lock)
    return dataclasses.replace(change, statement=statement, lock=lock, **fields)


def _concurrent_change(change: Change, operation: ddl.Op, statement: str, action: str | None = None) -> Change:
    note = _squawk_ignore(
        ["prefer-robust-stmts", "require-lock-timeout", "require-statement-timeout"],
        "CONCURRENTLY cannot run in a transaction, and golang-migrate sends a file as one implicit transaction:"
        " this file holds this statement alone, with no SET before it (set lock_timeout/statement_timeout for"
        " the migration's connection instead if needed; the lock this takes does not block reads or writes)."
        " If it fails, PostgreSQL may leave an INVALID index behind: drop it before running the file again.",
    )
    return _restated(
        change,
        statement,
        hazards.CONCURRENTLY,
        also_locks=(),
        operation=operation,
        note=note + change.note,
        action=action or change.action,
        transactional=False,
    )


def _squawk_ignore(rules: Iterable[str], reason: str) -> str:
    """A reviewer-facing reason, then the squawk directive for the next statement."""
    lines = _wrap(reason, 100)
    text = "".join(f"-- {line}\n" for line in lines)
    return text + f"-- squawk-ignore {', '.join(rules)}\n"


def _wrap(text: str, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        if current and len(current) + 1 + len(word) > width:
            lines.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        lines.append(current)
    return lines


def _unique_name(base: str, suffix: str, taken: set[str]) -> str:
    """``base + suffix`` within PostgreSQL's 63 bytes, not colliding with ``taken``."""
    for attempt in range(100):
        tail = suffix if attempt == 0 else f"{suffix}{attempt}"
        head = base.encode("utf-8")[: _NAMEDATALEN - len(tail.encode("utf-8"))].decode("utf-8", "ignore")
        candidate = head + tail
        if candidate not in taken and not any(name.endswith("." + candidate) for name in taken):
            return candidate
    raise AssertionError("no free temporary name")  # pragma: no cover - 100 collisions


def _mentioned_names(change: Change) -> list[str]:
    """The index or constraint name (``schema.name``) a statement creates: temporary names must avoid them."""
    if change.statement == "CREATE INDEX":
        return [change.name]
    if isinstance(change.subject, Constraint) and change.statement.startswith("ALTER TABLE ADD CONSTRAINT"):
        return [f"{change.subject.schema}.{change.subject.name}"]
    return []

# --------------------------------------------------------------------------
# Down files, one per up file


def pair_with_downs(
    files: list[PlannedFile],
    current_url: str,
    settings: OnlineSettings | None = None,
    down_hints: Sequence[RenameHint] = (),
    owners: bool = False,
    *,
    online: bool = True,
) -> list[tuple[PlannedFile, PlannedFile]]:
    """Each up file with the down file that undoes exactly it.

    With ``online=False`` (a plain plan cut into several files, see
    :func:`split_files`) each down is the engine's diff as it stands, one
    transactional file.

    golang-migrate steps back one version at a time, so the down file of
    version N must undo version N alone. On two copies of the current
    database (``current_url`` must be a schemadiff temporary database, as
    the replayed directory is), every up file is applied in turn and its
    down file is the engine's diff from the state after it to the state
    before it. Down files are made online too when that keeps them one file
    (an index dropped by a down is dropped concurrently); otherwise the
    down is one plain transactional file: a down is an emergency path, and
    one file per version is what golang-migrate can run.

    ``down_hints`` are the desired file's rename hints inverted
    (:func:`schemadiff.hints.invert_hints`): without them the down file of
    a file that renames would drop and re-create the renamed object.
    ``owners``: the downs set owners too (the target's setting).
    """
    from .inspect import diff_databases

    settings = settings or OnlineSettings()
    pairs: list[tuple[PlannedFile, PlannedFile]] = []
    with _copy_of(current_url) as before, _copy_of(current_url) as after:
        for up in files:
            _apply(after, up)
            down_changes = diff_databases(after, before, owners=owners)
            if down_hints:
                from .hints import apply_rename_hints

                down_changes = apply_rename_hints(down_changes, down_hints, after, before, owners=owners)
            if online:
                down = _down_file(down_changes, up, settings)
            else:
                down = PlannedFile(down_changes, all(c.transactional for c in down_changes), up.suffix)
            pairs.append((up, down))
            _apply(before, up)
    return pairs


def split_files(files: list[PlannedFile]) -> list[PlannedFile]:
    """``files`` with each transactional file cut where it would use an enum
    value it adds (:func:`schemadiff.runner.writer.split_new_enum_values`).

    The first piece keeps the file's suffix, the others are "continue"; every
    piece keeps the file's preamble (its SET LOCAL timeouts).
    """
    from .runner.writer import split_new_enum_values

    result: list[PlannedFile] = []
    for planned in files:
        groups = split_new_enum_values(planned.changes) if planned.transactional else [planned.changes]
        for index, group in enumerate(groups):
            suffix = planned.suffix if index == 0 else "continue"
            result.append(PlannedFile(list(group), planned.transactional, suffix, planned.preamble))
    return result


def _timeouts(lock_timeout: str, statement_timeout: str) -> tuple[str, str]:
    """A transactional file's preamble: its lock_timeout and statement_timeout, for that transaction only."""
    return ddl.set_local("lock_timeout", lock_timeout), ddl.set_local("statement_timeout", statement_timeout)


def _down_file(changes: list[Change], up: PlannedFile, settings: OnlineSettings) -> PlannedFile:
    online = make_online(changes, settings)
    if len(online) == 1:
        return dataclasses.replace(online[0], suffix=up.suffix)
    if not online:
        return PlannedFile([], True, up.suffix)
    transactional = all(change.transactional for change in changes)
    timeout = (
        settings.validate_statement_timeout
        if any(_runs_long(change) for change in changes)
        else settings.statement_timeout
    )
    preamble = _timeouts(settings.lock_timeout, timeout) if transactional else ()
    return PlannedFile(list(changes), transactional, up.suffix, preamble)


def _apply(url: str, planned: PlannedFile) -> None:
    """Run one planned file, through the one executor, as ``apply`` will run that file.

    The text is what ``generate`` writes for it (``runner.writer.render``),
    so its transaction mode is decided by the same rule as the file's.
    """
    from .execute import script_from_text
    from .runner.writer import render
    from .shadow.replay import session

    text = render(planned.changes, direction="up", desired_label="an online file", desired_sha256="",
                  preamble=planned.preamble, transactional=planned.transactional)
    with session(url) as running:
        running.run(script_from_text(text, "online file"), what="an online file (on a copy, to plan its down)")


def _copy_of(url: str):
    from .shadow.server import clone_of

    return clone_of(url)


def _runs_long(change) -> bool:
    """True for a statement whose duration grows with the table (a rewrite, an index rebuild)."""
    found = getattr(change, "hazards", ())
    return hazards.REWRITES_TABLE in found or hazards.REBUILDS_INDEXES in found
