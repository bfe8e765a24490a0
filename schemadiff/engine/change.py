"""One planned statement of a migration: what the diff engine emits.

Kept apart from the engine so that the modules that read changes (hazards,
ordering, online rewriting, rendering) need not import the engine, and the
engine need not import them back.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from .ddl import Op
from .locks import Lock, LockMode
from .model import Column, Constraint, Index, Key, Table


@dataclass(frozen=True)
class Change:
    """One complete SQL statement and what it does.

    ``sql`` ends with ';' (comment lines may precede it); ``action`` is
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
    newline) that ``sql`` starts with, kept apart too so that a rewrite of
    the statement (online mode) keeps them in front of its new form.

    ``op``: the statement as data (:class:`schemadiff.engine.ddl.Op`, the
    renderer function and its arguments) that ``sql`` ends with the
    rendering of; a rewrite transforms it and renders again. None for a
    change built by hand (tests). Not compared.
    """

    sql: str
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
    subject: Table | Constraint | Index | Column | None = field(default=None, compare=False)
    note: str = ""
    op: Op | None = field(default=None, compare=False)
