"""What the per-kind comparisons of the diff engine share: a frozen :class:`Context` and the :class:`Plan`.

The engine compares two models kind by kind (``diff.py``: schemas,
extensions, sequences, functions, constraints, indexes, views, triggers,
policies, event triggers; ``tables.py``; ``usertypes.py``; ``objects.py``;
``privileges.py``). Each comparison is a plain function
``diff_x(ctx, plan)``: it reads the two models and what was decided about
them before any comparison ran (the :class:`Context`, frozen) and adds
statements to the :class:`Plan`, the one thing that changes while the
comparisons run. No comparison sees what another one decided except
through the context, so the order they run in changes nothing but the
order statements are added (which :func:`schemadiff.engine.order.order`
sorts anyway).

Pure computation: no I/O.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from . import ddl
from .change import Change
from .locks import Lock, lock_of
from .model import Column, Key, Schema
from .order import R_CREATE, Node


@dataclass(frozen=True)
class Context:
    """The two models and what the engine decided about them before comparing kind by kind.

    ``a`` the current model (a copy with the types and serial sequences the
    plan renames first already renamed, see ``usertypes.rename_replaced_types``
    and ``diff.rename_owned_sequences``), ``b`` the desired one;
    ``owners_managed``: owners are compared too. ``a_ref``/``b_ref`` each
    object's references (key -> keys it uses), ``a_dependents`` the reverse
    (current side), ``a_objects``/``b_objects`` the objects by key.

    Decided before the comparisons (``diff._context``): ``replaced`` the
    objects dropped and created again (their definition cannot be altered,
    or something they depend on is replaced); ``retyped_columns`` columns
    whose type changes; ``renamed`` index/constraint keys that only changed
    name (old -> new) and ``renamed_to`` the reverse; ``dropped_relations``
    and ``created_relations`` tables and views (schema-qualified names)
    dropped or created, re-created ones in both; ``implied_sequences`` the
    sequences a DROP TABLE / DROP COLUMN drops with it (by the table's and
    the column's key); ``type_renames`` a type renamed out of the way
    (``public.mood__old`` -> ``public.mood``); ``cyclic_fks`` foreign keys
    between dropped tables that reference each other in a circle (dropped
    before the tables).
    """

    a: Schema
    b: Schema
    owners_managed: bool
    a_ref: Mapping[Key, set[Key]]
    a_dependents: Mapping[Key, set[Key]]
    a_objects: Mapping[Key, object]
    b_ref: Mapping[Key, set[Key]]
    b_dependents: Mapping[Key, set[Key]]
    b_objects: Mapping[Key, object]
    replaced: frozenset[Key]
    retyped_columns: frozenset[Key]
    renamed: Mapping[Key, Key]
    renamed_to: Mapping[Key, Key]
    dropped_relations: frozenset[str]
    created_relations: frozenset[str]
    implied_sequences: Mapping[Key, frozenset[Key]] = field(default_factory=dict)
    type_renames: Mapping[str, str] = field(default_factory=dict)
    cyclic_fks: frozenset[str] = frozenset()

    def a_refs(self, key: Key) -> set[Key]:
        """What ``key`` uses in the current model (a new set the caller may change)."""
        return set(self.a_ref.get(key, ()))

    def b_refs(self, key: Key) -> set[Key]:
        """What ``key`` uses in the desired model (a new set the caller may change)."""
        return set(self.b_ref.get(key, ()))

    def a_children(self, relation: str) -> list[Key]:
        """The keys of what hangs off ``relation`` in the current model (see :func:`children_of`)."""
        return children_of(self.a, relation)

    def dropped_members(self, kind: str, current: Mapping[str, Any],
                        desired: Mapping[str, Any]) -> list[tuple[str, Any, Key]]:
        """(name, object, key) of each object of ``kind`` hanging off a relation (a trigger, policy, rule,
        statistics object: ``obj.table``) that is dropped on its own: gone from ``desired`` or replaced.
        One whose relation is dropped goes with it (DROP TABLE / DROP VIEW takes it along)."""
        return [(name, obj, (kind, name)) for name, obj in current.items()
                if obj.table not in self.dropped_relations
                and (name not in desired or (kind, name) in self.replaced)]

    def member_created(self, key: Key, obj: Any, old: object | None) -> bool:
        """Whether an object hanging off a relation is created (again): new, replaced, or on a relation
        the plan creates or re-creates."""
        return old is None or key in self.replaced or obj.table in self.created_relations

    def owner_dropped(self, owned_by: tuple[str, str] | None) -> bool:
        """Whether the column owning a sequence (``(table, column)``) goes away or is re-created."""
        if owned_by is None:
            return False
        table, column = owned_by
        if table in self.dropped_relations:
            return True
        new_table = self.b.tables.get(table)
        return new_table is None or column not in new_table.columns or ("column", f"{table}.{column}") in self.replaced


def children_of(schema: Schema, relation: str) -> list[Key]:
    """The keys of ``relation``'s columns, constraints, indexes, triggers, policies, rules and statistics."""
    keys: list[Key] = []
    table = schema.tables.get(relation)
    if table:
        keys.extend(("column", f"{relation}.{c}") for c in table.columns)
    for kind, collection in (("constraint", schema.constraints), ("index", schema.indexes),
                             ("trigger", schema.triggers), ("policy", schema.policies),
                             ("rule", schema.rules), ("statistics", schema.statistics)):
        keys.extend((kind, name) for name, obj in collection.items() if obj.table == relation)
    return keys


def generated_in_both(a_objects: Mapping[Key, object], b_objects: Mapping[Key, object], key: Key) -> bool:
    """Whether ``key`` is a generated column on both sides."""
    old, new = a_objects.get(key), b_objects.get(key)
    return isinstance(old, Column) and isinstance(new, Column) and old.generated is not None \
        and new.generated is not None


class Plan:
    """The statements planned so far, as nodes of the ordering graph (:class:`schemadiff.engine.order.Node`).

    The comparisons add to it; :func:`schemadiff.engine.diff.diff_schemas` orders it at the end.
    """

    def __init__(self) -> None:
        self.nodes: list[Node] = []

    def add(self, statement_op: ddl.Op, action: str, kind: str, name: str, table: str | None, rank: int, *,
            statement: str, relation: str | None = None, also_locks: Iterable[Lock] = (),
            subject: object = None, hazards: Iterable[str] = (), transactional: bool = True, note: str = "",
            **graph: Iterable) -> Node:
        """Plan one statement: ``statement`` names its kind (a key of
        :data:`schemadiff.engine.locks.STATEMENT_LOCKS`), whose lock is taken
        on ``relation`` (default: ``table``); ``subject`` the model object
        (``Change.subject``); ``note`` comment lines written before the
        statement (``Change.note``); ``graph`` its edges for
        :func:`schemadiff.engine.order.order`. ``statement_op`` the
        statement as data (``ddl.op.create_schema(name)``), kept as
        ``Change.op`` and rendered only when the plan's text is read."""
        lock = lock_of(statement)
        locked = (relation or table) if lock is not None else None
        change = Change(None, action, kind, name, table, tuple(dict.fromkeys(hazards)),
                        transactional, statement, lock, locked, tuple(also_locks), subject=subject, note=note,
                        op=statement_op)
        node = Node(change, rank, **{k: set(v) for k, v in graph.items()})
        self.nodes.append(node)
        return node

    def comment_step(self, target: str, key: Key, kind: str, name: str, table: str | None,
                     old: str | None, new: str | None, created: bool) -> None:
        """COMMENT ON ``target`` when the comment changes (``old`` -> ``new``), or is set on a created object."""
        if (created and new is None) or (not created and old == new):
            return
        on_relation = kind in ("table", "view", "materialized view", "sequence", "column")
        relation = (table or name.rpartition(".")[0]) if kind == "column" else name
        self.add(ddl.op.comment(target, new), "comment", kind, name, table, R_CREATE["comment"], needs={key},
                 statement="COMMENT ON relation" if on_relation else "COMMENT ON",
                 relation=relation if on_relation else None)
