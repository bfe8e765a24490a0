"""Diff engine, part: enums, domains, composite and range types.

Plain functions over the engine's frozen :class:`~schemadiff.engine.context.Context`
(the two models and what was decided about them) that add statements to the
:class:`~schemadiff.engine.context.Plan`; :func:`rename_replaced_types` runs
before the context exists and returns the renamed current model.
"""

from __future__ import annotations

import copy

from . import ddl
from . import hazards as hz
from .ddl import qualified
from .order import R_ALTER_TYPE, R_CREATE, R_DROP, R_RENAME
from .context import Context, Plan
from .model import Composite, Domain, Enum, Key, Range, Schema


def rename_replaced_types(current: Schema, desired: Schema, plan: Plan) -> tuple[Schema, dict[str, str]]:
    """Enums losing or reordering labels and domains changing base type
    cannot be altered: rename the old type out of the way, create the new
    one, convert the columns, drop the old (the columns keep their data).

    Done by renaming the type in the *current* model, after which the
    ordinary comparison produces exactly those statements. Returns the
    current model (a renamed copy when a type is renamed; ``current`` is not
    changed) and the renames (``public.mood__old`` -> ``public.mood``); the
    RENAME statements go to ``plan``.
    """
    a, b = current, desired
    type_renames: dict[str, str] = {}
    copied = False
    # A worklist, not one pass: renaming a type rewrites the domains over it, which may then need the
    # same treatment (a domain over a re-created enum is re-created over the new enum).
    pending = list(a.types)
    while pending:
        qname = pending.pop(0)
        old = a.types.get(qname)  # the copy's object once copied; None once renamed away
        new = b.types.get(qname)
        if old is None:
            continue
        # Only an enum or a domain keeps its columns' data through a rename (a range's are rebuilt anyway).
        if new is None or type(old) is not type(new) or not isinstance(old, Enum | Domain) \
                or not replaced_type(old, new):
            continue
        used = any(dep[1] == ("type", qname) for dep in a.depends)
        if not used:
            continue  # nothing uses it: plain drop and create
        if not copied:  # the caller's model stays as it was (it may be cached)
            a = copy.deepcopy(a)
            copied = True
        # The copy's object, for the second replaced type too: ``old`` came from the caller's model, and
        # renaming it there would change the other direction's plan (generate plans the down from the same
        # models) and every planned operation that refers to it, rendered later.
        old = a.types[qname]
        renamed = f"{old.name}__old"
        old_ref, new_ref = qualified(old.schema, old.name), qualified(old.schema, renamed)
        new_qname = f"{old.schema}.{renamed}"
        plan.add(ddl.op.rename_type(old.schema, old.name, renamed), "rename", "type", qname, None, R_RENAME,
                 statement="ALTER TYPE RENAME", names_freed={f"type:{qname}"}, names_taken={f"type:{new_qname}"})
        del a.types[qname]
        old.name = renamed
        a.types[new_qname] = old
        type_renames[new_qname] = qname
        pending.extend(other for other, kind in a.types.items() if isinstance(kind, Domain) and other not in pending
                       and other not in type_renames)
        for table in a.tables.values():
            for column in table.columns.values():
                column.type = ddl.type_name_renamed(column.type, old_ref, new_ref)
        for other in a.types.values():
            if isinstance(other, Domain):
                other.base = ddl.type_name_renamed(other.base, old_ref, new_ref)
            elif isinstance(other, Composite):
                for attribute in other.attributes:
                    attribute.type = ddl.type_name_renamed(attribute.type, old_ref, new_ref)
        # Functions taking or returning the type follow the rename: they
        # become different functions, dropped and re-created around it.
        moved: dict[Key, Key] = {}
        for sig, function in list(a.functions.items()):
            if ("function", sig) not in {d for d, r, _ in a.depends if r == ("type", qname)}:
                continue
            function.identity_args = ddl.type_references_renamed(function.identity_args, old_ref, new_ref)
            function.arg_types = ddl.type_references_renamed(function.arg_types, old_ref, new_ref)
            function.result = ddl.type_references_renamed(function.result or "", old_ref, new_ref) or function.result
            del a.functions[sig]
            a.functions[function.signature] = function
            moved[("function", sig)] = ("function", function.signature)
        a.depends = {
            (moved.get(d, _rekey(d, qname, new_qname)), moved.get(r, _rekey(r, qname, new_qname)), t)
            for d, r, t in a.depends
        }
    return a, type_renames


def diff_types(ctx: Context, plan: Plan) -> None:
    for qname, old in ctx.a.types.items():
        key = ("type", qname)
        if qname not in ctx.b.types or key in ctx.replaced:
            original = ctx.type_renames.get(qname, qname)
            hazards = [hz.DELETES_DATA] if type_loses_data(ctx, qname, old) else []
            plan.add(ddl.op.drop_type(old), "drop", "type", original, None, R_DROP["type"], hazards=hazards,
                     statement="DROP TYPE",
                     removes={key}, had=ctx.a_refs(key) - {key},
                     names_freed=set() if qname in ctx.type_renames else {f"type:{qname}"})
    for qname, new in ctx.b.types.items():
        key = ("type", qname)
        old = ctx.a.types.get(qname)
        created = old is None or key in ctx.replaced
        if created:
            plan.add(ddl.op.create_type(new), "create", "type", qname, None, R_CREATE["type"], statement="CREATE TYPE",
                     provides={key}, needs=ctx.b_refs(key) - {key}, names_taken={f"type:{qname}"})
        elif isinstance(old, Enum) and isinstance(new, Enum):
            alter_enum(ctx, plan, old, new)
        elif isinstance(old, Domain) and isinstance(new, Domain):
            alter_domain(ctx, plan, old, new)
        elif isinstance(old, Composite) and isinstance(new, Composite):
            alter_composite(ctx, plan, old, new)
        what = "domain" if isinstance(new, Domain) else "type"
        plan.comment_step(ddl.relation_target(what, new.schema, new.name), key, "type", qname, None,
                          None if created else old.comment, new.comment, created)
        if isinstance(new, Composite):
            # A comment on an attribute lives on the type's pg_class row (COMMENT ON COLUMN type.attribute);
            # an attribute dropped takes its comment with it.
            old_comments = {} if created or not isinstance(old, Composite) else old.attribute_comments
            for attribute in new.attributes:
                plan.comment_step(ddl.column_target(new.schema, new.name, attribute.name), key, "column",
                                  f"{qname}.{attribute.name}", None, old_comments.get(attribute.name),
                                  new.attribute_comments.get(attribute.name), created)
        if isinstance(new, Domain):
            old_checks = {} if created or not isinstance(old, Domain) else old.check_comments
            for check, text in new.check_comments.items():
                if old_checks.get(check) != text:
                    plan.add(ddl.op.comment(ddl.domain_constraint_target(check, new),
                                         text), "comment", "constraint", f"{qname}.{check}", None,
                             R_CREATE["comment"], needs={key}, statement="COMMENT ON")


def alter_enum(ctx: Context, plan: Plan, old: Enum, new: Enum) -> None:
    qname = f"{new.schema}.{new.name}"
    added = [label for label in new.labels if label not in old.labels]
    kept = [label for label in new.labels if label in old.labels]
    previous: str | None = None  # the label just before, in the new order
    for label in new.labels:
        if label not in added:
            previous = label
            continue
        if previous is not None and (previous in kept or not kept or new.labels.index(previous) >
                                     new.labels.index(kept[0])):
            position = {"after": previous}  # right after it (itself maybe new)
        elif kept:  # leading labels: each goes just before the first kept one, in order
            position = {"before": kept[0]}
        else:
            position = {}
        # Each new label is added after the new label before it.
        needs = {("enum label", f"{qname}.{previous}")} if previous in added else set()
        previous = label
        plan.add(ddl.op.add_enum_value(new, label, **position), "alter", "enum value",
                 f"{qname}.{label}", None, R_ALTER_TYPE, modifies={("type", qname)}, needs=needs,
                 provides={("enum label", f"{qname}.{label}")}, statement="ALTER TYPE ADD VALUE")


def alter_domain(ctx: Context, plan: Plan, old: Domain, new: Domain) -> None:
    key = ("type", f"{new.schema}.{new.name}")
    qname = key[1]
    graph = {"modifies": {key}, "needs": ctx.b_refs(key) - {key}, "had": ctx.a_refs(key) - {key}}
    if old.default != new.default:
        plan.add(ddl.op.alter_domain_default(new), "alter", "domain", qname, None, R_ALTER_TYPE, statement="ALTER DOMAIN", **graph)
    for name, definition in old.checks.items():
        if new.checks.get(name) != definition:
            plan.add(ddl.op.alter_domain_drop_constraint(new, name), "drop", "constraint",
                     f"{qname}.{name}", None, R_ALTER_TYPE, statement="ALTER DOMAIN", **graph)
    if old.notnull != new.notnull:
        plan.add(ddl.op.alter_domain_not_null(new), "alter", "domain", qname, None, R_ALTER_TYPE,
                 hazards=[hz.VALIDATES] if new.notnull else [], statement="ALTER DOMAIN", **graph)
    for name, definition in new.checks.items():
        if old.checks.get(name) != definition:
            plan.add(ddl.op.alter_domain_add_constraint(new, name, definition), "create", "constraint",
                     f"{qname}.{name}", None, R_ALTER_TYPE + 1, hazards=[hz.VALIDATES], statement="ALTER DOMAIN",
                     **graph)


def alter_composite(ctx: Context, plan: Plan, old: Composite, new: Composite) -> None:
    key = ("type", f"{new.schema}.{new.name}")
    graph = {"modifies": {key}, "needs": ctx.b_refs(key) - {key}, "had": ctx.a_refs(key) - {key}}
    old_attrs = {a.name: a for a in old.attributes}
    new_attrs = {a.name: a for a in new.attributes}
    for name in old_attrs.keys() - new_attrs.keys():
        plan.add(ddl.op.alter_type_drop_attribute(new, name), "alter", "type", key[1], None,
                 R_ALTER_TYPE, hazards=[hz.DELETES_DATA], statement="ALTER TYPE", **graph)
    for attribute in new.attributes:
        before = old_attrs.get(attribute.name)
        if before is None:
            plan.add(ddl.op.alter_type_add_attribute(new, attribute),
                     "alter", "type", key[1], None, R_ALTER_TYPE, statement="ALTER TYPE", **graph)
        elif (before.type, before.collation) != (attribute.type, attribute.collation):
            plan.add(ddl.op.alter_type_alter_attribute(new, attribute),
                     "alter", "type", key[1], None, R_ALTER_TYPE, statement="ALTER TYPE", **graph)


def type_loses_data(ctx: Context, qname: str, old: Enum | Domain | Composite) -> bool:
    """Whether dropping this type (as the current model has it) loses data."""
    original = ctx.type_renames.get(qname)
    if original is not None:  # the old copy of a rebuilt type: its columns were converted
        new = ctx.b.types[original]
        return isinstance(old, Enum) and isinstance(new, Enum) and not set(old.labels) <= set(new.labels)
    if qname in ctx.b.types:  # re-created with nothing using it
        return False
    return not isinstance(old, Composite) or bool(ctx.a_dependents.get(("type", qname)))


def converts_to_rebuilt_type(ctx: Context, old_type: str, new_type: str) -> bool:
    for renamed, original in ctx.type_renames.items():
        schema, name = renamed.split(".", 1)
        o_schema, o_name = original.split(".", 1)
        restored = ddl.type_name_renamed(old_type, qualified(schema, name), qualified(o_schema, o_name))
        if restored == new_type != old_type:
            return True
    return False


def is_enum(ctx: Context, type_name: str) -> bool:
    """Whether ``type_name`` (an array of it too) is an enum, or a domain over one, on either side: its values
    cast to and from another enum only through text (PostgreSQL has no cast between two enum types)."""
    base = type_name.removesuffix("[]")
    for schema in (ctx.a, ctx.b):
        for obj in schema.types.values():
            if qualified(obj.schema, obj.name) != base:
                continue
            if isinstance(obj, Enum):
                return True
            if isinstance(obj, Domain) and obj.base.removesuffix("[]") != base and is_enum(ctx, obj.base):
                return True
    return False


def replaced_type(old: object, new: object) -> bool:
    """Whether type ``old`` must be dropped and created again to become ``new`` (no ALTER TYPE/DOMAIN does it).

    Another kind of type; an enum losing or reordering labels (ALTER TYPE only adds and renames them,
    PostgreSQL docs, ALTER TYPE); a domain over another base type or collation (ALTER DOMAIN changes
    neither); a range with other options (no ALTER for subtype, collation, canonical, subtype_diff).
    """
    if type(old) is not type(new):
        return True
    if isinstance(old, Enum) and isinstance(new, Enum):
        return not _is_subsequence(old.labels, new.labels)
    if isinstance(old, Domain) and isinstance(new, Domain):
        return (old.base, old.collation) != (new.base, new.collation)
    if isinstance(old, Range) and isinstance(new, Range):
        return old.options != new.options
    return False


def _is_subsequence(old: list[str], new: list[str]) -> bool:
    """Whether ``new`` keeps every label of ``old`` in the same order."""
    positions = [new.index(label) for label in old if label in new]
    return len(positions) == len(old) and positions == sorted(positions)


def _rekey(key: Key, old: str, new: str) -> Key:
    return (key[0], new) if key == ("type", old) else key
