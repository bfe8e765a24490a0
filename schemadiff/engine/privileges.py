"""Privileges, default privileges and owners: the engine's GRANT, REVOKE,
ALTER DEFAULT PRIVILEGES and OWNER TO statements.

Plain functions over the engine's frozen :class:`~schemadiff.engine.context.Context`
that add statements to the :class:`~schemadiff.engine.context.Plan`; which
objects the migration creates or re-creates is read from the context
(``replaced``, ``created_relations``), decided before any comparison ran.

The rules (README, "Privileges and owners"):

- ACLs compare as sets of (grantee, privilege, grantable) entries, as
  ``aclexplode`` shows them; a NULL ACL is the object's ``acldefault``
  (PostgreSQL docs, "Privileges", Table 5.2), so PUBLIC's default EXECUTE
  on functions and USAGE on types and domains are entries like any other
  and a ``REVOKE ... FROM PUBLIC`` is a difference. Grantors are not
  compared.
- An object the migration creates, or drops and re-creates (a view over a
  retyped column, a function whose result type changes, a type rebuilt),
  starts from what PostgreSQL gives a new object: ``acldefault`` plus the
  default privileges (``pg_default_acl``) of the role that runs the
  migration. Its grants are then emitted against that, so they come back
  in the same migration, up and down.
- Owners are compared only when managed (``owners = true``, ``--owners``).
  When they are not, the owner's own entries are left out of every ACL on
  both sides: owners differ between environments, and what an owner may
  do to its own object is not what a desired file describes.
- Default privileges set without ``FOR ROLE`` belong to whoever ran the
  statement; they are read as the reading role's (the shadow's loader, or
  the user of the live URL) and written without ``FOR ROLE``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import replace

from . import ddl
from .context import Context, Plan
from .model import (
    OWNER_GRANTEE,
    Acl,
    Composite,
    DefaultAclKey,
    Domain,
    Enum,
    Function,
    Key,
    Range,
    Schema,
    Sequence,
    Table,
    View,
)

# Tie-break ranks (see engine.order): default privileges before any object
# is created (they decide what a new object's ACL starts as), owners, then
# revokes before grants, after the objects' own statements.
R_DEFAULT_PRIVILEGES = 39
R_OWNER, R_REVOKE, R_GRANT = 57, 58, 59

# pg_default_acl.defaclobjtype -> acldefault letter (the word ALTER DEFAULT PRIVILEGES uses for it is
# rendered by ddl.default_privileges_target)
_ACLDEFAULT_LETTERS = {"r": "r", "S": "s", "f": "f", "T": "T", "n": "n"}
# Kinds of the engine's create steps that default privileges apply to -> defaclobjtype.
_CREATED_KINDS = {"table": "r", "view": "r", "materialized view": "r", "sequence": "S", "function": "f",
                  "type": "T", "schema": "n"}
def acl_statements(target: str, baseline: Acl, desired: Acl,
                   column: str | None = None) -> tuple[list[ddl.Op], list[ddl.Op]]:
    """(revokes, grants) turning ACL ``baseline`` into ``desired`` on ``target``.

    ``target`` is GRANT's object clause (``TABLE public.t``), ``column``
    the column of column privileges. Per grantee: privileges
    to drop are revoked, a grant option alone is revoked with ``REVOKE
    GRANT OPTION FOR``, new privileges are granted (``WITH GRANT OPTION``
    when desired has it). Statements are sorted by grantee.
    """
    had: dict[str, dict[str, bool]] = defaultdict(dict)
    want: dict[str, dict[str, bool]] = defaultdict(dict)
    for grantee, privilege, grantable in baseline:
        had[grantee][privilege] = had[grantee].get(privilege, False) or grantable
    for grantee, privilege, grantable in desired:
        want[grantee][privilege] = want[grantee].get(privilege, False) or grantable
    revokes: list[ddl.Op] = []
    grants: list[ddl.Op] = []
    for grantee in sorted(set(had) | set(want)):
        old, new = had.get(grantee, {}), want.get(grantee, {})
        gone = [p for p in old if p not in new]
        option_gone = [p for p in old if p in new and old[p] and not new[p]]
        plain = [p for p in new if p not in old and not new[p]]
        with_option = [p for p in new if new[p] and not old.get(p, False)]
        if gone:
            revokes.append(ddl.op.revoke(gone, target, grantee, column=column))
        if option_gone:
            revokes.append(ddl.op.revoke(option_gone, target, grantee, column=column, grant_option_only=True))
        if plain:
            grants.append(ddl.op.grant(plain, target, grantee, column=column))
        if with_option:
            grants.append(ddl.op.grant(with_option, target, grantee, column=column, with_grant_option=True))
    return revokes, grants


def same_without_owners(current: Schema, desired: Schema) -> bool:
    """Whether two models are equal once owners, and the owner's own ACL
    entries, are left out: in sync when owners are not managed."""
    if replace(current, acls={}, owners={}) != replace(desired, acls={}, owners={}):
        return False
    return _acls_without_owners(current) == _acls_without_owners(desired)


def _acls_without_owners(schema: Schema) -> dict[Key, Acl]:
    acls: dict[Key, Acl] = {}
    for key, acl in schema.acls.items():
        if key[0] == "column":
            relation = key[1].rpartition(".")[0]
            owner = schema.owners.get(("table", relation)) or schema.owners.get(("view", relation))
        else:
            owner = schema.owners.get(key)
        acls[key] = frozenset(e for e in acl if e[0] != owner)
    return acls


def diff_privileges(ctx: Context, plan: Plan) -> None:
    diff_default_privileges(ctx, plan)
    diff_owners(ctx, plan)
    diff_acls(ctx, plan)


def _acl_object(ctx: Context, key: Key) -> object | None:
    """The desired model's object an ACL key names (a view column: its view); None when gone.

    A procedural language is not in the model: its name stands for it
    while it is in the desired state.
    """
    if key[0] == "language":
        return key[1] if key in ctx.b.acls else None
    if key[0] != "column":
        return ctx.b_objects.get(key)
    if key in ctx.b_objects:
        return ctx.b_objects[key]
    relation, _, column = key[1].rpartition(".")
    view = ctx.b.views.get(relation)
    return view if view is not None and column in view.columns else None


def _created(ctx: Context, key: Key) -> bool:
    """Whether the migration creates the object (new, or dropped and re-created)."""
    kind, name = key
    if kind == "language":
        return False  # never created by a migration
    if kind in ("table", "view"):
        return name in ctx.created_relations
    if kind == "column":
        relation, _, column = name.rpartition(".")
        if relation in ctx.created_relations or key in ctx.replaced:
            return True
        view = ctx.a.views.get(relation)
        if view is not None:
            return column not in view.columns
        return key not in ctx.a_objects
    return key not in ctx.a_objects or key in ctx.replaced


def _default_letter(ctx: Context, key: Key, obj: object) -> str:
    if key[0] == "schema":
        return "n"
    if isinstance(obj, Function):
        return "f"
    if isinstance(obj, (Enum, Domain, Composite, Range)):
        return "T"
    return "s" if isinstance(obj, Sequence) else "r"


def _new_object_acl(ctx: Context, key: Key, obj: object, owner: str | None) -> Acl:
    """The ACL PostgreSQL gives the object when the migration creates it.

    ``acldefault`` of its type, then the default privileges of the role
    running the migration (a global entry replaces the built-in default
    for others, a schema's entry adds to it). The owner's entries are
    for ``owner`` (who owns it after the migration's OWNER TO).
    """
    letter = _default_letter(ctx, key, obj)
    builtin = ctx.b.acl_defaults.get(letter, frozenset())
    defacl_type = {"r": "r", "s": "S", "f": "f", "T": "T", "n": "n"}[letter]
    others = {e for e in builtin if e[0] != OWNER_GRANTEE}
    global_entry = ctx.b.default_acls.get((None, None, defacl_type))
    if global_entry is not None:
        others = set(global_entry)
    schema = key[1].split(".", 1)[0] if key[0] != "schema" else None
    if schema is not None:
        others |= ctx.b.default_acls.get((None, schema, defacl_type), frozenset())
    owned = {(owner, p, g) for grantee, p, g in builtin if grantee == OWNER_GRANTEE} if owner else set()
    return frozenset(others | owned)


def _owner_of(ctx: Context, model, key: Key) -> str | None:
    if key[0] == "column":
        return model.owners.get(("table", key[1].rpartition(".")[0])) or model.owners.get(
            ("view", key[1].rpartition(".")[0]))
    return model.owners.get(key)


def diff_owners(ctx: Context, plan: Plan) -> None:
    if not ctx.owners_managed:
        return
    for key, owner in sorted(ctx.b.owners.items()):
        obj = _acl_object(ctx, key)
        if obj is None:
            continue
        if isinstance(obj, Sequence) and obj.owned_by is not None:
            continue  # follows its table's owner (ALTER TABLE OWNER TO moves it; it cannot move alone)
        if not _created(ctx, key) and ctx.a.owners.get(key) == owner:
            continue
        # A relation's owner changes through ALTER TABLE's machinery (ACCESS EXCLUSIVE on it).
        relation = isinstance(obj, (Sequence, View, Table))
        plan.add(ddl.op.alter_owner(key[0], key[1], obj, owner), "alter", "owner", key[1], _table_of(ctx, key), R_OWNER,
                 needs={key}, modifies={key}, statement="ALTER TABLE OWNER TO" if relation else "ALTER OWNER TO",
                 relation=key[1] if relation else None)


def _table_of(ctx: Context, key: Key) -> str | None:
    if key[0] == "column":
        return key[1].rpartition(".")[0]
    return key[1] if key[0] == "table" else None


def diff_acls(ctx: Context, plan: Plan) -> None:
    keys = {k for k in ctx.b.acls if k[0] != "column"} | {k for k in ctx.a.acls if k[0] != "column"}
    columns = {k for k in ctx.b.acls if k[0] == "column"} | {k for k in ctx.a.acls if k[0] == "column"}
    revoked_on_relation: dict[str, set[tuple[str, str]]] = defaultdict(set)
    for key in sorted(keys):
        obj = _acl_object(ctx, key)
        if obj is None:
            continue  # dropped: its privileges go with it
        baseline, desired = _acl_pair(ctx, key, obj)
        revokes, grants = acl_statements(ddl.privilege_target(key[0], key[1], obj), baseline, desired)
        if revokes and key[0] in ("table", "view"):
            # A table-level REVOKE takes the column privileges with it
            # (PostgreSQL docs, REVOKE): those are granted back below.
            wanted = {(g, p) for g, p, _ in desired}
            revoked_on_relation[key[1]] = {(g, p) for g, p, _ in baseline if (g, p) not in wanted}
        needs = set() if key[0] == "language" else {key}
        _acl_steps(ctx, plan, key, revokes, grants, needs=needs, marks={("acl", key[1])} if revokes else set())
    for key in sorted(columns):
        obj = _acl_object(ctx, key)
        if obj is None:
            continue
        relation, _, column = key[1].rpartition(".")
        baseline, desired = _acl_pair(ctx, key, obj)
        gone = revoked_on_relation.get(relation, set())
        baseline = frozenset(e for e in baseline if (e[0], e[1]) not in gone)
        relation_key = ("view", relation) if relation in ctx.b.views else ("table", relation)
        target = ddl.privilege_target(relation_key[0], relation_key[1], ctx.b_objects.get(relation_key))
        revokes, grants = acl_statements(target, baseline, desired, column=column)
        _acl_steps(ctx, plan, key, revokes, grants, needs={relation_key} | ({key} if key in ctx.b_objects else set()),
                        after={("acl", relation)})


def _acl_pair(ctx: Context, key: Key, obj: object) -> tuple[Acl, Acl]:
    """(the ACL before the privilege statements run, the desired ACL), owner entries handled."""
    new_owner = _owner_of(ctx, ctx.b, key)
    desired = ctx.b.acls.get(key, frozenset())
    if _created(ctx, key):
        if key[0] == "column":
            baseline: Acl = frozenset()
        else:
            baseline = _new_object_acl(ctx, key, obj, new_owner)
        old_owner = new_owner
    else:
        baseline = ctx.a.acls.get(key, frozenset())
        old_owner = _owner_of(ctx, ctx.a, key)
        if ctx.owners_managed and old_owner and new_owner and old_owner != new_owner:
            # ALTER ... OWNER TO hands the old owner's entries to the new
            # owner (PostgreSQL's aclnewowner), column privileges included.
            baseline = frozenset((new_owner if g == old_owner else g, p, o) for g, p, o in baseline)
            old_owner = new_owner
    if not ctx.owners_managed or key[0] == "language":
        baseline = frozenset(e for e in baseline if e[0] != old_owner)
        desired = frozenset(e for e in desired if e[0] != new_owner)
    return baseline, desired


def _acl_steps(ctx: Context, plan: Plan, key: Key, revokes: list[ddl.Op], grants: list[ddl.Op], *, needs: set[Key],
               marks: set[Key] = frozenset(), after: set[Key] = frozenset()) -> None:
    table = _table_of(ctx, key)
    for sql in revokes:
        plan.add(sql, "revoke", "privileges", key[1], table, R_REVOKE, needs=needs, modifies=set(marks),
                 statement="REVOKE")
    for sql in grants:
        plan.add(sql, "grant", "privileges", key[1], table, R_GRANT, needs=needs | set(after), statement="GRANT")


def _builtin_default(ctx: Context, key: DefaultAclKey) -> Acl:
    """What a missing pg_default_acl row means: nothing for a schema's
    entry; the built-in default for others for a global one."""
    role, schema, objtype = key
    if schema is not None:
        return frozenset()
    letter = _ACLDEFAULT_LETTERS[objtype]
    return frozenset(e for e in ctx.b.acl_defaults.get(letter, frozenset()) if e[0] != OWNER_GRANTEE)


def diff_default_privileges(ctx: Context, plan: Plan) -> None:
    keys = set(ctx.a.default_acls) | set(ctx.b.default_acls)
    for key in sorted(keys, key=lambda k: (k[0] or "", k[1] or "", k[2])):
        role, schema, objtype = key
        if schema is not None and schema not in ctx.b.schemas:
            continue  # dropped with its schema
        baseline = ctx.a.default_acls.get(key)
        desired = ctx.b.default_acls.get(key)
        baseline = _builtin_default(ctx, key) if baseline is None else baseline
        desired = _builtin_default(ctx, key) if desired is None else desired
        if baseline == desired:
            continue
        target = ddl.default_privileges_target(objtype)
        revokes, grants = acl_statements(target, baseline, desired)
        name = f"{role or 'current role'} {schema or '*'} {target.lower()}"
        needs = {("schema", schema)} if schema else set()
        marks = {("default privileges", schema or "")} if role is None else set()
        for statement_op in revokes:
            plan.add(ddl.op.alter_default_privileges(role, schema, statement_op), "revoke", "default privileges", name,
                     None, R_DEFAULT_PRIVILEGES, needs=needs, modifies=marks, statement="ALTER DEFAULT PRIVILEGES")
        for statement_op in grants:
            plan.add(ddl.op.alter_default_privileges(role, schema, statement_op), "grant", "default privileges", name,
                     None, R_DEFAULT_PRIVILEGES, needs=needs, modifies=marks, statement="ALTER DEFAULT PRIVILEGES")
    # Objects the migration creates start from the default privileges
    # of the desired state: create them after those are in place.
    for step in plan.nodes:
        change = step.change
        if change.action != "create" or change.kind not in _CREATED_KINDS:
            continue
        step.needs.add(("default privileges", ""))
        if change.kind != "schema":
            step.needs.add(("default privileges", change.name.split(".", 1)[0]))
