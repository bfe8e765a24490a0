"""Rows for the shadow copy a migration is proven on.

The shadow copy starts empty; production does not. Before the up migration
runs, :func:`seed` inserts a few generated rows into the tables the
migration touches (and, parents first, the tables their foreign keys
reference), so a statement that fails on a populated table fails in the
proof. After the migration, :func:`probe` inserts one more row into each
seeded table that has a sequence-backed column (identity, or a
``nextval()`` default), the way an application's next insert would, and
reports a key collision on such a column: a sequence that does not continue
after the existing values.

Generated values follow each column's type (domains and arrays included),
are distinct per row (so unique keys hold) and take foreign keys from the
parent's rows. Columns fed by a sequence, and generated columns, are left to
PostgreSQL. A table whose insert still fails (a CHECK the values do not
meet, a type with no generator, a parent without rows) stays empty, and the
reason is noted. Row data never reaches the schema judges, which compare
catalogs only; sequence positions are data too and are not compared.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable
from dataclasses import dataclass, field

import psycopg

ROWS = 3  # per table: enough for distinct values and a FK spread, cheap on large schemas

UNIQUE_VIOLATION = "23505"
NOT_NULL_VIOLATION = "23502"

_NEXTVAL = re.compile(r"^nextval\(")


@dataclass
class _Column:
    name: str
    type: str  # format_type, for casts
    notnull: bool
    sequence_backed: bool  # identity or nextval() default: PostgreSQL gives the value
    generated: bool
    value: str | None  # SQL expression of g.i (the row number), None: no generator for the type


@dataclass
class _Table:
    oid: int
    name: str  # quoted, qualified
    key: str  # schema.name, unquoted (the engine's key)
    columns: list[_Column]
    parents: list[tuple[int, list[str], list[str]]] = field(default_factory=list)  # (parent oid, cols, parent cols)
    self_fk_columns: set[str] = field(default_factory=set)


@dataclass
class SeedResult:
    """What :func:`seed` did: tables that hold rows now, and why others stay empty."""

    seeded: list[str] = field(default_factory=list)  # tables holding rows now, parents first (schema.name)
    notes: list[str] = field(default_factory=list)


def seed(conn: psycopg.Connection, tables: Collection[str], *, rows: int = ROWS) -> SeedResult:
    """Insert ``rows`` generated rows into each of ``tables`` (``schema.name`` keys) and their FK parents.

    ``conn`` is an autocommit connection to the shadow copy. Each table's
    insert runs in its own transaction: one that fails is rolled back and
    noted, the others stay. Tables that already hold rows are left alone.
    """
    result = SeedResult()
    wanted = _table_oids(conn, tables)
    order: list[int] = []
    info: dict[int, _Table] = {}

    def visit(oid: int, path: tuple[int, ...]) -> None:
        if oid in info or oid in path:
            return
        table = _read_table(conn, oid)
        if table is None:
            return
        for parent, _, _ in table.parents:
            visit(parent, path + (oid,))
        info[oid] = table
        order.append(oid)

    for oid in wanted:
        visit(oid, ())
    for oid in order:
        table = info[oid]
        if conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table.name})").fetchone()[0]:
            result.seeded.append(table.key)  # rows the migrations inserted: as good for the proof
            continue
        sql, missing = _insert(table, info, 1, rows)
        if missing:
            result.notes.append(f"{table.key}: no generated value for {', '.join(missing)}; left empty")
            continue
        try:
            with conn.transaction():
                conn.execute(sql)
            result.seeded.append(table.key)
        except psycopg.Error as exc:
            from .server import timeout_failure

            stopped = timeout_failure(exc, f"inserting generated rows into {table.key} (its triggers, defaults)")
            if stopped is not None:  # a trigger or default that never ends: not a refusal to note and go on
                raise stopped from None
            result.notes.append(f"{table.key}: generated rows refused ({_reason(exc)}); left empty")
    return result


@dataclass(frozen=True)
class ProbeFailure:
    table: str
    reason: str


def probe(conn: psycopg.Connection, tables: Iterable[str], *, row: int = ROWS + 1) -> list[ProbeFailure]:
    """Insert one more row into each of ``tables`` that has a sequence-backed column, leaving those to PostgreSQL.

    Returns the tables where that insert collides on a unique key or
    primary key containing a sequence-backed column (the sequence hands out
    a value the rows already hold). Other failures (a constraint the
    migration added that generated values do not meet) prove nothing about
    sequences and are ignored. Each probe is rolled back either way.
    """
    failures = []
    oids = _table_oids(conn, tables)
    for oid in oids:
        table = _read_table(conn, oid)
        if table is None:
            continue
        backed = {c.name for c in table.columns if c.sequence_backed}
        if not backed:
            continue
        info = {oid: table}
        for parent, _, _ in table.parents:
            parent_table = _read_table(conn, parent)
            if parent_table is not None:
                info[parent] = parent_table
        sql, missing = _insert(table, info, row, row)
        if missing:
            continue
        try:
            with conn.transaction():
                conn.execute(sql)
                raise psycopg.Rollback()  # the row proved its point; keep the copy as the migration left it
        except psycopg.Error as exc:
            if exc.sqlstate == UNIQUE_VIOLATION and exc.diag.constraint_name:
                columns = _constraint_columns(conn, oid, exc.diag.constraint_name)
                if columns & backed:
                    failures.append(ProbeFailure(table.key, _reason(exc)))
    return failures


def _reason(exc: psycopg.Error) -> str:
    diag = getattr(exc, "diag", None)
    primary = getattr(diag, "message_primary", None) if diag else None
    detail = getattr(diag, "message_detail", None) if diag else None
    reason = primary or str(exc).strip().splitlines()[0]
    return f"{reason} ({detail})" if detail else reason


def _table_oids(conn: psycopg.Connection, tables: Iterable[str]) -> list[int]:
    names = sorted(set(tables))
    if not names:
        return []
    rows = conn.execute(
        "SELECT c.oid FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname || '.' || c.relname = ANY(%s) AND c.relkind IN ('r', 'p') ORDER BY 1",
        [names],
    ).fetchall()
    return [row[0] for row in rows]


def _constraint_columns(conn: psycopg.Connection, relid: int, name: str) -> set[str]:
    rows = conn.execute(
        "SELECT a.attname FROM pg_catalog.pg_constraint con"
        " JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = ANY(con.conkey)"
        " WHERE con.conrelid = %s AND con.conname = %s"
        " UNION SELECT a.attname FROM pg_catalog.pg_class ic JOIN pg_catalog.pg_index i ON i.indexrelid = ic.oid"
        " JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey)"
        " WHERE i.indrelid = %s AND ic.relname = %s",
        [relid, name, relid, name],
    ).fetchall()
    return {row[0] for row in rows}


def _read_table(conn: psycopg.Connection, oid: int) -> _Table | None:
    head = conn.execute(
        "SELECT quote_ident(n.nspname) || '.' || quote_ident(c.relname), n.nspname || '.' || c.relname"
        " FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.oid = %s AND c.relkind IN ('r', 'p')",
        [oid],
    ).fetchone()
    if head is None:
        return None
    rows = conn.execute(
        "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,"
        " a.attgenerated, pg_catalog.pg_get_expr(d.adbin, d.adrelid), a.atttypid, a.atttypmod"
        " FROM pg_catalog.pg_attribute a"
        " LEFT JOIN pg_catalog.pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum"
        " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
        [oid],
    ).fetchall()
    columns = []
    for name, type_name, notnull, identity, generated, default, typid, typmod in rows:
        backed = bool(identity) or bool(default and _NEXTVAL.match(default))
        columns.append(_Column(name, type_name, notnull, backed, bool(generated),
                               _value(conn, typid, typmod, type_name)))
    table = _Table(oid, head[0], head[1], columns)
    for parent, cols, parent_cols in conn.execute(
        "SELECT con.confrelid,"
        " ARRAY(SELECT a.attname FROM unnest(con.conkey) WITH ORDINALITY k(n, o)"
        "       JOIN pg_catalog.pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o)::text[],"
        " ARRAY(SELECT a.attname FROM unnest(con.confkey) WITH ORDINALITY k(n, o)"
        "       JOIN pg_catalog.pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o)::text[]"
        " FROM pg_catalog.pg_constraint con WHERE con.conrelid = %s AND con.contype = 'f' ORDER BY con.conname",
        [oid],
    ).fetchall():
        if parent == oid:
            table.self_fk_columns.update(cols)
        else:
            table.parents.append((parent, list(cols), list(parent_cols)))
    return table


def _value(conn: psycopg.Connection, typid: int, typmod: int, type_name: str) -> str | None:
    """A SQL expression of ``g.i`` giving a distinct value of the type per row, or None."""
    info = conn.execute(
        "SELECT t.typtype, t.typcategory, t.typname, t.typbasetype, t.typtypmod, t.typelem,"
        " pg_catalog.format_type(t.oid, NULL)"
        " FROM pg_catalog.pg_type t WHERE t.oid = %s",
        [typid],
    ).fetchone()
    if info is None:
        return None
    typtype, category, typname, basetype, basemod, element, plain = info
    cast = f"::{type_name}"
    if typtype == "d":  # a domain: a value of its base type, cast to the domain (its CHECKs may still refuse)
        base = _value(conn, basetype, basemod, conn.execute(
            "SELECT pg_catalog.format_type(%s, %s)", [basetype, basemod]).fetchone()[0])
        return None if base is None else f"({base}){cast}"
    if category == "A" and element:
        inner = _value(conn, element, typmod, conn.execute(
            "SELECT pg_catalog.format_type(%s, %s)", [element, typmod]).fetchone()[0])
        return None if inner is None else f"ARRAY[{inner}]{cast}"
    if typtype == "e":
        labels = f"enum_range(NULL::{plain})"
        return f"({labels})[1 + (g.i - 1) % cardinality({labels})]"
    if typname == "vector" and typmod > 0:
        return f"array_fill(g.i::real, ARRAY[{typmod}])::{type_name}"
    if typname in ("uuid",):
        return f"md5(g.i::text){cast}"
    if typname in ("json", "jsonb"):
        return f"json_build_object('n', g.i){cast}"
    if typname == "bytea":
        return "convert_to(g.i::text, 'UTF8')"
    if typname in ("inet", "cidr"):
        return f"('10.0.0.' || g.i){cast}"
    if typname == "bool":
        return "(g.i % 2 = 1)"
    if typname in ("bit", "varbit"):
        return f"g.i::bit({typmod if typname == 'bit' and typmod > 0 else 8}){cast}"
    if category == "N":
        return f"g.i{cast}"
    if category == "S":
        return f"g.i::text{cast}"
    if category == "D":
        return f"('2000-01-01 00:00:00+00'::timestamptz + g.i * interval '1 day 1 minute'){cast}"
    if category == "T":
        return f"(g.i * interval '1 minute'){cast}"
    return None


def _insert(table: _Table, info: dict[int, _Table], first: int, last: int) -> tuple[str, list[str]]:
    """(INSERT ... SELECT over generate_series(first, last), columns with no value that need one)."""
    names: list[str] = []
    values: list[str] = []
    joins: list[str] = []
    taken: set[str] = set()
    for number, (parent_oid, cols, parent_cols) in enumerate(table.parents):
        parent = info.get(parent_oid)
        if parent is None or taken & set(cols):
            continue
        alias = f"fk{number}"
        picked = ", ".join(f"p.{_ident(c)}" for c in parent_cols)
        joins.append(
            f" LEFT JOIN LATERAL (SELECT {picked} FROM {parent.name} AS p ORDER BY {picked}"
            f" OFFSET (g.i - 1) % greatest((SELECT count(*) FROM {parent.name}), 1) LIMIT 1) AS {alias} ON true"
        )
        for col, parent_col in zip(cols, parent_cols):
            names.append(_ident(col))
            values.append(f"{alias}.{_ident(parent_col)}")
            taken.add(col)
    missing = []
    for column in table.columns:
        if column.name in taken or column.sequence_backed or column.generated:
            continue
        if column.name in table.self_fk_columns:
            if column.notnull:
                missing.append(column.name)
            continue  # NULL: a row referencing itself is left out
        if column.value is None:
            if column.notnull:
                missing.append(column.name)
            continue
        names.append(_ident(column.name))
        values.append(column.value)
    if not names:
        return f"INSERT INTO {table.name} SELECT FROM generate_series({first}, {last}) AS g(i)", missing
    sql = (f"INSERT INTO {table.name} ({', '.join(names)}) SELECT {', '.join(values)}"
           f" FROM generate_series({first}, {last}) AS g(i){''.join(joins)}")
    return sql, missing


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'

