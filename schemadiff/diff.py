"""The diff engine: the ordered statements that turn one schema into another.

Both databases are read by :mod:`schemadiff.inspect`; the two models are
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
"""

from __future__ import annotations

import copy
import heapq
import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from . import ddl
from . import hazards as hz
from .ddl import ident, literal, qualified, qualified_name
from .inspect import (
    Column,
    Composite,
    Constraint,
    Domain,
    Enum,
    Function,
    Index,
    Key,
    Policy,
    Range,
    Schema,
    Sequence,
    Table,
    Trigger,
    View,
    inspect_database,
)
from .typechange import type_change_hazards, needs_using


@dataclass(frozen=True)
class Change:
    sql: str  # one complete statement, ending with ';'
    action: str  # "create" | "drop" | "alter" | "rename" | "comment"
    kind: str  # "table", "column", "index", ...
    name: str  # qualified name: "public.users", "public.users.email"
    table: str | None  # the table it belongs to, for grouping
    hazards: tuple[str, ...] = ()
    transactional: bool = True


def diff_databases(current_url: str, desired_url: str) -> list[Change]:
    """Ordered statements that turn the database at current_url into the one at desired_url.

    Reads both (read-only). Down migration = diff_databases(desired_url, current_url).
    """
    return diff_schemas(inspect_database(current_url), inspect_database(desired_url))


def diff_schemas(current: Schema, desired: Schema) -> list[Change]:
    """Ordered statements that turn the ``current`` model into ``desired``."""
    return _Differ(current, desired).run()


_DEFAULT_COLLATION = 'pg_catalog."default"'

# Phase order, used only to break ties between statements the dependency
# graph leaves unordered.
R_RENAME = 0
R_DROP = {"policy": 10, "trigger": 11, "view": 12, "index": 13, "fk": 14, "constraint": 15, "column": 16,
          "table": 17, "function": 18, "sequence": 19, "type": 20, "extension": 21, "schema": 22}
R_ALTER_TYPE, R_ALTER_SEQUENCE, R_REPLACE_FUNCTION, R_ALTER_TABLE, R_ALTER_COLUMN = 30, 31, 32, 33, 34
R_CREATE = {"schema": 40, "extension": 41, "type": 42, "sequence": 43, "table": 45, "column": 46,
            "function": 47, "owned by": 48, "pk": 49, "constraint": 50, "fk": 51, "index": 52, "view": 53,
            "trigger": 54, "policy": 55, "table option": 56, "comment": 60}


@dataclass
class _Step:
    change: Change
    rank: int
    needs: set[Key] = field(default_factory=set)  # must exist (desired graph)
    had: set[Key] = field(default_factory=set)  # depended on before (current graph)
    provides: set[Key] = field(default_factory=set)
    removes: set[Key] = field(default_factory=set)
    modifies: set[Key] = field(default_factory=set)
    claims: set[str] = field(default_factory=set)  # relation / type names taken
    frees: set[str] = field(default_factory=set)


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
                             ("trigger", schema.triggers), ("policy", schema.policies)):
        for name, obj in collection.items():
            objects[(kind, name)] = obj
    return objects


def _owner(obj: object) -> str | None:
    """The relation a constraint/index/trigger/policy belongs to."""
    return getattr(obj, "table", None) if isinstance(obj, (Constraint, Index, Trigger, Policy)) else None


class _Differ:
    def __init__(self, current: Schema, desired: Schema) -> None:
        self.a = current
        self.b = desired
        self.steps: list[_Step] = []

    # -- helpers ---------------------------------------------------------------------

    def add(self, sql: str, action: str, kind: str, name: str, table: str | None, rank: int, *,
            hazards: Iterable[str] = (), transactional: bool = True, **graph: Iterable) -> _Step:
        change = Change(sql, action, kind, name, table, tuple(dict.fromkeys(hazards)), transactional)
        step = _Step(change, rank, **{k: set(v) for k, v in graph.items()})
        self.steps.append(step)
        return step

    def a_refs(self, key: Key) -> set[Key]:
        return set(self.a_ref.get(key, ()))

    def b_refs(self, key: Key) -> set[Key]:
        return set(self.b_ref.get(key, ()))

    def comment_step(self, target: str, key: Key, kind: str, name: str, table: str | None,
                     old: str | None, new: str | None, created: bool) -> None:
        if (created and new is None) or (not created and old == new):
            return
        self.add(ddl.comment(target, new), "comment", kind, name, table, R_CREATE["comment"], needs={key})

    # -- the run ---------------------------------------------------------------------

    def run(self) -> list[Change]:
        self.rename_replaced_types()
        self.a_ref, self.a_dependents = _graph(self.a)
        self.b_ref, self.b_dependents = _graph(self.b)
        self.a_objects = _objects(self.a)
        self.b_objects = _objects(self.b)
        self.find_replacements()
        self.diff_schemas()
        self.diff_extensions()
        self.diff_types()
        self.diff_sequences()
        self.diff_functions()
        self.diff_tables()
        self.diff_constraints()
        self.diff_indexes()
        self.diff_views()
        self.diff_triggers()
        self.diff_policies()
        self.diff_event_triggers()
        self.quiet_new_tables()
        return [step.change for step in _order(self.steps)]

    # -- replacements ------------------------------------------------------------------

    def rename_replaced_types(self) -> None:
        """Enums losing or reordering labels and domains changing base type
        cannot be altered: rename the old type out of the way, create the new
        one, convert the columns, drop the old (the columns keep their data).

        Done by renaming the type in the *current* model, after which the
        ordinary comparison produces exactly those statements.
        """
        self.type_renames: dict[str, str] = {}
        copied = False
        for qname, old in list(self.a.types.items()):
            new = self.b.types.get(qname)
            if new is None or type(old) is not type(new):
                continue
            if isinstance(old, Enum) and isinstance(new, Enum):
                if _is_subsequence(old.labels, new.labels):
                    continue
            elif isinstance(old, Domain) and isinstance(new, Domain):
                if (old.base, old.collation) == (new.base, new.collation):
                    continue
            else:
                continue
            used = any(dep[1] == ("type", qname) for dep in self.a.depends)
            if not used:
                continue  # nothing uses it: plain drop and create
            if not copied:  # the caller's model stays as it was (it may be cached)
                self.a = copy.deepcopy(self.a)
                old = self.a.types[qname]
                copied = True
            renamed = f"{old.name}__old"
            old_ref, new_ref = qualified(old.schema, old.name), qualified(old.schema, renamed)
            new_qname = f"{old.schema}.{renamed}"
            self.add(f"ALTER TYPE {old_ref} RENAME TO {ident(renamed)};", "rename", "type", qname, None, R_RENAME,
                     frees={f"type:{qname}"}, claims={f"type:{new_qname}"})
            del self.a.types[qname]
            old.name = renamed
            self.a.types[new_qname] = old
            self.type_renames[new_qname] = qname
            for table in self.a.tables.values():
                for column in table.columns.values():
                    column.type = _retype(column.type, old_ref, new_ref)
            for other in self.a.types.values():
                if isinstance(other, Domain):
                    other.base = _retype(other.base, old_ref, new_ref)
                elif isinstance(other, Composite):
                    for attribute in other.attributes:
                        attribute.type = _retype(attribute.type, old_ref, new_ref)
            # Functions taking or returning the type follow the rename: they
            # become different functions, dropped and re-created around it.
            pattern = re.compile(r'(?<![\w."])' + re.escape(old_ref) + r'(?![\w"])')
            moved: dict[Key, Key] = {}
            for sig, function in list(self.a.functions.items()):
                if ("function", sig) not in {d for d, r, _ in self.a.depends if r == ("type", qname)}:
                    continue
                function.identity_args = pattern.sub(new_ref, function.identity_args)
                function.arg_types = pattern.sub(new_ref, function.arg_types)
                function.result = pattern.sub(new_ref, function.result or "") or function.result
                del self.a.functions[sig]
                self.a.functions[function.signature] = function
                moved[("function", sig)] = ("function", function.signature)
            self.a.depends = {
                (moved.get(d, _rekey(d, qname, new_qname)), moved.get(r, _rekey(r, qname, new_qname)), t)
                for d, r, t in self.a.depends
            }

    def find_replacements(self) -> None:
        """Objects dropped and re-created, and what must follow them."""
        a, b = self.a, self.b
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
                    new_view.definition, new_view.options, new_view.materialized):
                replaced.add(("view", qname))
        for sig, function in a.functions.items():
            new_function = b.functions.get(sig)
            if new_function and new_function.definition != function.definition and not _replaceable(
                    function, new_function):
                replaced.add(("function", sig))
        for kind, old_map, new_map in (("constraint", a.constraints, b.constraints), ("index", a.indexes, b.indexes),
                                       ("trigger", a.triggers, b.triggers)):
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
            if new_type is None:
                continue
            if type(old_type) is not type(new_type) or (
                    isinstance(old_type, Enum) and not _is_subsequence(old_type.labels, new_type.labels)) or (
                    isinstance(old_type, Domain) and (old_type.base, old_type.collation) != (
                    new_type.base, new_type.collation)) or (
                    isinstance(old_type, Range) and old_type.options != new_type.options):
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

        self.find_renames(replaced)
        rebuildable = {"view", "constraint", "index", "trigger", "policy"}
        # Dropped objects count too: a foreign key kept as it is must still be
        # re-created when the unique index it relies on goes away.
        dropped = [key for key in self.a_objects if key not in self.b_objects and key not in self.renamed]
        pending = [(key, False) for key in [*replaced, *dropped]] + [(key, True) for key in retyped]
        if any(key[0] == "table" for key in replaced):
            for key in list(replaced):
                if key[0] == "table":
                    pending.extend((child, False) for child in self.a_children(key[1]))
        seen: set[Key] = set()
        while pending:
            key, limited = pending.pop()
            if (key, limited) in seen:
                continue
            seen.add((key, limited))
            for dependent in self.a_dependents.get(key, ()):
                if dependent[0] == "column" and self.generated_in_both(dependent):
                    # No ALTER changes what a generated column is computed
                    # from: drop it and add it back (its data is derived).
                    if dependent not in replaced:
                        replaced.add(dependent)
                        pending.append((dependent, False))
                    continue
                if dependent[0] not in rebuildable or dependent not in self.b_objects:
                    continue
                if limited and dependent[0] not in ("view", "trigger", "policy"):
                    continue
                owner = _owner(self.a_objects.get(dependent))
                if owner is not None and owner == key[1] and key[0] in ("table", "view"):
                    continue  # re-created with its relation anyway
                if dependent not in replaced:
                    replaced.add(dependent)
                pending.append((dependent, False))
        self.replaced = replaced
        self.dropped_relations = {q for q in a.tables if q not in b.tables or ("table", q) in replaced} | {
            q for q in a.views if q not in b.views or ("view", q) in replaced}
        self.created_relations = {q for q in b.tables if q not in a.tables or ("table", q) in replaced} | {
            q for q in b.views if q not in a.views or ("view", q) in replaced}

    def generated_in_both(self, key: Key) -> bool:
        old, new = self.a_objects.get(key), self.b_objects.get(key)
        return isinstance(old, Column) and isinstance(new, Column) and old.generated is not None \
            and new.generated is not None

    def find_renames(self, replaced: set[Key]) -> None:
        """Indexes and constraints that only changed name: renaming them keeps
        the index (no rebuild) and everything that depends on it."""
        self.renamed: dict[Key, Key] = {}  # old key -> new key
        for kind, old_map, new_map in (("index", self.a.indexes, self.b.indexes),
                                       ("constraint", self.a.constraints, self.b.constraints)):
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
                    self.renamed[(kind, old_names[0])] = (kind, new_names[0])
        self.renamed_to = {new: old for old, new in self.renamed.items()}

    def rename(self, old: Constraint | Index, new: Constraint | Index) -> None:
        old_key = ("index" if isinstance(old, Index) else "constraint", _object_name(old))
        new_key = (old_key[0], _object_name(new))
        if isinstance(old, Index):
            sql = f"ALTER INDEX {qualified(old.schema, old.name)} RENAME TO {ident(new.name)};"
        else:
            sql = f"ALTER TABLE {qualified_name(old.table)} RENAME CONSTRAINT {ident(old.name)} TO {ident(new.name)};"
        names = old_key[0] == "index" or old.type in "pux"
        self.add(sql, "rename", old_key[0], new_key[1], new.table, R_ALTER_TABLE, removes={old_key},
                 provides={new_key}, frees={f"rel:{old.schema}.{old.name}"} if names else set(),
                 claims={f"rel:{new.schema}.{new.name}"} if names else set())

    def a_children(self, relation: str) -> list[Key]:
        keys: list[Key] = []
        table = self.a.tables.get(relation)
        if table:
            keys.extend(("column", f"{relation}.{c}") for c in table.columns)
        for kind, collection in (("constraint", self.a.constraints), ("index", self.a.indexes),
                                 ("trigger", self.a.triggers), ("policy", self.a.policies)):
            keys.extend((kind, name) for name, obj in collection.items() if obj.table == relation)
        return keys

    # -- schemas and extensions --------------------------------------------------------

    def diff_schemas(self) -> None:
        for name in self.a.schemas.keys() - self.b.schemas.keys():
            key = ("schema", name)
            self.add(f"DROP SCHEMA {ident(name)};", "drop", "schema", name, None, R_DROP["schema"],
                     removes={key}, had=self.a_refs(key))
        for name, ns in self.b.schemas.items():
            key = ("schema", name)
            old = self.a.schemas.get(name)
            if old is None:
                self.add(f"CREATE SCHEMA {ident(name)};", "create", "schema", name, None, R_CREATE["schema"],
                         provides={key}, needs=self.b_refs(key))
            self.comment_step(f"SCHEMA {ident(name)}", key, "schema", name, None,
                              old.comment if old else None, ns.comment, old is None)

    def diff_extensions(self) -> None:
        for name, ext in self.a.extensions.items():
            if name not in self.b.extensions:
                key = ("extension", name)
                self.add(f"DROP EXTENSION {ident(name)};", "drop", "extension", name, None, R_DROP["extension"],
                         removes={key}, had=self.a_refs(key) | {("schema", ext.schema)})
        for name, ext in self.b.extensions.items():
            key = ("extension", name)
            old = self.a.extensions.get(name)
            if old is None:
                self.add(f"CREATE EXTENSION {ident(name)} WITH SCHEMA {ident(ext.schema)};", "create",
                         "extension", name, None, R_CREATE["extension"], provides={key},
                         needs={("schema", ext.schema)})
            elif old.schema != ext.schema:
                self.add(f"ALTER EXTENSION {ident(name)} SET SCHEMA {ident(ext.schema)};", "alter", "extension",
                         name, None, R_ALTER_TYPE, modifies={key}, needs={("schema", ext.schema)},
                         had={("schema", old.schema)})
            # CREATE EXTENSION sets the extension's own comment from its control
            # file; repeating it would be noise in every migration that adds one.
            if old is not None:
                self.comment_step(f"EXTENSION {ident(name)}", key, "extension", name, None,
                                  old.comment, ext.comment, False)

    # -- types -------------------------------------------------------------------------

    def diff_types(self) -> None:
        for qname, old in self.a.types.items():
            key = ("type", qname)
            if qname not in self.b.types or key in self.replaced:
                original = self.type_renames.get(qname, qname)
                hazards = [hz.DELETES_DATA] if self.type_loses_data(qname, old) else []
                self.add(ddl.drop_type(old), "drop", "type", original, None, R_DROP["type"], hazards=hazards,
                         removes={key}, had=self.a_refs(key) - {key},
                         frees=set() if qname in self.type_renames else {f"type:{qname}"})
        for qname, new in self.b.types.items():
            key = ("type", qname)
            old = self.a.types.get(qname)
            created = old is None or key in self.replaced
            if created:
                self.add(ddl.create_type(new), "create", "type", qname, None, R_CREATE["type"],
                         provides={key}, needs=self.b_refs(key) - {key}, claims={f"type:{qname}"})
            elif isinstance(old, Enum) and isinstance(new, Enum):
                self.alter_enum(old, new)
            elif isinstance(old, Domain) and isinstance(new, Domain):
                self.alter_domain(old, new)
            elif isinstance(old, Composite) and isinstance(new, Composite):
                self.alter_composite(old, new)
            what = "DOMAIN" if isinstance(new, Domain) else "TYPE"
            self.comment_step(f"{what} {qualified(new.schema, new.name)}", key, "type", qname, None,
                              None if created else old.comment, new.comment, created)
            if isinstance(new, Domain):
                old_checks = {} if created or not isinstance(old, Domain) else old.check_comments
                for check, text in new.check_comments.items():
                    if old_checks.get(check) != text:
                        self.add(ddl.comment(f"CONSTRAINT {ident(check)} ON DOMAIN {qualified(new.schema, new.name)}",
                                             text), "comment", "constraint", f"{qname}.{check}", None,
                                 R_CREATE["comment"], needs={key})

    def alter_enum(self, old: Enum, new: Enum) -> None:
        ref = qualified(new.schema, new.name)
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
                where = f" AFTER {literal(previous)}"  # right after it (itself maybe new)
            elif kept:  # leading labels: each goes just before the first kept one, in order
                where = f" BEFORE {literal(kept[0])}"
            else:
                where = ""
            # Each new label is added after the new label before it.
            needs = {("enum label", f"{qname}.{previous}")} if previous in added else set()
            previous = label
            self.add(f"ALTER TYPE {ref} ADD VALUE {literal(label)}{where};", "alter", "enum value",
                     f"{qname}.{label}", None, R_ALTER_TYPE, modifies={("type", qname)}, needs=needs,
                     provides={("enum label", f"{qname}.{label}")})

    def alter_domain(self, old: Domain, new: Domain) -> None:
        ref = qualified(new.schema, new.name)
        key = ("type", f"{new.schema}.{new.name}")
        qname = key[1]
        graph = {"modifies": {key}, "needs": self.b_refs(key) - {key}, "had": self.a_refs(key) - {key}}
        if old.default != new.default:
            sql = f"ALTER DOMAIN {ref} SET DEFAULT {new.default};" if new.default is not None else \
                f"ALTER DOMAIN {ref} DROP DEFAULT;"
            self.add(sql, "alter", "domain", qname, None, R_ALTER_TYPE, **graph)
        for name, definition in old.checks.items():
            if new.checks.get(name) != definition:
                self.add(f"ALTER DOMAIN {ref} DROP CONSTRAINT {ident(name)};", "drop", "constraint",
                         f"{qname}.{name}", None, R_ALTER_TYPE, **graph)
        if old.notnull != new.notnull:
            sql = f"ALTER DOMAIN {ref} {'SET' if new.notnull else 'DROP'} NOT NULL;"
            self.add(sql, "alter", "domain", qname, None, R_ALTER_TYPE,
                     hazards=[hz.VALIDATES] if new.notnull else [], **graph)
        for name, definition in new.checks.items():
            if old.checks.get(name) != definition:
                self.add(f"ALTER DOMAIN {ref} ADD CONSTRAINT {ident(name)} {definition};", "create", "constraint",
                         f"{qname}.{name}", None, R_ALTER_TYPE + 1, hazards=[hz.VALIDATES], **graph)

    def alter_composite(self, old: Composite, new: Composite) -> None:
        ref = qualified(new.schema, new.name)
        key = ("type", f"{new.schema}.{new.name}")
        graph = {"modifies": {key}, "needs": self.b_refs(key) - {key}, "had": self.a_refs(key) - {key}}
        old_attrs = {a.name: a for a in old.attributes}
        new_attrs = {a.name: a for a in new.attributes}
        for name in old_attrs.keys() - new_attrs.keys():
            self.add(f"ALTER TYPE {ref} DROP ATTRIBUTE {ident(name)};", "alter", "type", key[1], None,
                     R_ALTER_TYPE, hazards=[hz.DELETES_DATA], **graph)
        for attribute in new.attributes:
            before = old_attrs.get(attribute.name)
            collate = f" COLLATE {attribute.collation}" if attribute.collation else ""
            if before is None:
                self.add(f"ALTER TYPE {ref} ADD ATTRIBUTE {ident(attribute.name)} {attribute.type}{collate};",
                         "alter", "type", key[1], None, R_ALTER_TYPE, **graph)
            elif (before.type, before.collation) != (attribute.type, attribute.collation):
                self.add(f"ALTER TYPE {ref} ALTER ATTRIBUTE {ident(attribute.name)} TYPE {attribute.type}{collate};",
                         "alter", "type", key[1], None, R_ALTER_TYPE, **graph)

    # -- sequences ---------------------------------------------------------------------

    def owner_dropped(self, owned_by: tuple[str, str] | None) -> bool:
        if owned_by is None:
            return False
        table, column = owned_by
        if table in self.dropped_relations:
            return True
        new_table = self.b.tables.get(table)
        return new_table is None or column not in new_table.columns or ("column", f"{table}.{column}") in self.replaced

    def diff_sequences(self) -> None:
        self.implied_sequences: dict[Key, set[Key]] = defaultdict(set)  # column/table key -> sequences
        for qname, seq in self.a.sequences.items():
            key = ("sequence", qname)
            if qname in self.b.sequences:
                continue
            if self.owner_dropped(seq.owned_by):
                # DROP TABLE / DROP COLUMN drops the sequences the column owns.
                assert seq.owned_by is not None
                table, column = seq.owned_by
                self.implied_sequences[("column", f"{table}.{column}")].add(key)
                self.implied_sequences[("table", table)].add(key)
                continue
            self.add(f"DROP SEQUENCE {qualified(seq.schema, seq.name)};", "drop", "sequence", qname, None,
                     R_DROP["sequence"], removes={key}, had=self.a_refs(key), frees={f"rel:{qname}"})
        for qname, seq in self.b.sequences.items():
            key = ("sequence", qname)
            old = self.a.sequences.get(qname)
            ref = qualified(seq.schema, seq.name)
            recreated = old is not None and self.owner_dropped(old.owned_by)
            if old is None or recreated:
                if recreated:
                    self.add(f"ALTER SEQUENCE {ref} OWNED BY NONE;", "alter", "sequence", qname, None,
                             R_ALTER_SEQUENCE, modifies={key})
                else:
                    self.add(ddl.create_sequence(seq), "create", "sequence", qname, None, R_CREATE["sequence"],
                             provides={key}, needs=self.b_refs(key), claims={f"rel:{qname}"})
            else:
                clauses = ddl.sequence_option_clauses(seq.options, old.options)
                if clauses:
                    self.add(f"ALTER SEQUENCE {ref} {' '.join(clauses)};", "alter", "sequence", qname, None,
                             R_ALTER_SEQUENCE, modifies={key})
            if (old.owned_by if old and not recreated else None) != seq.owned_by:
                if seq.owned_by:
                    table, column = seq.owned_by
                    owner = f"{qualified_name(table)}.{ident(column)}"
                    needs = {key, ("column", f"{table}.{column}")}
                else:
                    owner, needs = "NONE", {key}
                self.add(f"ALTER SEQUENCE {ref} OWNED BY {owner};", "alter", "sequence", qname, None,
                         R_CREATE["owned by"], needs=needs)
            self.comment_step(f"SEQUENCE {ref}", key, "sequence", qname, None, old.comment if old else None,
                              seq.comment, old is None)

    # -- functions ---------------------------------------------------------------------

    def diff_functions(self) -> None:
        for sig, function in self.a.functions.items():
            key = ("function", sig)
            if sig not in self.b.functions or key in self.replaced:
                self.add(ddl.drop_function(function), "drop", "function", sig, None, R_DROP["function"],
                         removes={key}, had=self.a_refs(key))
        for sig, function in self.b.functions.items():
            key = ("function", sig)
            old = self.a.functions.get(sig)
            created = old is None or key in self.replaced
            what = ddl.function_kind(function)
            if created:
                self.add(function.definition + ";", "create", "function", sig, None, R_CREATE["function"],
                         provides={key}, needs=self.b_refs(key))
            elif old.definition != function.definition:
                self.add(function.definition + ";", "alter", "function", sig, None, R_REPLACE_FUNCTION,
                         modifies={key}, needs=self.b_refs(key), had=self.a_refs(key))
            self.comment_step(f"{what} {ddl.function_ref(function)}", key, "function", sig, None,
                              None if created else old.comment, function.comment, created)

    # -- tables and columns ------------------------------------------------------------

    def diff_tables(self) -> None:
        self.cyclic_fks = self.cyclic_foreign_keys()
        for qname, table in self.a.tables.items():
            if qname in self.dropped_relations:
                self.drop_table(table)
        for qname, table in self.b.tables.items():
            if qname in self.created_relations:
                self.create_table(table)
            else:
                self.alter_table(self.a.tables[qname], table)

    def cyclic_foreign_keys(self) -> set[str]:
        """Foreign keys between dropped tables that reference each other in a
        cycle: no order of DROP TABLE works, so they are dropped first."""
        edges: dict[str, set[str]] = defaultdict(set)
        fks: list[tuple[str, str, str]] = []
        for name, constraint in self.a.constraints.items():
            target = constraint.references
            if constraint.type == "f" and target and target != constraint.table and \
                    constraint.table in self.dropped_relations and target in self.dropped_relations:
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

    def drop_table(self, table: Table) -> None:
        qname = table.qualified
        key = ("table", qname)
        removes = {key, *self.a_children(qname)} | self.implied_sequences.get(key, set())
        removes -= {("constraint", name) for name in self.cyclic_fks}
        had: set[Key] = set()
        for removed in removes:
            had |= self.a_refs(removed)
        self.add(f"DROP TABLE {ddl.table_ref(table)};", "drop", "table", qname, qname, R_DROP["table"],
                 hazards=[hz.DELETES_DATA], removes=removes, had=had - removes,
                 frees={f"rel:{qname}", f"type:{qname}"})

    def create_table(self, table: Table) -> None:
        qname = table.qualified
        key = ("table", qname)
        columns = {("column", f"{qname}.{c}") for c in table.columns}
        needs = self.b_refs(key)
        for column in columns:
            needs |= self.b_refs(column)
        self.add(ddl.create_table(table), "create", "table", qname, qname, R_CREATE["table"],
                 provides={key, *columns}, needs=needs - columns - {key},
                 claims={f"rel:{qname}", f"type:{qname}"} | self.identity_claims(table.columns.values()))
        ref = ddl.table_ref(table)
        if table.rls:
            self.add(f"ALTER TABLE {ref} ENABLE ROW LEVEL SECURITY;", "alter", "table", qname, qname,
                     R_CREATE["table option"], needs={key})
        if table.force_rls:
            self.add(f"ALTER TABLE {ref} FORCE ROW LEVEL SECURITY;", "alter", "table", qname, qname,
                     R_CREATE["table option"], needs={key})
        self.replica_identity(table, None)
        self.column_settings(table, table.columns.values())
        self.comment_step(f"TABLE {ref}", key, "table", qname, qname, None, table.comment, True)
        for column in table.columns.values():
            self.comment_step(f"COLUMN {ref}.{ident(column.name)}", ("column", f"{qname}.{column.name}"),
                              "column", f"{qname}.{column.name}", qname, None, column.comment, True)

    def replica_identity(self, new: Table, old: Table | None) -> None:
        index = new.replica_index
        index_keys = {("index", f"{new.schema}.{index}"), ("constraint", f"{new.qualified}.{index}")} if index else set()
        rebuilt = bool(index_keys & self.replaced)
        if old is not None and (old.replica_identity, old.replica_index) == (new.replica_identity, index) \
                and not rebuilt:
            return
        if old is None and new.replica_identity == "d":
            return
        clause = {"d": "DEFAULT", "f": "FULL", "n": "NOTHING"}.get(new.replica_identity) or \
            f"USING INDEX {ident(index or '')}"
        self.add(f"ALTER TABLE {ddl.table_ref(new)} REPLICA IDENTITY {clause};", "alter", "table", new.qualified,
                 new.qualified, R_CREATE["table option"], needs={("table", new.qualified)} | index_keys)

    def column_settings(self, table: Table, columns: Iterable[Column], old: Table | None = None) -> None:
        """Storage and statistics targets, which no column definition carries."""
        storages = {"p": "PLAIN", "e": "EXTERNAL", "x": "EXTENDED", "m": "MAIN"}
        for column in columns:
            before = old.columns.get(column.name) if old else None
            key = ("column", f"{table.qualified}.{column.name}")
            if before is not None and (before.storage, before.statistics) == (column.storage, column.statistics):
                continue
            if before is None and column.storage is None and column.statistics is None:
                continue
            prefix = f"ALTER TABLE {ddl.table_ref(table)} ALTER COLUMN {ident(column.name)}"
            if (before.storage if before else None) != column.storage:
                storage = storages.get(column.storage or "", "DEFAULT")
                self.add(f"{prefix} SET STORAGE {storage};", "alter", "column", key[1], table.qualified,
                         R_CREATE["table option"], needs={key})
            if (before.statistics if before else None) != column.statistics:
                target = -1 if column.statistics is None else column.statistics
                self.add(f"{prefix} SET STATISTICS {target};", "alter", "column", key[1], table.qualified,
                         R_CREATE["table option"], needs={key})

    def identity_claims(self, columns: Iterable[Column]) -> set[str]:
        return {f"rel:{c.identity_sequence}" for c in columns if c.identity and c.identity_sequence}

    def alter_table(self, old: Table, new: Table) -> None:
        qname = new.qualified
        key = ("table", qname)
        ref = ddl.table_ref(new)

        def alter(sql: str, hazards: Iterable[str] = (), **graph: Iterable) -> None:
            self.add(f"ALTER TABLE {ref} {sql};", "alter", "table", qname, qname, R_ALTER_TABLE,
                     hazards=hazards, **graph)

        if old.persistence != new.persistence:
            alter("SET UNLOGGED" if new.persistence == "u" else "SET LOGGED",
                  [hz.REWRITES_TABLE, hz.ACCESS_EXCLUSIVE])
        if old.rls != new.rls:
            alter(f"{'ENABLE' if new.rls else 'DISABLE'} ROW LEVEL SECURITY")
        if old.force_rls != new.force_rls:
            alter(f"{'FORCE' if new.force_rls else 'NO FORCE'} ROW LEVEL SECURITY")
        old_options = dict(o.split("=", 1) for o in old.options)
        new_options = dict(o.split("=", 1) for o in new.options)
        removed = [k for k in old_options if k not in new_options]
        if removed:
            alter(f"RESET ({', '.join(removed)})")
        changed = [f"{k}={v}" for k, v in new_options.items() if old_options.get(k) != v]
        if changed:
            alter(f"SET ({', '.join(changed)})")
        if (old.partition_bound, old.parents) != (new.partition_bound, new.parents):
            if old.partition_bound is not None:
                self.add(f"ALTER TABLE {qualified_name(old.parents[0])} DETACH PARTITION {ref};", "alter",
                         "table", qname, qname, R_ALTER_TABLE, had={("table", old.parents[0])})
            else:
                for parent in old.parents:
                    if parent not in new.parents:
                        alter(f"NO INHERIT {qualified_name(parent)}", provides={("unlinked", qname)},
                              had={("table", parent)})
            if new.partition_bound is not None:
                parent = new.parents[0]
                self.add(f"ALTER TABLE {qualified_name(parent)} ATTACH PARTITION {ref} {new.partition_bound};",
                         "alter", "table", qname, qname, R_CREATE["table option"], hazards=[hz.VALIDATES],
                         needs={("table", parent), key})
            else:
                for parent in new.parents:
                    if parent not in old.parents:
                        self.add(f"ALTER TABLE {ref} INHERIT {qualified_name(parent)};", "alter", "table", qname,
                                 qname, R_CREATE["table option"], needs={("table", parent), key})
        self.replica_identity(new, old)
        self.comment_step(f"TABLE {ref}", key, "table", qname, qname, old.comment, new.comment, False)
        relinked = old.parents != new.parents
        for name, column in old.columns.items():
            col_key = ("column", f"{qname}.{name}")
            if column.inherited and not (relinked and name not in new.columns):
                continue
            if name not in new.columns or col_key in self.replaced:
                # A column inherited from a parent being unlinked is dropped
                # after the unlinking made it a local column.
                self.drop_column(new, column)
                if column.inherited:
                    self.steps[-1].needs.add(("unlinked", qname))
        for name, column in new.columns.items():
            col_key = ("column", f"{qname}.{name}")
            before = old.columns.get(name)
            if before is None or col_key in self.replaced:
                # INHERIT wants the child to have the parent's columns already.
                if not column.inherited or (relinked and new.partition_bound is None):
                    self.add_column(new, column)
            elif not column.inherited or not before.inherited:
                self.alter_column(new, before, column)
            if not column.inherited:
                fresh = before is None or col_key in self.replaced
                self.column_settings(new, [column], None if fresh else old)
            fresh = before is None or col_key in self.replaced
            if fresh or before.comment != column.comment:
                self.comment_step(f"COLUMN {ref}.{ident(name)}", col_key, "column", f"{qname}.{name}", qname,
                                  None if fresh else before.comment, column.comment, fresh)

    def drop_column(self, table: Table, column: Column) -> None:
        qname = table.qualified
        key = ("column", f"{qname}.{column.name}")
        removes = {key} | self.implied_sequences.get(key, set())
        frees = {f"rel:{column.identity_sequence}"} if column.identity_sequence else set()
        self.add(f"ALTER TABLE {ddl.table_ref(table)} DROP COLUMN {ident(column.name)};", "drop", "column",
                 key[1], qname, R_DROP["column"], hazards=[hz.DELETES_DATA] if column.generated is None else [],
                 removes=removes, had=self.a_refs(key) - {("table", qname)}, frees=frees)

    def add_column(self, table: Table, column: Column) -> None:
        qname = table.qualified
        key = ("column", f"{qname}.{column.name}")
        rewrites = column.identity or column.generated is not None or column.volatile_default
        self.add(f"ALTER TABLE {ddl.table_ref(table)} ADD COLUMN {ddl.column_definition(column)};", "create",
                 "column", key[1], qname, R_CREATE["column"],
                 hazards=[hz.REWRITES_TABLE, hz.ACCESS_EXCLUSIVE] if rewrites else [],
                 provides={key}, needs=self.b_refs(key) - {("table", qname)},
                 claims=self.identity_claims([column]))

    def alter_column(self, table: Table, old: Column, new: Column) -> None:
        if _column_shape(old) == _column_shape(new):
            return
        qname = table.qualified
        key = ("column", f"{qname}.{new.name}")
        prefix = f"ALTER TABLE {ddl.table_ref(table)} ALTER COLUMN {ident(new.name)}"
        graph = {"modifies": {key}, "needs": self.b_refs(key) - {("table", qname)},
                 "had": self.a_refs(key) - {("table", qname)}}

        def alter(sql: str, hazards: Iterable[str] = (), action: str = "alter", **extra: Iterable) -> None:
            merged = {k: set(v) for k, v in graph.items()}
            for k, v in extra.items():
                merged[k] = merged.get(k, set()) | set(v)
            self.add(f"{prefix} {sql};", action, "column", key[1], qname, R_ALTER_COLUMN, hazards=hazards,
                     **merged)

        if old.generated is not None and new.generated is None:
            alter("DROP EXPRESSION")
        if old.identity and not new.identity:
            alter("DROP IDENTITY", frees={f"rel:{old.identity_sequence}"} if old.identity_sequence else ())
        retyped = (old.type, old.collation) != (new.type, new.collation)
        base_changes = retyped and _base(old.type) != _base(new.type)
        default_reset = base_changes and old.default is not None
        if old.default is not None and (new.default is None or default_reset) and old.default != new.default \
                or default_reset:
            alter("DROP DEFAULT")
        if retyped:
            sql = f"TYPE {new.type}"
            if new.collation or old.collation:
                sql += f" COLLATE {new.collation or _DEFAULT_COLLATION}"
            if base_changes and needs_using(old.type, new.type, self.is_enum(old.type) or self.is_enum(new.type)):
                via = "text[]" if new.type.endswith("[]") else "text"
                through = f"::{via}" if self.is_enum(old.type) or self.is_enum(new.type) else ""
                sql += f" USING {ident(new.name)}{through}::{new.type}"
            if self.converts_to_rebuilt_type(old.type, new.type):
                hazards = (hz.REWRITES_TABLE, hz.ACCESS_EXCLUSIVE)
            else:
                hazards = type_change_hazards(old.type, new.type)
            alter(sql, hazards)
        if new.default is not None and (old.default != new.default or default_reset):
            alter(f"SET DEFAULT {new.default}")
        if old.notnull != new.notnull and not (new.identity and not new.notnull):
            if new.notnull:
                alter("SET NOT NULL", [hz.VALIDATES, hz.ACCESS_EXCLUSIVE])
            elif not new.identity:
                alter("DROP NOT NULL")
        if new.identity and not old.identity:
            alter(f"ADD {ddl.identity_clause(new)}", claims={f"rel:{new.identity_sequence}"}
                  if new.identity_sequence else ())
        elif new.identity and old.identity:
            if new.identity != old.identity:
                alter(f"SET GENERATED {'ALWAYS' if new.identity == 'a' else 'BY DEFAULT'}")
            if old.identity_options and new.identity_options:
                clauses = _identity_changes(old, new)
                if clauses:
                    alter(" ".join(f"SET {c}" for c in clauses))
        if new.generated is not None and old.generated is None:
            pass  # handled as a replacement (drop and add)

    def type_loses_data(self, qname: str, old: Enum | Domain | Composite) -> bool:
        """Whether dropping this type (as the current model has it) loses data."""
        original = self.type_renames.get(qname)
        if original is not None:  # the old copy of a rebuilt type: its columns were converted
            new = self.b.types[original]
            return isinstance(old, Enum) and isinstance(new, Enum) and not set(old.labels) <= set(new.labels)
        if qname in self.b.types:  # re-created with nothing using it
            return False
        return not isinstance(old, Composite) or bool(self.a_dependents.get(("type", qname)))

    def converts_to_rebuilt_type(self, old_type: str, new_type: str) -> bool:
        for renamed, original in self.type_renames.items():
            schema, name = renamed.split(".", 1)
            o_schema, o_name = original.split(".", 1)
            if _retype(old_type, qualified(schema, name), qualified(o_schema, o_name)) == new_type != old_type:
                return True
        return False

    def is_enum(self, type_name: str) -> bool:
        base = type_name.removesuffix("[]")
        for schema in (self.a, self.b):
            for obj in schema.types.values():
                if isinstance(obj, Enum) and qualified(obj.schema, obj.name) == base:
                    return True
        return False

    # -- constraints and indexes -------------------------------------------------------

    def diff_constraints(self) -> None:
        for name, constraint in self.a.constraints.items():
            key = ("constraint", name)
            if constraint.table in self.dropped_relations and name not in self.cyclic_fks:
                continue
            if key in self.renamed:
                continue
            if name not in self.b.constraints or key in self.replaced:
                rank = R_DROP["fk"] if constraint.type == "f" else R_DROP["constraint"]
                frees = {f"rel:{constraint.schema}.{constraint.name}"} if constraint.type in "pux" else set()
                self.add(ddl.drop_constraint(constraint), "drop", "constraint", name, constraint.table, rank,
                         removes={key}, had=self.a_refs(key) - {("table", constraint.table)}, frees=frees)
        for name, constraint in self.b.constraints.items():
            key = ("constraint", name)
            old = self.a.constraints.get(name)
            created = old is None or key in self.replaced or constraint.table in self.created_relations
            if key in self.renamed_to and constraint.table not in self.created_relations:
                old = self.a.constraints[self.renamed_to[key][1]]
                self.rename(old, constraint)
                created = False
            elif created:
                self.add_constraint(constraint)
            target = f"CONSTRAINT {ident(constraint.name)} ON {qualified_name(constraint.table)}"
            self.comment_step(target, key, "constraint", name, constraint.table, None if created else old.comment,
                              constraint.comment, created)

    def add_constraint(self, constraint: Constraint) -> None:
        key = ("constraint", f"{constraint.table}.{constraint.name}")
        not_valid = constraint.definition.endswith("NOT VALID")
        if constraint.type in "pux":
            rank, hazards = R_CREATE["pk"], [hz.BLOCKS_WRITES, hz.ACCESS_EXCLUSIVE]
        elif constraint.type == "f":
            rank, hazards = R_CREATE["fk"], [] if not_valid else [hz.VALIDATES]
        else:
            rank, hazards = R_CREATE["constraint"], [hz.ACCESS_EXCLUSIVE] + ([] if not_valid else [hz.VALIDATES])
        claims = {f"rel:{constraint.schema}.{constraint.name}"} if constraint.type in "pux" else set()
        self.add(ddl.add_constraint(constraint), "create", "constraint", key[1], constraint.table, rank,
                 hazards=hazards, provides={key}, needs=self.b_refs(key), claims=claims)

    def diff_indexes(self) -> None:
        for name, index in self.a.indexes.items():
            key = ("index", name)
            if index.table in self.dropped_relations or key in self.renamed:
                continue
            if name not in self.b.indexes or key in self.replaced:
                self.add(f"DROP INDEX {qualified(index.schema, index.name)};", "drop", "index", name, index.table,
                         R_DROP["index"], removes={key}, had=self.a_refs(key), frees={f"rel:{name}"})
        for name, index in self.b.indexes.items():
            key = ("index", name)
            old = self.a.indexes.get(name)
            created = old is None or key in self.replaced or index.table in self.created_relations
            if key in self.renamed_to and index.table not in self.created_relations:
                old = self.a.indexes[self.renamed_to[key][1]]
                self.rename(old, index)
                created = False
            elif created:
                owner = self.b.tables.get(index.table)
                self.add(ddl.create_index(index, bool(owner and owner.partitioned)), "create", "index", name,
                         index.table, R_CREATE["index"], hazards=[hz.BLOCKS_WRITES], provides={key},
                         needs=self.b_refs(key), claims={f"rel:{name}"})
            self.comment_step(f"INDEX {qualified(index.schema, index.name)}", key, "index", name, index.table,
                              None if created else old.comment, index.comment, created)

    # -- views, triggers, policies -----------------------------------------------------

    def diff_views(self) -> None:
        for qname, view in self.a.views.items():
            if qname in self.dropped_relations:
                key = ("view", qname)
                removes = {key, *self.a_children(qname)}
                self.add(ddl.drop_view(view), "drop", "materialized view" if view.materialized else "view", qname,
                         None, R_DROP["view"], removes=removes, had=self.a_refs(key) - removes,
                         frees={f"rel:{qname}", f"type:{qname}"})
        for qname, view in self.b.views.items():
            key = ("view", qname)
            kind = "materialized view" if view.materialized else "view"
            ref = qualified(view.schema, view.name)
            created = qname in self.created_relations
            old = None if created else self.a.views[qname]
            if created:
                self.add(ddl.create_view(view), "create", kind, qname, None, R_CREATE["view"], provides={key},
                         needs=self.b_refs(key) - {key}, claims={f"rel:{qname}", f"type:{qname}"})
            elif old is not None and old.populated != view.populated:
                data = "" if view.populated else " WITH NO DATA"
                self.add(f"REFRESH MATERIALIZED VIEW {ref}{data};", "alter", kind, qname, None, R_CREATE["view"],
                         modifies={key}, needs=self.b_refs(key) - {key},
                         hazards=[hz.ACCESS_EXCLUSIVE] if view.populated else [])
            self.comment_step(f"{kind.upper()} {ref}", key, kind, qname, None, old.comment if old else None,
                              view.comment, created)
            for column in view.columns:
                self.comment_step(f"COLUMN {ref}.{ident(column)}", key, "column", f"{qname}.{column}", None,
                                  old.column_comments.get(column) if old else None,
                                  view.column_comments.get(column), created)

    def diff_triggers(self) -> None:
        for name, trigger in self.a.triggers.items():
            key = ("trigger", name)
            if trigger.table in self.dropped_relations:
                continue
            if name not in self.b.triggers or key in self.replaced:
                self.add(ddl.drop_trigger(trigger), "drop", "trigger", name, trigger.table, R_DROP["trigger"],
                         removes={key}, had=self.a_refs(key))
        for name, trigger in self.b.triggers.items():
            key = ("trigger", name)
            old = self.a.triggers.get(name)
            created = old is None or key in self.replaced or trigger.table in self.created_relations
            if created:
                self.add(ddl.create_trigger(trigger), "create", "trigger", name, trigger.table, R_CREATE["trigger"],
                         provides={key}, needs=self.b_refs(key))
            if (trigger.enabled != "O" and created) or (not created and old.enabled != trigger.enabled):
                self.add(ddl.trigger_state(trigger), "alter", "trigger", name, trigger.table, R_CREATE["trigger"],
                         needs={key})
            self.comment_step(f"TRIGGER {ident(trigger.name)} ON {qualified_name(trigger.table)}", key, "trigger",
                              name, trigger.table, None if created else old.comment, trigger.comment, created)

    def diff_policies(self) -> None:
        for name, policy in self.a.policies.items():
            key = ("policy", name)
            if policy.table in self.dropped_relations:
                continue
            if name not in self.b.policies or key in self.replaced:
                self.add(ddl.drop_policy(policy), "drop", "policy", name, policy.table, R_DROP["policy"],
                         removes={key}, had=self.a_refs(key))
        for name, policy in self.b.policies.items():
            key = ("policy", name)
            old = self.a.policies.get(name)
            created = old is None or key in self.replaced or policy.table in self.created_relations
            if created:
                self.add(ddl.create_policy(policy), "create", "policy", name, policy.table, R_CREATE["policy"],
                         provides={key}, needs=self.b_refs(key))
            elif (old.roles, old.using, old.check) != (policy.roles, policy.using, policy.check):
                self.add(ddl.alter_policy(policy), "alter", "policy", name, policy.table, R_CREATE["policy"],
                         modifies={key}, needs=self.b_refs(key), had=self.a_refs(key))
            self.comment_step(f"POLICY {ident(policy.name)} ON {qualified_name(policy.table)}", key, "policy",
                              name, policy.table, None if created else old.comment, policy.comment, created)

    def diff_event_triggers(self) -> None:
        states = {"O": "ENABLE", "D": "DISABLE", "R": "ENABLE REPLICA", "A": "ENABLE ALWAYS"}
        for name, trigger in self.a.event_triggers.items():
            key = ("event trigger", name)
            if self.b.event_triggers.get(name, trigger).__dict__ | {"comment": None, "enabled": None} != \
                    trigger.__dict__ | {"comment": None, "enabled": None} or name not in self.b.event_triggers:
                self.add(f"DROP EVENT TRIGGER {ident(name)};", "drop", "event trigger", name, None,
                         R_DROP["trigger"], removes={key}, had=self.a_refs(key))
                self.replaced.add(key)
        for name, trigger in self.b.event_triggers.items():
            key = ("event trigger", name)
            old = self.a.event_triggers.get(name)
            created = old is None or key in self.replaced
            if created:
                when = f" WHEN TAG IN ({', '.join(literal(t) for t in trigger.tags)})" if trigger.tags else ""
                self.add(f"CREATE EVENT TRIGGER {ident(name)} ON {ident(trigger.event)}{when}"
                         f" EXECUTE FUNCTION {trigger.function}();", "create", "event trigger", name, None,
                         R_CREATE["trigger"], provides={key}, needs=self.b_refs(key))
            if (created and trigger.enabled != "O") or (not created and old.enabled != trigger.enabled):
                self.add(f"ALTER EVENT TRIGGER {ident(name)} {states[trigger.enabled]};", "alter", "event trigger",
                         name, None, R_CREATE["trigger"], needs={key})
            self.comment_step(f"EVENT TRIGGER {ident(name)}", key, "event trigger", name, None,
                              None if created else old.comment, trigger.comment, created)

    # -- finishing -------------------------------------------------------------------

    def quiet_new_tables(self) -> None:
        """A table created in this migration is empty: nothing on it rewrites,
        blocks or scans anything worth warning about."""
        new_tables = {q for q in self.created_relations if q not in self.a.tables and q not in self.a.views}
        for step in self.steps:
            change = step.change
            if change.table in new_tables and change.hazards:
                kept = tuple(h for h in change.hazards if h == hz.NON_TRANSACTIONAL)
                step.change = Change(change.sql, change.action, change.kind, change.name, change.table, kept,
                                     change.transactional)
        # A value added to an enum cannot be used in the transaction that adds
        # it: if anything else in this migration mentions it, run it alone.
        for step in self.steps:
            change = step.change
            if change.kind != "enum value":
                continue
            label = literal(change.name.rsplit(".", 1)[1])
            if any(label in other.change.sql for other in self.steps if other is not step):
                step.change = Change(change.sql, change.action, change.kind, change.name, change.table,
                                     change.hazards + (hz.NON_TRANSACTIONAL,), False)


def _order(steps: list[_Step]) -> list[_Step]:
    """Topological order of the steps; ties broken by (rank, name, emission order).

    The name comes before emission order because emission follows catalog
    order, which differs between two databases built from the same SQL:
    the same inputs must give the same bytes on every machine.
    """
    providers: dict[Key, list[int]] = defaultdict(list)
    removers: dict[Key, list[int]] = defaultdict(list)
    modifiers: dict[Key, list[int]] = defaultdict(list)
    claimers: dict[str, list[int]] = defaultdict(list)
    for i, step in enumerate(steps):
        for key in step.provides:
            providers[key].append(i)
        for key in step.removes:
            removers[key].append(i)
        for key in step.modifies:
            modifiers[key].append(i)
        for name in step.claims:
            claimers[name].append(i)
    edges: dict[int, set[int]] = defaultdict(set)

    def edge(first: int, then: int) -> None:
        if first != then:
            edges[first].add(then)

    for i, step in enumerate(steps):
        for key in step.needs:
            for j in providers.get(key, ()):
                edge(j, i)
            if key not in step.modifies:
                for j in modifiers.get(key, ()):
                    edge(j, i)
        for key in step.had:
            for j in removers.get(key, ()):
                edge(i, j)
            if step.change.action == "drop" and key not in step.modifies:
                for j in modifiers.get(key, ()):
                    edge(i, j)
        for key in step.removes:
            for j in providers.get(key, ()):
                edge(i, j)
        for name in step.frees:
            for j in claimers.get(name, ()):
                edge(i, j)
    indegree = [0] * len(steps)
    for first, thens in edges.items():
        for then in thens:
            indegree[then] += 1
    ready = [(step.rank, step.change.name, i) for i, step in enumerate(steps) if indegree[i] == 0]
    heapq.heapify(ready)
    done = [False] * len(steps)
    ordered: list[_Step] = []
    while len(ordered) < len(steps):
        if not ready:
            # A cycle: release the earliest remaining statement and go on.
            i = min((steps[i].rank, steps[i].change.name, i) for i in range(len(steps)) if not done[i])[2]
            indegree[i] = 0
            heapq.heappush(ready, (steps[i].rank, steps[i].change.name, i))
        _, _, i = heapq.heappop(ready)
        if done[i]:
            continue
        done[i] = True
        ordered.append(steps[i])
        for then in edges.get(i, ()):
            indegree[then] -= 1
            if indegree[then] == 0 and not done[then]:
                heapq.heappush(ready, (steps[then].rank, steps[then].change.name, then))
    return ordered


# -- small pure helpers --------------------------------------------------------------------


def _is_subsequence(old: list[str], new: list[str]) -> bool:
    """Whether ``new`` keeps every label of ``old`` in the same order."""
    positions = [new.index(label) for label in old if label in new]
    return len(positions) == len(old) and positions == sorted(positions)


def _retype(type_name: str, old_ref: str, new_ref: str) -> str:
    if type_name == old_ref or type_name.startswith(old_ref + "["):
        return new_ref + type_name[len(old_ref):]
    return type_name


def _rekey(key: Key, old: str, new: str) -> Key:
    return (key[0], new) if key == ("type", old) else key


def _base(type_name: str) -> str:
    base = type_name
    if "(" in base:
        base = base[: base.index("(")] + base[base.index(")") + 1:]
    return base


def _object_name(obj: Constraint | Index) -> str:
    return f"{obj.table}.{obj.name}" if isinstance(obj, Constraint) else f"{obj.schema}.{obj.name}"


def _shape(obj: Constraint | Index) -> tuple:
    """An index's or constraint's definition without its name."""
    if isinstance(obj, Index):
        return (obj.table, obj.schema, obj.definition.replace(f" INDEX {ident(obj.name)} ON ", " INDEX ON ", 1))
    return (obj.table, obj.type, obj.definition)


def _column_shape(column: Column) -> tuple:
    """Everything ALTER COLUMN can change (not the comment, not the position)."""
    return (column.type, column.notnull, column.default, column.identity, column.identity_options,
            column.generated, column.collation)


def _replaceable(old: Function, new: Function) -> bool:
    """Whether CREATE OR REPLACE can turn ``old`` into ``new``."""
    return old.kind != "a" and (old.kind, old.result, old.arguments) == (new.kind, new.result, new.arguments)


def _identity_changes(old: Column, new: Column) -> list[str]:
    a, b = old.identity_options, new.identity_options
    assert a is not None and b is not None
    clauses = []
    if a.start != b.start:
        clauses.append(f"START WITH {b.start}")
    if a.increment != b.increment:
        clauses.append(f"INCREMENT BY {b.increment}")
    if a.minvalue != b.minvalue and not (a.type != b.type and a.minvalue in (1, -1) and b.minvalue in (1, -1)):
        if not (old.type != new.type and _default_bound(a, "min") and _default_bound(b, "min")):
            clauses.append(f"MINVALUE {b.minvalue}")
    if a.maxvalue != b.maxvalue:
        if not (old.type != new.type and _default_bound(a, "max") and _default_bound(b, "max")):
            clauses.append(f"MAXVALUE {b.maxvalue}")
    if a.cache != b.cache:
        clauses.append(f"CACHE {b.cache}")
    if a.cycle != b.cycle:
        clauses.append("CYCLE" if b.cycle else "NO CYCLE")
    return clauses


def _default_bound(options, which: str) -> bool:
    low, high = ddl._INT_RANGES.get(options.type, ddl._INT_RANGES["bigint"])
    if which == "min":
        return options.minvalue == (1 if options.increment > 0 else low)
    return options.maxvalue == (high if options.increment > 0 else -1)
