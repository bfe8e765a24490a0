"""The user code a database holds, as the down guard reads it: a model, no catalog access.

``schemadiff.runner.usercode`` fills a :class:`UserCode` from a live
database's catalog before a run; :mod:`schemadiff.engine.hazards` reads each
statement against it (a bare ``lower(5)`` may resolve to a user's
``public.lower(integer)``; an INSERT fires a table's triggers...) and adds
what the statement defines, for the statements after it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# What runs the code attached to a relation.
READ = "read"  # reading its rows: a view's query, row-security policies
WRITE = "write"  # writing rows: triggers, rules, defaults, checks, domain checks, index expressions, policies
REBUILD = "rebuild"  # checking or rebuilding what exists: VALIDATE, ATTACH, a rewrite, ANALYZE, REINDEX, REFRESH

Name = tuple[str, str]  # (schema, name) as the catalog spells them

# The schema of what a migration file defines without naming one: the first
# schema of a search_path the guard cannot know, so it matches any schema.
ANY_SCHEMA = "*"


@dataclass
class UserCode:
    """What user code a database can run, by name; the input of the down guard.

    ``functions`` and ``operators`` are ``(schema, name)`` pairs of user
    functions (procedures and aggregates included) and of operators whose
    function is user code; ``cast_targets`` maps a type name to the casts to
    it that call user code, and ``implicit_casts`` lists those PostgreSQL may
    apply without a cast in the SQL (``AS IMPLICIT``/``AS ASSIGNMENT``).
    ``relations`` maps ``(schema, relation)`` to ``{READ|WRITE|REBUILD:
    [why]}``; ``domains`` maps a domain to why its checks run user code;
    ``checked_domains`` holds every domain with a constraint or NOT NULL.
    ``event_triggers`` lists the enabled event triggers (they fire on DDL).
    A statement in a migration file can add to all of these for the
    statements after it (:mod:`schemadiff.hazards` does so as it reads).
    An empty ``UserCode()`` is a database with no user code.
    """

    functions: set[Name] = field(default_factory=set)
    operators: set[Name] = field(default_factory=set)
    cast_targets: dict[str, list[str]] = field(default_factory=dict)
    implicit_casts: list[str] = field(default_factory=list)
    event_triggers: list[str] = field(default_factory=list)
    relations: dict[Name, dict[str, list[str]]] = field(default_factory=dict)
    domains: dict[Name, list[str]] = field(default_factory=dict)
    # Every domain with a constraint (user code or not): adding a column of one rewrites the table.
    checked_domains: set[Name] = field(default_factory=set)

    def calls_function(self, schema: str | None, name: str) -> bool:
        """Whether a call of ``name`` (``schema``: as written, None when bare) may resolve to user code.

        A bare name counts when ANY schema holds a user function of that name:
        search_path and the argument types decide which one runs, and the file
        may change search_path.
        """
        return _named(self.functions, schema, name)

    def calls_operator(self, schema: str | None, name: str) -> bool:
        """Whether operator ``name`` may resolve to one backed by user code (same rule as functions)."""
        return _named(self.operators, schema, name)

    def relation(self, schema: str | None, name: str, *roles: str) -> list[str]:
        """Why ``roles`` (READ, WRITE, REBUILD) of relation ``name`` run user code; [] when they do not.

        A bare name matches the relation in every schema (search_path decides).
        """
        found: list[str] = []
        for (rel_schema, rel_name), by_role in self.relations.items():
            if rel_name == name and (schema is None or rel_schema in (schema, ANY_SCHEMA)):
                for role in roles:
                    found.extend(by_role.get(role, ()))
        return list(dict.fromkeys(found))

    def all_relations(self, *roles: str) -> list[str]:
        """Why ``roles`` of any relation run user code (a VACUUM, ANALYZE or REINDEX of a whole database)."""
        return list(dict.fromkeys(why for by_role in self.relations.values() for role in roles
                                  for why in by_role.get(role, ())))

    def domain(self, schema: str | None, name: str) -> list[str]:
        """Why checking values of domain ``name`` runs user code; [] when it does not."""
        return list(dict.fromkeys(why for (d_schema, d_name), whys in self.domains.items()
                                  if d_name == name and (schema is None or d_schema in (schema, ANY_SCHEMA)) for why in whys))

    def add_relation(self, name: Name, roles: tuple[str, ...], why: str) -> None:
        """Record that ``roles`` of relation ``name`` run user code, for the reason ``why``."""
        by_role = self.relations.setdefault(name, {})
        for role in roles:
            if why not in by_role.setdefault(role, []):
                by_role[role].append(why)


def _named(pairs: set[Name], schema: str | None, name: str) -> bool:
    return any(n == name and (schema is None or s in (schema, ANY_SCHEMA)) for s, n in pairs)
