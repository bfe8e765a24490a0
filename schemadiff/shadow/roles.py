"""Roles named in SQL, so that the shadow server can have them.

A desired file that grants to ``app_reader`` (or gives a table to an owner,
or a policy to a role) does not load on a server where that role does not
exist. Roles are global to a PostgreSQL server, not part of a database's
schema: schemadiff does not manage them, but the shadow server needs them
to load and replay SQL. :func:`mentioned_roles` finds them with
PostgreSQL's own grammar (pglast); the shadow server creates the missing
ones (``ShadowServer.create_missing_roles``). Nothing here ever touches a
live database.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from ..sqlfile import Statement

# Statements that can name a role: GRANT/REVOKE (objects or roles), ALTER
# DEFAULT PRIVILEGES ... FOR ROLE, OWNER TO, CREATE/ALTER POLICY ... TO,
# CREATE SCHEMA AUTHORIZATION. A statement without any of these words is
# not parsed (parsing every CREATE TABLE of a large file costs seconds).
_MAY_NAME_ROLE = re.compile(r"\b(grant|revoke|owner|policy|authorization|privileges)\b", re.IGNORECASE)

# Role specifications that are not role names (PostgreSQL's RoleSpecType).
_NAMED = "ROLESPEC_CSTRING"


def mentioned_roles(statements: Iterable[Statement]) -> list[str]:
    """Names of the roles the statements refer to, sorted; PUBLIC and
    CURRENT_USER-like keywords excluded, roles the statements create excluded.

    Every ``RoleSpec`` of the parse trees counts (grantees, new owners,
    policy roles, ``FOR ROLE``, ``AUTHORIZATION``), and the roles granted
    by ``GRANT role TO role``.
    """
    from pglast import parser as pg_parser  # here: a cached plan never parses

    found: set[str] = set()
    created: set[str] = set()
    for statement in statements:
        if not _MAY_NAME_ROLE.search(statement.text) and "ROLE" not in statement.text.upper():
            continue
        try:
            tree = json.loads(pg_parser.parse_sql_json(statement.text))
        except pg_parser.ParseError:
            continue  # reported by whatever loads it
        _collect(tree, found, created)
    return sorted(found - created)


def _collect(tree: Any, found: set[str], created: set[str]) -> None:
    stack: list[Any] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
            continue
        if not isinstance(node, dict):
            continue
        # A RoleSpec is wrapped ({"RoleSpec": {...}}) in lists and bare where
        # the field's type says it (AlterTableCmd.newowner, authrole).
        if node.get("roletype") == _NAMED and node.get("rolename"):
            found.add(node["rolename"])
        grant_role = node.get("GrantRoleStmt")
        if isinstance(grant_role, dict):
            for granted in grant_role.get("granted_roles", ()):
                name = granted.get("AccessPriv", {}).get("priv_name")
                if name:
                    found.add(name)
        create_role = node.get("CreateRoleStmt")
        if isinstance(create_role, dict) and create_role.get("role"):
            created.add(create_role["role"])
        stack.extend(node.values())
