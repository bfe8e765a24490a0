"""The user code a live database can run on a statement's behalf, read from its catalog.

A statement that calls nothing by name can still run code someone wrote:
PostgreSQL resolves a bare function or operator name through search_path and
the argument types, so ``lower(1)`` may run a ``public.lower(integer)``; an
INSERT fires triggers and rules and evaluates defaults, check constraints,
domain checks and index expressions; reading a view runs its query; VALIDATE
CONSTRAINT, ANALYZE or a table rewrite evaluate constraints and index
expressions; DDL fires event triggers. The down guard
(:func:`schemadiff.engine.hazards.deleting_statements`) lets a file run without
consent only when none of that can run code that deletes rows, so it needs
this catalog reading, taken before the file runs.

"User code" here is any function that is not built in, plus the few built-in
functions that change stored data (:data:`DATA_CHANGING_BUILTINS`). Built in
means an OID below PostgreSQL's ``FirstNormalObjectId`` (16384, see
``src/include/access/transam.h``: initdb creates everything below it). An
IMMUTABLE or STABLE C or internal-language function that belongs to an
extension (pgvector's ``avg``, its operators) is trusted too: creating one
needs a superuser and the extension's files on the server, not a migration
author's SQL, and it promises not to modify the database. A VOLATILE one
(dblink's ``dblink_exec``, a scheduler's ``schedule``) is user code, and so
is an SQL or PL/pgSQL function even inside an extension (``ALTER EXTENSION
... ADD FUNCTION`` can put any function there).

Not read: operator classes, base types and their I/O functions, access
methods, foreign-data wrappers and hooks (C code, superuser only), and what a
trigger or rule does when a trigger or rule it fires fires another (the first
one already counts).
"""

from __future__ import annotations

from collections import defaultdict

import psycopg

from ..engine.usercode import READ, REBUILD, WRITE, Name, UserCode

# PostgreSQL's FirstNormalObjectId: every OID below it was assigned by initdb (built in).
FIRST_NORMAL_OBJECT_ID = 16384

# Built-in functions that change stored data (large objects) when called:
# code that calls them counts as user code that deletes.
DATA_CHANGING_BUILTINS = ("lo_unlink", "lo_truncate", "lo_truncate64", "lo_put", "lowrite", "lo_from_bytea",
                          "lo_import", "lo_create", "lo_creat")

_USER_FUNCTIONS = f"""
    SELECT p.oid, n.nspname, p.proname
    FROM pg_catalog.pg_proc AS p
    JOIN pg_catalog.pg_namespace AS n ON n.oid = p.pronamespace
    JOIN pg_catalog.pg_language AS l ON l.oid = p.prolang
    WHERE (p.oid >= {FIRST_NORMAL_OBJECT_ID} AND NOT (
            l.lanname IN ('c', 'internal') AND p.provolatile <> 'v' AND EXISTS (
                SELECT FROM pg_catalog.pg_depend AS e
                WHERE e.classid = 'pg_catalog.pg_proc'::regclass AND e.objid = p.oid AND e.deptype = 'e')))
       OR (p.oid < {FIRST_NORMAL_OBJECT_ID} AND p.proname = ANY(%(builtins)s))
"""

_QUERY_FUNCTIONS = f"SELECT nspname, proname FROM ({_USER_FUNCTIONS}) AS f"

_QUERY_OPERATORS = f"""
    SELECT n.nspname, o.oprname, pg_catalog.pg_describe_object('pg_catalog.pg_operator'::regclass, o.oid, 0)
    FROM pg_catalog.pg_operator AS o JOIN pg_catalog.pg_namespace AS n ON n.oid = o.oprnamespace
    WHERE o.oprcode IN (SELECT oid FROM ({_USER_FUNCTIONS}) AS f)
"""

_QUERY_CASTS = f"""
    SELECT t.typname, c.castcontext::text, pg_catalog.pg_describe_object('pg_catalog.pg_cast'::regclass, c.oid, 0),
           c.castfunc::regprocedure::text
    FROM pg_catalog.pg_cast AS c JOIN pg_catalog.pg_type AS t ON t.oid = c.casttarget
    WHERE c.castfunc IN (SELECT oid FROM ({_USER_FUNCTIONS}) AS f)
"""

# Enabled event triggers (evtenabled 'D' is disabled; a file that enables one counts from then on).
_QUERY_EVENT_TRIGGERS = """
    SELECT evtname, evtfoid::regprocedure::text FROM pg_catalog.pg_event_trigger WHERE evtenabled <> 'D'
"""

# Rules other than a view's _RETURN: their actions are SQL that runs with the
# statement, whatever functions they call.
_QUERY_RULES = """
    SELECT n.nspname, c.relname, pg_catalog.pg_describe_object('pg_catalog.pg_rewrite'::regclass, r.oid, 0)
    FROM pg_catalog.pg_rewrite AS r
    JOIN pg_catalog.pg_class AS c ON c.oid = r.ev_class
    JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
    WHERE r.rulename <> '_RETURN'
"""

# Objects whose expressions reference user code (pg_depend records the
# functions and operators an expression uses), mapped to the relation or
# domain they belong to and to what runs them.
_QUERY_EXPRESSIONS = f"""
    WITH uf AS ({_USER_FUNCTIONS}),
    refs AS (
        SELECT d.classid, d.objid, d.objsubid,
               pg_catalog.pg_describe_object(d.refclassid, d.refobjid, 0) AS calls
        FROM pg_catalog.pg_depend AS d
        WHERE (d.refclassid = 'pg_catalog.pg_proc'::regclass AND d.refobjid IN (SELECT oid FROM uf))
           OR (d.refclassid = 'pg_catalog.pg_operator'::regclass AND d.refobjid IN (
                SELECT o.oid FROM pg_catalog.pg_operator AS o WHERE o.oprcode IN (SELECT oid FROM uf)))
    ),
    owned AS (
        SELECT r.calls, pg_catalog.pg_describe_object(r.classid, r.objid, r.objsubid) AS what,
            CASE r.classid
                WHEN 'pg_catalog.pg_attrdef'::regclass THEN (SELECT adrelid FROM pg_catalog.pg_attrdef WHERE oid = r.objid)
                WHEN 'pg_catalog.pg_constraint'::regclass THEN (SELECT NULLIF(conrelid, 0) FROM pg_catalog.pg_constraint WHERE oid = r.objid)
                WHEN 'pg_catalog.pg_class'::regclass THEN COALESCE(
                    (SELECT indrelid FROM pg_catalog.pg_index WHERE indexrelid = r.objid), r.objid)
                WHEN 'pg_catalog.pg_policy'::regclass THEN (SELECT polrelid FROM pg_catalog.pg_policy WHERE oid = r.objid)
                WHEN 'pg_catalog.pg_statistic_ext'::regclass THEN (SELECT stxrelid FROM pg_catalog.pg_statistic_ext WHERE oid = r.objid)
                WHEN 'pg_catalog.pg_rewrite'::regclass THEN (SELECT ev_class FROM pg_catalog.pg_rewrite WHERE oid = r.objid)
                WHEN 'pg_catalog.pg_trigger'::regclass THEN (SELECT tgrelid FROM pg_catalog.pg_trigger WHERE oid = r.objid)
            END AS rel,
            CASE WHEN r.classid = 'pg_catalog.pg_constraint'::regclass
                 THEN (SELECT NULLIF(contypid, 0) FROM pg_catalog.pg_constraint WHERE oid = r.objid) END AS domain,
            CASE r.classid
                WHEN 'pg_catalog.pg_policy'::regclass THEN 'read write'
                WHEN 'pg_catalog.pg_statistic_ext'::regclass THEN 'rebuild'
                WHEN 'pg_catalog.pg_trigger'::regclass THEN 'write'
                WHEN 'pg_catalog.pg_rewrite'::regclass THEN (
                    SELECT CASE WHEN w.rulename <> '_RETURN' THEN 'write'
                                WHEN c.relkind = 'm' THEN 'rebuild' ELSE 'read' END
                    FROM pg_catalog.pg_rewrite AS w JOIN pg_catalog.pg_class AS c ON c.oid = w.ev_class
                    WHERE w.oid = r.objid)
                ELSE 'write rebuild'
            END AS roles
        FROM refs AS r
    )
    SELECT o.what, o.calls, o.roles, rn.nspname, rc.relname, dn.nspname, dt.typname
    FROM owned AS o
    LEFT JOIN pg_catalog.pg_class AS rc ON rc.oid = o.rel
    LEFT JOIN pg_catalog.pg_namespace AS rn ON rn.oid = rc.relnamespace
    LEFT JOIN pg_catalog.pg_type AS dt ON dt.oid = o.domain
    LEFT JOIN pg_catalog.pg_namespace AS dn ON dn.oid = dt.typnamespace
"""

# Domains with a constraint or NOT NULL, themselves or through their base domains.
_QUERY_CHECKED_DOMAINS = """
    WITH RECURSIVE checked AS (
        SELECT t.oid FROM pg_catalog.pg_type AS t
        WHERE t.typtype = 'd' AND (t.typnotnull OR EXISTS (
            SELECT FROM pg_catalog.pg_constraint AS c WHERE c.contypid = t.oid))
        UNION
        SELECT t.oid FROM pg_catalog.pg_type AS t JOIN checked ON checked.oid = t.typbasetype WHERE t.typtype = 'd'
    )
    SELECT n.nspname, t.typname FROM checked
    JOIN pg_catalog.pg_type AS t ON t.oid = checked.oid JOIN pg_catalog.pg_namespace AS n ON n.oid = t.typnamespace
"""

# Domains over domains, and the columns typed with a domain (or an array of one).
_QUERY_DOMAIN_USES = """
    SELECT bn.nspname, b.typname, n.nspname, t.typname, NULL, NULL
    FROM pg_catalog.pg_type AS t
    JOIN pg_catalog.pg_namespace AS n ON n.oid = t.typnamespace
    JOIN pg_catalog.pg_type AS b ON b.oid = t.typbasetype
    JOIN pg_catalog.pg_namespace AS bn ON bn.oid = b.typnamespace
    WHERE t.typtype = 'd' AND b.typtype = 'd'
    UNION ALL
    SELECT dn.nspname, d.typname, NULL, NULL, rn.nspname, c.relname
    FROM pg_catalog.pg_attribute AS a
    JOIN pg_catalog.pg_class AS c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p', 'f')
    JOIN pg_catalog.pg_namespace AS rn ON rn.oid = c.relnamespace
    JOIN pg_catalog.pg_type AS at ON at.oid = a.atttypid
    JOIN pg_catalog.pg_type AS d ON d.oid = CASE WHEN at.typelem <> 0 AND at.typtype = 'b' THEN at.typelem ELSE at.oid END
    JOIN pg_catalog.pg_namespace AS dn ON dn.oid = d.typnamespace
    WHERE d.typtype = 'd' AND a.attnum > 0 AND NOT a.attisdropped
"""

# What a write to a relation also writes (partitions and inheritance children
# get the rows routed to them; an updatable view writes its base relation),
# and what reading a view reads.
_QUERY_EDGES = """
    SELECT pn.nspname, p.relname, cn.nspname, c.relname, 'child'
    FROM pg_catalog.pg_inherits AS i
    JOIN pg_catalog.pg_class AS p ON p.oid = i.inhparent JOIN pg_catalog.pg_namespace AS pn ON pn.oid = p.relnamespace
    JOIN pg_catalog.pg_class AS c ON c.oid = i.inhrelid JOIN pg_catalog.pg_namespace AS cn ON cn.oid = c.relnamespace
    UNION
    SELECT vn.nspname, v.relname, bn.nspname, b.relname, CASE WHEN v.relkind = 'm' THEN 'refresh' ELSE 'base' END
    FROM pg_catalog.pg_rewrite AS r
    JOIN pg_catalog.pg_class AS v ON v.oid = r.ev_class JOIN pg_catalog.pg_namespace AS vn ON vn.oid = v.relnamespace
    JOIN pg_catalog.pg_depend AS d ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND d.objid = r.oid
         AND d.refclassid = 'pg_catalog.pg_class'::regclass
    JOIN pg_catalog.pg_class AS b ON b.oid = d.refobjid AND b.oid <> v.oid
    JOIN pg_catalog.pg_namespace AS bn ON bn.oid = b.relnamespace
    WHERE r.rulename = '_RETURN'
"""


def read_user_code(conn: psycopg.Connection) -> UserCode:
    """Read the user code ``conn``'s database can run (see the module docstring); read-only.

    Raises psycopg.Error if the catalog cannot be read (the caller's
    connection handling turns it into a DatabaseError).
    """
    params = {"builtins": list(DATA_CHANGING_BUILTINS)}
    code = UserCode()
    code.functions = {(schema, name) for schema, name in conn.execute(_QUERY_FUNCTIONS, params).fetchall()}
    code.operators = {(schema, name) for schema, name, _ in conn.execute(_QUERY_OPERATORS, params).fetchall()}
    for target, context, cast, function in conn.execute(_QUERY_CASTS, params).fetchall():
        why = f"{cast} calls {function}"
        code.cast_targets.setdefault(target, []).append(why)
        if context in ("i", "a"):  # applied without a cast in the SQL (pg_cast.castcontext)
            code.implicit_casts.append(why)
    code.event_triggers = [f"event trigger {name} runs {function} on DDL"
                           for name, function in conn.execute(_QUERY_EVENT_TRIGGERS).fetchall()]
    for schema, relation, rule in conn.execute(_QUERY_RULES).fetchall():
        code.add_relation((schema, relation), (WRITE,), f"{rule} runs its actions")
    domains: dict[Name, list[str]] = defaultdict(list)
    for what, calls, roles, schema, relation, d_schema, d_name in conn.execute(_QUERY_EXPRESSIONS, params).fetchall():
        why = f"{what} calls {calls}"
        if d_name is not None:
            domains[(d_schema, d_name)].append(why)
        elif relation is not None:
            code.add_relation((schema, relation), tuple(roles.split()), why)
    code.checked_domains = {(schema, name) for schema, name in conn.execute(_QUERY_CHECKED_DOMAINS).fetchall()}
    uses = conn.execute(_QUERY_DOMAIN_USES).fetchall()
    changed = True
    while changed:  # domains over domains, to a fixed point
        changed = False
        for b_schema, b_name, d_schema, d_name, _, _ in uses:
            if d_name is not None and domains.get((b_schema, b_name)) and not domains.get((d_schema, d_name)):
                domains[(d_schema, d_name)] = [f"its base domain {b_schema}.{b_name}: " + domains[(b_schema, b_name)][0]]
                changed = True
    code.domains = dict(domains)
    for d_schema, d_name, _, _, schema, relation in uses:
        if relation is not None and domains.get((d_schema, d_name)):
            why = f"a column of domain {d_schema}.{d_name} ({domains[(d_schema, d_name)][0]})"
            code.add_relation((schema, relation), (WRITE, REBUILD), why)
    _propagate(code, conn.execute(_QUERY_EDGES).fetchall())
    return code


# How code reaches a relation through another: (role of the outer relation, role of the inner one).
_REACH = {
    "child": ((WRITE, WRITE), (REBUILD, REBUILD)),  # rows routed to partitions; ALTER, VALIDATE, ANALYZE recurse
    "base": ((READ, READ), (WRITE, WRITE)),  # a view reads its base relations; an updatable one writes them
    "refresh": ((REBUILD, READ),),  # REFRESH MATERIALIZED VIEW runs its query, which reads its base relations
}


def _propagate(code: UserCode, edges: list[tuple[str, str, str, str, str]]) -> None:
    """Give each relation the code it reaches through its partitions, children and base relations (see _REACH)."""
    changed = True
    while changed:
        changed = False
        for schema, name, e_schema, e_name, kind in edges:
            inner = code.relations.get((e_schema, e_name), {})
            for outer_role, inner_role in _REACH[kind]:
                for why in inner.get(inner_role, ()):
                    if why not in code.relations.get((schema, name), {}).get(outer_role, ()):
                        code.add_relation((schema, name), (outer_role,), why)
                        changed = True
