"""The schema model: every user object of one database as plain data.

What the engine compares. ``schemadiff.inspect`` fills it from a live
database's catalogs; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass, field

# An object's identity in the dependency graph: (kind, qualified name).
Key = tuple[str, str]


@dataclass
class Namespace:
    name: str
    comment: str | None = None


@dataclass
class Extension:
    name: str
    schema: str
    version: str
    comment: str | None = None


@dataclass
class SequenceOptions:
    type: str
    start: int
    increment: int
    minvalue: int
    maxvalue: int
    cache: int
    cycle: bool


@dataclass
class Sequence:
    schema: str
    name: str
    options: SequenceOptions
    owned_by: tuple[str, str] | None = None  # (qualified table, column)
    comment: str | None = None


@dataclass
class Enum:
    schema: str
    name: str
    labels: list[str]
    comment: str | None = None


@dataclass
class Domain:
    schema: str
    name: str
    base: str
    default: str | None
    notnull: bool
    collation: str | None
    checks: dict[str, str] = field(default_factory=dict)  # constraint name -> definition
    check_comments: dict[str, str] = field(default_factory=dict)
    comment: str | None = None


@dataclass
class Range:
    schema: str
    name: str
    options: str  # "SUBTYPE = ..., SUBTYPE_DIFF = ..., MULTIRANGE_TYPE_NAME = ..."
    comment: str | None = None


@dataclass
class Attribute:
    name: str
    type: str
    collation: str | None


@dataclass
class Composite:
    schema: str
    name: str
    attributes: list[Attribute] = field(default_factory=list)
    comment: str | None = None
    attribute_comments: dict[str, str] = field(default_factory=dict)  # COMMENT ON COLUMN type.attribute


@dataclass
class Column:
    name: str
    type: str
    notnull: bool
    default: str | None  # None for generated columns (see ``generated``)
    identity: str  # '' | 'a' (ALWAYS) | 'd' (BY DEFAULT)
    identity_options: SequenceOptions | None
    identity_sequence: str | None  # qualified name of the identity's sequence
    generated: str | None  # expression of a STORED generated column
    collation: str | None
    inherited: bool  # comes from a parent table (inheritance or partitioning)
    volatile_default: bool = False
    storage: str | None = None  # p e x m, only when not the type's default
    statistics: int | None = None  # per-column statistics target, when set
    compression: str | None = None  # attcompression: p (pglz) | l (lz4); None: the server's default
    options: tuple[str, ...] = ()  # attoptions: n_distinct=..., n_distinct_inherited=...
    comment: str | None = None
    position: int = 0


@dataclass
class Table:
    schema: str
    name: str
    partitioned: bool
    persistence: str  # 'p' permanent | 'u' unlogged
    partition_key: str | None
    partition_bound: str | None
    parents: list[str]  # qualified names (partition parent or INHERITS list)
    rls: bool
    force_rls: bool
    # reloptions ("fillfactor=70"), in the order they were given: pg_dump
    # prints them in that order, so a re-created table must keep it
    options: tuple[str, ...]
    replica_identity: str = "d"  # d default | f full | n nothing | i index
    replica_index: str | None = None  # the index's name when "i"
    columns: dict[str, Column] = field(default_factory=dict)
    comment: str | None = None

    @property
    def qualified(self) -> str:
        return f"{self.schema}.{self.name}"


@dataclass
class View:
    schema: str
    name: str
    materialized: bool
    definition: str
    options: tuple[str, ...]  # reloptions, in the order given (as for tables)
    populated: bool = True  # a materialized view created WITH NO DATA is not
    columns: list[str] = field(default_factory=list)
    column_types: list[str] = field(default_factory=list)  # format_type, with collation
    column_comments: dict[str, str] = field(default_factory=dict)
    # column -> DEFAULT expression (ALTER VIEW ... ALTER COLUMN ... SET DEFAULT):
    # used by INSERTs through an updatable view or an INSTEAD rule.
    column_defaults: dict[str, str] = field(default_factory=dict)
    comment: str | None = None


@dataclass
class Constraint:
    schema: str
    table: str  # qualified table name
    name: str
    type: str  # contype: p u f c x
    definition: str
    references: str | None = None  # qualified table a foreign key points to
    # Storage parameters of the index backing a PRIMARY KEY / UNIQUE
    # constraint ("fillfactor=90"), in the order they were given (which is
    # the order pg_dump prints): pg_get_constraintdef leaves them out for
    # those two kinds (it prints them for EXCLUDE).
    index_options: tuple[str, ...] = ()
    clustered: bool = False  # ALTER TABLE ... CLUSTER ON its index
    comment: str | None = None
    # The parts of ``definition`` a statement other than ADD CONSTRAINT is
    # built from (online mode builds a UNIQUE / PRIMARY KEY's index apart and
    # attaches it USING INDEX): the key columns in order (conkey; for PRIMARY
    # KEY / UNIQUE the backing index's key columns, pg_index.indkey up to
    # indnkeyatts), its INCLUDE columns, NULLS NOT DISTINCT
    # (pg_index.indnullsnotdistinct, PostgreSQL 15+), the index's tablespace
    # when not the database's default, and DEFERRABLE / INITIALLY DEFERRED
    # (condeferrable, condeferred). Implied by ``definition``, so left out
    # of comparisons: two constraints are equal when their definitions are.
    columns: tuple[str, ...] = field(default=(), compare=False)
    include: tuple[str, ...] = field(default=(), compare=False)
    nulls_not_distinct: bool = field(default=False, compare=False)
    tablespace: str | None = field(default=None, compare=False)
    deferrable: bool = field(default=False, compare=False)
    deferred: bool = field(default=False, compare=False)


@dataclass
class Index:
    schema: str
    name: str
    table: str
    definition: str
    clustered: bool = False  # ALTER TABLE ... CLUSTER ON this index
    comment: str | None = None
    # pg_index.indisvalid: false after a failed CREATE INDEX CONCURRENTLY (or
    # REINDEX CONCURRENTLY); PostgreSQL keeps maintaining such an index but
    # never uses it, so it is a difference to rebuild, never "in sync".
    valid: bool = True


@dataclass
class Function:
    schema: str
    name: str
    identity_args: str
    kind: str  # f function | p procedure | w window
    definition: str  # pg_get_functiondef: a complete CREATE OR REPLACE
    result: str | None
    arguments: str
    arg_types: str  # the identity: argument types only, no names
    comment: str | None = None

    @property
    def signature(self) -> str:
        return f"{self.schema}.{self.name}({self.arg_types})"


@dataclass
class Trigger:
    schema: str
    table: str
    name: str
    definition: str
    enabled: str  # tgenabled: O (origin, the default) D R A
    comment: str | None = None


@dataclass
class Policy:
    schema: str
    table: str
    name: str
    permissive: bool
    command: str  # r a w d *
    roles: tuple[str, ...]
    using: str | None
    check: str | None
    comment: str | None = None


@dataclass
class Rule:
    """A rewrite rule (CREATE RULE) on a table or view, other than a view's own _RETURN rule."""

    schema: str
    table: str  # qualified relation the rule is on
    name: str
    definition: str  # pg_get_ruledef: a complete CREATE RULE ... ;
    enabled: str  # ev_enabled: O (origin, the default) D R A, as for triggers
    comment: str | None = None


@dataclass
class Statistics:
    """An extended statistics object (CREATE STATISTICS)."""

    schema: str
    name: str
    table: str  # qualified table or materialized view it is on
    definition: str  # pg_get_statisticsobjdef: CREATE STATISTICS ... FROM ...
    target: int | None = None  # ALTER STATISTICS ... SET STATISTICS, when set
    comment: str | None = None


@dataclass
class EventTrigger:
    name: str
    event: str
    function: str  # qualified function name
    tags: tuple[str, ...]
    enabled: str  # O D R A, as for triggers
    comment: str | None = None


# -- privileges and owners -------------------------------------------------------
#
# An ACL is read as PostgreSQL's aclexplode() shows it: one (grantee,
# privilege, grantable) entry per privilege, the grantee a role name or
# PUBLIC_GRANTEE, the privilege its keyword (SELECT, EXECUTE, USAGE...).
# A NULL ACL means "the default" (PostgreSQL docs, "Privileges", Table
# 5.2); it is read as acldefault() of the object's kind and owner, so a
# NULL ACL and an explicit one equal to the default are the same ACL.
# Grantors are not kept: they are the owner unless a grant option was
# passed on, and pg_dump only names them then.

PUBLIC_GRANTEE = "PUBLIC"  # aclexplode's grantee 0; no role can be named PUBLIC
OWNER_GRANTEE = ""  # the object's owner, in acl_defaults (no role has an empty name)
AclEntry = tuple[str, str, bool]  # (grantee, privilege, grantable)
Acl = frozenset[AclEntry]
# pg_default_acl: (role, schema, object type). role None is the role that
# reads the catalog (whoever applies the migrations; the shadow's loader),
# schema None the global entry; object type is defaclobjtype: r S f T n.
DefaultAclKey = tuple["str | None", "str | None", str]


@dataclass
class Schema:
    """Every user object of one database, plus how they depend on each other."""

    schemas: dict[str, Namespace] = field(default_factory=dict)
    extensions: dict[str, Extension] = field(default_factory=dict)
    types: dict[str, Enum | Domain | Composite | Range] = field(default_factory=dict)
    sequences: dict[str, Sequence] = field(default_factory=dict)
    tables: dict[str, Table] = field(default_factory=dict)
    views: dict[str, View] = field(default_factory=dict)
    functions: dict[str, Function] = field(default_factory=dict)
    constraints: dict[str, Constraint] = field(default_factory=dict)
    indexes: dict[str, Index] = field(default_factory=dict)
    triggers: dict[str, Trigger] = field(default_factory=dict)
    policies: dict[str, Policy] = field(default_factory=dict)
    event_triggers: dict[str, EventTrigger] = field(default_factory=dict)
    rules: dict[str, Rule] = field(default_factory=dict)  # "schema.relation.rule" -> rule
    statistics: dict[str, Statistics] = field(default_factory=dict)  # "schema.name" -> statistics
    # Objects of kinds the engine does not create, alter or drop (collations,
    # casts, operators, text search objects...): pg_identify_object's
    # "type identity" -> what defines it, so that the differ can refuse a
    # change to them instead of leaving it out (see ``read_unmanaged``).
    unmanaged: dict[str, str] = field(default_factory=dict)
    # (dependent, referenced, deptype) between keys of this model
    depends: set[tuple[Key, Key, str]] = field(default_factory=set)
    # Privileges and owners (see "privileges and owners" below).
    acls: dict[Key, Acl] = field(default_factory=dict)
    owners: dict[Key, str] = field(default_factory=dict)
    default_acls: dict[DefaultAclKey, Acl] = field(default_factory=dict)
    # acldefault() of this server per object type letter (r s f T n), the
    # owner written as OWNER_GRANTEE: what a new object's ACL starts as.
    acl_defaults: dict[str, Acl] = field(default_factory=dict)
