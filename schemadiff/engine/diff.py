"""The diff engine: the ordered statements that turn one schema into another.

Both databases are read by :mod:`schemadiff.inspect` (whose ``diff_databases`` reads and diffs two URLs); the two models are
compared object by object, and only objects that differ produce statements
(a column change is an ALTER COLUMN, an index change drops and re-creates
that index alone). Objects that PostgreSQL cannot alter in place while
something depends on them (a view over a column whose type changes, a
foreign key on a primary key being re-created) are dropped and re-created
around the change, found through ``pg_depend``.

Ordering is a topological sort of the statements: a statement that needs an
object runs after the statement creating or altering it, a statement that
stops depending on an object runs before the statement dropping it, and a
name is freed before it is claimed again. Ties are broken by a fixed phase
order (drops, then alters, then creates: schemas, extensions, types,
sequences, tables, columns, functions, constraints, indexes, views,
triggers, policies, comments) so that output is stable.

The engine is split by concern. :func:`diff_schemas` first decides what
the comparisons share (the replaced objects, renamed indexes and
constraints, dropped and created relations: a frozen
:class:`~schemadiff.engine.context.Context`), then runs one plain function
per kind, ``diff_x(ctx, plan)``, each adding statements to the
:class:`~schemadiff.engine.context.Plan`: this module compares schemas,
extensions, sequences, functions, constraints, indexes, views, triggers,
policies and event triggers; :mod:`schemadiff.engine.usertypes` enums,
domains, composite and range types; :mod:`schemadiff.engine.tables` tables
and columns; :mod:`schemadiff.engine.objects` rules, statistics and
attributes; :mod:`schemadiff.engine.privileges` grants and owners.
:mod:`schemadiff.engine.order` sorts the statements,
:mod:`schemadiff.engine.ddl` renders them and
:mod:`schemadiff.engine.typechange` judges column type changes.
"""

from __future__ import annotations

import copy
import dataclasses
from collections import defaultdict
from dataclasses import dataclass

from . import ddl
from . import hazards as hz
from .change import Change
from .locks import AE, SRE, Lock, LockMode
from .ddl import literal, qualified
from .order import (
    R_ALTER_SEQUENCE,
    R_ALTER_TABLE,
    R_ALTER_TYPE,
    R_CREATE,
    R_DROP,
    R_RENAME,
    R_REPLACE_FUNCTION,
    order,
)
from .context import Context, Plan, children_of, generated_in_both
from .objects import constraint_index_options, diff_clustering, diff_rules, diff_statistics, refuse_unmanaged, \
    view_column_defaults
from .privileges import diff_privileges, same_without_owners
from .tables import cyclic_foreign_keys, diff_tables
from .usertypes import diff_types, rename_replaced_types, replaced_type
from .model import (
    Constraint,
    EventTrigger,
    Function,
    Index,
    Key,
    Policy,
    Rule,
    Schema,
    Statistics,
    Trigger,
    View,
)


def diff_schemas(current: Schema, desired: Schema, *, current_index: SchemaIndex | None = None,
                 owners: bool = False) -> list[Change]:
    """Ordered statements that turn the ``current`` model into ``desired``.

    ``current_index``, ``index_schema(current)`` computed beforehand (while
    waiting on something else), saves building it here. ``owners``: compare
    and set owners too (``OWNER TO``); off, owners and the owner's own
    privileges are ignored (see :mod:`schemadiff.engine.privileges`).
    Neither model is changed (renames happen on copies). Raises
    :class:`~schemadiff.errors.UnsupportedChange` when objects of a kind the
    engine does not model differ, and
    :class:`~schemadiff.errors.OrderingCycle` when the statements
    depend on each other in a circle.
    """
    if current == desired or (not owners and same_without_owners(current, desired)):
        # In sync: a field-by-field comparison is a fraction of the cost of
        # the dependency graphs the engine would build to find nothing.
        # (Owners differ between a live database and the shadow server.)
        return []
    plan = Plan()
    ctx = _context(current, desired, current_index, owners, plan)
    # Kind by kind, in the order their statements are added (order() sorts them; this order only breaks ties).
    for compare in (diff_namespaces, diff_extensions, diff_types, diff_sequences, diff_functions, diff_tables,
                    diff_constraints, diff_indexes, diff_views, diff_triggers, diff_policies, diff_event_triggers,
                    diff_rules, diff_statistics, diff_clustering, diff_privileges):
        compare(ctx, plan)
    quiet_new_tables(ctx, plan)
    return [dataclasses.replace(node.change, needs=frozenset(node.needs), frees=frozenset(node.removes))
            for node in order(plan.nodes)]


@dataclass(frozen=True)
class SchemaIndex:
    """What the differ looks up in a model: its dependency graph both ways, and its objects by key."""

    refs: dict[Key, set[Key]]
    dependents: dict[Key, set[Key]]
    objects: dict[Key, object]


def index_schema(schema: Schema) -> SchemaIndex:
    return SchemaIndex(*_graph(schema), _objects(schema))


def _graph(schema: Schema) -> tuple[dict[Key, set[Key]], dict[Key, set[Key]]]:
    refs: dict[Key, set[Key]] = defaultdict(set)
    dependents: dict[Key, set[Key]] = defaultdict(set)
    for dependent, referenced, deptype in schema.depends:
        # A sequence OWNED BY a column is not needed to create the sequence
        # (the OWNED BY statement comes after the column), and the column's
        # default is what really depends on the sequence: keep only that
        # direction or every serial column would form a cycle.
        if dependent[0] == "sequence" and referenced[0] == "column" and deptype == "a":
            continue
        refs[dependent].add(referenced)
        dependents[referenced].add(dependent)
    return refs, dependents


def _objects(schema: Schema) -> dict[Key, object]:
    objects: dict[Key, object] = {}
    for name, obj in schema.schemas.items():
        objects[("schema", name)] = obj
    for name, obj in schema.extensions.items():
        objects[("extension", name)] = obj
    for name, obj in schema.types.items():
        objects[("type", name)] = obj
    for name, obj in schema.sequences.items():
        objects[("sequence", name)] = obj
    for name, table in schema.tables.items():
        objects[("table", name)] = table
        for column in table.columns.values():
            objects[("column", f"{name}.{column.name}")] = column
    for kind, collection in (("view", schema.views), ("function", schema.functions),
                             ("constraint", schema.constraints), ("index", schema.indexes),
                             ("trigger", schema.triggers), ("policy", schema.policies),
                             ("rule", schema.rules), ("statistics", schema.statistics)):
        for name, obj in collection.items():
            objects[(kind, name)] = obj
    return objects


def _owner(obj: object) -> str | None:
    """The relation a constraint/index/trigger/policy/rule/statistics object belongs to."""
    owned = (Constraint, Index, Trigger, Policy, Rule, Statistics)
    return getattr(obj, "table", None) if isinstance(obj, owned) else None


def _context(current: Schema, desired: Schema, current_index: SchemaIndex | None, owners: bool,
             plan: Plan) -> Context:
    """What the comparisons share, decided before any of them runs.

    Types that cannot be altered and serial sequences whose generated name
    changes are renamed first (their statements go to ``plan``), on a copy of
    ``current``: the comparisons then see the renamed model.
    """
    refuse_unmanaged(current, desired)
    a, type_renames = rename_replaced_types(current, desired, plan)
    a = rename_owned_sequences(a, desired, plan)
    # A copy made by the renames does not fit an index computed for the given model.
    a_index = current_index if current_index is not None and a is current else index_schema(a)
    b_index = index_schema(desired)
    found = _replacements(a, desired, a_index, b_index)
    ctx = Context(a, desired, owners, a_index.refs, a_index.dependents, a_index.objects, b_index.refs,
                  b_index.dependents, b_index.objects, type_renames=type_renames, **found)
    implied = _implied_sequences(ctx)
    return dataclasses.replace(ctx, implied_sequences=implied,
                               cyclic_fks=frozenset(cyclic_foreign_keys(a, ctx.dropped_relations)))


def _replacements(a: Schema, b: Schema, a_index: SchemaIndex, b_index: SchemaIndex) -> dict:
    """Objects dropped and re-created, and what must follow them: the :class:`Context` fields
    ``replaced``, ``retyped_columns``, ``renamed``, ``renamed_to``, ``dropped_relations``,
    ``created_relations``, by name."""
    replaced: set[Key] = set()
    for qname, old in a.tables.items():
        new = b.tables.get(qname)
        if new and (old.partitioned != new.partitioned or old.partition_key != new.partition_key):
            replaced.add(("table", qname))
        if new:
            for column in old.columns.values():
                other = new.columns.get(column.name)
                if other and other.generated is not None and other.generated != column.generated:
                    replaced.add(("column", f"{qname}.{column.name}"))
    for qname, view in a.views.items():
        new_view = b.views.get(qname)
        if new_view and (view.definition, view.options, view.materialized) != (
                new_view.definition, new_view.options, new_view.materialized) and not _replaceable_view(
                view, new_view):
            replaced.add(("view", qname))
    for sig, function in a.functions.items():
        new_function = b.functions.get(sig)
        if new_function and new_function.definition != function.definition and not _replaceable(
                function, new_function):
            replaced.add(("function", sig))
    for kind, old_map, new_map in (("constraint", a.constraints, b.constraints), ("index", a.indexes, b.indexes),
                                   ("trigger", a.triggers, b.triggers), ("statistics", a.statistics, b.statistics)):
        for name, obj in old_map.items():
            other = new_map.get(name)
            if other is not None and obj.definition != other.definition:
                replaced.add((kind, name))
    for name, policy in a.policies.items():
        other = b.policies.get(name)
        if other is not None and (
                (policy.permissive, policy.command) != (other.permissive, other.command)
                or (policy.using is not None and other.using is None)
                or (policy.check is not None and other.check is None)):
            replaced.add(("policy", name))
    for qname, old_type in a.types.items():
        new_type = b.types.get(qname)
        if new_type is not None and replaced_type(old_type, new_type):
            replaced.add(("type", qname))

    # Columns whose type changes: PostgreSQL re-creates their indexes and
    # constraints itself but refuses while a view, policy or trigger uses them.
    retyped: set[Key] = set()
    for qname, old_table in a.tables.items():
        new_table = b.tables.get(qname)
        if new_table is None or ("table", qname) in replaced:
            continue
        for column in old_table.columns.values():
            other = new_table.columns.get(column.name)
            if other and (other.type, other.collation) != (column.type, column.collation):
                retyped.add(("column", f"{qname}.{column.name}"))

    renamed = _renames(a, b, replaced)
    rebuildable = {"view", "constraint", "index", "trigger", "policy", "rule", "statistics"}
    # Dropped objects count too: a foreign key kept as it is must still be
    # re-created when the unique index it relies on goes away.
    dropped = [key for key in a_index.objects if key not in b_index.objects and key not in renamed]
    pending = [(key, False) for key in [*replaced, *dropped]] + [(key, True) for key in retyped]
    if any(key[0] == "table" for key in replaced):
        for key in list(replaced):
            if key[0] == "table":
                pending.extend((child, False) for child in children_of(a, key[1]))
    seen: set[Key] = set()
    while pending:
        key, limited = pending.pop()
        if (key, limited) in seen:
            continue
        seen.add((key, limited))
        for dependent in a_index.dependents.get(key, ()):
            if dependent[0] == "column" and generated_in_both(a_index.objects, b_index.objects, dependent):
                # No ALTER changes what a generated column is computed
                # from: drop it and add it back (its data is derived).
                if dependent not in replaced:
                    replaced.add(dependent)
                    pending.append((dependent, False))
                continue
            if dependent[0] not in rebuildable or dependent not in b_index.objects:
                continue
            # ALTER COLUMN TYPE rebuilds indexes, constraints and extended
            # statistics itself; it refuses while a view, rule, trigger or
            # policy uses the column.
            if limited and dependent[0] not in ("view", "trigger", "policy", "rule"):
                continue
            owner = _owner(a_index.objects.get(dependent))
            if owner is not None and owner == key[1] and key[0] in ("table", "view"):
                continue  # re-created with its relation anyway
            if dependent not in replaced:
                replaced.add(dependent)
            pending.append((dependent, False))
    # An event trigger is re-created when anything but its comment or state changes (no ALTER for the rest).
    for name, trigger in a.event_triggers.items():
        if name not in b.event_triggers or _event_trigger_body(b.event_triggers[name]) != _event_trigger_body(trigger):
            replaced.add(("event trigger", name))
    return {
        "replaced": frozenset(replaced),
        "retyped_columns": frozenset(retyped),
        "renamed": renamed,
        "renamed_to": {new: old for old, new in renamed.items()},
        "dropped_relations": frozenset({q for q in a.tables if q not in b.tables or ("table", q) in replaced} | {
            q for q in a.views if q not in b.views or ("view", q) in replaced}),
        "created_relations": frozenset({q for q in b.tables if q not in a.tables or ("table", q) in replaced} | {
            q for q in b.views if q not in a.views or ("view", q) in replaced}),
    }


def _event_trigger_body(trigger: EventTrigger) -> dict:
    """An event trigger's fields but its comment and enabled state, which ALTER/COMMENT change in place."""
    return trigger.__dict__ | {"comment": None, "enabled": None}


def _renames(a: Schema, b: Schema, replaced: set[Key]) -> dict[Key, Key]:
    """Indexes and constraints that only changed name (old key -> new key): renaming them keeps
    the index (no rebuild) and everything that depends on it."""
    renamed: dict[Key, Key] = {}
    for kind, old_map, new_map in (("index", a.indexes, b.indexes),
                                   ("constraint", a.constraints, b.constraints)):
        gone: dict[tuple, list[str]] = defaultdict(list)
        for name, obj in old_map.items():
            if name not in new_map and ("table", obj.table) not in replaced:
                gone[_shape(obj)].append(name)
        came: dict[tuple, list[str]] = defaultdict(list)
        for name, obj in new_map.items():
            if name not in old_map:
                came[_shape(obj)].append(name)
        for shape, old_names in gone.items():
            new_names = came.get(shape, [])
            if len(old_names) == 1 and len(new_names) == 1:
                renamed[(kind, old_names[0])] = (kind, new_names[0])
    return renamed


def rename(ctx: Context, plan: Plan, old: Constraint | Index, new: Constraint | Index) -> None:
    old_key = ("index" if isinstance(old, Index) else "constraint", _object_name(old))
    new_key = (old_key[0], _object_name(new))
    if isinstance(old, Index):
        sql = ddl.op.rename_index(old.schema, old.name, new.name)
    else:
        sql = ddl.op.rename_constraint(old.table, old.name, new.name)
    names = old_key[0] == "index" or old.type in "pux"
    plan.add(sql, "rename", old_key[0], new_key[1], new.table, R_ALTER_TABLE, removes={old_key},
             statement="ALTER INDEX RENAME" if isinstance(old, Index) else "ALTER TABLE RENAME CONSTRAINT",
             provides={new_key}, names_freed={f"rel:{old.schema}.{old.name}"} if names else set(),
             names_taken={f"rel:{new.schema}.{new.name}"} if names else set())


def diff_namespaces(ctx: Context, plan: Plan) -> None:
    for name in ctx.a.schemas.keys() - ctx.b.schemas.keys():
        key = ("schema", name)
        plan.add(ddl.op.drop_schema(name), "drop", "schema", name, None, R_DROP["schema"], statement="DROP SCHEMA",
                 removes={key}, had=ctx.a_refs(key))
    for name, ns in ctx.b.schemas.items():
        key = ("schema", name)
        old = ctx.a.schemas.get(name)
        if old is None:
            plan.add(ddl.op.create_schema(name), "create", "schema", name, None, R_CREATE["schema"], statement="CREATE SCHEMA",
                     provides={key}, needs=ctx.b_refs(key))
        plan.comment_step(ddl.named_target("schema", name), key, "schema", name, None,
                          old.comment if old else None, ns.comment, old is None)


def diff_extensions(ctx: Context, plan: Plan) -> None:
    for name, ext in ctx.a.extensions.items():
        if name not in ctx.b.extensions:
            key = ("extension", name)
            plan.add(ddl.op.drop_extension(name), "drop", "extension", name, None, R_DROP["extension"], statement="DROP EXTENSION",
                     removes={key}, had=ctx.a_refs(key) | {("schema", ext.schema)})
    for name, ext in ctx.b.extensions.items():
        key = ("extension", name)
        old = ctx.a.extensions.get(name)
        if old is None:
            # IF NOT EXISTS: on managed PostgreSQL a DBA usually creates the
            # extension beforehand and the migrating role may not create it.
            plan.add(ddl.op.create_extension(name, ext.schema), "create",
                     "extension", name, None, R_CREATE["extension"], provides={key}, statement="CREATE EXTENSION",
                     needs={("schema", ext.schema)})
        elif old.schema != ext.schema:
            plan.add(ddl.op.alter_extension_set_schema(name, ext.schema), "alter", "extension",
                     name, None, R_ALTER_TYPE, modifies={key}, needs={("schema", ext.schema)}, statement="ALTER EXTENSION",
                     had={("schema", old.schema)})
        # CREATE EXTENSION sets the extension's own comment from its control
        # file; repeating it would be noise in every migration that adds one.
        if old is not None:
            plan.comment_step(ddl.named_target("extension", name), key, "extension", name, None,
                              old.comment, ext.comment, False)


def rename_owned_sequences(current: Schema, desired: Schema, plan: Plan) -> Schema:
    """Rename a serial column's sequence that has another name in the desired state, keeping its position.

    PostgreSQL names a serial column's sequence after its table and
    column when it is created (``tags_id_seq``, PostgreSQL docs, "Serial
    Types") and never renames it: after ``ALTER TABLE tags RENAME TO
    labels`` (a rename hint) it is still ``tags_id_seq``, while a
    database built from the desired file has ``labels_id_seq``. Dropping
    one and creating the other starts the numbering over, handing out
    ids already used. So when the same column owns a sequence on both
    sides and uses it as its default, the sequences' names both end in
    ``_seq`` (generated names) and neither name is on the other side,
    the current one is renamed (as a kept identity's sequence is, see
    ``tables.rename_identity_sequence``). Done on a copy of the
    current model, after which the ordinary comparison sees one
    sequence (and the default follows: it refers to the sequence, not
    to its name). Returns ``current`` when nothing is renamed, else the
    renamed copy; the renames go to ``plan``.
    """
    a, b = current, desired
    owners: dict[tuple[str, str], list[str]] = defaultdict(list)
    for qname, seq in a.sequences.items():
        if seq.owned_by:
            owners[seq.owned_by].append(qname)
    copied = False
    for new_qname, new in list(b.sequences.items()):
        found = owners.get(new.owned_by) if new.owned_by else None
        if new_qname in a.sequences or not found or len(found) != 1 or found[0] in b.sequences:
            continue
        old_qname = found[0]
        old = a.sequences[old_qname]
        table, column = new.owned_by
        old_column = a.tables[table].columns.get(column) if table in a.tables else None
        new_column = b.tables[table].columns.get(column) if table in b.tables else None
        old_ref, new_ref = qualified(old.schema, old.name), qualified(new.schema, new.name)
        if (old.schema != new.schema or not (old.name.endswith("_seq") and new.name.endswith("_seq"))
                or old_column is None or new_column is None
                or literal(old_ref) not in (old_column.default or "")
                or literal(new_ref) not in (new_column.default or "")):
            continue
        if not copied:  # the caller's model stays as it was (it may be cached)
            a = copy.deepcopy(a)
            copied = True
        old = a.sequences.pop(old_qname)
        old_name = old.name
        old.name = new.name
        a.sequences[new_qname] = old
        old_column = a.tables[table].columns[column]
        old_column.default = ddl.default_sequence_renamed(old_column.default or "", old_ref, new_ref)
        rekey = {("sequence", old_qname): ("sequence", new_qname)}
        a.depends = {(rekey.get(d, d), rekey.get(r, r), t) for d, r, t in a.depends}
        a.acls = {rekey.get(k, k): v for k, v in a.acls.items()}
        a.owners = {rekey.get(k, k): v for k, v in a.owners.items()}
        plan.add(ddl.op.rename_sequence(old.schema, old_name, new.name), "rename", "sequence", new_qname,
                 table, R_RENAME, names_freed={f"rel:{old_qname}"}, names_taken={f"rel:{new_qname}"},
                 statement="ALTER SEQUENCE RENAME", relation=old_qname)
    return a


def _implied_sequences(ctx: Context) -> dict[Key, frozenset[Key]]:
    """The sequences DROP TABLE / DROP COLUMN drops with the column owning them (by the column's and
    the table's key): not dropped again."""
    implied: dict[Key, set[Key]] = defaultdict(set)
    for qname, seq in ctx.a.sequences.items():
        if qname not in ctx.b.sequences and seq.owned_by is not None and ctx.owner_dropped(seq.owned_by):
            table, column = seq.owned_by
            implied[("column", f"{table}.{column}")].add(("sequence", qname))
            implied[("table", table)].add(("sequence", qname))
    return {key: frozenset(sequences) for key, sequences in implied.items()}


def diff_sequences(ctx: Context, plan: Plan) -> None:
    for qname, seq in ctx.a.sequences.items():
        key = ("sequence", qname)
        if qname in ctx.b.sequences or ctx.owner_dropped(seq.owned_by):
            continue  # dropped with its column (_implied_sequences)
        # Its position is data: a sequence re-created later (or replaced by
        # an identity) starts over and hands out numbers already used.
        plan.add(ddl.op.drop_sequence(seq), "drop", "sequence", qname, None,
                 R_DROP["sequence"], hazards=[hz.DELETES_DATA], removes={key}, had=ctx.a_refs(key),
                 statement="DROP SEQUENCE", relation=qname,
                 names_freed={f"rel:{qname}"})
    for qname, seq in ctx.b.sequences.items():
        key = ("sequence", qname)
        old = ctx.a.sequences.get(qname)
        recreated = old is not None and ctx.owner_dropped(old.owned_by)
        if old is None or recreated:
            if recreated:
                # Before the table goes: dropping it would drop the sequence it owns.
                # (Not "modifies" the sequence: the drop of the table, whose
                # default used the sequence, would then be ordered first.)
                table, column = old.owned_by
                plan.add(ddl.op.alter_sequence_owned_by(seq.schema, seq.name, None), "alter", "sequence", qname, None,
                         R_ALTER_SEQUENCE, had={("table", table), ("column", f"{table}.{column}")},
                         statement="ALTER SEQUENCE", relation=qname)
            else:
                plan.add(ddl.op.create_sequence(seq), "create", "sequence", qname, None, R_CREATE["sequence"],
                         statement="CREATE SEQUENCE",
                         provides={key}, needs=ctx.b_refs(key), names_taken={f"rel:{qname}"})
        else:
            if ddl.sequence_option_clauses(seq.options, old.options):
                plan.add(ddl.op.alter_sequence_options(seq, old.options), "alter", "sequence", qname, None,
                         R_ALTER_SEQUENCE, modifies={key}, statement="ALTER SEQUENCE", relation=qname)
        if (old.owned_by if old and not recreated else None) != seq.owned_by:
            if seq.owned_by:
                table, column = seq.owned_by
                needs = {key, ("column", f"{table}.{column}")}
            else:
                needs = {key}
            plan.add(ddl.op.alter_sequence_owned_by(seq.schema, seq.name, seq.owned_by), "alter", "sequence", qname, None,
                     R_CREATE["owned by"], needs=needs, statement="ALTER SEQUENCE", relation=qname)
        plan.comment_step(ddl.relation_target("sequence", seq.schema, seq.name), key, "sequence", qname, None, old.comment if old else None,
                          seq.comment, old is None)


def diff_functions(ctx: Context, plan: Plan) -> None:
    for sig, function in ctx.a.functions.items():
        key = ("function", sig)
        if sig not in ctx.b.functions or key in ctx.replaced:
            plan.add(ddl.op.drop_function(function), "drop", "function", sig, None, R_DROP["function"],
                     statement="DROP FUNCTION",
                     removes={key}, had=ctx.a_refs(key))
    for sig, function in ctx.b.functions.items():
        key = ("function", sig)
        old = ctx.a.functions.get(sig)
        created = old is None or key in ctx.replaced
        if created:
            plan.add(ddl.op.create_function(function), "create", "function", sig, None, R_CREATE["function"],
                     statement="CREATE FUNCTION",
                     provides={key}, needs=ctx.b_refs(key))
        elif old.definition != function.definition:
            plan.add(ddl.op.create_function(function), "alter", "function", sig, None, R_REPLACE_FUNCTION,
                     statement="CREATE OR REPLACE FUNCTION",
                     modifies={key}, needs=ctx.b_refs(key), had=ctx.a_refs(key))
        plan.comment_step(ddl.function_target(function), key, "function", sig, None,
                          None if created else old.comment, function.comment, created)


def diff_constraints(ctx: Context, plan: Plan) -> None:
    for name, constraint in ctx.a.constraints.items():
        key = ("constraint", name)
        if constraint.table in ctx.dropped_relations and name not in ctx.cyclic_fks:
            continue
        if key in ctx.renamed:
            continue
        if name not in ctx.b.constraints or key in ctx.replaced:
            rank = R_DROP["fk"] if constraint.type == "f" else R_DROP["constraint"]
            frees = {f"rel:{constraint.schema}.{constraint.name}"} if constraint.type in "pux" else set()
            plan.add(ddl.op.drop_constraint(constraint), "drop", "constraint", name, constraint.table, rank,
                     statement="ALTER TABLE DROP CONSTRAINT", also_locks=_referenced_locks(constraint, AE),
                     removes={key}, had=ctx.a_refs(key) - {("table", constraint.table)}, names_freed=frees)
    for name, constraint in ctx.b.constraints.items():
        key = ("constraint", name)
        old = ctx.a.constraints.get(name)
        created = old is None or key in ctx.replaced or constraint.table in ctx.created_relations
        if key in ctx.renamed_to and constraint.table not in ctx.created_relations:
            old = ctx.a.constraints[ctx.renamed_to[key][1]]
            rename(ctx, plan, old, constraint)
            constraint_index_options(ctx, plan, old, constraint)
            created = False
        elif created:
            add_constraint(ctx, plan, constraint)
        else:
            constraint_index_options(ctx, plan, old, constraint)
        target = ddl.member_target("constraint", constraint.name, constraint.table)
        plan.comment_step(target, key, "constraint", name, constraint.table, None if created else old.comment,
                          constraint.comment, created)


def add_constraint(ctx: Context, plan: Plan, constraint: Constraint) -> None:
    key = ("constraint", f"{constraint.table}.{constraint.name}")
    not_valid = constraint.definition.endswith("NOT VALID")
    if constraint.type in "pux":
        # Builds its index (checking every row) under an ACCESS EXCLUSIVE lock.
        rank, hazards = R_CREATE["pk"], [hz.BLOCKS_WRITES, hz.ACCESS_EXCLUSIVE, hz.VALIDATES]
    elif constraint.type == "f":
        rank, hazards = R_CREATE["fk"], [] if not_valid else [hz.VALIDATES]
    else:
        rank, hazards = R_CREATE["constraint"], [hz.ACCESS_EXCLUSIVE] + ([] if not_valid else [hz.VALIDATES])
    claims = {f"rel:{constraint.schema}.{constraint.name}"} if constraint.type in "pux" else set()
    foreign = constraint.type == "f"
    plan.add(ddl.op.add_constraint(constraint), "create", "constraint", key[1], constraint.table, rank,
             statement="ALTER TABLE ADD CONSTRAINT FOREIGN KEY" if foreign else "ALTER TABLE ADD CONSTRAINT",
             also_locks=_referenced_locks(constraint, SRE), subject=constraint,
             hazards=hazards, provides={key}, needs=ctx.b_refs(key), names_taken=claims)


def diff_indexes(ctx: Context, plan: Plan) -> None:
    for name, index in ctx.a.indexes.items():
        key = ("index", name)
        if index.table in ctx.dropped_relations or key in ctx.renamed:
            continue
        # An invalid index (a failed CREATE INDEX CONCURRENTLY) is rebuilt: dropped and created again.
        if name not in ctx.b.indexes or key in ctx.replaced or not index.valid:
            note = "-- invalid (a failed CREATE INDEX CONCURRENTLY?): rebuilt\n" \
                if not index.valid and name in ctx.b.indexes else ""
            # Without CONCURRENTLY, DROP INDEX locks the table ACCESS EXCLUSIVE (PostgreSQL docs,
            # DROP INDEX); online mode rewrites it into the CONCURRENTLY form.
            plan.add(ddl.op.drop_index(index), "drop", "index", name, index.table, R_DROP["index"],
                     hazards=(hz.BLOCKS_WRITES, hz.ACCESS_EXCLUSIVE), removes={key},
                     statement="DROP INDEX", subject=index, note=note,
                     had=ctx.a_refs(key), names_freed={f"rel:{name}"})
    for name, index in ctx.b.indexes.items():
        key = ("index", name)
        old = ctx.a.indexes.get(name)
        created = old is None or key in ctx.replaced or index.table in ctx.created_relations or not old.valid
        if key in ctx.renamed_to and index.table not in ctx.created_relations:
            old = ctx.a.indexes[ctx.renamed_to[key][1]]
            rename(ctx, plan, old, index)
            created = False
        elif created:
            owner = ctx.b.tables.get(index.table)
            plan.add(ddl.op.create_index(index, bool(owner and owner.partitioned)), "create", "index", name,
                     index.table, R_CREATE["index"], hazards=[hz.BLOCKS_WRITES], provides={key},
                     statement="CREATE INDEX", subject=index,
                     needs=ctx.b_refs(key), names_taken={f"rel:{name}"})
        plan.comment_step(ddl.relation_target("index", index.schema, index.name), key, "index", name, index.table,
                          None if created else old.comment, index.comment, created)


def diff_views(ctx: Context, plan: Plan) -> None:
    for qname, view in ctx.a.views.items():
        if qname in ctx.dropped_relations:
            key = ("view", qname)
            removes = {key, *ctx.a_children(qname)}
            plan.add(ddl.op.drop_view(view), "drop", "materialized view" if view.materialized else "view", qname,
                     None, R_DROP["view"], removes=removes, had=ctx.a_refs(key) - removes,
                     statement="DROP MATERIALIZED VIEW" if view.materialized else "DROP VIEW", relation=qname,
                     names_freed={f"rel:{qname}", f"type:{qname}"})
    for qname, view in ctx.b.views.items():
        key = ("view", qname)
        kind = "materialized view" if view.materialized else "view"
        created = qname in ctx.created_relations
        old = None if created else ctx.a.views[qname]
        if created:
            plan.add(ddl.op.create_view(view), "create", kind, qname, None, R_CREATE["view"], provides={key},
                     statement="CREATE MATERIALIZED VIEW" if view.materialized else "CREATE VIEW",
                     needs=ctx.b_refs(key) - {key}, names_taken={f"rel:{qname}", f"type:{qname}"})
        elif old is not None and (old.definition, old.options) != (view.definition, view.options):
            # Same columns first, maybe more after: replaced in place, so
            # the views built on it stay as they are.
            plan.add(ddl.op.create_or_replace_view(view), "alter", kind,
                     qname, None, R_CREATE["view"], modifies={key}, needs=ctx.b_refs(key) - {key},
                     statement="CREATE OR REPLACE VIEW", relation=qname,
                     had=ctx.a_refs(key) - {key})
        elif old is not None and old.populated != view.populated:
            plan.add(ddl.op.refresh_materialized_view(view), "alter", kind, qname, None, R_CREATE["view"],
                     modifies={key}, needs=ctx.b_refs(key) - {key}, statement="REFRESH MATERIALIZED VIEW",
                     relation=qname, hazards=[hz.ACCESS_EXCLUSIVE] if view.populated else [])
        view_column_defaults(ctx, plan, view, old)
        plan.comment_step(ddl.relation_target(kind, view.schema, view.name), key, kind, qname, None, old.comment if old else None,
                          view.comment, created)
        for column in view.columns:
            plan.comment_step(ddl.column_target(view.schema, view.name, column), key, "column", f"{qname}.{column}", None,
                              old.column_comments.get(column) if old else None,
                              view.column_comments.get(column), created)


def diff_triggers(ctx: Context, plan: Plan) -> None:
    for name, trigger, key in ctx.dropped_members("trigger", ctx.a.triggers, ctx.b.triggers):
        plan.add(ddl.op.drop_trigger(trigger), "drop", "trigger", name, trigger.table, R_DROP["trigger"],
                 statement="DROP TRIGGER",
                 removes={key}, had=ctx.a_refs(key))
    for name, trigger in ctx.b.triggers.items():
        key = ("trigger", name)
        old = ctx.a.triggers.get(name)
        created = ctx.member_created(key, trigger, old)
        if created:
            plan.add(ddl.op.create_trigger(trigger), "create", "trigger", name, trigger.table, R_CREATE["trigger"],
                     statement="CREATE TRIGGER",
                     provides={key}, needs=ctx.b_refs(key))
        if (trigger.enabled != "O" and created) or (not created and old.enabled != trigger.enabled):
            plan.add(ddl.op.trigger_state(trigger), "alter", "trigger", name, trigger.table, R_CREATE["trigger"],
                     statement="ALTER TABLE ENABLE/DISABLE TRIGGER",
                     needs={key})
        plan.comment_step(ddl.member_target("trigger", trigger.name, trigger.table), key, "trigger",
                          name, trigger.table, None if created else old.comment, trigger.comment, created)


def diff_policies(ctx: Context, plan: Plan) -> None:
    for name, policy, key in ctx.dropped_members("policy", ctx.a.policies, ctx.b.policies):
        plan.add(ddl.op.drop_policy(policy), "drop", "policy", name, policy.table, R_DROP["policy"],
                 statement="DROP POLICY",
                 removes={key}, had=ctx.a_refs(key))
    for name, policy in ctx.b.policies.items():
        key = ("policy", name)
        old = ctx.a.policies.get(name)
        created = ctx.member_created(key, policy, old)
        if created:
            plan.add(ddl.op.create_policy(policy), "create", "policy", name, policy.table, R_CREATE["policy"],
                     statement="CREATE POLICY",
                     provides={key}, needs=ctx.b_refs(key))
        elif (old.roles, old.using, old.check) != (policy.roles, policy.using, policy.check):
            plan.add(ddl.op.alter_policy(policy), "alter", "policy", name, policy.table, R_CREATE["policy"],
                     statement="ALTER POLICY",
                     modifies={key}, needs=ctx.b_refs(key), had=ctx.a_refs(key))
        plan.comment_step(ddl.member_target("policy", policy.name, policy.table), key, "policy",
                          name, policy.table, None if created else old.comment, policy.comment, created)


def diff_event_triggers(ctx: Context, plan: Plan) -> None:
    for name, trigger in ctx.a.event_triggers.items():
        key = ("event trigger", name)
        if key in ctx.replaced:  # gone, or changed beyond its comment and state (_replacements)
            plan.add(ddl.op.drop_event_trigger(name), "drop", "event trigger", name, None,
                     R_DROP["trigger"], removes={key}, had=ctx.a_refs(key), statement="DROP EVENT TRIGGER")
    for name, trigger in ctx.b.event_triggers.items():
        key = ("event trigger", name)
        old = ctx.a.event_triggers.get(name)
        created = old is None or key in ctx.replaced
        if created:
            plan.add(ddl.op.create_event_trigger(trigger), "create", "event trigger", name, None,
                     R_CREATE["trigger"], provides={key}, needs=ctx.b_refs(key), statement="CREATE EVENT TRIGGER")
        if (created and trigger.enabled != "O") or (not created and old.enabled != trigger.enabled):
            plan.add(ddl.op.event_trigger_state(trigger), "alter", "event trigger",
                     name, None, R_CREATE["trigger"], needs={key}, statement="ALTER EVENT TRIGGER")
        plan.comment_step(ddl.named_target("event trigger", name), key, "event trigger", name, None,
                          None if created else old.comment, trigger.comment, created)


def quiet_new_tables(ctx: Context, plan: Plan) -> None:
    """A table created in this migration is empty: nothing on it rewrites,
    blocks or scans anything worth warning about."""
    new_tables = {q for q in ctx.created_relations if q not in ctx.a.tables and q not in ctx.a.views}
    for step in plan.nodes:
        change = step.change
        if change.table in new_tables and change.hazards:
            kept = tuple(h for h in change.hazards if h == hz.NON_TRANSACTIONAL)
            step.change = dataclasses.replace(change, hazards=kept)
        # A value added to an enum cannot be used in the transaction that adds
        # it; generate puts what uses it in a later file
        # (migration_writer.split_new_enum_values), so every file stays
        # transactional, as golang-migrate runs it.


def _referenced_locks(constraint: Constraint, mode: LockMode) -> tuple[Lock, ...]:
    """A foreign key's lock on the table it references (none for other constraints or a self-reference)."""
    if constraint.type != "f" or not constraint.references or constraint.references == constraint.table:
        return ()
    return (Lock(constraint.references, mode),)


def _object_name(obj: Constraint | Index) -> str:
    return f"{obj.table}.{obj.name}" if isinstance(obj, Constraint) else f"{obj.schema}.{obj.name}"


def _shape(obj: Constraint | Index) -> tuple:
    """An index's or constraint's definition without its name."""
    if isinstance(obj, Index):
        return (obj.table, obj.schema, ddl.index_definition_unnamed(obj.definition, obj.name))
    return (obj.table, obj.type, obj.definition)


def _replaceable_view(old: View, new: View) -> bool:
    """Whether CREATE OR REPLACE VIEW can turn ``old`` into ``new``: a plain
    view whose existing columns keep their names and types, in order; new
    columns may only come after them. Options must not be dropped (an
    omitted WITH list keeps the old options)."""
    if old.materialized or new.materialized:
        return False
    count = len(old.columns)
    if new.columns[:count] != old.columns or new.column_types[:count] != old.column_types:
        return False
    return set(old.options) <= set(new.options)


def _replaceable(old: Function, new: Function) -> bool:
    """Whether CREATE OR REPLACE can turn ``old`` into ``new``."""
    return old.kind != "a" and (old.kind, old.result, old.arguments) == (new.kind, new.result, new.arguments)
