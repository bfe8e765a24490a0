"""An independent judge of schema equality, read straight from pg_catalog.

``snapshot(url)`` reads a database's schema into plain JSON-able data and
``differences(expected, actual)`` lists, one readable line each, what tells
two snapshots apart. It exists to check migrations: "did applying this
migration reach the desired state?" is only a meaningful question if it is
answered by code that shares nothing with the diff engine that wrote the
migration, so this module deliberately does not use ``inspect``/``diff``.

Each category is one set-based query. Objects are keyed by their names
(``schema.table.column``, ``schema.index``...): names are part of a schema,
auto-generated ones included, so two databases whose only difference is an
index name do differ. OIDs and the database name never appear. Column
order is ignored; everything whose order is meaningful (enum labels,
composite type attributes, index columns, inheritance parents) keeps it.

Left out: system schemas, objects that belong to an extension (pg_depend
deptype 'e'), temporary objects, and the migration version tables
``schema_migrations`` / ``schemadiff_history`` with everything hanging off
them (their indexes, constraints, sequences, triggers, policies).
"""

from __future__ import annotations

import json
from .. import dburl

Snapshot = dict[str, dict[str, object]]

VERSION_TABLES = ("schema_migrations", "schemadiff_history")

# Shared SQL fragments. ``{n}`` is a pg_namespace alias, ``{c}`` a pg_class
# alias, ``{o}``/``{cls}`` an object's oid and catalog for the extension test.
_USER_SCHEMA = (
    "{n}.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')"
    " AND {n}.nspname NOT LIKE 'pg\\_temp\\_%' AND {n}.nspname NOT LIKE 'pg\\_toast\\_temp\\_%'"
)
_NOT_EXTENSION_MEMBER = (
    "NOT EXISTS (SELECT 1 FROM pg_depend AS ext_dep WHERE ext_dep.classid = '{cls}'::regclass"
    " AND ext_dep.objid = {o} AND ext_dep.deptype = 'e')"
)
# Objects created by initdb have OIDs below FirstNormalObjectId.
_FIRST_USER_OID = 16384
# The version tables under golang-migrate's default names, and the relations
# ``snapshot`` is told to leave out (their OIDs in the session setting
# below): the runner's bookkeeping, and what a service excludes, are not schema.
BOOKKEEPING_SETTING = "schemadiff.bookkeeping_oids"
_NOT_VERSION_TABLE = (
    "({c}.relname NOT IN ('schema_migrations', 'schemadiff_history')"
    " AND {c}.oid::text <> ALL (string_to_array(coalesce(current_setting('" + BOOKKEEPING_SETTING + "', true), ''),"
    " ',')))"
)


def _user_schema(n: str) -> str:
    return _USER_SCHEMA.format(n=n)


def _not_member(o: str, cls: str) -> str:
    return _NOT_EXTENSION_MEMBER.format(o=o, cls=cls)


def _not_version_table(c: str) -> str:
    return _NOT_VERSION_TABLE.format(c=c)


_QUALIFIED = "quote_ident({n}.nspname) || '.' || quote_ident({c}.relname)"


def _qualified(n: str, c: str) -> str:
    return _QUALIFIED.format(n=n, c=c)


# Every query returns (key text, definition jsonb). jsonb_strip_nulls keeps
# the definitions short: a missing field means "not set".
_QUERIES: dict[str, str] = {
    "schemas": f"""
        SELECT quote_ident(n.nspname), '{{}}'::jsonb
        FROM pg_namespace AS n
        WHERE {_user_schema('n')} AND {_not_member('n.oid', 'pg_namespace')}
    """,
    "extensions": """
        SELECT quote_ident(e.extname), jsonb_build_object('schema', n.nspname, 'version', e.extversion)
        FROM pg_extension AS e JOIN pg_namespace AS n ON n.oid = e.extnamespace
    """,
    "relations": f"""
        SELECT {_qualified('n', 'c')}, jsonb_strip_nulls(jsonb_build_object(
            'kind', CASE c.relkind WHEN 'r' THEN 'table' WHEN 'p' THEN 'partitioned table'
                                   WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view'
                                   WHEN 'f' THEN 'foreign table' END,
            'persistence', CASE c.relpersistence WHEN 'u' THEN 'unlogged' END,
            'partition_key', CASE WHEN c.relkind = 'p' THEN pg_get_partkeydef(c.oid) END,
            'partition_bound', CASE WHEN c.relispartition THEN pg_get_expr(c.relpartbound, c.oid) END,
            'parents', (SELECT jsonb_agg({_qualified('pn', 'pc')} ORDER BY i.inhseqno)
                        FROM pg_inherits AS i JOIN pg_class AS pc ON pc.oid = i.inhparent
                        JOIN pg_namespace AS pn ON pn.oid = pc.relnamespace WHERE i.inhrelid = c.oid),
            'of_type', CASE WHEN c.reloftype <> 0 THEN format_type(c.reloftype, NULL) END,
            'row_security', CASE WHEN c.relrowsecurity THEN true END,
            'force_row_security', CASE WHEN c.relforcerowsecurity THEN true END,
            'replica_identity', CASE WHEN c.relkind IN ('r', 'p') AND c.relreplident <> 'd'
                                     THEN c.relreplident::text END,
            'access_method', (SELECT am.amname FROM pg_am AS am WHERE am.oid = c.relam AND am.amname <> 'heap'),
            'options', (SELECT jsonb_agg(o ORDER BY o) FROM unnest(c.reloptions) AS o),
            'definition', CASE WHEN c.relkind IN ('v', 'm') THEN pg_get_viewdef(c.oid, true) END,
            'with_no_data', CASE WHEN c.relkind = 'm' AND NOT c.relispopulated THEN true END
        ))
        FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND {_user_schema('n')}
          AND {_not_version_table('c')} AND {_not_member('c.oid', 'pg_class')}
    """,
    "columns": f"""
        SELECT {_qualified('n', 'c')} || '.' || quote_ident(a.attname), jsonb_strip_nulls(jsonb_build_object(
            'type', format_type(a.atttypid, a.atttypmod),
            'not_null', CASE WHEN a.attnotnull THEN true END,
            'default', CASE WHEN a.attgenerated = '' THEN pg_get_expr(d.adbin, d.adrelid) END,
            'generated', CASE WHEN a.attgenerated = 's' THEN pg_get_expr(d.adbin, d.adrelid) END,
            'identity', CASE a.attidentity WHEN 'a' THEN 'always' WHEN 'd' THEN 'by default' END,
            'collation', (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
                          FROM pg_collation AS co JOIN pg_namespace AS cn ON cn.oid = co.collnamespace
                          WHERE co.oid = a.attcollation AND a.attcollation <> t.typcollation),
            'storage', CASE WHEN a.attstorage <> t.typstorage THEN a.attstorage::text END,
            'compression', NULLIF(a.attcompression::text, ''),
            'statistics', CASE WHEN a.attstattarget >= 0 THEN a.attstattarget END,
            'options', (SELECT jsonb_agg(o ORDER BY o) FROM unnest(a.attoptions) AS o)
        ))
        FROM pg_attribute AS a
        JOIN pg_class AS c ON c.oid = a.attrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        JOIN pg_type AS t ON t.oid = a.atttypid
        LEFT JOIN pg_attrdef AS d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
        WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
          AND {_user_schema('n')} AND {_not_version_table('c')} AND {_not_member('c.oid', 'pg_class')}
    """,
    # A foreign key that references a partitioned table is implemented by one
    # extra pg_constraint row per referenced partition, on the same table and
    # with the same name; those are internal and left out.
    "constraints": f"""
        SELECT {_qualified('n', 'c')} || '.' || quote_ident(con.conname), jsonb_strip_nulls(jsonb_build_object(
            'definition', pg_get_constraintdef(con.oid),
            'deferrable', CASE WHEN con.condeferrable THEN true END,
            'initially_deferred', CASE WHEN con.condeferred THEN true END,
            'not_valid', CASE WHEN NOT con.convalidated THEN true END
        ))
        FROM pg_constraint AS con
        JOIN pg_class AS c ON c.oid = con.conrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE {_user_schema('n')} AND {_not_version_table('c')} AND {_not_member('c.oid', 'pg_class')}
          AND NOT EXISTS (SELECT 1 FROM pg_constraint AS parent
                          WHERE parent.oid = con.conparentid AND parent.conrelid = con.conrelid)
    """,
    "indexes": f"""
        SELECT {_qualified('n', 'ic')}, jsonb_strip_nulls(jsonb_build_object(
            'definition', pg_get_indexdef(i.indexrelid),
            'parent', (SELECT {_qualified('pn', 'pc')} FROM pg_inherits AS inh
                       JOIN pg_class AS pc ON pc.oid = inh.inhparent
                       JOIN pg_namespace AS pn ON pn.oid = pc.relnamespace WHERE inh.inhrelid = ic.oid),
            'clustered', CASE WHEN i.indisclustered THEN true END,
            'replica_identity', CASE WHEN i.indisreplident THEN true END,
            'invalid', CASE WHEN NOT i.indisvalid THEN true END
        ))
        FROM pg_index AS i
        JOIN pg_class AS ic ON ic.oid = i.indexrelid
        JOIN pg_class AS c ON c.oid = i.indrelid
        JOIN pg_namespace AS n ON n.oid = ic.relnamespace
        WHERE {_user_schema('n')} AND {_not_version_table('c')} AND {_not_member('c.oid', 'pg_class')}
    """,
    "sequences": f"""
        SELECT {_qualified('n', 'c')}, jsonb_strip_nulls(jsonb_build_object(
            'type', format_type(s.seqtypid, NULL),
            'start', s.seqstart, 'increment', s.seqincrement,
            'min', s.seqmin, 'max', s.seqmax, 'cache', s.seqcache, 'cycle', s.seqcycle,
            'persistence', CASE c.relpersistence WHEN 'u' THEN 'unlogged' END,
            'owned_by', {_qualified('tn', 'tc')} || '.' || quote_ident(ta.attname),
            'identity', CASE WHEN owner.deptype = 'i' THEN true END
        ))
        FROM pg_sequence AS s
        JOIN pg_class AS c ON c.oid = s.seqrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        LEFT JOIN pg_depend AS owner ON owner.classid = 'pg_class'::regclass AND owner.objid = c.oid
             AND owner.refclassid = 'pg_class'::regclass AND owner.deptype IN ('a', 'i')
        LEFT JOIN pg_class AS tc ON tc.oid = owner.refobjid
        LEFT JOIN pg_namespace AS tn ON tn.oid = tc.relnamespace
        LEFT JOIN pg_attribute AS ta ON ta.attrelid = owner.refobjid AND ta.attnum = owner.refobjsubid
        WHERE {_user_schema('n')} AND {_not_member('c.oid', 'pg_class')}
          AND (tc.relname IS NULL OR {_not_version_table('tc')})
    """,
    "functions": f"""
        SELECT quote_ident(n.nspname) || '.' || quote_ident(p.proname)
               || '(' || pg_get_function_identity_arguments(p.oid) || ')',
               CASE WHEN p.prokind = 'a' THEN jsonb_strip_nulls(jsonb_build_object(
                   'kind', 'aggregate',
                   'returns', format_type(p.prorettype, NULL),
                   'transition', ag.aggtransfn::regproc::text,
                   'state_type', format_type(ag.aggtranstype, NULL),
                   'final', NULLIF(ag.aggfinalfn::regproc::text, '-'),
                   'combine', NULLIF(ag.aggcombinefn::regproc::text, '-'),
                   'initial', ag.agginitval,
                   'sort_operator', NULLIF(ag.aggsortop::regoperator::text, '0')))
               ELSE jsonb_build_object(
                   'kind', CASE p.prokind WHEN 'p' THEN 'procedure' ELSE 'function' END,
                   'definition', pg_get_functiondef(p.oid))
               END
        FROM pg_proc AS p
        JOIN pg_namespace AS n ON n.oid = p.pronamespace
        LEFT JOIN pg_aggregate AS ag ON ag.aggfnoid = p.oid
        WHERE {_user_schema('n')} AND {_not_member('p.oid', 'pg_proc')}
    """,
    "triggers": f"""
        SELECT {_qualified('n', 'c')} || '.' || quote_ident(tg.tgname), jsonb_strip_nulls(jsonb_build_object(
            'definition', pg_get_triggerdef(tg.oid),
            'enabled', CASE tg.tgenabled WHEN 'O' THEN NULL WHEN 'D' THEN 'disabled'
                                         WHEN 'R' THEN 'replica' WHEN 'A' THEN 'always' END
        ))
        FROM pg_trigger AS tg
        JOIN pg_class AS c ON c.oid = tg.tgrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE NOT tg.tgisinternal AND {_user_schema('n')} AND {_not_version_table('c')}
          AND {_not_member('c.oid', 'pg_class')}
    """,
    "event_triggers": f"""
        SELECT quote_ident(e.evtname), jsonb_strip_nulls(jsonb_build_object(
            'event', e.evtevent, 'function', e.evtfoid::regprocedure::text,
            'tags', (SELECT jsonb_agg(tag ORDER BY tag) FROM unnest(e.evttags) AS tag),
            'enabled', CASE e.evtenabled WHEN 'O' THEN NULL WHEN 'D' THEN 'disabled'
                                         WHEN 'R' THEN 'replica' WHEN 'A' THEN 'always' END
        ))
        FROM pg_event_trigger AS e
        WHERE {_not_member('e.oid', 'pg_event_trigger')}
    """,
    # User-defined types: enums, domains, composite types, ranges, base
    # types. Array types and the row types of tables/views come with their
    # element type or relation and are not objects of their own.
    "types": f"""
        SELECT quote_ident(n.nspname) || '.' || quote_ident(t.typname), jsonb_strip_nulls(jsonb_build_object(
            'kind', CASE t.typtype WHEN 'e' THEN 'enum' WHEN 'd' THEN 'domain' WHEN 'c' THEN 'composite'
                                   WHEN 'r' THEN 'range' WHEN 'b' THEN 'base' ELSE t.typtype::text END,
            'labels', CASE WHEN t.typtype = 'e' THEN
                (SELECT jsonb_agg(e.enumlabel ORDER BY e.enumsortorder) FROM pg_enum AS e WHERE e.enumtypid = t.oid)
                END,
            'base_type', CASE WHEN t.typtype = 'd' THEN format_type(t.typbasetype, t.typtypmod) END,
            'default', t.typdefault,
            'not_null', CASE WHEN t.typnotnull THEN true END,
            'collation', (SELECT quote_ident(cn.nspname) || '.' || quote_ident(co.collname)
                          FROM pg_collation AS co JOIN pg_namespace AS cn ON cn.oid = co.collnamespace
                          JOIN pg_type AS bt ON bt.oid = t.typbasetype
                          WHERE t.typtype = 'd' AND co.oid = t.typcollation AND t.typcollation <> bt.typcollation),
            'checks', CASE WHEN t.typtype = 'd' THEN
                (SELECT jsonb_object_agg(dc.conname, pg_get_constraintdef(dc.oid))
                 FROM pg_constraint AS dc WHERE dc.contypid = t.oid) END,
            'attributes', CASE WHEN t.typtype = 'c' THEN
                (SELECT jsonb_agg(jsonb_build_array(a.attname, format_type(a.atttypid, a.atttypmod),
                                  CASE WHEN a.attcollation <> at.typcollation THEN a.attcollation::regcollation::text END)
                                  ORDER BY a.attnum)
                 FROM pg_attribute AS a JOIN pg_type AS at ON at.oid = a.atttypid
                 WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped) END,
            'subtype', (SELECT format_type(r.rngsubtype, NULL) FROM pg_range AS r WHERE r.rngtypid = t.oid),
            'subtype_opclass', (SELECT oc.opcname FROM pg_range AS r JOIN pg_opclass AS oc ON oc.oid = r.rngsubopc
                                WHERE r.rngtypid = t.oid),
            'input', CASE WHEN t.typtype = 'b' THEN t.typinput::text END,
            'output', CASE WHEN t.typtype = 'b' THEN t.typoutput::text END
        ))
        FROM pg_type AS t
        JOIN pg_namespace AS n ON n.oid = t.typnamespace
        LEFT JOIN pg_class AS tr ON tr.oid = t.typrelid
        WHERE t.typtype IN ('e', 'd', 'c', 'r', 'b')
          AND (t.typrelid = 0 OR tr.relkind = 'c')
          AND NOT EXISTS (SELECT 1 FROM pg_type AS elem WHERE elem.typarray = t.oid)
          AND {_user_schema('n')} AND {_not_member('t.oid', 'pg_type')}
    """,
    "policies": f"""
        SELECT {_qualified('n', 'c')} || '.' || quote_ident(pol.polname), jsonb_strip_nulls(jsonb_build_object(
            'command', CASE pol.polcmd WHEN '*' THEN 'ALL' WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT'
                                       WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' END,
            'permissive', pol.polpermissive,
            'roles', (SELECT jsonb_agg(CASE WHEN r.role = 0 THEN 'public' ELSE pg_get_userbyid(r.role)::text END
                                       ORDER BY 1)
                      FROM unnest(pol.polroles) AS r(role)),
            'using', pg_get_expr(pol.polqual, pol.polrelid),
            'with_check', pg_get_expr(pol.polwithcheck, pol.polrelid)
        ))
        FROM pg_policy AS pol
        JOIN pg_class AS c ON c.oid = pol.polrelid
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE {_user_schema('n')} AND {_not_version_table('c')} AND {_not_member('c.oid', 'pg_class')}
    """,
    # Rewrite rules (CREATE RULE), except the _RETURN rule that is a view's
    # own definition (compared under "relations").
    "rules": f"""
        SELECT {_qualified('n', 'c')} || '.' || quote_ident(r.rulename), jsonb_strip_nulls(jsonb_build_object(
            'definition', pg_get_ruledef(r.oid, true),
            'enabled', CASE r.ev_enabled WHEN 'O' THEN NULL WHEN 'D' THEN 'disabled'
                                         WHEN 'R' THEN 'replica' WHEN 'A' THEN 'always' END
        ))
        FROM pg_rewrite AS r
        JOIN pg_class AS c ON c.oid = r.ev_class
        JOIN pg_namespace AS n ON n.oid = c.relnamespace
        WHERE r.rulename <> '_RETURN' AND {_user_schema('n')} AND {_not_version_table('c')}
          AND {_not_member('c.oid', 'pg_class')}
    """,
    # Extended statistics (CREATE STATISTICS): kinds, columns and
    # expressions, the table, and the per-object statistics target.
    "statistics": f"""
        SELECT quote_ident(n.nspname) || '.' || quote_ident(s.stxname), jsonb_strip_nulls(jsonb_build_object(
            'table', {_qualified('tn', 'c')},
            'kinds', (SELECT jsonb_agg(k ORDER BY k) FROM unnest(s.stxkind) AS k),
            'columns', (SELECT jsonb_agg(a.attname ORDER BY a.attnum) FROM pg_attribute AS a
                        WHERE a.attrelid = s.stxrelid AND a.attnum = ANY (s.stxkeys)),
            'expressions', pg_get_expr(s.stxexprs, s.stxrelid),
            'target', CASE WHEN s.stxstattarget >= 0 THEN s.stxstattarget END
        ))
        FROM pg_statistic_ext AS s
        JOIN pg_namespace AS n ON n.oid = s.stxnamespace
        JOIN pg_class AS c ON c.oid = s.stxrelid
        JOIN pg_namespace AS tn ON tn.oid = c.relnamespace
        WHERE {_user_schema('n')} AND {_not_version_table('c')} AND {_not_member('s.oid', 'pg_statistic_ext')}
    """,
    # Kinds of objects the diff engine does not create, listed so that a
    # desired schema holding one is refused by verification ("missing
    # collation ...") instead of passing with the object silently left out.
    # Only their existence and, for collations, their definition are compared.
    "other_objects": f"""
        SELECT ident.type || ' ' || ident.identity, jsonb_strip_nulls(jsonb_build_object(
            'kind', ident.type,
            'definition', CASE WHEN o.cls = 'pg_collation'::regclass THEN
                -- all columns but oids and the library version (names differ across releases)
                (SELECT to_jsonb(co) - 'oid' - 'collnamespace' - 'collowner' - 'collversion'
                 FROM pg_collation AS co WHERE co.oid = o.oid) END
        ))
        FROM (SELECT 'pg_collation'::regclass AS cls, oid FROM pg_collation
              UNION ALL SELECT 'pg_cast'::regclass, oid FROM pg_cast
              UNION ALL SELECT 'pg_operator'::regclass, oid FROM pg_operator
              UNION ALL SELECT 'pg_opclass'::regclass, oid FROM pg_opclass
              UNION ALL SELECT 'pg_opfamily'::regclass, oid FROM pg_opfamily
              UNION ALL SELECT 'pg_am'::regclass, oid FROM pg_am
              UNION ALL SELECT 'pg_conversion'::regclass, oid FROM pg_conversion
              UNION ALL SELECT 'pg_language'::regclass, oid FROM pg_language
              UNION ALL SELECT 'pg_transform'::regclass, oid FROM pg_transform
              UNION ALL SELECT 'pg_ts_config'::regclass, oid FROM pg_ts_config
              UNION ALL SELECT 'pg_ts_dict'::regclass, oid FROM pg_ts_dict
              UNION ALL SELECT 'pg_ts_parser'::regclass, oid FROM pg_ts_parser
              UNION ALL SELECT 'pg_ts_template'::regclass, oid FROM pg_ts_template
              UNION ALL SELECT 'pg_foreign_data_wrapper'::regclass, oid FROM pg_foreign_data_wrapper
              UNION ALL SELECT 'pg_foreign_server'::regclass, oid FROM pg_foreign_server
              UNION ALL SELECT 'pg_publication'::regclass, oid FROM pg_publication) AS o
        CROSS JOIN LATERAL pg_identify_object(o.cls, o.oid, 0) AS ident
        WHERE o.oid >= {_FIRST_USER_OID}
          AND NOT EXISTS (SELECT 1 FROM pg_depend AS ext_dep WHERE ext_dep.classid = o.cls
                          AND ext_dep.objid = o.oid AND ext_dep.deptype IN ('e', 'i'))
    """,
    # Comments on any kind of object, named the way PostgreSQL names them
    # ("table column public.users.email", "index public.users_email_idx").
    "comments": f"""
        SELECT ident.type || ' ' || ident.identity, to_jsonb(d.description)
        -- Rows that cannot pass the WHERE below are left out before pg_identify_object runs: the OR
        -- there reads its result, so the planner would call it for every description (several
        -- thousand, the built-in functions'), which took half of a snapshot.
        FROM (SELECT * FROM pg_description
              WHERE objoid >= {_FIRST_USER_OID} OR classoid = 'pg_namespace'::regclass) AS d
        CROSS JOIN LATERAL pg_identify_object(d.classoid, d.objoid, d.objsubid) AS ident
        WHERE (d.objoid >= {_FIRST_USER_OID}
               OR (d.classoid = 'pg_namespace'::regclass AND ident.identity = 'public'))
          AND d.classoid <> 'pg_database'::regclass
          AND (ident.schema IS NULL OR (
               ident.schema NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
               AND ident.schema NOT LIKE 'pg\\_temp\\_%' AND ident.schema NOT LIKE 'pg\\_toast\\_temp\\_%'))
          AND NOT EXISTS (SELECT 1 FROM pg_depend AS ext_dep WHERE ext_dep.classid = d.classoid
                          AND ext_dep.objid = d.objoid AND ext_dep.deptype = 'e')
          AND NOT EXISTS (SELECT 1 FROM pg_class AS vc WHERE d.classoid = 'pg_class'::regclass
                          AND vc.oid = d.objoid AND NOT ({_not_version_table('vc')}))
    """,
}

CATEGORIES = tuple(_QUERIES)

# ---------------------------------------------------------------- privileges and owners
#
# Every object that has an ACL, keyed by pg_identify_object ("table
# public.t", "table column public.t.a", "function public.f()"), with its
# effective ACL (a NULL ACL is acldefault for its kind and owner: the
# PostgreSQL docs, "Privileges", Table 5.2) as sorted "grantee:PRIVILEGE"
# strings, "*" marking WITH GRANT OPTION. Objects whose ACL is empty are
# left out. Unless owners are judged, the owner's own entries are left out
# too: owners differ between environments. ``{owner}`` is replaced by the
# filter on the owner.

_ACL_OBJECTS = f"""
    SELECT 'pg_class'::regclass AS cls, c.oid, 0 AS sub, c.relowner AS owner,
           COALESCE(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner)) AS acl
    FROM pg_class AS c JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND {_user_schema('n')} AND {_not_version_table('c')}
      AND {_not_member('c.oid', 'pg_class')}
      AND NOT EXISTS (SELECT 1 FROM pg_depend AS seq_owner JOIN pg_class AS vt ON vt.oid = seq_owner.refobjid
                      WHERE seq_owner.classid = 'pg_class'::regclass AND seq_owner.objid = c.oid
                        AND seq_owner.refclassid = 'pg_class'::regclass AND seq_owner.deptype IN ('a', 'i')
                        AND NOT ({_not_version_table('vt')}))
    UNION ALL
    SELECT 'pg_class'::regclass, c.oid, a.attnum, c.relowner, a.attacl
    FROM pg_attribute AS a JOIN pg_class AS c ON c.oid = a.attrelid JOIN pg_namespace AS n ON n.oid = c.relnamespace
    WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped AND {_user_schema('n')}
      AND {_not_version_table('c')} AND {_not_member('c.oid', 'pg_class')}
    UNION ALL
    SELECT 'pg_proc'::regclass, p.oid, 0, p.proowner, COALESCE(p.proacl, acldefault('f'::"char", p.proowner))
    FROM pg_proc AS p JOIN pg_namespace AS n ON n.oid = p.pronamespace
    WHERE {_user_schema('n')} AND {_not_member('p.oid', 'pg_proc')}
    UNION ALL
    SELECT 'pg_type'::regclass, t.oid, 0, t.typowner, COALESCE(t.typacl, acldefault('T'::"char", t.typowner))
    FROM pg_type AS t JOIN pg_namespace AS n ON n.oid = t.typnamespace LEFT JOIN pg_class AS tr ON tr.oid = t.typrelid
    WHERE t.typtype IN ('e', 'd', 'c', 'r', 'b') AND (t.typrelid = 0 OR tr.relkind = 'c')
      AND NOT EXISTS (SELECT 1 FROM pg_type AS elem WHERE elem.typarray = t.oid)
      AND {_user_schema('n')} AND {_not_member('t.oid', 'pg_type')}
    UNION ALL
    SELECT 'pg_namespace'::regclass, n.oid, 0, n.nspowner, COALESCE(n.nspacl, acldefault('n'::"char", n.nspowner))
    FROM pg_namespace AS n WHERE {_user_schema('n')} AND {_not_member('n.oid', 'pg_namespace')}
    UNION ALL
    SELECT 'pg_language'::regclass, l.oid, 0, l.lanowner, COALESCE(l.lanacl, acldefault('l'::"char", l.lanowner))
    FROM pg_language AS l
"""

_GRANTEE = "CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(e.grantee)::text END"
_ENTRY = f"{_GRANTEE} || ':' || e.privilege_type || CASE WHEN e.is_grantable THEN '*' ELSE '' END"

_PRIVILEGE_QUERIES: dict[str, str] = {
    "privileges": f"""
        SELECT ident.type || ' ' || ident.identity, jsonb_agg({_ENTRY} ORDER BY {_ENTRY})
        FROM ({_ACL_OBJECTS}) AS o
        CROSS JOIN LATERAL aclexplode(o.acl) AS e
        CROSS JOIN LATERAL pg_identify_object(o.cls, o.oid, o.sub) AS ident
        WHERE {{owner}}
        GROUP BY 1
    """,
    # ALTER DEFAULT PRIVILEGES: one row per (role, schema, object type).
    # The role that reads (who applies migrations; the shadow's loader)
    # is "current role", so that two environments with differently named
    # deploy roles compare equal; a global row's entries for the role
    # itself are its own objects' owner entries, left out.
    "default_privileges": f"""
        SELECT CASE WHEN d.defaclrole = (SELECT oid FROM pg_roles WHERE rolname = current_user) THEN 'current role'
                    ELSE 'role ' || quote_ident(pg_get_userbyid(d.defaclrole)::text) END
               || COALESCE(' in schema ' || quote_ident(n.nspname), '') || ' on '
               || CASE d.defaclobjtype WHEN 'r' THEN 'tables' WHEN 'S' THEN 'sequences' WHEN 'f' THEN 'functions'
                                       WHEN 'T' THEN 'types' WHEN 'n' THEN 'schemas' END,
               COALESCE((SELECT jsonb_agg({_ENTRY} ORDER BY {_ENTRY}) FROM aclexplode(d.defaclacl) AS e
                         WHERE e.grantee <> d.defaclrole), '[]'::jsonb)
        FROM pg_default_acl AS d LEFT JOIN pg_namespace AS n ON n.oid = d.defaclnamespace
        WHERE d.defaclnamespace = 0 OR {_user_schema('n')}
    """,
    "owners": f"""
        SELECT ident.type || ' ' || ident.identity, to_jsonb(pg_get_userbyid(o.owner)::text)
        FROM ({_ACL_OBJECTS}) AS o
        CROSS JOIN LATERAL pg_identify_object(o.cls, o.oid, o.sub) AS ident
        WHERE o.sub = 0 AND o.cls <> 'pg_language'::regclass  -- the bootstrap superuser's, per server
    """,
}


def snapshot(url: str, *, owners: bool = False, bookkeeping: tuple[tuple[str, str], ...] = ()) -> Snapshot:
    """The schema of the database at ``url``, normalised for comparison.

    Privileges and default privileges are always in it; owners only with
    ``owners`` (and then the owner's own privileges are judged too).
    ``bookkeeping``: (schema, relation) pairs left out with everything on
    them, as ``schema_migrations`` and ``schemadiff_history`` always are:
    version tables under other names (``x-migrations-table``), and for
    apply's drift check the relations a service's ``exclude`` list names;
    a pair naming no relation is ignored. Raises ``dburl``'s connection
    errors.
    """
    result: Snapshot = {}
    queries = dict(_QUERIES)
    queries["privileges"] = _PRIVILEGE_QUERIES["privileges"].format(
        owner="true" if owners else "e.grantee <> o.owner")
    queries["default_privileges"] = _PRIVILEGE_QUERIES["default_privileges"]
    if owners:
        queries["owners"] = _PRIVILEGE_QUERIES["owners"]
    with dburl.connect(url, what="database", autocommit=True) as conn:
        # Names in pg_get_*def output are qualified relative to the search
        # path; pin it so that two databases render the same way.
        conn.execute("SET search_path = pg_catalog")
        oids = [row[0] for schema, table in bookkeeping
                for row in [conn.execute("SELECT to_regclass(format('%%I.%%I', %s::text, %s::text))::oid::text",
                                         [schema, table]).fetchone()] if row and row[0]]
        conn.execute("SELECT set_config(%s, %s, false)", [BOOKKEEPING_SETTING, ",".join(oids)])
        for category, query in queries.items():
            rows = conn.execute(query).fetchall()
            result[category] = {key: definition for key, definition in rows}
    return result


# ---------------------------------------------------------------- differences

_NOUNS = {
    "schemas": "schema",
    "extensions": "extension",
    "columns": "column",
    "constraints": "constraint",
    "indexes": "index",
    "sequences": "sequence",
    "functions": "function",
    "triggers": "trigger",
    "event_triggers": "event trigger",
    "policies": "policy",
    "rules": "rule",
    "statistics": "statistics object",
    "privileges": "privileges on",
    "default_privileges": "default privileges of",
    "owners": "owner of",
}


def _noun(category: str, definition: object) -> str:
    if category in ("relations", "types") and isinstance(definition, dict) and "kind" in definition:
        return str(definition["kind"]) if category == "relations" else f"{definition['kind']} type"
    if category == "functions" and isinstance(definition, dict):
        return str(definition.get("kind", "function"))
    if category == "comments":
        return "comment on"
    if category == "other_objects":
        return "object the diff engine does not manage:"
    return _NOUNS.get(category, category.rstrip("s"))


def _flat(value: object) -> str:
    """One-line text of a value: strings as they are, the rest as compact JSON."""
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, separators=(",", ":"))
    return " ".join(text.split())


def _summary(category: str, definition: object) -> str:
    """What an object is, in one short line, for "missing"/"unexpected" lines."""
    if not isinstance(definition, dict):
        return _flat(definition)
    if category == "other_objects":
        return _flat(definition["definition"]) if "definition" in definition else "(not created by migrations)"
    if "definition" in definition:
        return _flat(definition["definition"])
    if category == "columns":
        parts = [str(definition.get("type"))]
        for field, word in (("collation", "collate"), ("default", "default"), ("generated", "generated always as")):
            if field in definition:
                parts.append(f"{word} {definition[field]}")
        if "identity" in definition:
            parts.append(f"generated {definition['identity']} as identity")
        if definition.get("not_null"):
            parts.append("not null")
        rest = {k: v for k, v in definition.items() if k not in ("type", "collation", "default", "generated", "identity", "not_null")}
        if rest:
            parts.append(_flat(rest))
        return " ".join(parts)
    return _flat({k: v for k, v in definition.items() if k != "kind"})


def _contrast(expected: str, actual: str, context: int = 40, limit: int = 160) -> tuple[str, str]:
    """Trim two long texts to the region around their first difference."""
    if len(expected) <= limit and len(actual) <= limit:
        return expected, actual
    prefix = 0
    while prefix < min(len(expected), len(actual)) and expected[prefix] == actual[prefix]:
        prefix += 1
    suffix = 0
    while (suffix < min(len(expected), len(actual)) - prefix
           and expected[-1 - suffix] == actual[-1 - suffix]):
        suffix += 1
    start = max(0, prefix - context)

    def cut(text: str) -> str:
        end = min(len(text), len(text) - suffix + context)
        piece = text[start:end]
        if len(piece) > limit:
            piece = piece[:limit] + "..."
        return ("..." if start > 0 else "") + piece + ("..." if end < len(text) and not piece.endswith("...") else "")

    return cut(expected), cut(actual)


def _field_differences(expected: object, actual: object) -> list[str]:
    if not (isinstance(expected, dict) and isinstance(actual, dict)):
        e, a = _contrast(_flat(expected), _flat(actual))
        return [f"expected {e!r}, got {a!r}"]
    parts = []
    for field in sorted(set(expected) | set(actual)):
        if field not in actual:
            parts.append(f"{field}: expected {_flat(expected[field])!r}, not set")
        elif field not in expected:
            parts.append(f"{field}: not expected, got {_flat(actual[field])!r}")
        elif expected[field] != actual[field]:
            e, a = _contrast(_flat(expected[field]), _flat(actual[field]))
            parts.append(f"{field}: expected {e!r}, got {a!r}")
    return parts


def differences(expected: Snapshot, actual: Snapshot) -> list[str]:
    """Readable lines saying how ``actual`` differs from ``expected``; empty when equal."""
    lines: list[str] = []
    for category in sorted(set(expected) | set(actual)):
        want = expected.get(category, {})
        got = actual.get(category, {})
        for key in sorted(set(want) | set(got)):
            if key not in got:
                lines.append(f"missing {_noun(category, want[key])} {key}: {_summary(category, want[key])}")
            elif key not in want:
                lines.append(f"unexpected {_noun(category, got[key])} {key}: {_summary(category, got[key])}")
            elif want[key] != got[key]:
                noun = _noun(category, want[key])
                lines.append(f"{noun} {key} differs: " + "; ".join(_field_differences(want[key], got[key])))
    return sorted(lines)


def describe(snap: Snapshot) -> list[str]:
    """Every object of a snapshot as one line each (for debugging and reports)."""
    return sorted(
        f"{_noun(category, definition)} {key}: {_summary(category, definition)}"
        for category, objects in snap.items()
        for key, definition in objects.items()
    )
