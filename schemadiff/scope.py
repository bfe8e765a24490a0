"""Which objects of a database schemadiff manages: ``--schema``, ``--exclude`` and a service's ``exclude`` list.

A database an ORM or another tool also writes to holds objects nobody wants
planned away (``django_session``, ``auth_*``, a queue's tables). A scope
removes them from *both* models before they are compared, so a plan neither
creates nor drops nor alters them, wherever they appear.

Patterns are shell-style globs (``fnmatch``, case-sensitive, as PostgreSQL
stores names): a pattern with a dot is matched against ``schema.name``, one
without against the bare name in any schema. A table's pattern takes its
columns, constraints, indexes, triggers, policies and owned sequences with
it. ``schemas``, when given, keeps only objects in those schemas
(extensions, which belong to the database, always stay); a schema itself
is left alone when outside them or named by a pattern (``legacy``,
``legacy.*``).
"""

from __future__ import annotations

import copy
from collections.abc import Iterable
from dataclasses import dataclass
from fnmatch import fnmatchcase
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the model is only handed through; importing it would cost every command's start-up
    from .engine.model import Schema


@dataclass(frozen=True)
class Scope:
    """``exclude``: glob patterns of object names; ``schemas``: the schemas managed (empty: all)."""

    exclude: tuple[str, ...] = ()
    schemas: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.exclude or self.schemas)

    def key(self) -> str:
        """A stable text for cache keys: the same scope, the same cached plan."""
        return f"exclude={sorted(self.exclude)} schemas={sorted(self.schemas)}"

    def excludes(self, schema: str, name: str) -> bool:
        """True when the object ``schema.name`` is outside the scope."""
        if self.excludes_schema(schema):
            return True
        qualified = f"{schema}.{name}"
        return any(fnmatchcase(qualified if "." in p else name, p) for p in self.exclude)

    def describe(self) -> str:
        """For humans: "objects matching django_*; schemas other than public"."""
        parts = []
        if self.exclude:
            parts.append("objects matching " + ", ".join(self.exclude))
        if self.schemas:
            parts.append("schemas other than " + ", ".join(self.schemas))
        return "; ".join(parts)

    def pg_dump_options(self) -> list[str]:
        """The same scope as pg_dump options, for the dump judge (pg_dump's patterns: ``*`` and ``?`` as here).

        A bare pattern is a table in any schema (``*.p``) and a schema of
        that name; ``schema.*`` excludes the schema.
        """
        options = [f"--schema={schema}" for schema in self.schemas]
        for pattern in self.exclude:
            if pattern.endswith(".*") and "." not in pattern[:-2]:
                options.append(f"--exclude-schema={pattern[:-2]}")
            elif "." in pattern:
                options.append(f"--exclude-table={pattern}")
            else:
                options += [f"--exclude-table=*.{pattern}", f"--exclude-schema={pattern}"]
        return options

    def excludes_schema(self, schema: str) -> bool:
        """True for a schema outside ``schemas``, or named by a pattern (``legacy`` or ``legacy.*``)."""
        if self.schemas and schema not in self.schemas:
            return True
        return any(fnmatchcase(schema, p[:-2] if p.endswith(".*") else p) for p in self.exclude
                   if "." not in p or (p.endswith(".*") and "." not in p[:-2]))

    def apply(self, model: Schema) -> Schema:
        """A copy of ``model`` without the objects outside the scope (``model`` itself is not changed)."""
        if not self:
            return model
        removed: set[tuple[str, str]] = set()
        tables = {}
        for key, table in model.tables.items():
            if self.excludes(table.schema, table.name):
                removed.add(("table", key))
                removed.update(("column", f"{key}.{column}") for column in table.columns)
            else:
                tables[key] = table
        gone_tables = {key for kind, key in removed if kind == "table"}

        def keep(kind: str, items: dict, owner_of=None) -> dict:
            # Objects of a table (constraints, indexes...) go by their table
            # alone: a pattern names relations, not their parts.
            kept = {}
            for key, obj in items.items():
                owner = owner_of(obj) if owner_of else None
                schema = getattr(obj, "schema", None) or key.split(".", 1)[0]
                name = getattr(obj, "name", None) or key.split(".", 1)[-1]
                if kind in _TABLE_PARTS:
                    out = owner in gone_tables or (bool(self.schemas) and schema not in self.schemas)
                else:
                    out = owner in gone_tables or self.excludes(schema, name)
                if out:
                    removed.add((kind, key))
                else:
                    kept[key] = obj
            return kept

        result = copy.copy(model)
        result.tables = tables
        result.schemas = {k: v for k, v in model.schemas.items() if not self.excludes_schema(k)}
        removed.update(("schema", k) for k in model.schemas if k not in result.schemas)
        result.types = keep("type", model.types)
        result.sequences = keep("sequence", model.sequences, lambda s: s.owned_by[0] if s.owned_by else None)
        result.views = keep("view", model.views)
        result.functions = keep("function", model.functions)
        for kind, attribute in (("constraint", "constraints"), ("index", "indexes"), ("trigger", "triggers"),
                                ("policy", "policies")):
            setattr(result, attribute, keep(kind, getattr(model, attribute), _table_of))
        result.depends = {d for d in model.depends if d[0] not in removed and d[1] not in removed}
        return result


_TABLE_PARTS = ("constraint", "index", "trigger", "policy")


def keeps_change(scope: Scope, change) -> bool:
    """False for a planned change (``diff.Change``) about an object outside ``scope``."""
    if not scope:
        return True
    qualified = change.table or change.name or ""
    if change.kind in ("extension", "schema") and not change.table:
        return change.kind == "extension" or not scope.excludes_schema(change.name)
    schema, _, rest = qualified.partition(".")
    name = rest.split(".", 1)[0].split("(", 1)[0] if rest else schema
    return not scope.excludes(schema, name)


def _table_of(obj: object) -> str | None:
    table = getattr(obj, "table", None)
    if table and "." not in table:  # triggers and policies name their table within their schema
        return f"{getattr(obj, 'schema', 'public')}.{table}"
    return table


def scope_of(exclude: Iterable[str] = (), schemas: Iterable[str] = ()) -> Scope:
    """A Scope from flags and configuration (duplicates dropped, order kept)."""
    return Scope(tuple(dict.fromkeys(exclude)), tuple(dict.fromkeys(schemas)))
