"""Diff engine, part: rules, extended statistics, view column defaults,
column compression and attribute options, and the attributes of indexes
(storage parameters of constraint-backed ones, CLUSTER ON).

Plain functions over the engine's frozen :class:`~schemadiff.engine.context.Context`
(the two models, the replaced objects, the dropped and created relations)
that add statements to the :class:`~schemadiff.engine.context.Plan`, like
``engine.tables``. Each of these objects
hangs off a relation: one dropped with its relation is not dropped again,
and one on a re-created relation (or itself rebuilt because something it
depends on is) is created again in the same migration.

Statements follow the PostgreSQL reference pages: CREATE RULE / CREATE OR
REPLACE RULE / ALTER TABLE ... {ENABLE|DISABLE} RULE, CREATE / ALTER
STATISTICS, ALTER VIEW ... ALTER COLUMN ... {SET|DROP} DEFAULT, ALTER TABLE
... ALTER COLUMN ... {SET COMPRESSION|SET (...)|RESET (...)}, ALTER INDEX
... {SET|RESET} (storage parameter), ALTER TABLE ... {CLUSTER ON|SET
WITHOUT CLUSTER}.
"""

from __future__ import annotations

from . import ddl
from .order import R_ALTER_TABLE, R_CREATE, R_DROP
from ..errors import UnsupportedChange
from .context import Context, Plan
from .model import Column, Constraint, Key, Schema, Table, View


def option_changes(old: tuple[str, ...], new: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """(parameters to SET as ``name=value``, parameter names to RESET) to turn ``old`` into ``new``."""
    before = dict(o.split("=", 1) for o in old)
    after = dict(o.split("=", 1) for o in new)
    reset = [name for name in before if name not in after]
    changed = [f"{name}={value}" for name, value in after.items() if before.get(name) != value]
    return changed, reset


def refuse_unmanaged(current: Schema, desired: Schema) -> None:
    """Raise UnsupportedChange when objects of a kind the engine does not model differ.

    Without this, a new collation or cast in the desired schema would
    give an empty plan ("in sync") and never be created.
    """
    lines = []
    for identity in sorted(current.unmanaged.keys() | desired.unmanaged.keys()):
        old, new = current.unmanaged.get(identity), desired.unmanaged.get(identity)
        if old == new:
            continue
        state = "to be created" if old is None else "to be dropped" if new is None else "changed"
        lines.append(f"  - {identity}: {state}")
    if lines:
        raise UnsupportedChange(
            "schemadiff does not create, alter or drop these objects; nothing was planned:\n" + "\n".join(lines),
            "Write this part of the migration by hand (then run `schemadiff hash`), or leave the objects"
            " as they are on both sides; README \"What the engine models\" lists the kinds.")


def diff_rules(ctx: Context, plan: Plan) -> None:
    for name, rule, key in ctx.dropped_members("rule", ctx.a.rules, ctx.b.rules):
        plan.add(ddl.op.drop_rule(rule), "drop", "rule", name,
                 rule.table, R_DROP["rule"], removes={key}, had=ctx.a_refs(key), statement="DROP RULE")
    for name, rule in ctx.b.rules.items():
        key = ("rule", name)
        old = ctx.a.rules.get(name)
        created = ctx.member_created(key, rule, old)
        if created:
            plan.add(ddl.op.create_rule(rule), "create", "rule", name, rule.table, R_CREATE["rule"], provides={key},
                     needs=ctx.b_refs(key), statement="CREATE RULE")
        elif old.definition != rule.definition:
            # Same name, same relation: replaced in place, atomically.
            sql = ddl.op.create_or_replace_rule(rule)
            plan.add(sql, "alter", "rule", name, rule.table, R_CREATE["rule"], modifies={key},
                     needs=ctx.b_refs(key), had=ctx.a_refs(key), statement="CREATE OR REPLACE RULE")
        if (created and rule.enabled != "O") or (not created and old.enabled != rule.enabled):
            # ALTER TABLE takes views too for this form (pg_dump writes it so).
            plan.add(ddl.op.rule_state(rule),
                     "alter", "rule", name, rule.table, R_CREATE["rule"], needs={key},
                     statement="ALTER TABLE ENABLE/DISABLE RULE")
        plan.comment_step(ddl.member_target("rule", rule.name, rule.table), key, "rule", name,
                          rule.table, None if created else old.comment, rule.comment, created)


def diff_statistics(ctx: Context, plan: Plan) -> None:
    for name, stats, key in ctx.dropped_members("statistics", ctx.a.statistics, ctx.b.statistics):
        plan.add(ddl.op.drop_statistics(stats), "drop", "statistics", name,
                 stats.table, R_DROP["statistics"], removes={key}, had=ctx.a_refs(key),
                 statement="DROP STATISTICS")
    for name, stats in ctx.b.statistics.items():
        key = ("statistics", name)
        old = ctx.a.statistics.get(name)
        created = ctx.member_created(key, stats, old)
        if created:
            plan.add(ddl.op.create_statistics(stats), "create", "statistics", name, stats.table, R_CREATE["statistics"],
                     provides={key}, needs=ctx.b_refs(key), statement="CREATE STATISTICS")
        # ALTER COLUMN TYPE rebuilds the statistics objects on the column
        # but forgets their statistics target (PostgreSQL 16): set it again.
        over_retyped = ctx.b_refs(key) & ctx.retyped_columns
        if (created and stats.target is not None) or (not created and old.target != stats.target) or (
                not created and stats.target is not None and over_retyped):
            plan.add(ddl.op.alter_statistics_target(stats), "alter", "statistics", name,
                     stats.table, R_CREATE["statistics"], needs={key} | over_retyped, statement="ALTER STATISTICS")
        plan.comment_step(ddl.relation_target("statistics", stats.schema, stats.name), key, "statistics", name, stats.table,
                          None if created else old.comment, stats.comment, created)


def view_column_defaults(ctx: Context, plan: Plan, view: View, old: View | None) -> None:
    """SET / DROP DEFAULT on a view's columns; ``old`` None when the view is (re-)created.

    CREATE OR REPLACE VIEW keeps the defaults of the columns it keeps.
    """
    key: Key = ("view", f"{view.schema}.{view.name}")
    before = old.column_defaults if old is not None else {}
    for column in view.columns:
        default = view.column_defaults.get(column)
        if before.get(column) == default:
            continue
        plan.add(ddl.op.alter_view_column_default(view, column, default), "alter", "column",
                 f"{key[1]}.{column}", None, R_CREATE["view default"], needs={key} | ctx.b_refs(key) - {key},
                 statement="ALTER VIEW ALTER COLUMN SET/DROP DEFAULT", relation=key[1])


def column_compression_and_options(ctx: Context, plan: Plan, table: Table, column: Column, before: Column | None) -> None:
    """ALTER COLUMN SET COMPRESSION and SET / RESET (n_distinct...); ``before`` None for a new column.

    SET COMPRESSION applies to values stored from now on; existing
    values keep theirs (PostgreSQL, ALTER TABLE).
    """
    key: Key = ("column", f"{table.qualified}.{column.name}")
    if (before.compression if before else None) != column.compression:
        plan.add(ddl.op.alter_column_set_compression(table, column), "alter", "column", key[1], table.qualified,
                 R_CREATE["table option"], needs={key}, statement="ALTER TABLE ALTER COLUMN SET COMPRESSION")
    changed, reset = option_changes(before.options if before else (), column.options)
    if changed:
        plan.add(ddl.op.alter_column_set_options(table, column, changed), "alter", "column", key[1], table.qualified,
                 R_CREATE["table option"], needs={key}, statement="ALTER TABLE ALTER COLUMN SET (attribute options)")
    if reset:
        plan.add(ddl.op.alter_column_reset_options(table, column, reset), "alter", "column", key[1], table.qualified,
                 R_CREATE["table option"], needs={key}, statement="ALTER TABLE ALTER COLUMN SET (attribute options)")


def constraint_index_options(ctx: Context, plan: Plan, old: Constraint, new: Constraint) -> None:
    """ALTER INDEX ... SET / RESET for a kept PRIMARY KEY / UNIQUE constraint's index.

    No rebuild: like ALTER INDEX on any index, the new parameters apply
    to pages written from now on (PostgreSQL, ALTER INDEX).
    """
    changed, reset = option_changes(old.index_options, new.index_options)
    key: Key = ("constraint", f"{new.table}.{new.name}")
    if changed:
        plan.add(ddl.op.alter_index_set(new.schema, new.name, changed), "alter", "constraint", key[1], new.table,
                 R_ALTER_TABLE, modifies={key}, statement="ALTER INDEX SET (storage parameters)")
    if reset:
        plan.add(ddl.op.alter_index_reset(new.schema, new.name, reset), "alter", "constraint", key[1], new.table,
                 R_ALTER_TABLE, modifies={key}, statement="ALTER INDEX SET (storage parameters)")


def diff_clustering(ctx: Context, plan: Plan) -> None:
    """ALTER TABLE ... CLUSTER ON / SET WITHOUT CLUSTER: which index a bare CLUSTER uses.

    A table has at most one; marking another unmarks the previous one.
    """
    def clustered(schema) -> dict[str, tuple[str, Key]]:
        marks: dict[str, tuple[str, Key]] = {}
        for name, index in schema.indexes.items():
            if index.clustered:
                marks[index.table] = (index.name, ("index", name))
        for name, constraint in schema.constraints.items():
            if constraint.clustered:
                marks[constraint.table] = (constraint.name, ("constraint", name))
        return marks

    before, after = clustered(ctx.a), clustered(ctx.b)
    for table in sorted(set(before) | set(after)):
        if table in ctx.b.tables:
            materialized, relation = False, ("table", table)
        elif table in ctx.b.views:
            materialized, relation = True, ("view", table)
        else:
            continue
        mark = after.get(table)
        rebuilt = table in ctx.created_relations or (mark is not None and (
            mark[1] in ctx.replaced or mark[1] not in ctx.a_objects or mark[1] in ctx.renamed_to))
        if before.get(table, (None,))[0] == (mark[0] if mark else None) and not rebuilt:
            continue
        if mark is None:
            if table in ctx.created_relations:
                continue
            plan.add(ddl.op.set_without_cluster(table, materialized=materialized), "alter", relation[0], table,
                     table, R_CREATE["table option"], needs={relation}, statement="ALTER TABLE SET WITHOUT CLUSTER")
        else:
            plan.add(ddl.op.cluster_on(table, mark[0], materialized=materialized), "alter", relation[0],
                     table, table, R_CREATE["table option"], needs={relation, mark[1]},
                     statement="ALTER TABLE CLUSTER ON")
