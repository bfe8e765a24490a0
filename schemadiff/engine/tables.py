"""Diff engine, part: tables and their columns.

Plain functions over the engine's frozen :class:`~schemadiff.engine.context.Context`
(the two models, the replaced objects, the dropped and created relations)
that add statements to the :class:`~schemadiff.engine.context.Plan`.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable, Set

from . import ddl
from . import hazards as hz
from .ddl import ident
from .locks import AE, SUE, Lock
from .order import R_ALTER_COLUMN, R_ALTER_TABLE, R_CREATE, R_DROP
from .context import Context, Plan
from .model import Column, Domain, Key, Schema, Sequence, SequenceOptions, Table
from .objects import column_compression_and_options
from .typechange import needs_using, type_change_hazards
from .usertypes import converts_to_rebuilt_type, is_enum

_DEFAULT_COLLATION = 'pg_catalog."default"'


def diff_tables(ctx: Context, plan: Plan) -> None:
    for qname, table in ctx.a.tables.items():
        if qname in ctx.dropped_relations:
            drop_table(ctx, plan, table)
    replaced_columns = [key[1] for key in ctx.replaced if key[0] == "column"]
    for qname, table in ctx.b.tables.items():
        if qname in ctx.created_relations:
            create_table(ctx, plan, table)
            continue
        old = ctx.a.tables[qname]
        # Most tables of a large schema are untouched: one comparison
        # instead of looking at every column. (A column replaced for a
        # reason outside its table still needs the full look.)
        if old != table or any(name.startswith(qname + ".") for name in replaced_columns):
            alter_table(ctx, plan, old, table)


def cyclic_foreign_keys(current: Schema, dropped_relations: Set[str]) -> set[str]:
    """Foreign keys (``schema.table.name``) between dropped tables that reference each other in a
    cycle: no order of DROP TABLE works, so they are dropped first."""
    edges: dict[str, set[str]] = defaultdict(set)
    fks: list[tuple[str, str, str]] = []
    for name, constraint in current.constraints.items():
        target = constraint.references
        if constraint.type == "f" and target and target != constraint.table and \
                constraint.table in dropped_relations and target in dropped_relations:
            edges[constraint.table].add(target)
            fks.append((name, constraint.table, target))

    def reaches(start: str, goal: str) -> bool:
        seen, stack = {start}, [start]
        while stack:
            node = stack.pop()
            if node == goal:
                return True
            for nxt in edges.get(node, ()):
                if nxt not in seen:
                    seen.add(nxt)
                    stack.append(nxt)
        return False

    return {name for name, source, target in fks if reaches(target, source)}


def drop_table(ctx: Context, plan: Plan, table: Table) -> None:
    qname = table.qualified
    key = ("table", qname)
    removes = {key, *ctx.a_children(qname)} | ctx.implied_sequences.get(key, set())
    removes -= {("constraint", name) for name in ctx.cyclic_fks}
    had: set[Key] = set()
    for removed in removes:
        had |= ctx.a_refs(removed)
    # Its foreign keys go with it, and with them their triggers on the referenced tables.
    referenced = sorted({c.references for c in ctx.a.constraints.values()
                         if c.table == qname and c.type == "f" and c.references and c.references != qname
                         and c.name not in ctx.cyclic_fks and f"{qname}.{c.name}" not in ctx.cyclic_fks})
    # A partition is detached from its parent, under the parent's ACCESS EXCLUSIVE lock.
    parents = table.parents if table.partition_bound is not None else []
    plan.add(ddl.op.drop_table(table), "drop", "table", qname, qname, R_DROP["table"],
             statement="DROP TABLE", also_locks=[Lock(other, AE) for other in [*parents, *referenced]], subject=table,
             hazards=[hz.DELETES_DATA], removes=removes, had=had - removes,
             names_freed={f"rel:{qname}", f"type:{qname}"})


def create_table(ctx: Context, plan: Plan, table: Table) -> None:
    qname = table.qualified
    key = ("table", qname)
    columns = {("column", f"{qname}.{c}") for c in table.columns}
    needs = ctx.b_refs(key)
    for column in columns:
        needs |= ctx.b_refs(column)
    if table.partition_bound is not None:
        # CREATE TABLE ... PARTITION OF takes its columns from the parent, and names those it gives a
        # default of its own: a column the parent gains in the same plan is added to it first.
        needs |= {("column", f"{parent}.{name}") for parent in table.parents
                  for name, column in table.columns.items() if column.inherited}
    parents = [Lock(parent, AE) for parent in table.parents] if table.partition_bound is not None else []
    plan.add(ddl.op.create_table(table), "create", "table", qname, qname, R_CREATE["table"],
             statement="CREATE TABLE", also_locks=parents, subject=table,
             provides={key, *columns}, needs=needs - columns - {key},
             names_taken={f"rel:{qname}", f"type:{qname}"} | identity_claims(ctx, table.columns.values()))
    if table.rls:
        plan.add(ddl.op.row_level_security(table, True), "alter", "table", qname, qname,
                 R_CREATE["table option"], needs={key}, statement="ALTER TABLE ENABLE/DISABLE ROW LEVEL SECURITY")
    if table.force_rls:
        plan.add(ddl.op.force_row_level_security(table, True), "alter", "table", qname, qname,
                 R_CREATE["table option"], needs={key}, statement="ALTER TABLE FORCE/NO FORCE ROW LEVEL SECURITY")
    replica_identity(ctx, plan, table, None)
    column_settings(ctx, plan, table, table.columns.values())
    plan.comment_step(ddl.relation_target("table", table.schema, table.name), key, "table", qname, qname, None,
                      table.comment, True)
    for column in table.columns.values():
        plan.comment_step(ddl.column_target(table.schema, table.name, column.name), ("column", f"{qname}.{column.name}"),
                          "column", f"{qname}.{column.name}", qname, None, column.comment, True)


def replica_identity(ctx: Context, plan: Plan, new: Table, old: Table | None) -> None:
    index = new.replica_index
    index_keys = {("index", f"{new.schema}.{index}"), ("constraint", f"{new.qualified}.{index}")} if index else set()
    rebuilt = bool(index_keys & ctx.replaced)
    if old is not None and (old.replica_identity, old.replica_index) == (new.replica_identity, index) \
            and not rebuilt:
        return
    if old is None and new.replica_identity == "d":
        return
    plan.add(ddl.op.replica_identity(new), "alter", "table", new.qualified,
             new.qualified, R_CREATE["table option"], needs={("table", new.qualified)} | index_keys,
             statement="ALTER TABLE REPLICA IDENTITY")


def column_settings(ctx: Context, plan: Plan, table: Table, columns: Iterable[Column], old: Table | None = None) -> None:
    """Storage, compression, statistics targets and attribute options, which no column definition carries."""
    for column in columns:
        before = old.columns.get(column.name) if old else None
        key = ("column", f"{table.qualified}.{column.name}")
        if before is not None and _column_settings(before) == _column_settings(column):
            continue
        if before is None and _column_settings(column) == (None, None, None, ()):
            continue
        if (before.storage if before else None) != column.storage:
            plan.add(ddl.op.alter_column_set_storage(table, column), "alter", "column", key[1], table.qualified,
                     R_CREATE["table option"], needs={key}, statement="ALTER TABLE ALTER COLUMN SET STORAGE")
        if (before.statistics if before else None) != column.statistics:
            plan.add(ddl.op.alter_column_set_statistics(table, column), "alter", "column", key[1], table.qualified,
                     R_CREATE["table option"], needs={key}, statement="ALTER TABLE ALTER COLUMN SET STATISTICS")
        column_compression_and_options(ctx, plan, table, column, before)


def identity_claims(ctx: Context, columns: Iterable[Column]) -> set[str]:
    return {f"rel:{c.identity_sequence}" for c in columns if c.identity and c.identity_sequence}


def alter_table(ctx: Context, plan: Plan, old: Table, new: Table) -> None:
    qname = new.qualified
    key = ("table", qname)

    def alter(sql: ddl.Op, statement: str, hazards: Iterable[str] = (), **graph: Iterable) -> None:
        plan.add(sql, "alter", "table", qname, qname, R_ALTER_TABLE,
                 statement=statement, hazards=hazards, **graph)

    if old.persistence != new.persistence:
        alter(ddl.op.set_logged(new), "ALTER TABLE SET LOGGED/UNLOGGED",
              [hz.REWRITES_TABLE, hz.ACCESS_EXCLUSIVE])
    if old.rls != new.rls:
        alter(ddl.op.row_level_security(new, new.rls), "ALTER TABLE ENABLE/DISABLE ROW LEVEL SECURITY")
    if old.force_rls != new.force_rls:
        alter(ddl.op.force_row_level_security(new, new.force_rls),
              "ALTER TABLE FORCE/NO FORCE ROW LEVEL SECURITY")
    old_options = dict(o.split("=", 1) for o in old.options)
    new_options = dict(o.split("=", 1) for o in new.options)
    removed = [k for k in old_options if k not in new_options]
    if removed:
        alter(ddl.op.alter_table_reset(new, removed), "ALTER TABLE SET (storage parameters)")
    changed = [f"{k}={v}" for k, v in new_options.items() if old_options.get(k) != v]
    if changed:
        alter(ddl.op.alter_table_set(new, changed), "ALTER TABLE SET (storage parameters)")
    if (old.partition_bound, old.parents) != (new.partition_bound, new.parents):
        if old.partition_bound is not None:
            plan.add(ddl.op.detach_partition(old.parents[0], new), "alter",
                     "table", qname, qname, R_ALTER_TABLE, had={("table", old.parents[0])},
                     statement="ALTER TABLE DETACH PARTITION", also_locks=[Lock(old.parents[0], AE)])
        else:
            for parent in old.parents:
                if parent not in new.parents:
                    alter(ddl.op.no_inherit(new, parent), "ALTER TABLE NO INHERIT", provides={("unlinked", qname)},
                          had={("table", parent)})
        if new.partition_bound is not None:
            parent = new.parents[0]
            plan.add(ddl.op.attach_partition(parent, new),
                     "alter", "table", qname, qname, R_CREATE["table option"], hazards=[hz.VALIDATES],
                     needs={("table", parent), key}, statement="ALTER TABLE ATTACH PARTITION",
                     also_locks=[Lock(parent, SUE)])
        else:
            for parent in new.parents:
                if parent not in old.parents:
                    plan.add(ddl.op.inherit(new, parent), "alter", "table", qname,
                             qname, R_CREATE["table option"], needs={("table", parent), key},
                             statement="ALTER TABLE INHERIT", also_locks=[Lock(parent, SUE)])
    replica_identity(ctx, plan, new, old)
    plan.comment_step(ddl.relation_target("table", new.schema, new.name), key, "table", qname, qname, old.comment,
                      new.comment, False)
    relinked = old.parents != new.parents
    for name, column in old.columns.items():
        col_key = ("column", f"{qname}.{name}")
        if column.inherited and not (relinked and name not in new.columns):
            continue
        if name not in new.columns or col_key in ctx.replaced:
            # A column inherited from a parent being unlinked is dropped
            # after the unlinking made it a local column.
            drop_column(ctx, plan, new, column)
            if column.inherited:
                plan.nodes[-1].needs.add(("unlinked", qname))
    for name, column in new.columns.items():
        col_key = ("column", f"{qname}.{name}")
        before = old.columns.get(name)
        if before is None or col_key in ctx.replaced:
            # INHERIT wants the child to have the parent's columns already.
            if not column.inherited or (relinked and new.partition_bound is None):
                add_column(ctx, plan, new, column)
        elif not column.inherited or not before.inherited:
            alter_column(ctx, plan, new, before, column)
            rename_identity_sequence(ctx, plan, new, before, column)
        if not column.inherited:
            fresh = before is None or col_key in ctx.replaced
            column_settings(ctx, plan, new, [column], None if fresh else old)
        fresh = before is None or col_key in ctx.replaced
        if fresh or before.comment != column.comment:
            plan.comment_step(ddl.column_target(new.schema, new.name, name), col_key, "column", f"{qname}.{name}", qname,
                              None if fresh else before.comment, column.comment, fresh)


def drop_column(ctx: Context, plan: Plan, table: Table, column: Column) -> None:
    qname = table.qualified
    key = ("column", f"{qname}.{column.name}")
    removes = {key} | ctx.implied_sequences.get(key, set())
    frees = {f"rel:{column.identity_sequence}"} if column.identity_sequence else set()
    plan.add(ddl.op.drop_column(table, column), "drop", "column",
             key[1], qname, R_DROP["column"], hazards=[hz.DELETES_DATA] if column.generated is None else [],
             statement="ALTER TABLE DROP COLUMN",
             removes=removes, had=ctx.a_refs(key) - {("table", qname)}, names_freed=frees)


def add_column(ctx: Context, plan: Plan, table: Table, column: Column) -> None:
    qname = table.qualified
    key = ("column", f"{qname}.{column.name}")
    rewrites = column.identity or column.generated is not None or column.volatile_default
    hazards = [hz.REWRITES_TABLE, hz.ACCESS_EXCLUSIVE] if rewrites else []
    if fills_with_null(ctx, column):
        hazards.append(hz.FAILS_ON_EXISTING_ROWS)
    plan.add(ddl.op.add_column(table, column), "create",
             "column", key[1], qname, R_CREATE["column"], statement="ALTER TABLE ADD COLUMN",
             hazards=hazards,
             provides={key}, needs=ctx.b_refs(key) - {("table", qname)},
             names_taken=identity_claims(ctx, [column]))


def fills_with_null(ctx: Context, column: Column) -> bool:
    """Whether ADD COLUMN gives existing rows NULL in a column that must not hold it.

    PostgreSQL (ALTER TABLE, ADD COLUMN) fills existing rows with the
    column's default, else its domain's default, else NULL; an identity or
    generated column computes its value. NULL then fails the column's NOT
    NULL, or a NOT NULL domain's (also through domains over domains).
    """
    if column.identity or column.generated is not None:
        return False
    if column.default is not None and not _NULL_DEFAULT.match(column.default):
        return False
    notnull = column.notnull
    name, seen = column.type, set()
    while name not in seen:
        seen.add(name)
        domain = domain_named(ctx, name)
        if domain is None:
            break
        if domain.default is not None:
            return False
        notnull = notnull or domain.notnull
        name = domain.base
    return notnull


def domain_named(ctx: Context, type_name: str) -> Domain | None:
    for obj in ctx.b.types.values():
        if isinstance(obj, Domain) and type_name in (ddl.qualified(obj.schema, obj.name), obj.name):
            return obj
    return None


def alter_column(ctx: Context, plan: Plan, table: Table, old: Column, new: Column) -> None:
    if _column_shape(old) == _column_shape(new):
        return
    qname = table.qualified
    key = ("column", f"{qname}.{new.name}")
    graph = {"modifies": {key}, "needs": ctx.b_refs(key) - {("table", qname)},
             "had": ctx.a_refs(key) - {("table", qname)}}

    def alter(sql: ddl.Op, hazards: Iterable[str] = (), action: str = "alter", *, statement: str, ends: bool = True,
              adds: bool = True, also_locks: Iterable[Lock] = (), subject: Column | None = None,
              **extra: Iterable) -> None:
        # Each statement carries only the dependencies it can change: one
        # that drops or replaces part of the column (default, type,
        # expression) may end what the column needed before ("had"), one
        # that sets a part may need what the desired column refers to
        # ("needs"). A statement given dependencies it does not touch
        # forms cycles: serial -> identity drops the old sequence before
        # the identity claims its name, and back, DROP IDENTITY frees the
        # name before the new sequence is created.
        merged = {k: set(v) for k, v in graph.items() if (k != "had" or ends) and (k != "needs" or adds)}
        for k, v in extra.items():
            merged[k] = merged.get(k, set()) | set(v)
        plan.add(sql, action, "column", key[1], qname, R_ALTER_COLUMN, hazards=hazards,
                 statement=f"ALTER TABLE ALTER COLUMN {statement}", also_locks=also_locks, subject=subject,
                 **merged)

    if old.generated is not None and new.generated is None:
        alter(ddl.op.alter_column_drop_expression(table, new), statement="DROP EXPRESSION", adds=False)
    if old.identity and not new.identity:
        # The identity's sequence is dropped with it (ACCESS EXCLUSIVE on the sequence).
        alter(ddl.op.alter_column_drop_identity(table, new), statement="DROP IDENTITY", adds=False,
              also_locks=[Lock(old.identity_sequence, AE)] if old.identity_sequence else [],
              names_freed={f"rel:{old.identity_sequence}"} if old.identity_sequence else ())
    retyped = (old.type, old.collation) != (new.type, new.collation)
    base_changes = retyped and _base(old.type) != _base(new.type)
    default_reset = base_changes and old.default is not None
    # A default that may not cast to the new type goes first, and comes back after.
    if old.default is not None and (new.default is None or default_reset):
        alter(ddl.op.alter_column_drop_default(table, new), statement="DROP DEFAULT", adds=False)
    if retyped:
        collation = (new.collation or _DEFAULT_COLLATION) if new.collation or old.collation else None
        using = base_changes and needs_using(old.type, new.type, is_enum(ctx, old.type) or is_enum(ctx, new.type))
        via = None
        if using and (is_enum(ctx, old.type) or is_enum(ctx, new.type)):
            # An enum's values cast to and from text only.
            via = "text[]" if new.type.endswith("[]") else "text"
        sql = ddl.op.alter_column_type(table, new, collation=collation, using=using, using_via=via)
        if converts_to_rebuilt_type(ctx, old.type, new.type):
            hazards = (hz.REWRITES_TABLE, hz.ACCESS_EXCLUSIVE)
        else:
            hazards = type_change_hazards(old.type, new.type)
        if old.collation != new.collation:
            # Even without a rewrite, indexes on the column are rebuilt for the new collation.
            hazards = tuple(dict.fromkeys((*hazards, hz.REBUILDS_INDEXES, hz.ACCESS_EXCLUSIVE)))
        alter(sql, hazards, statement="TYPE")
    if new.default is not None and (old.default != new.default or default_reset):
        alter(ddl.op.alter_column_set_default(table, new), statement="SET DEFAULT")
        sequence = _nextval_sequence(new.default)
        if sequence is not None and sequence != _nextval_sequence(old.default or ""):
            continue_sequence(ctx, plan, table, new, sequence)
    if old.notnull != new.notnull and not (new.identity and not new.notnull):
        if new.notnull:
            alter(ddl.op.alter_column_set_not_null(table, new), [hz.VALIDATES, hz.ACCESS_EXCLUSIVE], statement="SET NOT NULL", ends=False,
                  adds=False, subject=new)
        elif not new.identity:
            alter(ddl.op.alter_column_drop_not_null(table, new), statement="DROP NOT NULL", ends=False, adds=False)
    if new.identity and not old.identity:
        alter(ddl.op.alter_column_add_identity(table, new), statement="ADD IDENTITY", ends=False, adds=False,
              names_taken={f"rel:{new.identity_sequence}"} if new.identity_sequence else ())
        continue_sequence(ctx, plan, table, new, None)
    elif new.identity and old.identity:
        if new.identity != old.identity:
            alter(ddl.op.alter_column_set_generated(table, new), statement="SET IDENTITY",
                  ends=False, adds=False)
        if old.identity_options and new.identity_options:
            clauses = ddl.identity_option_changes(old.identity_options, new.identity_options)
            if clauses:
                keep_position_in_bounds(ctx, plan, table, new, old.identity_options, new.identity_options)
                alter(ddl.op.alter_column_set_identity_options(table, new, clauses), statement="SET IDENTITY", ends=False, adds=False)


def continue_sequence(ctx: Context, plan: Plan, table: Table, column: Column, regclass: str | None) -> None:
    """Move the sequence that now feeds an existing column past the values the column holds.

    ``regclass`` is the sequence as the column's ``nextval('...'::regclass)``
    default names it, or None for the column's identity sequence. A
    sequence that begins to feed a column holding rows starts at its
    START (PostgreSQL: ``ADD GENERATED ... AS IDENTITY`` and ``CREATE
    SEQUENCE`` both do), so without this the first insert after the
    migration collides with an existing key. The statement is plain SQL
    (golang-migrate sends a file as one multi-statement query): ``setval``
    to the column's largest value (smallest for a descending sequence),
    only when that value has reached the sequence's next one, so an
    empty table, values below START and a sequence already further on
    are left alone. PostgreSQL docs, "Sequence Manipulation Functions".
    """
    if _base(column.type) not in ("smallint", "integer", "bigint"):
        return  # setval takes bigint; other types are not counters we can continue
    qname = table.qualified
    key = ("column", f"{qname}.{column.name}")
    needs: set[Key] = {key, ("table", qname)}
    if regclass is None:
        sequence = ddl.serial_sequence(table, column)
        options = column.identity_options
        fresh = True  # ADD ... AS IDENTITY always makes a new sequence
    else:
        sequence = ddl.regclass(regclass)
        found = sequence_named(ctx, regclass)
        options = found.options if found is not None else None
        fresh = found is not None and (found.schema + "." + found.name not in ctx.a.sequences
                                       or ctx.owner_dropped(ctx.a.sequences[found.schema + "." + found.name]
                                                             .owned_by))
        if found is not None:
            needs.add(("sequence", f"{found.schema}.{found.name}"))
    descending = options is not None and options.increment < 0
    if fresh and options is not None:
        position = str(options.start)
    else:
        # A sequence that already existed: where it stands is data, read it
        # (pg_sequence_last_value is NULL until the first nextval).
        position = ddl.sequence_position(sequence)
    plan.add(ddl.op.continue_sequence(sequence, table, column, descending=descending, position=position),
             "alter", "sequence", key[1], qname, R_CREATE["table option"], needs=needs, statement="SELECT setval")


def rename_identity_sequence(ctx: Context, plan: Plan, table: Table, old: Column, new: Column) -> None:
    """Give a kept identity's sequence the name it has in the desired state.

    PostgreSQL names an identity's sequence after its table and column
    when it is created (``tags_id_seq``) and never renames it: after
    ``ALTER TABLE tags RENAME TO labels`` it is still ``tags_id_seq``,
    while a database built from the desired file has ``labels_id_seq``
    (and pg_dump shows the name). Its position is kept: a rename, not a
    new sequence.
    """
    if not (old.identity and new.identity and old.identity_sequence and new.identity_sequence):
        return
    old_schema, _, old_name = old.identity_sequence.partition(".")
    new_schema, _, new_name = new.identity_sequence.partition(".")
    if old_name == new_name or old_schema != new_schema:
        return
    qname = table.qualified
    key = ("column", f"{qname}.{new.name}")
    plan.add(ddl.op.rename_sequence(old_schema, old_name, new_name), "rename",
             "sequence", new.identity_sequence, qname, R_ALTER_COLUMN, modifies={key},
             statement="ALTER SEQUENCE RENAME", relation=old.identity_sequence,
             needs={key, ("table", qname)}, names_freed={f"rel:{old.identity_sequence}"},
             names_taken={f"rel:{new.identity_sequence}"})


def keep_position_in_bounds(ctx: Context, plan: Plan, table: Table, column: Column, old: SequenceOptions,
                            new: SequenceOptions) -> None:
    """Before narrowing an identity's bounds, move a position outside the new ones to the nearest bound.

    ALTER SEQUENCE refuses bounds that exclude the sequence's current
    position ("RESTART value (-200) cannot be less than MINVALUE
    (-100)"; PostgreSQL docs, ALTER SEQUENCE), and where the position
    stands is data, different on each database. So a plain statement
    reads it (``pg_sequence_last_value``, or the START of a sequence
    never used) and only when it lies outside the new bounds sets it to
    the nearest one, not yet called; a position inside them is left
    alone, so a used sequence keeps going where it was.
    """
    if new.minvalue <= old.minvalue and new.maxvalue >= old.maxvalue:
        return  # the bounds only widen: every position stays valid
    qname = table.qualified
    key = ("column", f"{qname}.{column.name}")
    sequence = ddl.serial_sequence(table, column)
    plan.add(ddl.op.keep_sequence_position_in_bounds(sequence, new),
             "alter", "sequence", key[1], qname, R_ALTER_COLUMN, modifies={key}, needs={key, ("table", qname)},
             statement="SELECT setval (position only)")


def sequence_named(ctx: Context, regclass: str) -> Sequence | None:
    """The desired model's sequence that a ``'...'::regclass`` text names (search_path: public)."""
    for seq in ctx.b.sequences.values():
        if regclass == ddl.qualified(seq.schema, seq.name) or \
                (seq.schema == "public" and regclass == ident(seq.name)):
            return seq
    return None


_NULL_DEFAULT = re.compile(r"^\(?NULL(::[^()]+)?\)?$", re.IGNORECASE)
_NEXTVAL = re.compile(r"^nextval\('((?:[^']|'')+)'::regclass\)$")


def _nextval_sequence(default: str) -> str | None:
    """The sequence a ``nextval('name'::regclass)`` default (as pg_get_expr prints it) names, unquoted literal."""
    match = _NEXTVAL.match(default.strip())
    return match.group(1).replace("''", "'") if match else None


def _base(type_name: str) -> str:
    base = type_name
    if "(" in base:
        base = base[: base.index("(")] + base[base.index(")") + 1:]
    return base


def _column_settings(column: Column) -> tuple:
    return (column.storage, column.statistics, column.compression, column.options)


def _column_shape(column: Column) -> tuple:
    """Everything ALTER COLUMN can change (not the comment, not the position)."""
    return (column.type, column.notnull, column.default, column.identity, column.identity_options,
            column.generated, column.collation)
