"""Reading a database's schema into a plain model.

One read-only transaction, a dozen set-based catalog queries for the whole
database (never one query per object), so that inspecting a thousand tables
costs about as much as inspecting ten.

Everything is read with ``search_path = ''``: PostgreSQL then qualifies every
name it prints (``public.users``, ``public.vector(3)``,
``nextval('public.users_id_seq'::regclass)``), so definitions compare equal
between two databases and the statements built from them run whatever the
search path of whoever applies them.

Only user objects are read: system schemas, objects that belong to
extensions, and the migration version tables are left out.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from . import dburl
from .engine.model import (
    Attribute,
    Column,
    Composite,
    Constraint,
    Domain,
    Enum,
    EventTrigger,
    Extension,
    Function,
    Index,
    Key,
    Namespace,
    OWNER_GRANTEE,
    Policy,
    Range,
    Rule,
    Schema,
    Sequence,
    SequenceOptions,
    Statistics,
    Table,
    Trigger,
    View,
)

if TYPE_CHECKING:
    from .engine.change import Change

# The version tables, ignored wherever they are.
VERSION_TABLES = frozenset({"schema_migrations", "schemadiff_history"})

# Fixed OIDs of the catalogs that pg_depend and pg_description point into.
PG_TYPE, PG_PROC, PG_CLASS, PG_ATTRDEF = 1247, 1255, 1259, 2604
PG_CONSTRAINT, PG_NAMESPACE, PG_REWRITE, PG_TRIGGER = 2606, 2615, 2618, 2620
PG_EXTENSION, PG_POLICY, PG_EVENT_TRIGGER = 3079, 3256, 3466
PG_STATISTIC_EXT = 3381

def diff_databases(current_url: str, desired_url: str, *, owners: bool = False) -> list[Change]:
    """Ordered statements that turn the database at current_url into the one at desired_url.

    Reads both (read-only). Down migration = diff_databases(desired_url, current_url).
    """
    from .engine.diff import diff_schemas  # the engine imports nothing of this module

    return diff_schemas(inspect_database(current_url), inspect_database(desired_url), owners=owners)


def inspect_database(url: str, *, connections: int = 1) -> Schema:
    """Read the user schema of the database at ``url`` (read-only).

    With ``connections`` > 1 the catalog queries run side by side, each
    connection in a snapshot of its own: only for a database nobody writes
    meanwhile (schemadiff's shadow databases), where all snapshots agree.
    """
    if connections > 1:
        return _read_side_by_side(url, connections)
    with open_snapshot(url) as conn:
        return read_schema(conn)


def _read_side_by_side(url: str, connections: int) -> Schema:
    """``read_schema`` with its queries sent ahead over several connections.

    The server answers the large catalog queries (columns, indexes,
    dependencies) in parallel while this thread builds the model from the
    answers that have arrived. Which queries a read sends is learnt by a
    dry run on empty answers; a query that run could not foresee (one asked
    only because of an earlier answer) is sent when it is asked.
    """
    import threading
    from collections import defaultdict, deque
    from concurrent.futures import ThreadPoolExecutor

    foreseen: list[str] = []

    def foresee(query: str, params: Any) -> list[tuple]:
        if params is None:
            foreseen.append(query)
        return []

    _Reader(foresee).read()

    local = threading.local()
    opened: list[Any] = []

    def fetch(query: str, params: Any = None) -> list[tuple]:
        conn = getattr(local, "conn", None)
        if conn is None:
            conn = local.conn = open_snapshot(url)
            opened.append(conn)
        return conn.execute(query, params).fetchall()

    pool = ThreadPoolExecutor(max_workers=connections)
    try:
        sent = defaultdict(deque)
        for query in foreseen:
            sent[query].append(pool.submit(fetch, query))

        def answer(query: str, params: Any) -> list[tuple]:
            pending = sent.get(query) if params is None else None
            future = pending.popleft() if pending else pool.submit(fetch, query, params)
            return future.result()

        return _Reader(answer).read()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for conn in opened:
            conn.close()


def open_snapshot(url: str) -> Any:
    """A connection in one read-only, repeatable-read transaction, for ``read_schema``.

    Everything read through it (the schema, its fingerprint) sees the same
    moment of the database. A context manager: the transaction ends with it.
    """
    conn = dburl.connect(url, what="database")
    conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
    conn.execute("SELECT set_config('search_path', '', true)")
    return conn


def read_schema(conn: Any) -> Schema:
    """The user schema, read through a connection from ``open_snapshot``."""
    return _Reader(lambda query, params: conn.execute(query, params).fetchall()).read()


# The catalogs that hold schema objects, or that the pg_get_*def functions
# read to print them. Statistics (pg_statistic*_data), large objects and
# subscriptions are data or secrets, not schema, and some are unreadable
# to ordinary roles.
_FINGERPRINT_CATALOGS = (
    "pg_aggregate", "pg_am", "pg_amop", "pg_amproc", "pg_attrdef", "pg_attribute", "pg_cast", "pg_class",
    "pg_collation", "pg_constraint", "pg_conversion", "pg_default_acl", "pg_depend", "pg_description", "pg_enum",
    "pg_event_trigger", "pg_extension", "pg_foreign_data_wrapper", "pg_foreign_server", "pg_foreign_table",
    "pg_index", "pg_inherits", "pg_init_privs", "pg_language", "pg_namespace", "pg_opclass", "pg_operator",
    "pg_opfamily", "pg_partitioned_table", "pg_policy", "pg_proc", "pg_publication", "pg_publication_namespace",
    "pg_publication_rel", "pg_range", "pg_rewrite", "pg_seclabel", "pg_sequence", "pg_shdescription",
    "pg_shseclabel", "pg_statistic_ext", "pg_tablespace", "pg_transform", "pg_trigger", "pg_ts_config",
    "pg_ts_config_map", "pg_ts_dict", "pg_ts_parser", "pg_ts_template", "pg_type",
)
# Catalog columns PostgreSQL overwrites in place, without a new row
# version, that change what is read: an index built CONCURRENTLY turns
# valid in place. (Vacuum's in-place statistics in pg_class are not read.)
_IN_PLACE_COLUMNS = {"pg_index": ("indisvalid", "indisready", "indislive")}
# Session settings that change how definitions are printed (constants in
# defaults and checks), and what identifies the server and the database.
_FINGERPRINT_SETTINGS = (
    "server_version_num", "DateStyle", "IntervalStyle", "TimeZone", "extra_float_digits", "bytea_output",
    "standard_conforming_strings", "server_encoding", "lc_collate", "lc_ctype",
)


def _fingerprint_sql() -> str:
    parts = []
    for catalog in _FINGERPRINT_CATALOGS:
        row = "t.ctid::text || ':' || t.xmin::text" + "".join(
            f" || ':' || t.{column}::text" for column in _IN_PLACE_COLUMNS.get(catalog, ())
        )
        parts.append(
            f"SELECT '{catalog}' AS catalog, count(*) AS n, sum(pg_catalog.hashtextextended({row}, 0)) AS h"
            f" FROM pg_catalog.{catalog} t"
        )
    settings = ", ".join(f"'{name}'" for name in _FINGERPRINT_SETTINGS)
    return f"""
        SELECT pg_catalog.concat_ws('|',
            (SELECT pg_catalog.string_agg(s.name || '=' || s.setting, ',' ORDER BY s.name)
             FROM pg_catalog.pg_settings s WHERE s.name = ANY(ARRAY[{settings}])),
            pg_catalog.pg_postmaster_start_time()::text,
            (SELECT d.oid::text FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()),
            (SELECT pg_catalog.string_agg(r.oid::text || '=' || r.rolname, ',' ORDER BY r.oid) FROM pg_catalog.pg_roles r
             WHERE r.oid = 10 OR r.oid IN (
                 SELECT d.datdba FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()
                 UNION ALL
                 SELECT s.refobjid FROM pg_catalog.pg_shdepend s
                 WHERE s.refclassid = 'pg_catalog.pg_authid'::pg_catalog.regclass
                   AND s.dbid = (SELECT d.oid FROM pg_catalog.pg_database d
                                 WHERE d.datname = pg_catalog.current_database()))),
            (SELECT pg_catalog.string_agg(c.catalog || '=' || c.n || '/' || COALESCE(c.h::text, ''), ','
                                          ORDER BY c.catalog)
             FROM ({" UNION ALL ".join(parts)}) c))
    """


def catalog_fingerprint(conn: Any) -> str | None:
    """A value that changes whenever the schema read by ``read_schema`` can have changed.

    Every row version of every catalog that defines or prints schema
    objects is counted by its physical place and the transaction that wrote
    it (``ctid``, ``xmin``): any DDL writes new row versions, so any change
    moves the sums; columns PostgreSQL updates in place are hashed by value.
    The server's start time and the database's oid tie the value to one
    running server and one database, since row places and transaction ids
    repeat across servers. Roles are shared by every database of the server:
    only those this database's objects name (owners, grantees, policy roles:
    ``pg_shdepend``), its owner and the bootstrap superuser (oid 10, whose
    objects ``pg_shdepend`` does not record) are counted, by oid and name, so
    a role renamed moves the value and a role another session creates does
    not. Computed server-side in tens of milliseconds, against hundreds for
    reading the schema, so an unchanged live database costs one query. The reverse does not hold: a vacuum that moves rows, or
    a restart, changes the value and only costs a fresh read.

    None when the server refuses the query (a role that may not read some
    catalog, a server without ``hashtextextended``): then nothing is cached.
    Must run in the snapshot the schema is read in (``open_snapshot``).
    """
    import psycopg

    try:
        with conn.transaction():  # a savepoint: a refusal leaves the snapshot usable
            row = conn.execute(_fingerprint_sql()).fetchone()
    except psycopg.Error:
        return None
    return row[0] if row and row[0] else None


_USER_NS = """
    SELECT n.oid FROM pg_catalog.pg_namespace n
    WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema'
"""


def _not_extension_member(classid: int, column: str) -> str:
    return (
        "NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e WHERE e.classid = "
        f"{classid} AND e.objid = {column} AND e.deptype = 'e')"
    )


def _collation_sql(collation_oid: str, default_oid: str) -> str:
    return f"""CASE WHEN {collation_oid} <> 0 AND {collation_oid} <> {default_oid} THEN
        (SELECT CASE WHEN cn.nspname = 'pg_catalog' THEN pg_catalog.quote_ident(co.collname)
                ELSE pg_catalog.quote_ident(cn.nspname) || '.' || pg_catalog.quote_ident(co.collname) END
         FROM pg_catalog.pg_collation co JOIN pg_catalog.pg_namespace cn ON cn.oid = co.collnamespace
         WHERE co.oid = {collation_oid}) END"""


class _Reader:
    def __init__(self, fetch: Callable[[str, Any], list[tuple]]) -> None:
        self.fetch = fetch  # (query, params) -> rows
        self.schema = Schema()
        self.keys: dict[tuple[int, int, int], Key] = {}  # (classid, objid, objsubid) -> key
        # (classid, objid, objsubid) -> the model object (a comment's target)
        self.objects: dict[tuple[int, int, int], Any] = {}

    def rows(self, query: str, params: Any = None) -> list[tuple]:
        return self.fetch(query, params)

    def read(self) -> Schema:
        self.read_schemas()
        self.read_extensions()
        self.read_types()
        self.read_relations()
        self.read_columns()
        self.read_sequences()
        self.read_constraints()
        self.read_indexes()
        self.read_functions()
        self.read_triggers()
        self.read_policies()
        self.read_event_triggers()
        self.read_rules()
        self.read_statistics()
        self.read_unmanaged()
        self.read_comments()
        self.read_depends()
        self.read_privileges()
        return self.schema

    # -- schemas, extensions, types -------------------------------------------------

    def read_schemas(self) -> None:
        for oid, name in self.rows(
            f"SELECT n.oid, n.nspname FROM pg_catalog.pg_namespace n WHERE n.oid IN ({_USER_NS})"
            f" AND {_not_extension_member(PG_NAMESPACE, 'n.oid')} ORDER BY n.nspname"
        ):
            ns = self.schema.schemas[name] = Namespace(name)
            self.register(PG_NAMESPACE, oid, 0, ("schema", name), ns)

    def read_extensions(self) -> None:
        for oid, name, schema, version in self.rows(
            "SELECT x.oid, x.extname, n.nspname, x.extversion FROM pg_catalog.pg_extension x"
            " JOIN pg_catalog.pg_namespace n ON n.oid = x.extnamespace WHERE x.extname <> 'plpgsql'"
        ):
            ext = self.schema.extensions[name] = Extension(name, schema, version)
            self.register(PG_EXTENSION, oid, 0, ("extension", name), ext)
        # Objects an extension created (the vector type, its functions and
        # operator classes) stand for the extension in the dependency graph.
        for classid, objid, extname in self.rows(
            """
            SELECT d.classid, d.objid, x.extname FROM pg_catalog.pg_depend d
            JOIN pg_catalog.pg_extension x ON x.oid = d.refobjid
            WHERE d.refclassid = 3079 AND d.deptype = 'e'
            UNION ALL
            SELECT 1247, t.typarray, x.extname FROM pg_catalog.pg_depend d
            JOIN pg_catalog.pg_extension x ON x.oid = d.refobjid
            JOIN pg_catalog.pg_type t ON t.oid = d.objid
            WHERE d.refclassid = 3079 AND d.deptype = 'e' AND d.classid = 1247 AND t.typarray <> 0
            """
        ):
            if extname in self.schema.extensions:
                self.register(classid, objid, 0, ("extension", extname), None)

    def read_types(self) -> None:
        rows = self.rows(
            f"""
            SELECT t.oid, n.nspname, t.typname, t.typtype, t.typarray, t.typrelid,
                   CASE WHEN t.typtype = 'e' THEN ARRAY(SELECT e.enumlabel FROM pg_catalog.pg_enum e
                        WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder) END,
                   CASE WHEN t.typtype = 'd' THEN pg_catalog.format_type(t.typbasetype, t.typtypmod) END,
                   t.typnotnull, pg_catalog.pg_get_expr(t.typdefaultbin, 0),
                   {_collation_sql('t.typcollation', '(SELECT b.typcollation FROM pg_catalog.pg_type b WHERE b.oid = t.typbasetype)')},
                   (SELECT pg_catalog.concat_ws(', ',
                        'SUBTYPE = ' || pg_catalog.format_type(r.rngsubtype, NULL),
                        CASE WHEN NOT opc.opcdefault THEN 'SUBTYPE_OPCLASS = ' || pg_catalog.quote_ident(opn.nspname)
                             || '.' || pg_catalog.quote_ident(opc.opcname) END,
                        CASE WHEN r.rngcollation <> 0 AND r.rngcollation <> st.typcollation
                             THEN 'COLLATION = ' || r.rngcollation::pg_catalog.regcollation::text END,
                        CASE WHEN r.rngcanonical <> 0 THEN 'CANONICAL = ' || r.rngcanonical::pg_catalog.regproc::text END,
                        CASE WHEN r.rngsubdiff <> 0 THEN 'SUBTYPE_DIFF = ' || r.rngsubdiff::pg_catalog.regproc::text END,
                        'MULTIRANGE_TYPE_NAME = ' || r.rngmultitypid::pg_catalog.regtype::text)
                    FROM pg_catalog.pg_range r
                    JOIN pg_catalog.pg_opclass opc ON opc.oid = r.rngsubopc
                    JOIN pg_catalog.pg_namespace opn ON opn.oid = opc.opcnamespace
                    JOIN pg_catalog.pg_type st ON st.oid = r.rngsubtype
                    WHERE r.rngtypid = t.oid),
                   (SELECT ARRAY[r.rngmultitypid, m.typarray] FROM pg_catalog.pg_range r
                    JOIN pg_catalog.pg_type m ON m.oid = r.rngmultitypid WHERE r.rngtypid = t.oid)
            FROM pg_catalog.pg_type t JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace
            WHERE t.typnamespace IN ({_USER_NS}) AND {_not_extension_member(PG_TYPE, 't.oid')}
              AND (t.typtype IN ('e', 'd', 'r') OR (t.typtype = 'c' AND
                   (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c'))
            ORDER BY n.nspname, t.typname
            """
        )
        for (oid, schema, name, typtype, array_oid, relid, labels, base, notnull, default, collation, range_options,
             multirange) in rows:
            qname = f"{schema}.{name}"
            obj: Enum | Domain | Composite | Range
            if typtype == "e":
                obj = Enum(schema, name, list(labels))
            elif typtype == "r":
                obj = Range(schema, name, range_options)
                for other in multirange or ():
                    self.register(PG_TYPE, other, 0, ("type", qname), None)
            elif typtype == "d":
                obj = Domain(schema, name, base, default, notnull, collation)
            else:
                obj = Composite(schema, name)
                self.register(PG_CLASS, relid, 0, ("type", qname), None)
            self.schema.types[qname] = obj
            self.register(PG_TYPE, oid, 0, ("type", qname), obj)
            if array_oid:
                self.register(PG_TYPE, array_oid, 0, ("type", qname), None)
        # Functions a type made for itself (a range's constructors) are part of it.
        for objid, refobjid in self.rows(
            f"SELECT d.objid, d.refobjid FROM pg_catalog.pg_depend d WHERE d.classid = {PG_PROC}"
            f" AND d.refclassid = {PG_TYPE} AND d.deptype = 'i'"
        ):
            key = self.keys.get((PG_TYPE, refobjid, 0))
            if key is not None:
                self.register(PG_PROC, objid, 0, key, None)

    # -- relations and columns --------------------------------------------------------

    def read_relations(self) -> None:
        rows = self.rows(
            f"""
            SELECT c.oid, n.nspname, c.relname, c.relkind, c.relpersistence, c.relrowsecurity,
                   c.relforcerowsecurity, COALESCE(c.reloptions, '{{}}'),
                   CASE WHEN c.relkind = 'p' THEN pg_catalog.pg_get_partkeydef(c.oid) END,
                   CASE WHEN c.relispartition THEN pg_catalog.pg_get_expr(c.relpartbound, c.oid) END,
                   ARRAY(SELECT i.inhparent FROM pg_catalog.pg_inherits i WHERE i.inhrelid = c.oid
                         ORDER BY i.inhseqno),
                   CASE WHEN c.relkind IN ('v', 'm') THEN pg_catalog.pg_get_viewdef(c.oid) END,
                   c.reltype,
                   (SELECT t.typarray FROM pg_catalog.pg_type t WHERE t.oid = c.reltype),
                   ARRAY(SELECT r.oid FROM pg_catalog.pg_rewrite r WHERE r.ev_class = c.oid
                         AND r.rulename = '_RETURN'),
                   c.relispopulated, c.relreplident,
                   (SELECT ic.relname FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
                    WHERE i.indrelid = c.oid AND i.indisreplident)
            FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relnamespace IN ({_USER_NS}) AND c.relkind IN ('r', 'p', 'v', 'm')
              AND {_not_extension_member(PG_CLASS, 'c.oid')}
            ORDER BY n.nspname, c.relname
            """
        )
        parents_of: list[tuple[Table, list[int]]] = []
        self.rel_names: dict[int, str] = {}
        for (oid, schema, name, relkind, persistence, rls, force, options, partkey, bound, parents,
             viewdef, reltype, reltype_array, rules, populated, replident, replindex) in rows:
            qname = f"{schema}.{name}"
            self.rel_names[oid] = qname
            if relkind in ("r", "p"):
                if name in VERSION_TABLES:
                    continue
                table = Table(schema, name, relkind == "p", persistence, partkey, bound, [], rls, force,
                              tuple(options), replident, replindex if replident == "i" else None)
                self.schema.tables[qname] = table
                key: Key = ("table", qname)
                parents_of.append((table, list(parents)))
                self.register(PG_CLASS, oid, 0, key, table)
            else:
                view = View(schema, name, relkind == "m", viewdef, tuple(options), populated)
                self.schema.views[qname] = view
                key = ("view", qname)
                self.register(PG_CLASS, oid, 0, key, view)
                for rule in rules:
                    self.register(PG_REWRITE, rule, 0, key, None)
            for type_oid in (reltype, reltype_array):
                if type_oid:
                    self.register(PG_TYPE, type_oid, 0, key, None)
        for table, parent_oids in parents_of:
            table.parents = [self.rel_names[p] for p in parent_oids if p in self.rel_names]

    def read_columns(self) -> None:
        rows = self.rows(
            f"""
            SELECT a.attrelid, a.attnum, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
                   a.attnotnull, pg_catalog.pg_get_expr(d.adbin, d.adrelid), a.attidentity, a.attgenerated,
                   {_collation_sql('a.attcollation', 't.typcollation')},
                   a.attinhcount > 0, d.oid, c.relkind,
                   CASE WHEN a.attstorage <> t.typstorage THEN a.attstorage END,
                   CASE WHEN a.attstattarget >= 0 THEN a.attstattarget END,
                   NULLIF(a.attcompression::text, ''), COALESCE(a.attoptions, '{{}}')
            FROM pg_catalog.pg_attribute a
            JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
            JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
            LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
            WHERE a.attnum > 0 AND NOT a.attisdropped AND c.relkind IN ('r', 'p', 'v', 'm', 'c')
              AND c.relnamespace IN ({_USER_NS})
            ORDER BY a.attrelid, a.attnum
            """
        )
        volatile = self.volatile_functions()  # asked always, so a side-by-side read sends it ahead
        for (relid, attnum, name, type_, notnull, default, identity, generated, collation, inherited, defoid, relkind,
             storage, statistics, compression, attoptions) in rows:
            target = self.objects.get((PG_CLASS, relid, 0))
            key = self.keys.get((PG_CLASS, relid, 0))
            if key is None:
                continue
            if isinstance(target, Table):
                column = Column(
                    name, type_, notnull, None if generated == "s" else default, identity, None, None,
                    default if generated == "s" else None, collation, inherited,
                    volatile_default=bool(default and generated != "s" and _calls_any(default, volatile)),
                    storage=storage, statistics=statistics, compression=compression,
                    options=tuple(sorted(attoptions)), position=attnum,
                )
                target.columns[name] = column
                column_key: Key = ("column", f"{target.qualified}.{name}")
                self.register(PG_CLASS, relid, attnum, column_key, column)
                if defoid:
                    self.register(PG_ATTRDEF, defoid, 0, column_key, None)
                self.depends_on(column_key, key)
            elif key[0] == "type":  # a composite type's attributes
                composite = self.schema.types[key[1]]
                assert isinstance(composite, Composite)
                composite.attributes.append(Attribute(name, type_, collation))
                self.register(PG_CLASS, relid, attnum, key, ("composite attribute", composite, name))
            elif isinstance(target, View):
                if default is not None:
                    target.column_defaults[name] = default
                if defoid:
                    self.register(PG_ATTRDEF, defoid, 0, key, None)
                target.columns.append(name)
                target.column_types.append(f"{type_} {collation or ''}")
                self.register(PG_CLASS, relid, attnum, key, ("view column", target, name))

    def volatile_functions(self) -> set[str]:
        return {
            name
            for (name,) in self.rows(
                "SELECT DISTINCT p.proname FROM pg_catalog.pg_proc p WHERE p.provolatile = 'v'"
            )
        }

    def read_sequences(self) -> None:
        rows = self.rows(
            f"""
            SELECT c.oid, n.nspname, c.relname, pg_catalog.format_type(s.seqtypid, NULL), s.seqstart,
                   s.seqincrement, s.seqmin, s.seqmax, s.seqcache, s.seqcycle,
                   d.refobjid, d.refobjsubid, d.deptype
            FROM pg_catalog.pg_sequence s
            JOIN pg_catalog.pg_class c ON c.oid = s.seqrelid
            JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
            LEFT JOIN pg_catalog.pg_depend d ON d.classid = {PG_CLASS} AND d.objid = c.oid
                 AND d.refclassid = {PG_CLASS} AND d.refobjsubid > 0 AND d.deptype IN ('a', 'i')
            WHERE c.relnamespace IN ({_USER_NS}) AND {_not_extension_member(PG_CLASS, 'c.oid')}
            ORDER BY n.nspname, c.relname
            """
        )
        for oid, schema, name, type_, start, inc, minv, maxv, cache, cycle, refobj, refsub, deptype in rows:
            options = SequenceOptions(type_, start, inc, minv, maxv, cache, cycle)
            owner_key = self.keys.get((PG_CLASS, refobj, refsub)) if refobj else None
            owner = self.objects.get((PG_CLASS, refobj, refsub)) if refobj else None
            if refobj and self.rel_names.get(refobj, "").split(".")[-1] in VERSION_TABLES:
                continue
            if deptype == "i" and isinstance(owner, Column) and owner_key:
                owner.identity_options = options
                owner.identity_sequence = f"{schema}.{name}"
                self.register(PG_CLASS, oid, 0, owner_key, None)
                continue
            qname = f"{schema}.{name}"
            owned_by = None
            if isinstance(owner, Column) and owner_key:
                owned_by = (owner_key[1][: -len(owner.name) - 1], owner.name)
            seq = self.schema.sequences[qname] = Sequence(schema, name, options, owned_by)
            self.register(PG_CLASS, oid, 0, ("sequence", qname), seq)

    # -- constraints, indexes ---------------------------------------------------------

    def read_constraints(self) -> None:
        rows = self.rows(
            f"""
            SELECT con.oid, con.conname, con.contype, con.conrelid, con.contypid,
                   pg_catalog.pg_get_constraintdef(con.oid), con.conislocal AND con.conparentid = 0,
                   con.conindid, n.nspname, con.confrelid,
                   CASE WHEN con.contype IN ('p', 'u') THEN
                       ARRAY(SELECT o.o FROM pg_catalog.pg_class ic, unnest(ic.reloptions) WITH ORDINALITY AS o(o, n)
                             WHERE ic.oid = con.conindid ORDER BY o.n) END,
                   COALESCE((SELECT i.indisclustered FROM pg_catalog.pg_index i
                             WHERE i.indexrelid = con.conindid AND con.contype IN ('p', 'u', 'x')), false),
                   -- The key columns: a PRIMARY KEY's or UNIQUE's index's key columns (its INCLUDE
                   -- columns follow them in indkey), else conkey.
                   CASE WHEN con.contype IN ('p', 'u') THEN
                       ARRAY(SELECT a.attname FROM pg_catalog.pg_index i,
                                    unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
                                    JOIN pg_catalog.pg_attribute a ON a.attnum = k.attnum
                             WHERE i.indexrelid = con.conindid AND a.attrelid = i.indrelid AND k.n <= i.indnkeyatts
                             ORDER BY k.n)
                   ELSE ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY AS k(attnum, n)
                              JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.attnum
                              ORDER BY k.n) END,
                   CASE WHEN con.contype IN ('p', 'u') THEN
                       ARRAY(SELECT a.attname FROM pg_catalog.pg_index i,
                                    unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, n)
                                    JOIN pg_catalog.pg_attribute a ON a.attnum = k.attnum
                             WHERE i.indexrelid = con.conindid AND a.attrelid = i.indrelid AND k.n > i.indnkeyatts
                             ORDER BY k.n) END,
                   -- indnullsnotdistinct exists from PostgreSQL 15 on; read through to_jsonb so that
                   -- the same query runs on older servers (where it is absent, i.e. false).
                   COALESCE((SELECT (to_jsonb(i) ->> 'indnullsnotdistinct')::boolean FROM pg_catalog.pg_index i
                             WHERE i.indexrelid = con.conindid AND con.contype IN ('p', 'u')), false),
                   (SELECT t.spcname FROM pg_catalog.pg_class ic JOIN pg_catalog.pg_tablespace t
                        ON t.oid = ic.reltablespace
                    WHERE ic.oid = con.conindid AND con.contype IN ('p', 'u', 'x')),
                   con.condeferrable, con.condeferred
            FROM pg_catalog.pg_constraint con JOIN pg_catalog.pg_namespace n ON n.oid = con.connamespace
            WHERE con.connamespace IN ({_USER_NS}) AND con.contype <> 't'
            ORDER BY con.conrelid, con.conname
            """
        )
        for oid, name, contype, relid, typid, definition, local, indid, schema, frelid, index_options, \
                clustered, columns, include, nulls_not_distinct, tablespace, deferrable, deferred in rows:
            if typid:
                domain = self.objects.get((PG_TYPE, typid, 0))
                if isinstance(domain, Domain):
                    domain.checks[name] = definition
                    self.register(PG_CONSTRAINT, oid, 0, ("type", f"{domain.schema}.{domain.name}"),
                                  ("domain constraint", domain, name))
                continue
            table = self.objects.get((PG_CLASS, relid, 0))
            if not isinstance(table, Table):
                continue
            key: Key = ("constraint", f"{table.qualified}.{name}")
            if not local:
                # Inherited from a parent (partition or INHERITS): the parent's
                # constraint creates it; map it there for dependencies.
                self.register(PG_CONSTRAINT, oid, 0, ("table", table.qualified), None)
                continue
            constraint = Constraint(schema, table.qualified, name, contype, definition,
                                    self.rel_names.get(frelid) if frelid else None,
                                    tuple(index_options or ()), clustered, columns=tuple(columns or ()),
                                    include=tuple(include or ()), nulls_not_distinct=nulls_not_distinct,
                                    tablespace=tablespace, deferrable=deferrable, deferred=deferred)
            self.schema.constraints[key[1]] = constraint
            self.register(PG_CONSTRAINT, oid, 0, key, constraint)
            if contype in ("p", "u", "x") and indid:
                self.register(PG_CLASS, indid, 0, key, None)  # the index backing it
            self.depends_on(key, ("table", table.qualified))

    def read_indexes(self) -> None:
        rows = self.rows(
            f"""
            SELECT i.indexrelid, n.nspname, ic.relname, i.indrelid, pg_catalog.pg_get_indexdef(i.indexrelid),
                   EXISTS (SELECT 1 FROM pg_catalog.pg_inherits h WHERE h.inhrelid = i.indexrelid),
                   i.indisclustered, i.indisvalid
            FROM pg_catalog.pg_index i
            JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
            JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
            WHERE ic.relnamespace IN ({_USER_NS})
              AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint con WHERE con.conindid = i.indexrelid
                              AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x'))
            ORDER BY n.nspname, ic.relname
            """
        )
        for oid, schema, name, relid, definition, attached, clustered, valid in rows:
            owner_key = self.keys.get((PG_CLASS, relid, 0))
            if owner_key is None or owner_key[0] not in ("table", "view"):
                continue
            if attached:
                # A partition's copy of its parent's index: the parent's creates it.
                self.register(PG_CLASS, oid, 0, owner_key, None)
                continue
            qname = f"{schema}.{name}"
            index = self.schema.indexes[qname] = Index(schema, name, owner_key[1], definition, clustered, valid=valid)
            key: Key = ("index", qname)
            self.register(PG_CLASS, oid, 0, key, index)
            self.depends_on(key, owner_key)

    # -- functions, triggers, policies ----------------------------------------------

    def read_functions(self) -> None:
        rows = self.rows(
            f"""
            SELECT p.oid, n.nspname, p.proname, pg_catalog.pg_get_function_identity_arguments(p.oid),
                   p.prokind,
                   CASE WHEN p.prokind = 'a' THEN (
                       SELECT 'CREATE AGGREGATE ' || pg_catalog.quote_ident(n.nspname) || '.'
                           || pg_catalog.quote_ident(p.proname) || '('
                           || CASE WHEN p.pronargs = 0 THEN '*' ELSE pg_catalog.pg_get_function_arguments(p.oid) END
                           || ') (' || pg_catalog.concat_ws(', ',
                               'SFUNC = ' || a.aggtransfn::pg_catalog.regproc::text,
                               'STYPE = ' || pg_catalog.format_type(a.aggtranstype, NULL),
                               CASE WHEN a.aggtransspace <> 0 THEN 'SSPACE = ' || a.aggtransspace END,
                               CASE WHEN a.aggfinalfn <> 0 THEN 'FINALFUNC = ' || a.aggfinalfn::pg_catalog.regproc::text END,
                               CASE WHEN a.aggfinalextra THEN 'FINALFUNC_EXTRA' END,
                               CASE WHEN a.aggcombinefn <> 0 THEN 'COMBINEFUNC = ' || a.aggcombinefn::pg_catalog.regproc::text END,
                               CASE WHEN a.aggserialfn <> 0 THEN 'SERIALFUNC = ' || a.aggserialfn::pg_catalog.regproc::text END,
                               CASE WHEN a.aggdeserialfn <> 0 THEN 'DESERIALFUNC = ' || a.aggdeserialfn::pg_catalog.regproc::text END,
                               CASE WHEN a.agginitval IS NOT NULL THEN 'INITCOND = ' || pg_catalog.quote_literal(a.agginitval) END,
                               CASE p.proparallel WHEN 's' THEN 'PARALLEL = SAFE' WHEN 'r' THEN 'PARALLEL = RESTRICTED' END
                           ) || ')'
                       FROM pg_catalog.pg_aggregate a WHERE a.aggfnoid = p.oid)
                   ELSE pg_catalog.pg_get_functiondef(p.oid) END,
                   pg_catalog.pg_get_function_result(p.oid),
                   pg_catalog.pg_get_function_arguments(p.oid), pg_catalog.oidvectortypes(p.proargtypes)
            FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
            WHERE p.pronamespace IN ({_USER_NS}) AND p.prokind IN ('f', 'p', 'w', 'a')
              AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend i WHERE i.classid = {PG_PROC}
                              AND i.objid = p.oid AND i.deptype = 'i')
              AND {_not_extension_member(PG_PROC, 'p.oid')}
            ORDER BY n.nspname, p.proname, 4
            """
        )
        for oid, schema, name, identity_args, kind, definition, result, arguments, arg_types in rows:
            function = Function(schema, name, identity_args, kind, definition.strip(), result, arguments, arg_types)
            self.schema.functions[function.signature] = function
            self.register(PG_PROC, oid, 0, ("function", function.signature), function)

    def read_event_triggers(self) -> None:
        for oid, name, event, function, enabled, tags in self.rows(
            f"""
            SELECT ev.oid, ev.evtname, ev.evtevent, ev.evtfoid::pg_catalog.regproc::text, ev.evtenabled,
                   COALESCE(ev.evttags, '{{}}')
            FROM pg_catalog.pg_event_trigger ev WHERE {_not_extension_member(PG_EVENT_TRIGGER, 'ev.oid')}
            ORDER BY ev.evtname
            """
        ):
            trigger = self.schema.event_triggers[name] = EventTrigger(name, event, function, tuple(tags), enabled)
            self.register(PG_EVENT_TRIGGER, oid, 0, ("event trigger", name), trigger)

    def read_triggers(self) -> None:
        rows = self.rows(
            """
            SELECT t.oid, t.tgname, t.tgrelid, pg_catalog.pg_get_triggerdef(t.oid), t.tgenabled, t.tgparentid
            FROM pg_catalog.pg_trigger t WHERE NOT t.tgisinternal ORDER BY t.tgrelid, t.tgname
            """
        )
        for oid, name, relid, definition, enabled, parent in rows:
            owner_key = self.keys.get((PG_CLASS, relid, 0))
            owner = self.objects.get((PG_CLASS, relid, 0))
            if owner_key is None or owner is None or isinstance(owner, tuple):
                continue
            if parent:
                self.register(PG_TRIGGER, oid, 0, owner_key, None)
                continue
            qname = f"{owner_key[1]}.{name}"
            trigger = Trigger(owner.schema, owner_key[1], name, definition, enabled)
            self.schema.triggers[qname] = trigger
            key: Key = ("trigger", qname)
            self.register(PG_TRIGGER, oid, 0, key, trigger)
            self.depends_on(key, owner_key)

    def read_policies(self) -> None:
        rows = self.rows(
            """
            SELECT pol.oid, pol.polname, pol.polrelid, pol.polpermissive, pol.polcmd,
                   ARRAY(SELECT CASE WHEN r = 0 THEN 'public' ELSE pg_catalog.quote_ident(
                         (SELECT a.rolname FROM pg_catalog.pg_roles a WHERE a.oid = r)) END
                         FROM unnest(pol.polroles) AS r ORDER BY 1),
                   pg_catalog.pg_get_expr(pol.polqual, pol.polrelid),
                   pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid)
            FROM pg_catalog.pg_policy pol ORDER BY pol.polrelid, pol.polname
            """
        )
        for oid, name, relid, permissive, command, roles, using, check in rows:
            owner_key = self.keys.get((PG_CLASS, relid, 0))
            owner = self.objects.get((PG_CLASS, relid, 0))
            if not isinstance(owner, Table) or owner_key is None:
                continue
            qname = f"{owner.qualified}.{name}"
            policy = Policy(owner.schema, owner.qualified, name, permissive, command, tuple(roles), using, check)
            self.schema.policies[qname] = policy
            key: Key = ("policy", qname)
            self.register(PG_POLICY, oid, 0, key, policy)
            self.depends_on(key, owner_key)

    # -- rules, extended statistics --------------------------------------------------

    def read_rules(self) -> None:
        """Rules other than a view's _RETURN rule (which is the view itself)."""
        rows = self.rows(
            f"""
            SELECT r.oid, r.rulename, r.ev_class, pg_catalog.pg_get_ruledef(r.oid), r.ev_enabled
            FROM pg_catalog.pg_rewrite r JOIN pg_catalog.pg_class c ON c.oid = r.ev_class
            WHERE r.rulename <> '_RETURN' AND c.relnamespace IN ({_USER_NS})
              AND {_not_extension_member(PG_REWRITE, 'r.oid')}
            ORDER BY r.ev_class, r.rulename
            """
        )
        for oid, name, relid, definition, enabled in rows:
            owner_key = self.keys.get((PG_CLASS, relid, 0))
            owner = self.objects.get((PG_CLASS, relid, 0))
            if owner_key is None or not isinstance(owner, (Table, View)):
                continue
            qname = f"{owner_key[1]}.{name}"
            rule = self.schema.rules[qname] = Rule(owner.schema, owner_key[1], name, definition.strip(), enabled)
            key: Key = ("rule", qname)
            self.register(PG_REWRITE, oid, 0, key, rule)
            self.depends_on(key, owner_key)

    def read_statistics(self) -> None:
        rows = self.rows(
            f"""
            SELECT s.oid, n.nspname, s.stxname, s.stxrelid, pg_catalog.pg_get_statisticsobjdef(s.oid),
                   CASE WHEN s.stxstattarget >= 0 THEN s.stxstattarget END
            FROM pg_catalog.pg_statistic_ext s JOIN pg_catalog.pg_namespace n ON n.oid = s.stxnamespace
            WHERE s.stxnamespace IN ({_USER_NS}) AND {_not_extension_member(PG_STATISTIC_EXT, 's.oid')}
            ORDER BY n.nspname, s.stxname
            """
        )
        for oid, schema, name, relid, definition, target in rows:
            owner_key = self.keys.get((PG_CLASS, relid, 0))
            if owner_key is None or owner_key[0] not in ("table", "view"):  # tables, materialized views
                continue
            qname = f"{schema}.{name}"
            stats = self.schema.statistics[qname] = Statistics(schema, name, owner_key[1], definition, target)
            key: Key = ("statistics", qname)
            self.register(PG_STATISTIC_EXT, oid, 0, key, stats)
            self.depends_on(key, owner_key)

    def read_unmanaged(self) -> None:
        """Objects users create by hand whose kinds the engine does not model.

        Publications and subscriptions are left out: they are set up by
        whoever runs replication, not written in schema files.
        """
        catalogs = ("pg_collation", "pg_cast", "pg_operator", "pg_opclass", "pg_opfamily", "pg_am",
                    "pg_conversion", "pg_language", "pg_transform", "pg_ts_config", "pg_ts_dict", "pg_ts_parser",
                    "pg_ts_template", "pg_foreign_data_wrapper", "pg_foreign_server")
        objects = " UNION ALL ".join(
            f"SELECT '{name}'::pg_catalog.regclass AS classid, x.oid FROM pg_catalog.{name} x" for name in catalogs)
        for identity, definition in self.rows(
            f"""
            SELECT i.type || ' ' || i.identity,
                   CASE WHEN o.classid = 'pg_catalog.pg_collation'::pg_catalog.regclass THEN
                       -- every column but oids and the library version, whatever the server's release
                       (SELECT (pg_catalog.to_jsonb(co) - 'oid' - 'collnamespace' - 'collowner' - 'collversion')::text
                        FROM pg_catalog.pg_collation co WHERE co.oid = o.oid) ELSE '' END
            FROM ({objects}) o
            CROSS JOIN LATERAL pg_catalog.pg_identify_object(o.classid, o.oid, 0) i
            -- not members of extensions, nor parts of another object (the casts
            -- between a range type and its multirange: deptype 'i')
            WHERE o.oid >= 16384 AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = o.classid AND e.objid = o.oid AND e.deptype IN ('e', 'i'))
            ORDER BY 1
            """
        ):
            self.schema.unmanaged[identity] = definition

    # -- comments and dependencies --------------------------------------------------

    def read_comments(self) -> None:
        for classoid, objoid, objsubid, description in self.rows(
            "SELECT d.classoid, d.objoid, d.objsubid, d.description FROM pg_catalog.pg_description d"
            f" WHERE d.objoid >= 16384 OR d.classoid = {PG_NAMESPACE}"
        ):
            target = self.objects.get((classoid, objoid, objsubid))
            if target is None:
                continue
            if isinstance(target, tuple):
                what, owner, name = target
                if what == "domain constraint":
                    owner.check_comments[name] = description
                elif what == "view column":
                    owner.column_comments[name] = description
                elif what == "composite attribute":
                    owner.attribute_comments[name] = description
            else:
                target.comment = description

    def read_depends(self) -> None:
        for classid, objid, objsubid, refclassid, refobjid, refobjsubid, deptype in self.rows(
            "SELECT classid, objid, objsubid, refclassid, refobjid, refobjsubid, deptype"
            " FROM pg_catalog.pg_depend WHERE objid >= 16384 AND refobjid >= 16384"
            " AND deptype IN ('n', 'a', 'i')"
        ):
            dependent = self.key_of(classid, objid, objsubid)
            referenced = self.key_of(refclassid, refobjid, refobjsubid)
            if dependent and referenced and dependent != referenced:
                self.schema.depends.add((dependent, referenced, deptype))

    # -- privileges and owners --------------------------------------------------------

    def read_privileges(self) -> None:
        """ACLs and owners of every object that has them, and default privileges.

        Relations (tables, views, materialized views, sequences), their
        columns, functions and procedures, types and domains, schemas: the
        objects GRANT names (PostgreSQL docs, GRANT). Objects outside the
        model (extension members, version tables, identity sequences) are
        left out by mapping each row through the keys already read.
        """
        entries = """(SELECT pg_catalog.json_agg(pg_catalog.json_build_array(
                          CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text END,
                          a.privilege_type, a.is_grantable))
                      FROM pg_catalog.aclexplode({acl}) a)"""
        # acldefault() takes the object type as "char" (a text literal does not resolve).
        relation_acl = entries.format(acl="""COALESCE(c.relacl, pg_catalog.acldefault(
            CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))""")
        function_acl = entries.format(acl="""COALESCE(p.proacl, pg_catalog.acldefault('f'::"char", p.proowner))""")
        type_acl = entries.format(acl="""COALESCE(t.typacl, pg_catalog.acldefault('T'::"char", t.typowner))""")
        schema_acl = entries.format(acl="""COALESCE(n.nspacl, pg_catalog.acldefault('n'::"char", n.nspowner))""")
        rows = self.rows(
            f"""
            SELECT {PG_CLASS}, c.oid, 0, pg_catalog.pg_get_userbyid(c.relowner)::text, {relation_acl}
            FROM pg_catalog.pg_class c
            WHERE c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f') AND c.relnamespace IN ({_USER_NS})
            UNION ALL
            SELECT {PG_CLASS}, a.attrelid, a.attnum, NULL, {entries.format(acl="a.attacl")}
            FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_class c ON c.oid = a.attrelid
            WHERE a.attacl IS NOT NULL AND a.attnum > 0 AND NOT a.attisdropped
              AND c.relnamespace IN ({_USER_NS})
            UNION ALL
            SELECT {PG_PROC}, p.oid, 0, pg_catalog.pg_get_userbyid(p.proowner)::text, {function_acl}
            FROM pg_catalog.pg_proc p WHERE p.pronamespace IN ({_USER_NS})
            UNION ALL
            SELECT {PG_TYPE}, t.oid, 0, pg_catalog.pg_get_userbyid(t.typowner)::text, {type_acl}
            FROM pg_catalog.pg_type t WHERE t.typnamespace IN ({_USER_NS})
              AND t.typtype IN ('e', 'd', 'c', 'r', 'b') AND NOT (t.typtype = 'b' AND t.typcategory = 'A')
              AND (t.typrelid = 0 OR (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid) = 'c')
            UNION ALL
            SELECT {PG_NAMESPACE}, n.oid, 0, pg_catalog.pg_get_userbyid(n.nspowner)::text, {schema_acl}
            FROM pg_catalog.pg_namespace n WHERE n.oid IN ({_USER_NS})
            """
        )
        for classid, objid, subid, owner, acl in rows:
            target = self.objects.get((classid, objid, subid))
            key = self.keys.get((classid, objid, subid))
            if target is None or key is None:
                continue
            if subid:
                if isinstance(target, tuple) and target[0] == "view column":
                    key = ("column", f"{key[1]}.{target[2]}")
                elif not isinstance(target, Column):
                    continue
            elif not isinstance(target, (Table, View, Sequence, Function, Namespace, Enum, Domain, Composite, Range)):
                continue
            if owner is not None:
                self.schema.owners[key] = owner
            self.schema.acls[key] = frozenset((g, p, bool(o)) for g, p, o in acl or ())
        # Procedural languages (plpgsql, sql...) are not in the model, but
        # their USAGE is granted and revoked (REVOKE USAGE ON LANGUAGE
        # plpgsql FROM PUBLIC); their owner is the bootstrap superuser,
        # which differs between servers, so it is not kept.
        # The owner's entries are left out here, since the owner is not kept.
        language_acl = entries.format(
            acl="""COALESCE(l.lanacl, pg_catalog.acldefault('l'::"char", l.lanowner))""").replace(
            "ELSE pg_catalog.pg_get_userbyid(a.grantee)::text",
            "WHEN a.grantee = l.lanowner THEN '' ELSE pg_catalog.pg_get_userbyid(a.grantee)::text")
        for name, acl in self.rows(f"SELECT l.lanname::text, {language_acl} FROM pg_catalog.pg_language l"):
            self.schema.acls[("language", name)] = frozenset(
                (g, p, bool(o)) for g, p, o in acl or () if g != OWNER_GRANTEE)
        for letter, acl in self.rows(
            f"""
            SELECT k::text, {entries.format(acl="pg_catalog.acldefault(k, u.oid)").replace(
                "ELSE pg_catalog.pg_get_userbyid(a.grantee)::text", "WHEN a.grantee = u.oid THEN '' ELSE "
                "pg_catalog.pg_get_userbyid(a.grantee)::text")}
            FROM unnest(ARRAY['r', 's', 'f', 'T', 'n']::"char"[]) AS k,
                 (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER) AS u
            """
        ):
            self.schema.acl_defaults[letter] = frozenset((g, p, bool(o)) for g, p, o in acl or ())
        # A global entry holds the whole default ACL, the role's own
        # privileges included; those are the owner's and are left out.
        for role, current, schema, objtype, acl in self.rows(
            f"""
            SELECT pg_catalog.pg_get_userbyid(d.defaclrole)::text,
                   d.defaclrole = (SELECT r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = CURRENT_USER),
                   n.nspname, d.defaclobjtype::text,
                   {entries.format(acl="d.defaclacl")}
            FROM pg_catalog.pg_default_acl d LEFT JOIN pg_catalog.pg_namespace n ON n.oid = d.defaclnamespace
            WHERE d.defaclnamespace = 0 OR d.defaclnamespace IN ({_USER_NS})
            """
        ):
            self.schema.default_acls[(None if current else role, schema, objtype)] = frozenset(
                (g, p, bool(o)) for g, p, o in acl or () if g != role)

    # -- helpers -------------------------------------------------------------------

    def register(self, classid: int, objid: int, subid: int, key: Key, obj: Any) -> None:
        self.keys[(classid, objid, subid)] = key
        if obj is not None:
            self.objects[(classid, objid, subid)] = obj

    def key_of(self, classid: int, objid: int, subid: int) -> Key | None:
        key = self.keys.get((classid, objid, subid))
        if key is None and subid:
            key = self.keys.get((classid, objid, 0))
        return key

    def depends_on(self, dependent: Key, referenced: Key) -> None:
        self.schema.depends.add((dependent, referenced, "n"))


def _calls_any(expression: str, names: set[str]) -> bool:
    """Whether ``expression`` calls a function whose name is in ``names``."""
    called = _called_functions(expression)
    return called is None or not called.isdisjoint(names)


@functools.lru_cache(maxsize=4096)
def _called_functions(expression: str) -> frozenset[str] | None:
    """Names of the functions an expression calls (None: cannot parse)."""
    from pglast import parser as pg_parser  # here: a cached plan never needs the parser

    try:
        tree = json.loads(pg_parser.parse_sql_json(f"SELECT {expression}"))
    except pg_parser.ParseError:
        return None
    found: set[str] = set()
    stack: list[Any] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            call = node.get("FuncCall")
            if call:
                parts = [p.get("String", {}).get("sval") for p in call.get("funcname", [])]
                if parts and parts[-1]:
                    found.add(parts[-1])
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return frozenset(found)
