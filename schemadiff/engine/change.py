"""One planned statement of a migration: what the diff engine emits.

Kept apart from the engine so that the modules that read changes (hazards,
ordering, online rewriting, rendering) need not import the engine, and the
engine need not import them back.
"""

from __future__ import annotations

from dataclasses import dataclass


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
    """

    sql: str
    action: str
    kind: str
    name: str
    table: str | None
    hazards: tuple[str, ...] = ()
    transactional: bool = True
