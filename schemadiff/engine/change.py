"""One planned statement of a migration: what the diff engine emits.

Kept apart from the engine so that the modules that read changes (hazards,
ordering, online rewriting, rendering) need not import the engine, and the
engine need not import them back.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from .ddl import Op
from .locks import Lock, LockMode
from .model import Column, Constraint, Index, Key, Table


@dataclass(frozen=True, eq=False)
class Change:
    """One planned statement as data, and what it does.

    ``op``: the statement as data (:class:`schemadiff.engine.ddl.Op`, the
    renderer function of ``engine/ddl.py`` and its arguments). The planners
    and the rewrites that follow them (online mode, rename hints) build and
    transform operations; no statement text exists until :attr:`sql` is
    first read, when the plan is written or shown. ``text``: the statement
    text of a change made without an operation (tests, hand-built changes);
    None when ``op`` renders it. Exactly one of the two is given.

    :attr:`sql` is the text: ``note`` then the statement, ending with ';'.
    ``action`` is
    "create" | "drop" | "alter" | "rename" | "comment" | "grant" | "revoke"; ``kind`` the object
    kind ("table", "column", "index", ...); ``name`` the qualified name
    ("public.users", "public.users.email"); ``table`` the table it belongs to,
    for grouping; ``hazards`` the names from ``schemadiff.engine.hazards``;
    ``transactional`` False when PostgreSQL refuses the statement inside a
    transaction block (CREATE INDEX CONCURRENTLY).

    What it locks, as data (:mod:`schemadiff.engine.locks`): ``statement``
    the kind of statement (a key of ``locks.STATEMENT_LOCKS``: "ALTER TABLE
    ADD COLUMN"), ``lock`` the mode it takes on ``relation`` (None when it
    takes none on an existing relation), ``also_locks`` the locks it takes
    on other relations (a foreign key's referenced table).

    Its place in the dependency graph (keys like ``("table", "public.t")``,
    see :mod:`schemadiff.engine.model`): ``needs`` the objects that must
    exist before it runs, ``frees`` the objects it removes.

    ``subject``: the model object the statement creates, alters or drops,
    where a later rewrite needs its definition (online mode): the
    :class:`~schemadiff.engine.model.Table` of CREATE/DROP TABLE, the
    :class:`~schemadiff.engine.model.Constraint` of ADD CONSTRAINT, the
    :class:`~schemadiff.engine.model.Index` of CREATE/DROP INDEX, the
    :class:`~schemadiff.engine.model.Column` of SET NOT NULL; None
    otherwise. Not compared: two changes with the same statement are equal.

    ``note``: the reviewer-facing comment lines (each ``-- ...`` and a
    newline) that ``sql`` starts with, kept apart from the statement so
    that a rewrite of the operation (online mode) keeps them in front of
    its new form.

    Two changes are equal when their text and every other field but
    ``subject`` and ``op`` are (comparing renders them). Raises ValueError
    when both or neither of ``text`` and ``op`` are given.
    """

    text: str | None
    action: str
    kind: str
    name: str
    table: str | None
    hazards: tuple[str, ...] = ()
    transactional: bool = True
    statement: str = ""
    lock: LockMode | None = None
    relation: str | None = None
    also_locks: tuple[Lock, ...] = ()
    needs: frozenset[Key] = frozenset()
    frees: frozenset[Key] = frozenset()
    subject: Table | Constraint | Index | Column | None = None
    note: str = ""
    op: Op | None = None

    def __post_init__(self) -> None:
        if (self.text is None) == (self.op is None):
            raise ValueError("a Change is made from either its statement text or its operation, not both or neither")

    @functools.cached_property
    def sql(self) -> str:
        """The change's text: ``note``, then the statement (``op`` rendered by ``engine/ddl.py``, or ``text``).

        Rendered on first read, once: the model objects an operation names
        are read as they stand then, so nothing may change them after
        planning (the engine plans on copies; rewrites make new operations).
        """
        return self.note + (self.op.render() if self.op is not None else self.text or "")

    def __getstate__(self) -> dict:
        # Rendered before it is pickled (the result cache): a plan read back is shown without loading the
        # renderer's quoting rules (pglast's keyword lists), and renders as it did when it was planned.
        self.sql  # noqa: B018
        return self.__dict__

    def _compared(self) -> tuple:
        return (self.sql, self.action, self.kind, self.name, self.table, self.hazards, self.transactional,
                self.statement, self.lock, self.relation, self.also_locks, self.needs, self.frees)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Change):
            return NotImplemented
        return self._compared() == other._compared()

    def __hash__(self) -> int:
        return hash(self._compared())
